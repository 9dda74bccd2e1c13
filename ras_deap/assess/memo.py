"""An ART classifier that remembers its logits by image, for SquareAttack.

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
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["LogitMemo", "memoised"]


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
