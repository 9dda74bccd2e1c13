"""Every file the package writes goes through ``ras_deap.atomic``: a kill
mid-write leaves the old file or the new one, never a torn one that a resumed
run would trust. A scan of the package's source finds writes that do not."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from ras_deap.atomic import (
    append_line,
    copy_atomic,
    read_json_lines,
    save_figure_atomic,
    write_atomic,
    write_csv_atomic,
    write_json_atomic,
)

PACKAGE = Path(__file__).resolve().parents[1] / "ras_deap"
# writers whose target is a file handle or buffer that atomic.py opened
HANDLE_NAMES = {"fh", "dst", "buffer", "source"}
# writes that are not the package's files -> why
ALLOWED = {
    ("atomic.py", None): "the atomic writer itself",
    ("tracking/tracker.py", "shutil.copyfile"): "a copy in a temporary folder, only to give "
                                                "an MLflow artifact its name",
}
WRITE_METHODS = {"write_text", "write_bytes"}
SAVERS = {"savefig", "savez", "savez_compressed", "save", "copyfile", "copy", "copy2",
          "move", "dump", "export"}


def _first_arg_is_a_handle(call: ast.Call, position: int) -> bool:
    args = call.args
    if len(args) <= position:
        return True  # nothing written to a path here (e.g. fig.savefig without a target)
    target = args[position]
    return isinstance(target, ast.Name) and target.id in HANDLE_NAMES


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = (func.value.id if isinstance(func, ast.Attribute)
                 and isinstance(func.value, ast.Name) else "")
        if name in WRITE_METHODS:
            found.append((node.lineno, name))
        elif name == "open":
            position = 0 if isinstance(func, ast.Attribute) else 1  # path.open("w"), open(p, "w")
            modes = node.args[position:position + 1] + [k.value for k in node.keywords
                                                         if k.arg == "mode"]
            for mode in modes:
                if isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+"):
                    found.append((node.lineno, f"open(..., {mode.value!r})"))
        elif name == "savefig" and not _first_arg_is_a_handle(node, 0):
            found.append((node.lineno, "savefig"))
        elif name in ("savez", "savez_compressed") and owner == "np" \
                and not _first_arg_is_a_handle(node, 0):
            found.append((node.lineno, f"np.{name}"))
        elif name == "save" and owner == "torch" and not _first_arg_is_a_handle(node, 1):
            found.append((node.lineno, "torch.save"))
        elif name in ("copyfile", "copy", "copy2", "move") and owner == "shutil":
            found.append((node.lineno, f"shutil.{name}"))
        elif name == "dump" and owner in ("json", "pickle") \
                and not _first_arg_is_a_handle(node, 1):
            found.append((node.lineno, f"{owner}.dump"))
        elif name == "export" and isinstance(func, ast.Attribute) \
                and isinstance(func.value, ast.Attribute) and func.value.attr == "onnx" \
                and not _first_arg_is_a_handle(node, 2):
            found.append((node.lineno, "torch.onnx.export"))
    return found


def test_every_package_write_goes_through_the_atomic_writer() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if (rel, None) in ALLOWED:
            continue
        for line, what in _writes(ast.parse(path.read_text(), str(path))):
            if (rel, what) not in ALLOWED:
                offenders.append(f"ras_deap/{rel}:{line}: {what}")
    assert not offenders, "write through ras_deap.atomic instead:\n" + "\n".join(offenders)


def test_the_scan_finds_a_plain_write() -> None:
    source = ("p.write_text('x')\nopen(p, 'w')\nfig.savefig(p)\ntorch.save(s, p)\n"
              "np.savez(p, a=1)\nshutil.copyfile(a, b)\njson.dump(d, f)\n"
              "torch.save(s, fh)\nfig.savefig(buffer)\nopen(p)\nopen(p, 'rb')\np.open('a')\n"
              "gzip.open(p, 'rb')\n")
    assert [what for _, what in _writes(ast.parse(source))] == [
        "write_text", "open(..., 'w')", "savefig", "torch.save", "np.savez", "shutil.copyfile",
        "json.dump", "open(..., 'a')"]


def test_helpers_write_whole_files_and_leave_no_temporaries(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]}, sort_keys=True,
                      newline=True)
    assert (tmp_path / "a" / "x.json").read_text() == json.dumps(
        {"a": [1, 2], "b": 1}, indent=2) + "\n"
    write_csv_atomic(tmp_path / "t.csv", [{"k": 1, "v": "a,b"}], ["k", "v"])
    assert (tmp_path / "t.csv").read_bytes() == b'k,v\r\n1,"a,b"\r\n'
    write_csv_atomic(tmp_path / "u.csv", [["h"], [2]])
    assert (tmp_path / "u.csv").read_bytes() == b"h\r\n2\r\n"
    copy_atomic(tmp_path / "t.csv", tmp_path / "c" / "t.csv")
    assert (tmp_path / "c" / "t.csv").read_bytes() == (tmp_path / "t.csv").read_bytes()
    append_line(tmp_path / "j.jsonl", "1")
    append_line(tmp_path / "j.jsonl", "2\n")
    assert (tmp_path / "j.jsonl").read_text() == "1\n2\n"
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1])
    png = save_figure_atomic(fig, tmp_path / "f.png", dpi=50)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_atomic(tmp_path / "x.txt", "old")

    class Boom(Exception):
        pass

    def rows():
        yield {"a": 1}
        raise Boom

    with pytest.raises(Boom):
        write_csv_atomic(path, rows(), ["a"])
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_a_written_file_gets_the_umasks_mode_or_keeps_the_one_it_replaces(tmp_path):
    """mkstemp makes 0600 files: results a group shares (or a server serves)
    would be unreadable to it. A plain write's mode is what users expect."""
    old = os.umask(0o027)
    try:
        new = write_atomic(tmp_path / "new.md", "x")
        assert new.stat().st_mode & 0o777 == 0o640
        kept = tmp_path / "kept.json"
        kept.write_text("{}")
        kept.chmod(0o604)
        write_json_atomic(kept, {"a": 1})
        assert kept.stat().st_mode & 0o777 == 0o604
        assert copy_atomic(new, tmp_path / "copy.md").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_read_json_lines_drops_torn_lines_by_the_journal_kind(tmp_path: Path) -> None:
    """An ordered journal stops at its first torn line (what follows is another
    sequence); a keyed one skips it, since a later append can follow a torn line."""
    path = tmp_path / "journal.jsonl"
    assert read_json_lines(path) == []  # no file yet: nothing done
    append_line(path, json.dumps({"index": 0}))
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"index": 1, "genome": "cut by a ki')  # a kill mid-append, no newline
    assert read_json_lines(path) == [{"index": 0}]
    append_line(path, json.dumps({"index": 2}))  # lands on the torn line
    append_line(path, json.dumps({"index": 3}))
    assert read_json_lines(path) == [{"index": 0}]
    assert read_json_lines(path, ordered=False) == [{"index": 0}, {"index": 3}]
    path.write_bytes(b'{"index": 0}\n\n{"index": 1, "s": "\xc3')  # blank line; torn UTF-8
    assert read_json_lines(path) == [{"index": 0}]
