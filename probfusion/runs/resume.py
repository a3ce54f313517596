"""Save and restore a :class:`~probfusion.inference.training.TrainingState` for ``--resume``.

Everything read back is validated before training continues: a checkpoint edited by hand or damaged on disk
is a one-line :class:`~probfusion.errors.CheckpointError` naming the file, the field, what was expected and
what was found, never a resumed run on NaN weights or a counter outside the config's range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from probfusion.config import TrainConfig
from probfusion.errors import CheckpointError
from probfusion.inference.training import EpochRecord, TrainingState, selection_nll
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.run_dir import RunDirectory

__all__ = ["CHECKPOINT_SECONDS", "load_training_state", "save_training_state"]

CHECKPOINT_SECONDS = 10.0
"""Default least time between two checkpoints of a fit (``fit(..., checkpoint_seconds=...)``): a resumed fit repeats
at most this much training, and a fit of small data no longer spends a third of its time writing checkpoints."""

FORMAT = "probfusion-checkpoint"
_COUNTERS = ("epoch", "best_epoch", "best_val_nll", "epochs_without_improvement", "history", "optimizer_param_groups")
_ADAM_STATE = {"step": False, "exp_avg": True, "exp_avg_sq": True, "max_exp_avg_sq": True}  # name -> param-shaped
_RECORD_FIELDS = {f.name: f.type for f in dataclasses.fields(EpochRecord)}
_CALIBRATION_FIELDS = ("val_calibrated_nll", "val_temperature")


def save_training_state(run: RunDirectory, model: torch.nn.Module, state: TrainingState) -> None:
    """Write weights, optimiser state and counters as one safetensors file, atomically.

    Counters travel in the file's metadata, so weights and counters can never come from different epochs.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if state.best_weights is not None:
        tensors.update({f"best.{k}": v for k, v in state.best_weights.items()})
    groups = []
    if state.optimizer_state is not None:
        for index, values in state.optimizer_state["state"].items():
            tensors.update({f"optim.{index}.{k}": torch.as_tensor(v) for k, v in values.items()})
        groups = state.optimizer_state["param_groups"]
    counters = {
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val_nll": state.best_val_nll,
        "epochs_without_improvement": state.epochs_without_improvement,
        # Flat scalars: a plain dict per record. The whole history is written every epoch (still O(epochs^2) over a
        # fit), and dataclasses.asdict's deep copy made that 9.3 s over 1,000 epochs; plain dicts take 0.6 s.
        "history": [{name: getattr(r, name) for name in _RECORD_FIELDS} for r in state.history],
        "optimizer_param_groups": groups,
    }
    write_tensors(run.file(run.CHECKPOINT), tensors, {"format": FORMAT, "counters": counters})


class _Said(str):
    """A description, shown as written (not quoted) where an error shows what it got."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class _Checker:
    """Wording of checkpoint errors: file, field, expected, got, and the fix."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, field: str, expected: str, got: object) -> CheckpointError:
        shown = repr(got)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return CheckpointError(
            f"{self.source}: {field} must be {expected}; got {shown}. The checkpoint is damaged or was edited; "
            "re-run fit with --overwrite."
        )

    def integer(self, value: object, field: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(field, f"an integer from {low} to {high}", value)
        return value

    def number(self, value: object, field: str, *, allow_inf: bool = False) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise self.fail(field, "a finite number", value)
        return float(value)

    def finite(self, tensor: torch.Tensor, field: str) -> None:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise self.fail(
                field, "finite", _Said(f"{bad} NaN or inf value(s) in a tensor of shape {tuple(tensor.shape)}")
            )

    def like(self, tensor: torch.Tensor, reference: torch.Tensor, field: str) -> None:
        if tuple(tensor.shape) != tuple(reference.shape) or tensor.dtype != reference.dtype:
            raise self.fail(
                field,
                f"a {reference.dtype} tensor of shape {tuple(reference.shape)}",
                _Said(f"{tensor.dtype} of shape {tuple(tensor.shape)}"),
            )
        self.finite(tensor, field)


def _history(check: _Checker, raw: object, epoch: int) -> list[EpochRecord]:
    if not isinstance(raw, list) or len(raw) != epoch:
        got = _Said(f"{len(raw)} records") if isinstance(raw, list) else raw
        raise check.fail("counters.history", f"a list of {epoch} records (one per epoch done)", got)
    records = []
    for k, entry in enumerate(raw):
        where = f"counters.history[{k}]"
        if isinstance(entry, dict) and set(_RECORD_FIELDS) - set(entry) == set(_CALIBRATION_FIELDS):
            # a checkpoint written before the calibrated NLL was recorded: its selection read the raw NLL
            entry = {**entry, "val_calibrated_nll": entry.get("val_nll"), "val_temperature": 1.0}
        if not isinstance(entry, dict) or set(entry) != set(_RECORD_FIELDS):
            raise check.fail(where, f"a record with fields {sorted(_RECORD_FIELDS)}", entry)
        values: dict[str, Any] = {}
        for name, value in entry.items():
            if name == "epoch":
                values[name] = check.integer(value, f"{where}.epoch", k + 1, k + 1)
            else:
                values[name] = check.number(value, f"{where}.{name}")
        records.append(EpochRecord(**values))
    return records


def _optimizer(
    check: _Checker, model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], groups: object, train: TrainConfig
) -> dict | None:
    parameters = list(model.parameters())
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith("optim."):
            continue
        parts = key.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in _ADAM_STATE:
            raise check.fail(f"tensor {key!r}", f"optim.<parameter index>.<one of {sorted(_ADAM_STATE)}>", key)
        index, name = int(parts[1]), parts[2]
        if index >= len(parameters):
            raise check.fail(f"tensor {key!r}", f"a parameter index below {len(parameters)}", index)
        if _ADAM_STATE[name]:
            check.like(value, parameters[index].detach(), f"tensor {key!r}")
        elif value.numel() != 1 or not bool(torch.isfinite(value).all()) or float(value) < 0:
            raise check.fail(f"tensor {key!r}", "one finite, non-negative step count", value.tolist())
        per_param.setdefault(index, {})[name] = value
    if groups == [] and not per_param:
        return None
    if not isinstance(groups, list) or not groups or not all(isinstance(g, dict) for g in groups):
        raise check.fail("counters.optimizer_param_groups", "a non-empty list of Adam parameter groups", groups)
    indices = [i for g in groups for i in (g.get("params") if isinstance(g.get("params"), list) else [None])]
    if indices != list(range(len(parameters))):
        raise check.fail(
            "counters.optimizer_param_groups params",
            f"the indices 0..{len(parameters) - 1} of the model's parameters",
            indices,
        )
    for k, group in enumerate(groups):
        for name, expected in (("lr", train.learning_rate), ("weight_decay", train.weight_decay)):
            if group.get(name) != expected or isinstance(group.get(name), bool):
                raise check.fail(
                    f"counters.optimizer_param_groups[{k}].{name}", f"{expected} (the config's)", group.get(name)
                )
        betas, eps = group.get("betas"), group.get("eps")
        if not (
            isinstance(betas, list | tuple)
            and len(betas) == 2
            and all(isinstance(b, float) and 0.0 <= b < 1.0 for b in betas)
        ):
            raise check.fail(f"counters.optimizer_param_groups[{k}].betas", "two numbers in [0, 1)", betas)
        if isinstance(eps, bool) or not isinstance(eps, float) or not 0.0 < eps < 1.0:
            raise check.fail(f"counters.optimizer_param_groups[{k}].eps", "a number in (0, 1)", eps)
    for index, state in per_param.items():
        if not {"step", "exp_avg", "exp_avg_sq"} <= set(state):
            raise check.fail(f"optimizer state of parameter {index}", "step, exp_avg and exp_avg_sq", sorted(state))
    return {"state": per_param, "param_groups": groups}


