"""Per-epoch curves behind NOTES.md §11: record them, or replay stopping rules on the recorded ones.

Training does not depend on when it stops, so one fit to a long budget without early stopping gives what
every stopping rule would have kept. ``record`` fits the default ``lmf`` and ``concat`` (``real_benchmark.py``'s
splits) with ``TrainConfig(min_steps=3000, patience=10**6)``, twice the default budget, and after every epoch
stores the validation NLL and accuracy, the NLL at a validation-fitted temperature (unbounded, by L-BFGS on
log T), that T, and the test accuracy and NLL (raw and at that T). ``replay`` applies the rules of §11 to the
curves, capped at the default budget, and prints mean test accuracy per set and model.

Usage, from the repository root::

    python studies/results/real_benchmark/calibration/stopping_curves.py record SETS SEEDS OUT.json.gz
    python studies/results/real_benchmark/calibration/stopping_curves.py replay CURVES.json.gz

(the recorded curves: ``studies/results/real_benchmark/calibration/stopping-curves.json.gz``).
"""

from __future__ import annotations

import gzip
import json
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "studies"), str(ROOT)]

import numpy as np  # noqa: E402
import real_benchmark as rb  # noqa: E402  (a study module, found through the path above)
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import probfusion.api as api  # noqa: E402
from probfusion.config import RunConfig, TrainConfig  # noqa: E402

MIN_STEPS = 3000  # twice TrainConfig's default, so rules that train longer can be replayed too


def _free_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=50, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.exp().detach())


def record(sets: list[str], seeds: list[int], out: Path) -> None:
    """Fit and store every epoch's scores (the fitted model and tensors are taken from ``api._train_into``)."""
    captured: dict = {}
    train_into = api._train_into

    def capturing(work, config, model, tensors, standardizer, **kwargs):  # type: ignore[no-untyped-def]
        captured.update(model=model, tensors=tensors, config=config)
        return train_into(work, config, model, tensors, standardizer, **kwargs)

    api._train_into = capturing
    runs = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        for name in sets:
            for seed in seeds:
                for model_name in ("lmf", "concat"):
                    base = RunConfig(
                        data=rb.data_config(name, seed, scratch),
                        seed=seed,
                        train=TrainConfig(min_steps=MIN_STEPS, patience=10**6),
                    )
                    curve: list[dict] = []

                    def on_epoch(state, curve=curve) -> None:  # type: ignore[no-untyped-def]
                        model, tensors = captured["model"], captured["tensors"]
                        model.eval()
                        with torch.no_grad():
                            test_logits, val_logits = model(tensors["test"].views), model(tensors["val"].views)
                        y_test, y_val = tensors["test"].labels, tensors["val"].labels
                        t = _free_temperature(val_logits, y_val)
                        last = state.history[-1]
                        curve.append(
                            {
                                "epoch": state.epoch,
                                "val_nll": last.val_nll,
                                "val_acc": last.val_accuracy,
                                "val_nll_T": float(F.cross_entropy(val_logits / t, y_val)),
                                "T": t,
                                "test_acc": float((test_logits.argmax(-1) == y_test).float().mean()),
                                "test_nll": float(F.cross_entropy(test_logits, y_test)),
                                "test_nll_T": float(F.cross_entropy(test_logits / t, y_test)),
                            }
                        )
                        model.train()

                    config = rb.MODELS[model_name](base)
                    api.fit(config, scratch / f"{name}-{seed}-{model_name}", on_epoch_end=on_epoch)
                    epochs = captured["config"].train.epochs
                    runs.append({"set": name, "seed": seed, "model": model_name, "epochs": epochs, "curve": curve})
                    print(name, seed, model_name, len(curve), flush=True)
    with gzip.open(out, "wt") as handle:
        json.dump(runs, handle)


def _default_cap(epochs_at_min_steps: int, name: str) -> int:
    """The default budget (min_steps 1500) from the recorded one (3000): epochs = clip(ceil(steps / b), 60, 1000)."""
    if epochs_at_min_steps >= 1000:  # clipped: MSRC-v1's 2 steps per epoch
        return 750 if name == "msrc_v1" else 1000
    steps_per_epoch = max(1, round(MIN_STEPS / epochs_at_min_steps))
    return min(1000, max(60, math.ceil(1500 / steps_per_epoch)))


def _stop(values: list[float], patience: int, cap: int) -> int:
    """The index early stopping keeps: the first minimum, ending ``patience`` epochs after it."""
    best, best_index, since = math.inf, 0, 0
    for index, value in enumerate(values[:cap]):
        if value < best:
            best, best_index, since = value, index, 0
        else:
            since += 1
            if since >= patience:
                break
    return best_index


def _bounded(point: dict) -> float:
    """The validation NLL at the best T >= 1: the free fit if it softens, else T = 1 (NLL is convex in 1 / T)."""
    return point["val_nll_T"] if point["T"] >= 1 else point["val_nll"]


RULES = {
    "raw NLL, patience max(15, E/10) (old default)": lambda c, e: _stop([p["val_nll"] for p in c], max(15, e // 10), e),
    "calibrated NLL, T free": lambda c, e: _stop([p["val_nll_T"] for p in c], max(15, e // 10), e),
    "calibrated NLL, T >= 1 (new default)": lambda c, e: _stop([_bounded(p) for p in c], max(15, e // 10), e),
    "calibrated NLL, T >= 1, patience x2": lambda c, e: _stop([_bounded(p) for p in c], 2 * max(15, e // 10), e),
    "raw NLL, patience max(30, E/5)": lambda c, e: _stop([p["val_nll"] for p in c], max(30, e // 5), e),
    "best raw NLL over the whole budget": lambda c, e: _stop([p["val_nll"] for p in c], 10**9, e),
    "oracle epoch (test accuracy; not a rule)": lambda c, e: int(np.argmax([p["test_acc"] for p in c[:e]])),
}


def replay(path: Path) -> None:
    """Print mean test accuracy (%) per rule, set and model."""
    with gzip.open(path, "rt") as handle:
        runs = json.load(handle)
    for rule, select in RULES.items():
        table: dict = defaultdict(list)
        for run in runs:
            index = select(run["curve"], _default_cap(run["epochs"], run["set"]))
            table[(run["set"], run["model"])].append(100 * run["curve"][index]["test_acc"])
        print(f"== {rule}")
        for (name, model), values in sorted(table.items()):
            print(f"  {name:18s} {model:7s} {np.mean(values):5.1f} ({len(values)} seeds)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["record"]:
        record(sys.argv[2].split(","), [int(s) for s in sys.argv[3].split(",")], Path(sys.argv[4]))
    elif sys.argv[1:2] == ["replay"]:
        replay(Path(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
