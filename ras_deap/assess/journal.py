"""A journal of finished attacks, so an interrupted assessment resumes.

An AutoAttack assessment of one mnist10k winner costs tens of CPU-minutes;
a session that ends mid-way must not lose the attacks already run. Each
finished attack's rows are appended (one JSON line) under a key naming the
network (a digest of its weights), the settings and the seed; a resumed
assessment takes the rows of every attack whose key matches and runs the
rest. Another network, settings or seed share nothing with the lines.

An attack that runs for hours (AutoAttack at a small eps) also stores its
*parts* (one chunk of images each) under a key naming only the network, the
seed and the part's own settings, so a part is reused whatever the
assessment around it asks for (more images, other attacks, another eps
grid). Parts go to a file of their own (``parts_path``, by convention
:data:`PARTS_NAME` beside the journal) that outlives the journal: an
assessment that asks first for one eps and later for the whole grid pays
for that eps once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..atomic import append_line, read_json_lines
from ..validate import json_number
from .assess_config import AUTOATTACK_COMPONENTS
from .result import AttackRow

__all__ = ["PARTS_NAME", "AttackJournal", "network_digest", "valid_part"]

PARTS_NAME = "autoattack-parts.jsonl"  # beside the journals of a folder; never removed


def network_digest(net: Any) -> str:
    """sha256 of a network's parameters and buffers, in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def valid_part(part: Any, length: int | None = None) -> bool:
    """A stored AutoAttack part of the shape the assessment writes (for
    ``length`` images, when given): anything else, a damaged or planted
    line, is attacked again or left out, never trusted."""
    if not isinstance(part, dict) or not isinstance(part.get("ok"), str):
        return False
    n = len(part["ok"]) if length is None else length

    def bits(v: Any) -> bool:
        return isinstance(v, str) and len(v) == n and set(v) <= {"0", "1"}

    after, seconds = part.get("robust_after"), part.get("seconds")
    names = [name for name, _ in AUTOATTACK_COMPONENTS]
    return (isinstance(after, dict) and isinstance(seconds, dict) and bits(part["ok"])
            and all(bits(after.get(c)) for c in names)
            and all(json_number(seconds.get(c)) is not None for c in names))


def _dumps(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


class AttackJournal:
    """Rows of finished attacks under ``key`` in the JSON-lines file ``path``
    (a torn last line, from a kill, is ignored); parts in ``parts_path``
    (default: ``path`` itself)."""

    def __init__(self, path: Path, key: dict[str, Any],
                 parts_path: Path | None = None) -> None:
        self.path = Path(path)
        self.parts_path = self.path if parts_path is None else Path(parts_path)
        self.key = _dumps(key)
        # a part's key: the network and seed, without the assessment's settings
        self._identity = {k: v for k, v in key.items() if k != "config"}
        self._done: dict[str, list[AttackRow]] = {}
        self._parts: dict[str, dict[str, Any]] = {}
        # parts written to the journal itself (before they had a file) are read too
        for source in dict.fromkeys([self.path, self.parts_path]):
            for entry in read_json_lines(source, ordered=False):
                if not isinstance(entry, dict):
                    continue
                if entry.get("key") == self.key and source == self.path:
                    try:
                        self._done[str(entry["attack"])] = [AttackRow(**r) for r in entry["rows"]]
                    except (KeyError, TypeError):  # a damaged or planted line: run it again
                        continue
                elif (isinstance(entry.get("part_key"), str)
                      and isinstance(entry.get("part"), dict)):
                    self._parts[entry["part_key"]] = entry["part"]

    @classmethod
    def for_network(cls, path: Path, net: Any, seed: int, config: Any,
                    parts_path: Path | None = None) -> AttackJournal:
        """The journal of ``net`` attacked with ``config`` (an AssessConfig)
        and ``seed``; its AutoAttack parts in ``parts_path`` (default:
        :data:`PARTS_NAME` beside ``path``)."""
        return cls(path, {"network": network_digest(net), "seed": seed,
                          "config": config.to_dict()},
                   Path(path).parent / PARTS_NAME if parts_path is None else parts_path)

    def rows(self, attack: str) -> list[AttackRow] | None:
        """The stored rows of ``attack`` (e.g. ``autoattack 3``), or None."""
        return self._done.get(attack)

    def add(self, attack: str, rows: list[AttackRow]) -> None:
        self._done[attack] = list(rows)
        append_line(self.path, json.dumps({"key": self.key, "attack": attack,
                                           "rows": [dataclasses.asdict(r) for r in rows]}))

    def part(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The stored payload of the part run with ``settings``, or None."""
        return self._parts.get(self._part_key(settings))

    def add_part(self, settings: dict[str, Any], payload: dict[str, Any]) -> None:
        key = self._part_key(settings)
        self._parts[key] = dict(payload)
        append_line(self.parts_path, json.dumps({"part_key": key, "part": payload}))

    def _part_key(self, settings: dict[str, Any]) -> str:
        return _dumps({**self._identity, "part": settings})

    def __len__(self) -> int:
        return len(self._done)
