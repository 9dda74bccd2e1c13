"""Fix the assessment split of every embedded dataset (``digits``,
``mnist10k``) and write ``ras_deap/data/files/assessment-splits.json``.

    python scripts/make_assessment_splits.py            # writes the records
    python scripts/make_assessment_splits.py --check    # exit 1 if they differ

The rule (:func:`ras_deap.data.assessment.choose_assessment_split`): the
distinct images of the dataset's bank split that are not the base image of
any sample of its shipped fitness bank (``ras_deap/bank/files/<name>.npz``), in
the order of a salted sha256 of their content, first SIZE. Run once when the
split was fixed; the records are frozen after that (a rebuilt fitness bank
skips the assessment split, so rerunning this would choose other images:
``--check`` only holds while the shipped banks are the ones recorded).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# digits: the bank split has 360 images and the shipped bank uses 352, so all
# the rest (8). mnist10k: 500 of the 1643 unused, leaving 1500 for future
# fitness banks (a margin-selected bank of >= 300 base images needs ~1500).
SIZES = {"digits": 360, "mnist10k": 500}


def records() -> dict:
    from ras_deap.bank import default_bank_path
    from ras_deap.data import load_dataset
    from ras_deap.data.assessment import ASSESSMENT_SPLIT_FORMAT, make_record

    out = {}
    for name, size in SIZES.items():
        dataset = load_dataset(name, seed=0)
        path = default_bank_path(name)
        manifest = json.loads(Path(path).with_suffix(".json").read_text())
        out[name] = make_record(dataset, {f"ras_deap/bank/files/{Path(path).name}": manifest}, size)
    return {"format": ASSESSMENT_SPLIT_FORMAT, "datasets": out}


def main(argv: list[str] | None = None) -> int:
    from ras_deap.data.assessment import ASSESSMENT_RECORDS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true",
                   help="compare with the written records instead of writing them")
    args = p.parse_args(argv)
    text = json.dumps(records(), indent=1, sort_keys=True) + "\n"
    if args.check:
        same = ASSESSMENT_RECORDS.is_file() and ASSESSMENT_RECORDS.read_text() == text
        print("assessment splits: " + ("as recorded" if same else "DIFFER from the records"))
        return 0 if same else 1
    ASSESSMENT_RECORDS.write_text(text)
    for name, rec in json.loads(text)["datasets"].items():
        print(f"{name}: {rec['size']} images (bank split {rec['bank_split_images']}, "
              f"{rec['excluded_contents']} excluded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
