"""ART classifiers that remember what they computed, for SquareAttack and APGD.

ART's ``SquareAttack`` (1.20, L-inf) runs three forward passes per query:
the whole batch (to find the images still classified correctly), the
current loss of those images, and the loss of their candidates. The first
two are images it evaluated one query before, so only the third is new.
:func:`memoised` returns the classifier with a ``predict`` that looks each
image up by its bytes first: Square then costs one forward pass per query,
not three. That is most of AutoAttack's time at small eps, where nearly
every image survives APGD and gets all 5000 queries.

Only inference is remembered (``training_mode=False``), on the same
network: a remembered row is the logits the network returned for those
exact bytes. It was computed in another batch, so it can differ from a
recomputation in the last bits, as two recomputations in different batches
can; the attack's choices differ only at such ties. On three mnist10k
winners (``benchmarks/square_memo.py``, ``docs/results/square-memo-mnist10k.jsonl``)
Square's robust accuracy was the same with and without the memo, its
adversarials identical on two and within 3e-8 on the third, in 3.4-4.6
times less CPU time.

ART's ``AutoProjectedGradientDescent`` runs, per step, ``loss_gradient`` of
the current point (a forward and a backward pass) and then ``compute_loss``
of the next (another forward); the next step's ``loss_gradient`` is of that
same point. :func:`memoised_gradients` wraps the attack's classifier so
that ``compute_loss`` runs the forward and backward pass at once and keeps
the gradient for the ``loss_gradient`` that follows: one forward pass per
step instead of two. The losses and gradients are those of the same
passes ART would run, in the same batches, so the attack is unchanged.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["GradientMemo", "LogitMemo", "memoised", "memoised_gradients"]


class LogitMemo:
    """``predict(x, batch_size, ...)`` of an ART classifier, computing only
    the rows of ``x`` it has not seen among its last ``capacity`` rows."""

    def __init__(self, predict: Any, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity {capacity}: must be >= 1")
        self._predict, self.capacity = predict, capacity
        self._rows: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._largest = 0  # the most rows one call asked for
        self.hits = self.misses = 0

    def __call__(self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False,
                 **kwargs: Any) -> np.ndarray:
        x = np.ascontiguousarray(x)
        if training_mode or kwargs or len(x) == 0:
            return self._predict(x, batch_size=batch_size, training_mode=training_mode,
                                 **kwargs)
        keys = [x.dtype.str.encode() + row.tobytes() for row in x]
        new: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._rows and key not in new:
                new[key] = i
        if new:
            logits = self._predict(x[list(new.values())], batch_size=batch_size)
            for key, row in zip(new, logits, strict=True):
                self._rows[key] = row
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        out = np.stack([self._rows[key] for key in keys])
        for key in keys:  # the most recently used are kept
            self._rows.move_to_end(key)
        # a query re-reads the rows of the two calls before it: keep three calls' worth
        self._largest = max(self._largest, len(keys))
        while len(self._rows) > max(self.capacity, 3 * self._largest):
            self._rows.popitem(last=False)
        return out


def memoised(clf: Any, capacity: int = 4096) -> Any:
    """A shallow copy of ART classifier ``clf`` (same network) whose
    ``predict`` is a :class:`LogitMemo` of ``clf.predict``; ``clf`` itself is
    unchanged. ``capacity``: the rows remembered (a few queries' worth)."""
    memo = copy.copy(clf)
    memo.predict = LogitMemo(clf.predict, capacity)
    return memo


class GradientMemo:
    """An ART ``PyTorchClassifier`` (everything delegated) whose
    ``compute_loss(x, y, reduction="none")`` also computes, in the same
    pass, the gradient ``loss_gradient(x, y)`` would return, and returns it
    when ``loss_gradient`` is then asked for exactly that ``x`` and ``y``
    (one remembered batch). Anything else goes to the classifier."""

    def __init__(self, clf: Any) -> None:
        self._clf = clf
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None
        self._grad: np.ndarray | None = None
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clf, name)

    def _plain(self, x: Any, y: Any, kwargs: dict[str, Any]) -> bool:
        """Calls this memo leaves alone: tensors, options, and any classifier
        with defences (which may draw at random on every pass)."""
        clf = self._clf
        return (bool(kwargs) or not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray)
                or bool(clf.preprocessing_defences) or bool(clf.postprocessing_defences))

    def loss_gradient(self, x: Any, y: Any, training_mode: bool = False,
                      **kwargs: Any) -> Any:
        if (not training_mode and not self._plain(x, y, kwargs) and self._grad is not None
                and np.array_equal(x, self._x) and np.array_equal(y, self._y)):
            self.hits += 1
            grad, self._grad = self._grad, None  # each gradient is asked for once
            return grad
        return self._clf.loss_gradient(x, y, training_mode=training_mode, **kwargs)

    def compute_loss(self, x: Any, y: Any, reduction: str = "none", **kwargs: Any) -> Any:
        if reduction != "none" or self._plain(x, y, kwargs):
            return self._clf.compute_loss(x, y, reduction=reduction, **kwargs)
        import torch
        from art.utils import check_and_transform_label_format

        clf = self._clf
        captured: list[Any] = []
        hook = clf.model.register_forward_hook(lambda m, i, out: captured.append(out.detach()))
        try:
            grad = clf.loss_gradient(x, y)
        finally:
            hook.remove()
        labels = clf.reduce_labels(check_and_transform_label_format(y, clf.nb_classes))
        loss_fn = clf.loss
        before, loss_fn.reduction = loss_fn.reduction, "none"
        try:
            loss = loss_fn(captured[-1], torch.from_numpy(np.asarray(labels)))
        finally:
            loss_fn.reduction = before
        self._x, self._y, self._grad = np.array(x), np.array(y), grad
        self.misses += 1
        return loss.detach().cpu().numpy()


def memoised_gradients(attack: Any) -> Any:
    """``attack`` (an ART ``AutoProjectedGradientDescent``, whose classifier
    it built itself for its loss) with that classifier in a
    :class:`GradientMemo`."""
    attack._estimator = GradientMemo(attack.estimator)
    return attack
