"""What determines a held-out bank: :class:`HeldoutConfig`, declared with the
option schema (:func:`ras_deap.options.option`) and validated by it, so a bad
setting is one :class:`~ras_deap.errors.ConfigError` naming it, as for every
other command (the bank itself: :mod:`ras_deap.attacks.heldout`)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..bank import HELDOUT_SPLITS, default_linf_thresholds
from ..errors import ConfigError
from ..options import check_options, option, options_of
from .heldout_sources import DEFAULT_HELDOUT_SOURCES, HELDOUT_SOURCE_NAMES, HeldoutSourceConfig

__all__ = ["HELDOUT_ATTACKS", "HELDOUT_OPTIONS", "HELDOUT_SELECTIONS", "HeldoutConfig"]

# CLI name -> the label stored in the bank's ``optimizer`` field
HELDOUT_ATTACKS = {"hsj": "HopSkipJump", "pgd": "PGD-transfer"}
# which base images each source attacks (see the module docstring of attacks.heldout)
HELDOUT_SELECTIONS = ("first", "margin")
_B = "bank"


@dataclass(frozen=True)
class HeldoutConfig:
    """Everything that determines a held-out bank. ``seed`` picks the data
    split (the test split attacked with ``split="test"``, and the training
    split the sources learn from) and seeds every source and image.
    ``images``: at most this many base images (the first of the split, in
    its own order, as ``assess`` takes test images; None: all).
    HopSkipJump: ``hsj_max_iter`` iterations, ``hsj_max_eval`` /
    ``hsj_init_eval`` queries per gradient estimate, per image. PGD:
    ``pgd_steps`` steps of eps/4, no random start.
    ``select="margin"``: each source attacks the ``candidates`` correctly
    classified images (of those offered) with the smallest logit margin on
    that source; ``"first"``: all correctly classified images offered."""

    dataset: str = option("digits", "digits or mnist10k (embedded), or a torchvision dataset "
                          "(--split test)", _B)
    data_dir: str | None = option(None, "folder holding the dataset files", _B)
    split: str = option("assessment", "base images: the fixed assessment split (disjoint from "
                        "every seed's train/validation/test and from every fitness bank), or "
                        "the test split of --seed (held out from that seed's searches only)",
                        _B, choices=HELDOUT_SPLITS)
    seed: int = option(0, "data split (the test split attacked with --split test, the training "
                       "split of the sources) and every random draw", _B, minimum=0)
    sources: tuple[str, ...] = option(DEFAULT_HELDOUT_SOURCES, "comma list from "
                                      + ",".join(HELDOUT_SOURCE_NAMES), _B,
                                      choices=HELDOUT_SOURCE_NAMES, nonempty=True, unique=True)
    attacks: tuple[str, ...] = option(tuple(HELDOUT_ATTACKS), "comma list from hsj (ART "
                                      "HopSkipJump, decision-based) and pgd (ART PGD on the "
                                      "source, transferred)", _B, choices=tuple(HELDOUT_ATTACKS),
                                      nonempty=True, unique=True)
    linf_th: tuple[int, ...] | None = option(None, "Linf thresholds in steps of the data's "
                                             "intensity grid; default: 1,2,3,4 on digits, "
                                             "1,3,5,10 on 8-bit data", _B, minimum=1,
                                             nonempty=True)
    images: int | None = option(None, "at most this many base images (the first of the "
                                "split); default all", _B, minimum=1)
    # ~0.13 s (MLP) and ~0.35 s (CNN) per digits image on one core; the
    # minimal perturbation ends within 4/16 for most images
    hsj_max_iter: int = option(10, "HopSkipJump iterations per image", _B, minimum=1)
    hsj_max_eval: int = option(500, "HopSkipJump: most queries per gradient estimate", _B,
                               minimum=1)
    hsj_init_eval: int = option(50, "HopSkipJump: first queries per gradient estimate", _B,
                                minimum=1)
    pgd_steps: int = option(10, "PGD steps (of eps/4) on each source", _B, minimum=1)
    source: HeldoutSourceConfig = field(default_factory=HeldoutSourceConfig)
    select: str = option("first", "which base images each source attacks: every correctly "
                         "classified one (first), or the --candidates correctly classified ones "
                         "with the smallest logit margin on that source (margin; for confident "
                         "sources on 8-bit data, where random images almost never flip at <= "
                         "10/255)", _B, choices=HELDOUT_SELECTIONS)
    candidates: int | None = option(None, "with --select margin: images each source attacks, "
                                    "smallest margin first", _B, minimum=1)

    def __post_init__(self) -> None:
        check_options(self, HELDOUT_OPTIONS)
        if self.select == "margin" and self.candidates is None:
            raise ConfigError("select='margin' needs candidates: how many smallest-margin "
                              "images each source attacks (e.g. --candidates 150)")
        if self.candidates is not None and self.select != "margin":
            raise ConfigError(f"candidates={self.candidates}: only applies to select='margin' "
                              "(--select margin), or leave --candidates out")

    def thresholds(self, levels: int) -> tuple[int, ...]:
        return tuple(sorted(self.linf_th or default_linf_thresholds(levels)))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("data_dir")
        # left at their original behaviour: the same record as the banks built before them
        if d["select"] == "first":
            d.pop("select")
        if d["candidates"] is None:
            d.pop("candidates")
        return json.loads(json.dumps(d))


HELDOUT_OPTIONS = options_of(HeldoutConfig)