def load_training_state(run: RunDirectory, model: torch.nn.Module, *, train: TrainConfig) -> TrainingState:
    """Load the last checkpoint into ``model`` and return the state to continue from.

    Args:
        run: The run folder.
        model: The freshly built model of the run's config; its weights are replaced.
        train: The run's training config: the counters must lie within its epochs and patience, and the
            optimiser's learning rate and weight decay must be its own.

    Raises:
        CheckpointError: If the checkpoint is missing or corrupt, does not fit the model, or holds a non-finite
            tensor, a counter of the wrong type or outside its range, or tensors that belong to no part of it.
    """
    source = run.file(run.CHECKPOINT)
    check = _Checker(source)
    tensors, metadata = read_tensors(source)
    counters = metadata.get("counters")
    if metadata.get("format") != FORMAT or not isinstance(counters, dict):
        raise CheckpointError(
            f"{source} holds no training counters; it is not a checkpoint. Re-run fit with --overwrite."
        )
    missing = [name for name in _COUNTERS if name not in counters]
    if missing or len(counters) != len(_COUNTERS):
        raise check.fail("counters", f"exactly the fields {list(_COUNTERS)}", sorted(counters))
    extra = sorted(k for k in tensors if not k.startswith(("model.", "best.", "optim.")))
    if extra:
        raise check.fail("tensor names", "model.*, best.* or optim.*", extra[:3])
    load_module_state(model, tensors, prefix="model.", source=source)
    expected = model.state_dict()  # load_module_state checked names, shapes, dtypes and finiteness

    epoch = check.integer(counters["epoch"], "counters.epoch", 0, train.epochs)
    best_epoch = check.integer(counters["best_epoch"], "counters.best_epoch", 0, epoch)
    patience = check.integer(
        counters["epochs_without_improvement"], "counters.epochs_without_improvement", 0, train.patience
    )
    if patience != epoch - best_epoch:  # the counter restarts at every best epoch (training.train_classifier)
        raise check.fail("counters.epochs_without_improvement", f"epoch - best_epoch = {epoch - best_epoch}", patience)
    history = _history(check, counters["history"], epoch)
    best_val_nll = check.number(counters["best_val_nll"], "counters.best_val_nll", allow_inf=best_epoch == 0)
    if best_epoch == 0 and best_val_nll != math.inf:
        raise check.fail("counters.best_val_nll", "inf (no best epoch yet)", best_val_nll)
    if best_epoch > 0 and best_val_nll != selection_nll(history[best_epoch - 1], train.calibration):
        raise check.fail("counters.best_val_nll", f"the selection NLL of epoch {best_epoch}", best_val_nll)

    best = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
    if best_epoch > 0 and set(best) != set(expected):
        unexpected, absent = sorted(set(best) - set(expected)), sorted(set(expected) - set(best))
        raise check.fail(
            "best.* tensors", "one per model tensor", _Said(f"missing {absent[:3]}, unexpected {unexpected[:3]}")
        )
    if best_epoch == 0 and best:
        raise check.fail("best.* tensors", "absent before a best epoch", sorted(best)[:3])
    for key, value in best.items():
        check.like(value, expected[key], f"tensor 'best.{key}'")

    optimizer_state = _optimizer(check, model, tensors, counters["optimizer_param_groups"], train)
    if (optimizer_state is None) != (epoch == 0):
        raise check.fail("optimizer state", "present after every epoch and absent before the first", epoch)
    return TrainingState(
        epoch=epoch,
        best_epoch=best_epoch,
        best_val_nll=best_val_nll,
        epochs_without_improvement=patience,
        history=history,
        best_weights=best or None,
        optimizer_state=optimizer_state,
    )
