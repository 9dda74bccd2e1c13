"""Check that moving the README into the docs site lost no text.

Every non-trivial line of the README at an old commit (default: ``0fb74f9``, the
last README before the docs site) must appear, whitespace and link targets
aside, in today's README.md or a page under docs/. Prints the lines that do
not, so a reviewer can see each was reworded on purpose (a timing replaced by a
link to the Costs page, a pointer to a section that moved), and exits 1 if any.

    python scripts/check_moved_text.py [OLD_COMMIT]
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lines shorter than this are headings, fences, table rules and the like.
MIN_CHARS = 25

__all__ = ["main", "missing_lines", "normalise"]


def normalise(text: str) -> str:
    """Link targets, heading marks and bold dropped (pages moved, so relative
    links and heading levels changed) and whitespace collapsed (moved text
    may wrap differently)."""
    text = re.sub(r"\]\([^)\s]*\)", "]", text)
    text = re.sub(r"(?m)^#+ ", "", text).replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def missing_lines(old_readme: str, new_texts: list[str]) -> list[str]:
    corpus = normalise("\n".join(new_texts))
    out = []
    for line in old_readme.splitlines():
        key = normalise(line)
        if len(key) < MIN_CHARS or set(key) <= set("|-: "):
            continue
        if key not in corpus:
            out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    old = args[0] if args else "0fb74f9"
    readme = subprocess.run(["git", "show", f"{old}:README.md"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    missing = missing_lines(readme, [p.read_text() for p in pages])
    total = sum(1 for line in readme.splitlines() if len(normalise(line)) >= MIN_CHARS)
    for line in missing:
        print(f"not found: {line}")
    print(f"{total - len(missing)} of {total} non-trivial lines of README.md at {old} are in "
          f"README.md or docs/ ({len(pages)} files)")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
