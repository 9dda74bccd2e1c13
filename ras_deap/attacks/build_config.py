"""What determines an adversarial bank: :class:`BuildConfig`, declared with the
option schema (:func:`ras_deap.options.option`) and validated by it, so a bad
setting is one :class:`~ras_deap.errors.ConfigError` naming it, as for every
other command."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..bank import default_linf_thresholds
from ..errors import ConfigError
from ..options import check_options, option, options_of
from .settings import NORMS, OPTIMIZERS, THRESHOLDS, AttackSetting
from .source_models import SOURCE_NAMES, SourceConfig

__all__ = ["BUILD_OPTIONS", "SELECTIONS", "BuildConfig"]

# How a (source, attack setting) picks the bank-split images it attacks (see
# build._images_for).
SELECTIONS = ("random", "margin")
_B = "bank"
# The record's keys of two options, as banks and work folders have stored them
# since before the word "attack setting" (a stored key is not a Python name):
# written by to_json, so old work folders resume and new banks record the same.
_STORED_KEYS = {"images_per_setting": "images_per_cell",
                "linf_images_per_setting": "linf_images_per_cell"}


@dataclass(frozen=True)
class BuildConfig:
    """Everything that determines a bank. Defaults: the shipped digits bank
    (40 images per (source, attack setting), each setting drawing its own
    images from the quarantined bank split, so the bank spans several hundred
    base images).

    ``linf_th``: Linf thresholds in steps of the data's intensity grid; None =
    the data's default (1/3/5/10 out of 255 on 8-bit data, 1-4 steps of 1/16
    on digits): see :func:`ras_deap.bank.linf_grid`. ``select``: "random", a
    seeded draw among the correctly classified images (digits); "margin", a
    seeded draw that favours the images the source is least sure of (weight
    1 / (margin rank + 1)), among the ``pool`` least sure ones if set, for
    confident sources on 8-bit data, where a few pixels or a few /255 can
    only flip images near the decision boundary. ``linf_images_per_setting``:
    images per (source, Linf attack setting); None = ``images_per_setting``. On
    28 x 28 data an Linf image costs ~10x an L0 one (ART's DE population is one
    candidate per pixel) and succeeds far less often at <= 10/255."""

    dataset: str = option("digits", "digits or mnist10k (embedded), or cifar10 / mnist / "
                          "fashion-mnist from --data-dir", _B)
    data_dir: str | None = option(None, "folder holding the dataset files", _B)
    seed: int = option(0, "seed of the data split, the source models and every draw", _B,
                       minimum=0)
    images_per_setting: int = option(40, "correctly classified bank-split images attacked per "
                                     "(source, attack setting)", _B, minimum=1)
    max_iter: int = option(20, "ART max_iter: DE generations / CMA-ES iterations per image",
                           _B, minimum=1)
    sources: tuple[str, ...] = option(SOURCE_NAMES, "comma list from resnet,capsnet,at,fs", _B,
                                      choices=SOURCE_NAMES, nonempty=True, unique=True)
    l0_th: tuple[int, ...] = option(THRESHOLDS, "L0 thresholds (pixels changed); empty for "
                                    "none", _B, minimum=1)
    linf_th: tuple[int, ...] | None = option(
        None, "Linf thresholds in steps of the data's intensity grid (1/255 on 8-bit data, "
        "1/16 on digits); default: 1,3,5,10 on 8-bit data, 1,2,3,4 on digits; empty for none",
        _B, minimum=1)
    optimizers: tuple[str, ...] = option(tuple(OPTIMIZERS), "DE,CMA-ES", _B,
                                         choices=tuple(OPTIMIZERS), nonempty=True)
    source: SourceConfig = field(default_factory=SourceConfig)
    select: str = option("random", "which correctly classified bank-split images each "
                         "(source, attack setting) attacks: a seeded random draw, or a seeded "
                         "draw favouring the images the source is least sure of (weight "
                         "1/(margin rank + 1))", _B, choices=SELECTIONS)
    pool: int | None = option(None, "with --select margin: draw only among the POOL images the "
                              "source is least sure of", _B, minimum=1)
    linf_images_per_setting: int | None = option(
        None, "images per (source, Linf attack setting); default: --images-per-setting", _B,
        minimum=1)

    def __post_init__(self) -> None:
        check_options(self, BUILD_OPTIONS)
        if not self.l0_th and self.linf_th == ():
            raise ConfigError("no thresholds: give l0_th and/or linf_th")
        if self.pool is not None and self.select != "margin":
            raise ConfigError(f"pool={self.pool}: only applies to select='margin' (--select "
                              "margin), or leave --pool out")

    def attack_settings_for(self, levels: int) -> tuple[AttackSetting, ...]:
        """Table 1 order: optimizer, then L0 / Linf by threshold; Linf
        thresholds on the grid of data with ``levels`` intensity levels."""
        linf = self.linf_th if self.linf_th is not None else default_linf_thresholds(levels)
        ths = {"L0": self.l0_th, "Linf": linf}
        return tuple(AttackSetting(n, t, o) for o in self.optimizers for n in NORMS
                     for t in ths[n])

    def to_json(self) -> dict[str, Any]:
        """The record in the bank's manifest and the work folder's config.json
        (a build resumes only on an equal one), with the stored keys."""
        d = dataclasses.asdict(self)
        d.pop("data_dir")  # where the data lives does not change the bank
        # options left at their original behaviour: the same record as before them
        if d["select"] == "random":
            d.pop("select")
        if d["pool"] is None:
            d.pop("pool")
        if d["linf_images_per_setting"] is None:
            d.pop("linf_images_per_setting")
        d = {_STORED_KEYS.get(k, k): v for k, v in d.items()}
        return json.loads(json.dumps(d))

    def images_for(self, setting: AttackSetting) -> int:
        """How many images each source attacks in ``setting``."""
        if setting.norm == "Linf" and self.linf_images_per_setting is not None:
            return self.linf_images_per_setting
        return self.images_per_setting


BUILD_OPTIONS = options_of(BuildConfig)
