"""A self-contained results page of a comparison (``--report PATH``).

Writes ``PATH`` (Markdown: command, machine, wall time, the tables, the
figure), ``PATH.csv`` (one row per method and seed), ``<stem>-table.csv``
(per method, mean/std/95 % CI), ``<stem>-paired.csv`` and ``PATH.png`` (the
best-fitness figure), e.g. ``docs/results/table2-digits.md``.
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from ..atomic import copy_atomic, write_atomic
from .compare_config import DEFAULT_METHODS, CompareConfig

__all__ = ["NOTES_NAME", "write_report"]

# what the page cannot know, written by hand beside the cells (a machine or session whose
# record was lost, an audit's correction): every rewrite of the page carries it
NOTES_NAME = "report-notes.md"


def _title(cfg: CompareConfig) -> str:
    """The page's title: Table 2 where RAS meets the paper's baselines (or some
    of them), else the methods it compares (a pilot of RAS against NSGA-II is
    no Table 2)."""
    if "ras" in cfg.methods and set(cfg.methods) <= set(DEFAULT_METHODS):
        return f"Table 2 on {cfg.search.dataset}: RAS against NAS baselines"
    return f"{', '.join(cfg.methods)} compared on {cfg.search.dataset}"


def _git_commit() -> str | None:
    """The commit of the code that wrote the page. Only the package's own
    source counts as uncommitted changes: the comparison's results, which the
    run itself has just rewritten, say nothing about the code."""
    package = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True, cwd=package)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                str(package)],
                               capture_output=True, text=True, timeout=10,
                               cwd=package).stdout.strip()
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _machine_text(machine: dict[str, Any]) -> str:
    return (f"{machine.get('cpu', '?')}, {machine.get('cpus', '?')} CPU(s), "
            f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}, ras_deap "
            f"{machine.get('ras_deap', '?')}")


def _machine_lines(sessions: list[dict[str, Any]], current: dict[str, Any]) -> list[str]:
    """The machines the recorded sessions ran on, not the one that rewrites
    the page: a rerun that only reads finished cells back may run elsewhere."""
    texts = list(dict.fromkeys(_machine_text(s["machine"]) for s in sessions
                               if s.get("machine")))
    if not texts:
        return [f"* machine: {_machine_text(current)}"]
    if len(texts) == 1:
        return [f"* machine: {texts[0]}"]
    return ["* machines (each session below names its CPU):", *(f"  * {t}" for t in texts)]


def _session_lines(sessions: list[dict[str, Any]]) -> list[str]:
    lines = []
    for i, s in enumerate(sessions, start=1):
        machine = s.get("machine", {})
        load, cpu = machine.get("load_average_at_start", "n/a"), machine.get("cpu")
        lost = "last_seen" in s and "ended" not in s
        lines.append(f"  {i}. {_duration(float(s['seconds']))}"
                     + (f" ({_duration(float(s['cpu_seconds']))} CPU)"
                        if "cpu_seconds" in s else "")
                     + f", {s.get('workers')} worker(s), {len(s.get('cells_run', []))} cell(s) run"
                     + (f" on {cpu}" if cpu else "")
                     + (", lost: it ended without a record, so its times are those of its "
                        f"last heartbeat ({s['last_seen']})" if lost
                        else ", interrupted" if s.get("interrupted") else "")
                     + f"; load average (1, 5, 15 min) at its start {load}")
    return lines


def _cpu_lines(result: Any, sessions: list[dict[str, Any]]) -> list[str]:
    lines = []
    timed = [float(s["cpu_seconds"]) for s in sessions if "cpu_seconds" in s]
    if timed:
        lines.append(f"* CPU time of the sessions: {_duration(sum(timed))} ({len(timed)} of "
                     f"{len(sessions)} sessions record it; each its whole process tree, the main "
                     "process and the cell workers, so evaluations later replayed from a "
                     "journal count where they were spent)")
    cpus = [float(r.row["cpu_seconds"]) for r in result.runs
            if not math.isnan(float(r.row.get("cpu_seconds", math.nan)))]
    if cpus:
        lines.append(f"* CPU time of the cells: {_duration(sum(cpus))} (sum over the "
                     f"{len(cpus)} cells that record it, each in the process that finished it, so "
                     "not the evaluations it replayed from its journal; one torch thread each, "
                     "so about what they take on idle cores)")
    return lines


def write_report(path: str | Path, result: Any, command: str | None = None) -> dict[str, Path]:
    """Write the results page of ``result`` (a ComparisonResult) to ``path``
    and copy its CSVs and figure beside it; return the written paths."""
    path = Path(path)
    if path.suffix != ".md":
        raise ValueError(f"--report {path}: give a Markdown file name ending in .md")
    path.parent.mkdir(parents=True, exist_ok=True)
    files = result.files
    stem = path.with_suffix("")
    written = {"report": path}
    copies = {"results_csv": path.with_suffix(".csv"),
              "table_csv": stem.with_name(stem.name + "-table.csv"),
              "paired_csv": stem.with_name(stem.name + "-paired.csv"),
              "figure": path.with_suffix(".png")}
    for key, dst in copies.items():
        if key in files:
            copy_atomic(files[key], dst)
            written[key] = dst
    cfg = result.config
    data = json.loads(Path(files["json"]).read_text())
    machine = data.get("machine", {})
    sessions = data.get("sessions", [])
    done = len(result.runs)
    expected = len(cfg.methods) * cfg.seeds
    notes = Path(cfg.out) / NOTES_NAME
    lines = [f"# {_title(cfg)}", "",
             f"Generated {datetime.now().isoformat(timespec='minutes')} by "
             "`python -m ras_deap.compare`"
             + (f" at commit {c}" if (c := _git_commit()) else "") + ".", "",
             *([f"*Notes kept with the cells (`{notes.as_posix()}`, written by hand; every "
                "rewrite of this page carries them):*", "",
                notes.read_text(encoding="utf-8").strip(), ""] if notes.is_file() else []),
             "## Command", "", "```bash", command or "python -m ras_deap.compare", "```", "",
             "Rerunning the same command resumes an interrupted comparison (finished cells are "
             "read back, unfinished ones replay their journals) and rewrites this page.", "",
             "## Machine and wall time", "",
             *_machine_lines(sessions, machine),
             f"* wall time: {_duration(result.total_seconds)} over {len(sessions)} session(s):",
             *_session_lines(sessions), *_cpu_lines(result, sessions),
             f"* cells: {done} of {expected} finished"
             + (f"; **failed: {', '.join(result.failed)}**" if result.failed else ""), "",
             "## Results", "", Path(files["markdown"]).read_text(), "",
             f"![Best fitness against evaluations]({written['figure'].name})"
             if "figure" in written else "", "",
             "## Files", "",
             *(f"* `{p.name}`" for k, p in written.items() if k != "report"),
             f"* MLflow: comparison run `{result.run_id}` (per-cell child runs with "
             "`assess/` metrics and the evaluated individuals)", ""]
    write_atomic(path, "\n".join(lines))
    return written
