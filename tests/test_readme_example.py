"""The worked example (docs/guide/export.md, once the README's) and the README's
picture cannot silently rot: the example runs as written
(scripts/check_readme_example.sh) and the committed picture is what the
documented command draws."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_readme_example.sh"
EXAMPLE_PAGE = ROOT / "docs" / "guide" / "export.md"
SVG_NS = "{http://www.w3.org/2000/svg}"


def readme_block(marker: str = "<!-- readme-example -->") -> str:
    text = EXAMPLE_PAGE.read_text()
    after = text.split(marker + "\n", 1)[1]
    assert after.startswith("```bash\n")
    return after[len("```bash\n"):].split("\n```\n", 1)[0]


def test_the_example_block_runs_search_export_and_a_python_without_ras_deap() -> None:
    block = readme_block()
    lines = block.splitlines()
    assert lines[0].startswith("python -m ras_deap.run --preset smoke --run-name readme-example")
    assert lines[1] == "python -m ras_deap.export runs/readme-example --out exported/"
    assert lines[2] == "cd exported && python -I - <<'EOF'" and lines[-1] == "EOF"
    assert 'sys.modules["ras_deap"] = None' in block and 'np.load("test_split.npz")' in block


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_readme_example_runs_as_written_and_agrees_with_the_search() -> None:
    """A --preset smoke search, its export, the classification (~40 s)."""
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    ok = re.search(r"check_readme_example: OK: test accuracy (\d\.\d{4})", done.stdout)
    assert ok and 0 < float(ok.group(1)) <= 1
    assert f"test accuracy {ok.group(1)} on 270 images" in done.stdout


def _content(svg: str) -> tuple[list[str], list[str]]:
    root = ET.fromstring(svg.encode())
    ids = [g.get("id") for g in root.iter(f"{SVG_NS}g")
           if re.fullmatch(r"block\d+(-layer\d+)?|input|softmax|block-edges", g.get("id") or "")]
    return ids, ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


def test_the_committed_picture_is_what_the_documented_command_draws(tmp_path: Path) -> None:
    command = re.search(r"^python -m ras_deap\.report (\S+) --out docs/architecture\.svg$",
                        EXAMPLE_PAGE.read_text(), re.M)
    assert command, "docs/guide/export.md documents how docs/architecture.svg is drawn"
    from ras_deap.report.cli import main

    assert main([str(ROOT / command.group(1)), "--out", str(tmp_path / "a.svg")]) == 0
    drawn = (tmp_path / "a.svg").read_text()
    committed = (ROOT / "docs" / "architecture.svg").read_text()
    # the same groups and labels (bytes also depend on the matplotlib version)
    assert _content(drawn) == _content(committed)
    assert "(docs/architecture.svg)" in (ROOT / "README.md").read_text()
    assert "(../architecture.svg)" in EXAMPLE_PAGE.read_text()
