"""Linear reference rows of `synthetic-text` (NOTES.md §19): `PYTHONPATH=studies python THIS OUT.json`, repo root."""

import json
import sys
import tempfile
from pathlib import Path

import real_benchmark as rb

rows = []
with tempfile.TemporaryDirectory() as s:
    for seed in range(6):
        c = rb.data_config("synthetic-text", seed, Path(s))
        for r in rb.logistic_rows(c, seed):
            rows.append({"set": "synthetic-text", "seed": seed, **r})
            if r["model"] in ("linear reference", "LR concat"):
                print(seed, r["model"], r.get("chosen"), round(r["accuracy"], 3), flush=True)
Path(sys.argv[1]).write_text(json.dumps(rows))
