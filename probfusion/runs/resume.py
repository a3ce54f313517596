"""Save and restore a :class:`~probfusion.inference.training.TrainingState` for ``--resume``."""

from __future__ import annotations

import dataclasses

import torch

from probfusion.errors import CheckpointError
from probfusion.inference.training import EpochRecord, TrainingState
from probfusion.runs.checkpoint import load_module_state, read_tensors, write_tensors
from probfusion.runs.run_dir import RunDirectory

__all__ = ["load_training_state", "save_training_state"]


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
        "history": [dataclasses.asdict(r) for r in state.history],
        "optimizer_param_groups": groups,
    }
    write_tensors(run.file(run.CHECKPOINT), tensors, {"format": "probfusion-checkpoint", "counters": counters})


def load_training_state(run: RunDirectory, model: torch.nn.Module) -> TrainingState:
    """Load the last checkpoint into ``model`` and return the state to continue from.

    Raises:
        CheckpointError: If the checkpoint is missing, corrupt, or does not fit the model.
    """
    tensors, metadata = read_tensors(run.file(run.CHECKPOINT))
    counters = metadata.get("counters")
    if not isinstance(counters, dict):
        raise CheckpointError(f"{run.file(run.CHECKPOINT)} holds no training counters; it is not a checkpoint.")
    load_module_state(model, tensors, prefix="model.", source=run.file(run.CHECKPOINT))
    best = {k[len("best.") :]: v for k, v in tensors.items() if k.startswith("best.")}
    optimizer_state = None
    if counters["optimizer_param_groups"]:
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = value
        optimizer_state = {"state": per_param, "param_groups": counters["optimizer_param_groups"]}
    try:
        history = [EpochRecord(**r) for r in counters["history"]]
    except TypeError as error:
        raise CheckpointError(f"{run.file(run.CHECKPOINT)} has an unexpected history ({error}).") from None
    return TrainingState(
        epoch=int(counters["epoch"]),
        best_epoch=int(counters["best_epoch"]),
        best_val_nll=float(counters["best_val_nll"]),
        epochs_without_improvement=int(counters["epochs_without_improvement"]),
        history=history,
        best_weights=best or None,
        optimizer_state=optimizer_state,
    )
