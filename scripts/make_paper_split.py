"""Write a dataset as an .npz under the TMC/RCML protocol: views min-max scaled to [0, 1], an 80/20 split.

The scaling uses the whole dataset's per-feature minimum and maximum (as the papers' released loaders do); of the
80 % training rows, ``--val`` (default 10 %) become validation rows for probfusion's early stopping, so the model
trains on 72 % of the data (the papers train on all 80 %). The split is stratified and seeded.

Example:
    python scripts/make_paper_split.py mfeat /tmp/mfeat-paper.npz --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from probfusion.config import DataConfig
from probfusion.data.registry import load_dataset


def main() -> None:
    """Parse the arguments, split, scale and write the .npz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="a registered dataset or a path (.mat, .npz)")
    parser.add_argument("out", help="the .npz to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", type=float, default=0.2)
    parser.add_argument("--val", type=float, default=0.1, help="share of the training rows held out for validation")
    args = parser.parse_args()
    dataset = load_dataset(DataConfig(name=args.data), seed=args.seed, trust_pickle=False)
    rng = np.random.default_rng(args.seed)
    labels = np.asarray(dataset.labels)
    split = np.zeros(len(labels), dtype=np.int64)
    for c in np.unique(labels):  # stratified: each class split 80/20, then 10 % of its training rows to validation
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(args.test * len(rows))
        n_val = round(args.val * (len(rows) - n_test))
        split[rows[:n_test]] = 2
        split[rows[n_test : n_test + n_val]] = 1
    arrays = {}
    for m, x in dataset.views.items():
        x = np.asarray(x, dtype=np.float64)
        low, high = x.min(axis=0), x.max(axis=0)
        arrays[f"x_{m}"] = ((x - low) / np.where(high > low, high - low, 1.0)).astype(np.float32)
    np.savez(args.out, y=labels.astype(np.int64), split=split, **arrays)
    print(args.out)


if __name__ == "__main__":
    main()
