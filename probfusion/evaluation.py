"""Evaluate a fitted run under attack or shift: metrics per (attack or shift, modality, budget or severity).

:func:`evaluate` writes ``<run>/evaluations/<name>/``::

    rows.json        {"rows": [...]}: one row per (attack or shift, variant, modality, eps), clean first
    rows.csv         the same rows
    conflict_rows.csv  shift ``conflict`` only: every row made conflictive (severity, row, kind, modalities,
                     donor_row), the rows its AUROCs are computed on
    checks.json      sanity checks (monotone accuracy, PGD vs FGSM, stability, zero gradients) and
                     MultiBench's relative robustness of each curve
    config.json      the EvaluationConfig
    figures/*.png    accuracy and ECE against budget, reliability diagrams, entropy histograms

Every row holds ``attack``, ``variant``, ``modality``, ``eps`` (budget in training standard deviations, or
severity for a shift), ``accuracy``, ``nll``, ``brier``, ``ece``, mean ``entropy`` and ``mi``, and
``auroc_entropy`` / ``auroc_mi`` for telling these inputs from the clean ones (NaN on the clean row, and
``auroc_mi`` NaN for deterministic models, whose mutual information is zero). Models that report the vacuity
of a subjective opinion (:class:`~probfusion.fusion.protocol.VacuityPredictor`: ``tmc``, ``rcml``) add mean
``vacuity`` and ``auroc_vacuity`` (NaN on rows whose probabilities are not one pass of the model, such as the
marginalised missing modality). For shift ``conflict`` the AUROCs tell the conflictive rows (positives, as
recorded in ``conflict_rows.csv``) from the clean test rows (negatives, the clean row's scores), and the row adds
``conflict_rows``, ``noise_rows``, ``swap_rows`` and ``conflict_accuracy`` (on the conflictive rows). Scores use
``samples``
posterior draws from a generator independent of the attack's draws. The folder appears whole or not at all;
an existing evaluation is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from probfusion.config import EvaluationConfig
from probfusion.data.dataset import MultimodalDataset
from probfusion.data.fingerprint import dataset_fingerprint
from probfusion.errors import ConfigError, RunExistsError
from probfusion.fusion.protocol import VacuityPredictor
from probfusion.inference.predictive import SCORING_SEED_OFFSET, common_draw_probabilities
from probfusion.inference.reference import DONORS
from probfusion.metrics import (
    accuracy,
    aurc,
    brier_score,
    coverage_threshold,
    detection_auroc,
    expected_calibration_error,
    negative_log_likelihood,
    relative_robustness,
    reliability_bins,
    risk_coverage,
)
from probfusion.metrics.uncertainty import mutual_information, predictive_entropy
from probfusion.options import AttackKind, ShiftKind, SplitKind
from probfusion.plotting import entropy_histograms, metric_curves, reliability_diagram
from probfusion.robustness import (
    DROPOUT_RATES,
    NOISE_LEVELS,
    Imputation,
    conflict_shares,
    conflictive_views,
    feature_dropout,
    gaussian_noise,
    is_stochastic,
    marginal_missing_probabilities,
    missing_modality,
    monotone_check,
    run_attack,
    strength_check,
)
from probfusion.runs.atomic import atomic_write_bytes, atomic_write_csv, atomic_write_json, staged_dir
from probfusion.runs.lock import run_lock
from probfusion.runs.run_dir import RunDirectory

if TYPE_CHECKING:
    from probfusion.api import LoadedRun

__all__ = ["EvaluationReport", "evaluate", "latest_run"]

_BATCH = 512
_TOL = 0.005  # accuracy slack of the sanity checks (half a point: Monte Carlo scoring noise)
_STABLE_TOL = 0.03  # more steps or restarts may lower accuracy by at most this much


@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """A finished evaluation.

    Attributes:
        path: ``<run>/evaluations/<name>``.
        rows: One dict per (attack or shift, variant, modality, eps), clean first.
        checks: Sanity checks, each ``{"passed": bool, ...}``, and ``robustness`` (relative robustness).
        figures: The PNG files written.
    """

    path: Path
    rows: list[dict[str, Any]]
    checks: dict[str, Any]
    figures: tuple[Path, ...] = field(default=())

    def table(self) -> str:
        """The rows as a fixed-width text table for the terminal."""
        cols: tuple[str, ...] = ("attack", "variant", "modality", "eps", "accuracy", "nll", "ece", "auroc_entropy")
        cols += ("auroc_mi", "auroc_vacuity") if any("auroc_vacuity" in row for row in self.rows) else ("auroc_mi",)
        cells = [[_fmt(row.get(c)) for c in cols] for row in self.rows]
        widths = [max(len(c), *(len(r[k]) for r in cells)) for k, c in enumerate(cols)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
        return "\n".join(lines)

    def check_lines(self) -> list[str]:
        """One line per sanity check: PASS or FAIL, then what it measured."""
        return [
            f"{'PASS' if check['passed'] else 'FAIL'} {name}: {check['detail']}"
            for name, check in self.checks.items()
            if isinstance(check, dict) and "passed" in check
        ]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


def latest_run(root: Path = Path("runs")) -> Path | None:
    """The most recently completed run directly under ``root`` (by when its metrics were written), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    # Hidden folders are staging folders of fits in progress (and never a run a user named).
    done = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and RunDirectory(p).is_complete]
    return max(done, key=lambda p: (p / RunDirectory.METRICS_JSON).stat().st_mtime, default=None)


def _modality_sets(choice: str, modalities: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    if choice == "each":
        return [(m, (m,)) for m in modalities] + [("all", modalities)]
    if choice == "all":
        return [("all", modalities)]
    if choice not in modalities:
        raise ConfigError(f"The run has no modality {choice!r}; expected one of {list(modalities)}, 'all' or 'each'.")
    return [(choice, (choice,))]


def _default_name(config: EvaluationConfig) -> str:
    if config.shift is not None:
        return config.shift.value
    return "clean" if config.attack is AttackKind.NONE else f"{config.attack.value}-{config.norm.value}"


def _target(run_path: Path, name: str | None, config: EvaluationConfig, overwrite: bool) -> Path:
    folder = run_path / "evaluations"
    if name is None:
        stem, k = _default_name(config), 1
        candidate = folder / stem
        while candidate.exists():
            k += 1
            candidate = folder / f"{stem}-{k}"
        return candidate
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ConfigError(f"Evaluation name {name!r} must be letters, digits, '.', '_' or '-'; choose another.")
    if (folder / name).exists() and not overwrite:
        raise RunExistsError(f"{folder / name} already holds an evaluation; pass --overwrite or choose another name.")
    return folder / name


def _predict(model: Any, views: dict[str, torch.Tensor], samples: int, seed: int) -> torch.Tensor:
    """``(s, n, c)`` probabilities, every row under the same ``s`` posterior draws (common random numbers).

    The draws are independent of the attack's (see :func:`~probfusion.inference.predictive.common_draw_probabilities`).
    """
    return common_draw_probabilities(model, views, samples, seed, batch_size=_BATCH)


def _scores(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "entropy": torch.as_tensor(predictive_entropy(probs)),
        "mi": torch.as_tensor(mutual_information(probs)),
    }


def _row(
    head: dict[str, Any],
    probs: torch.Tensor,
    labels: torch.Tensor,
    clean: dict[str, torch.Tensor] | None,
    threshold: float | None = None,
    *,
    vacuity: torch.Tensor | None = None,
    affected: torch.Tensor | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Metrics of one row; ``affected`` (booleans) restricts the AUROCs' positives to the changed rows."""
    mean = probs.mean(dim=0)
    scores = _scores(probs)
    if vacuity is not None:
        scores["vacuity"] = vacuity
    row = {
        **head,
        "accuracy": accuracy(mean, labels),
        "nll": negative_log_likelihood(mean, labels),
        "brier": brier_score(mean, labels),
        "ece": expected_calibration_error(mean, labels),
        "entropy": float(scores["entropy"].mean()),
        "mi": float(scores["mi"].mean()),
        "n": int(labels.shape[0]),
    }
    if vacuity is not None:
        row["vacuity"] = float(vacuity.mean())
    for key in scores:
        positives = scores[key] if affected is None else scores[key][affected]
        nan_free = key != "vacuity" or not positives.isnan().any()  # vacuity is NaN where not measured
        usable = clean is not None and key in clean and positives.numel() > 0 and nan_free
        row[f"auroc_{key}"] = detection_auroc(clean[key], positives) if usable else float("nan")  # type: ignore[index]
    correct = mean.argmax(dim=-1) == labels
    for key, score in scores.items():  # selective prediction: how well each uncertainty orders the errors last
        row[f"aurc_{key}"] = aurc(score, correct) if not score.isnan().any() else float("nan")
    if threshold is not None:  # at the validation-chosen entropy threshold
        answered = scores["entropy"] <= threshold
        row["coverage"] = float(answered.double().mean())
        row["accuracy_at_coverage"] = float(correct[answered].double().mean()) if answered.any() else float("nan")
    return row, {**scores, "probs": mean, "labels": labels, "correct": correct}


@torch.no_grad()
def _vacuity(model: VacuityPredictor, views: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(n,)`` vacuity of the combined opinion, in minibatches of rows."""
    n = next(iter(views.values())).shape[0]
    chunks = [model.vacuity({m: x[i : i + _BATCH] for m, x in views.items()}) for i in range(0, n, _BATCH)]
    return torch.cat(chunks).double()


class _Work:
    """The state one evaluation shares between its steps: model, test tensors, generators, clean scores."""

    def __init__(
        self,
        run: LoadedRun,
        config: EvaluationConfig,
        progress: Callable[[int, int], None] | None,
        data: MultimodalDataset | None = None,
    ):
        self.run, self.config, self.model = run, config, run.model
        _, self.val_set, self.test_set = run.splits()
        if data is not None:
            self.test_set = data
        data = run.tensors(self.test_set)
        self.views, self.labels = dict(data.views), data.labels
        # Attacks and scoring draw from separate generators: the attacked model is scored on draws the attack never
        # saw; every scoring uses the same draws (see _predict).
        self.attack_gen = torch.Generator().manual_seed(config.seed)
        self.score_seed = config.seed + SCORING_SEED_OFFSET
        self.progress, self.done, self.total = progress, 0, 1
        self.stochastic = is_stochastic(self.model, self.views)
        # The entropy threshold that answers `coverage` of the validation rows (as `probfusion predict` flags).
        val_probs = _predict(self.model, dict(run.tensors(self.val_set).views), config.samples, self.score_seed)
        self.threshold = coverage_threshold(predictive_entropy(val_probs), config.coverage)
        self.has_vacuity = isinstance(self.model, VacuityPredictor)
        self.rows: list[dict[str, Any]] = []
        self.extras: list[dict[str, torch.Tensor]] = []
        self.clean: dict[str, torch.Tensor] = {}
        self.conflict_rows: list[dict[str, Any]] = []  # shift 'conflict': the rows it changed

    def tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def score(self, views: dict[str, torch.Tensor], head: dict[str, Any], probs: torch.Tensor | None = None) -> dict:
        vacuity = None
        if self.has_vacuity:  # one pass of the model on ``views``; NaN where the probabilities came otherwise
            vacuity = _vacuity(self.model, views) if probs is None else torch.full((len(self.labels),), float("nan"))
        probs = _predict(self.model, views, self.config.samples, self.score_seed) if probs is None else probs
        labels = self.labels if head.get("labels") is None else head.pop("labels")
        affected = head.pop("affected", None)
        reference = None if head["attack"] == AttackKind.NONE.value else self.clean
        row, extra = _row(
            {k: v for k, v in head.items() if k != "labels"},
            probs,
            labels,
            reference,
            self.threshold,
            vacuity=vacuity,
            affected=affected,
        )
        if not self.stochastic:  # one draw: the mutual information is zero everywhere, not a score
            row["auroc_mi"] = row["aurc_mi"] = float("nan")
        self.rows.append(row)
        self.extras.append(extra)
        return row

    def attack(self, kind: AttackKind, eps: float, modalities: tuple[str, ...], **overrides: Any) -> tuple[dict, float]:
        """Attack the test set in row chunks; returns the adversarial views and the share of zero gradients."""
        cfg = self.config
        options = {
            "steps": cfg.steps,
            "step_size": cfg.step_size,
            "restarts": cfg.restarts,
            "norm": cfg.norm,
            "attack_samples": cfg.attack_samples,
            "mi_weight": 0.0,
            **overrides,
        }
        n = len(self.labels)
        chunks, zero = [], 0.0
        for i in range(0, n, _BATCH):
            part = {m: x[i : i + _BATCH] for m, x in self.views.items()}
            result = run_attack(
                self.model,
                part,
                self.labels[i : i + _BATCH],
                kind=kind,
                eps=eps,
                modalities=modalities,
                generator=self.attack_gen,
                **options,
            )
            chunks.append(result.views)
            zero += result.zero_gradient_share * len(self.labels[i : i + _BATCH]) / n
        return {m: torch.cat([c[m] for c in chunks]) for m in self.views}, zero

    def correct_under(
        self, kind: AttackKind, eps: float, modalities: tuple[str, ...], **overrides: Any
    ) -> torch.Tensor:
        """``(n,)`` booleans: which test rows the model still classifies correctly under the attack."""
        views, _ = self.attack(kind, eps, modalities, **overrides)
        self.tick()
        return _predict(self.model, views, self.config.samples, self.score_seed).mean(dim=0).argmax(-1) == self.labels


def _curves(rows: list[dict[str, Any]], metric: str, clean: dict[str, Any]) -> dict[str, tuple[list, list]]:
    curves: dict[str, tuple[list, list]] = {}
    for r in rows:
        if r["kind"] == "clean" or r["attack"] in (ShiftKind.MISSING.value, ShiftKind.SPEAKER.value):
            continue
        x, y = curves.setdefault(f"{r['modality']} {r['variant']}", ([0.0], [clean[metric]]))
        x.append(r["eps"])
        y.append(r[metric])
    return curves


def _monotone(rows: list[dict[str, Any]], clean: dict[str, Any], tol: float) -> dict[str, Any]:
    return monotone_check({key: y for key, (_x, y) in _curves(rows, "accuracy", clean).items()}, tol)


def _at_least_as_strong(
    work: _Work,
    attacked: dict[tuple[str, float], torch.Tensor],
    grid: list[tuple[str, tuple[str, ...], float]],
    weaker: AttackKind,
    name: str,
    tol: float,
) -> dict[str, Any]:
    """Run the ``weaker`` attack on every cell of ``grid`` and check the evaluated one against it."""
    weak = {(label, eps): work.correct_under(weaker, eps, mods) for label, mods, eps in grid}
    return strength_check(attacked, weak, strong_name=name, weak_name=weaker.value, tol=tol)


def _attack_work(work: _Work, sets: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    cfg = work.config
    kind = cfg.attack
    iterative = kind in (AttackKind.PGD, AttackKind.EOT_PGD)
    variants = [("standard", 0.0)]
    if iterative and work.stochastic and cfg.mi_weight > 0:
        variants.append(("adaptive", cfg.mi_weight))
    grid = [(label, mods, eps) for label, mods in sets for eps in cfg.eps]
    work.total += len(grid) * len(variants)
    if iterative:
        work.total += len(grid) * (2 if kind is AttackKind.EOT_PGD and work.stochastic else 1) + 2
    attacked: dict[tuple[str, float], torch.Tensor] = {}
    zero_shares = []
    for label, mods, eps in grid:
        for variant, weight in variants:
            views, zero = work.attack(kind, eps, mods, mi_weight=weight)
            zero_shares.append(zero)
            head = {"kind": "attack", "attack": kind.value, "variant": variant, "modality": label, "eps": eps}
            work.score(views, {**head, "norm": cfg.norm.value, "zero_gradient_share": zero})
            if variant == "standard":
                attacked[label, eps] = work.extras[-1]["probs"].argmax(-1) == work.labels
            work.tick()
    tol = max(_TOL, 1.0 / len(work.labels))
    checks: dict[str, Any] = {"monotone": _monotone(work.rows[1:], work.rows[0], tol)}
    worst_zero = max(zero_shares, default=0.0)
    checks["zero_gradients"] = {
        "passed": bool(worst_zero < 0.5),
        "share": worst_zero,
        "detail": f"largest share of exactly-zero input gradients {worst_zero:.4f} (below 0.5 expected)",
    }
    if not iterative:
        return checks
    checks["pgd_vs_fgsm"] = _at_least_as_strong(work, attacked, grid, AttackKind.FGSM, kind.value, tol)
    if kind is AttackKind.EOT_PGD and not work.stochastic:
        checks["eot_vs_pgd"] = {"passed": True, "detail": "deterministic model: EOT-PGD is PGD (one draw per step)"}
    elif kind is AttackKind.EOT_PGD:
        checks["eot_vs_pgd"] = _at_least_as_strong(work, attacked, grid, AttackKind.PGD, "EOT-PGD", tol)
    label, mods = sets[-1]
    eps = cfg.eps[-1]
    more_steps = float(work.correct_under(kind, eps, mods, steps=2 * cfg.steps).double().mean())
    more_restarts = float(work.correct_under(kind, eps, mods, restarts=cfg.restarts + 1).double().mean())
    base = float(attacked[label, eps].double().mean())
    drop = base - min(more_steps, more_restarts)
    checks["stability"] = {
        "passed": bool(drop <= _STABLE_TOL),
        "accuracy": base,
        "double_steps_accuracy": more_steps,
        "extra_restart_accuracy": more_restarts,
        "detail": f"{label}@{eps}: accuracy {base:.4f}, with 2x steps {more_steps:.4f}, with one more restart "
        f"{more_restarts:.4f} (may fall by at most {_STABLE_TOL})",
    }
    return checks


def _shift_work(work: _Work, sets: list[tuple[str, tuple[str, ...]]]) -> dict[str, Any]:
    cfg = work.config
    shift = cfg.shift
    gen = work.attack_gen
    if shift in (ShiftKind.NOISE, ShiftKind.DROPOUT):
        apply = gaussian_noise if shift is ShiftKind.NOISE else feature_dropout
        levels = NOISE_LEVELS if shift is ShiftKind.NOISE else DROPOUT_RATES
        work.total += len(sets) * len(cfg.severities)
        for label, mods in sets:
            for severity in cfg.severities:
                views = apply(work.views, severity=severity, modalities=mods, generator=gen)
                head = {"kind": "shift", "attack": shift.value, "variant": "standard", "modality": label}
                work.score(views, {**head, "eps": float(severity), "level": levels[severity - 1]})
                work.tick()
        tol = max(_TOL, 2.0 / len(work.labels))
        return {"monotone": _monotone(work.rows[1:], work.rows[0], tol)}
    if shift is ShiftKind.CONFLICT:
        return _conflict_work(work)
    if shift is ShiftKind.MISSING:
        partial = [(label, mods) for label, mods in sets if len(mods) < len(work.views)]
        if not partial:
            raise ConfigError("Shift 'missing' needs at least one modality left; choose --modality NAME or each.")
        train = work.run.tensors(work.run.splits()[0])
        pick = torch.randperm(len(train), generator=gen)[:DONORS]
        std = work.run.standardizer
        raw_zero = {
            m: torch.as_tensor(-std.mean[m] / std.std[m], dtype=x.dtype, device=x.device) for m, x in work.views.items()
        }
        work.total += 3 * len(partial)
        for label, mods in partial:
            head = {"kind": "shift", "attack": shift.value, "modality": label, "eps": 1.0}
            for imputation in (Imputation.MEAN, Imputation.ZERO):
                views = missing_modality(work.views, modalities=mods, imputation=imputation, raw_zero=raw_zero)
                work.score(views, {**head, "variant": imputation.value})
                work.tick()
            donors = {m: train.views[m][pick] for m in mods}
            probs = torch.cat(
                [
                    marginal_missing_probabilities(
                        work.model,
                        {m: x[i : i + _BATCH // 4] for m, x in work.views.items()},
                        modalities=mods,
                        donors=donors,
                        num_samples=cfg.samples,
                        generator=torch.Generator().manual_seed(work.score_seed),  # the same draws as every row
                    ).double()
                    for i in range(0, len(work.labels), _BATCH // 4)
                ],
                dim=1,
            )
            work.score(work.views, {**head, "variant": Imputation.MARGINAL.value}, probs=probs)
            work.tick()
        return {}
    # Held-out speaker: the run's test split is one unseen speaker; its validation split holds the seen ones.
    val = work.run.tensors(work.val_set)
    speaker = work.run.config.data.held_out_speaker or work.test_set.default_held_out_speaker or "held-out"
    work.total += 1
    seen = {"kind": "clean", "attack": AttackKind.NONE.value, "variant": "seen-speakers", "modality": "all", "eps": 0.0}
    work.score(dict(val.views), {**seen, "labels": val.labels})
    seen_scores = {k: work.extras[-1][k] for k in ("entropy", "mi", "vacuity") if k in work.extras[-1]}
    saved, work.clean = work.clean, seen_scores
    head = {"kind": "shift", "attack": shift.value, "variant": f"held-out {speaker}", "modality": "all", "eps": 1.0}
    work.score(work.views, head)
    work.clean = saved
    work.tick()
    return {}


def _conflict_work(work: _Work) -> dict[str, Any]:
    """RCML's conflictive rows at every severity (:mod:`probfusion.robustness.conflict`); all modalities."""
    cfg = work.config
    if len(work.views) < 2:
        raise ConfigError(
            f"Shift 'conflict' needs at least two modalities; the run has one ({next(iter(work.views))!r})."
        )
    train = work.run.tensors(work.run.splits()[0])
    scale = {m: x.amax(dim=0) - x.amin(dim=0) for m, x in train.views.items()}  # training range, standardised
    work.total += len(cfg.severities)
    for severity in cfg.severities:
        views, record = conflictive_views(
            work.views,
            work.labels,
            severity=severity,
            noise_scale=scale,
            sigma=cfg.conflict_sigma,
            noise_share=cfg.conflict_noise_share,
            swap_share=cfg.conflict_swap_share,
            generator=work.attack_gen,
        )
        mask = record.mask(len(work.labels))
        noise, swap = conflict_shares(severity, cfg.conflict_noise_share, cfg.conflict_swap_share)
        head = {"kind": "shift", "attack": ShiftKind.CONFLICT.value, "variant": "standard", "modality": "all"}
        row = work.score(views, {**head, "eps": float(severity), "level": noise + swap, "affected": mask})
        predicted = work.extras[-1]["probs"].argmax(-1)
        row.update(
            conflict_rows=int(mask.sum()),
            noise_rows=record.kinds.count("noise"),
            swap_rows=record.kinds.count("swap"),
            conflict_accuracy=float((predicted[mask] == work.labels[mask]).double().mean())
            if mask.any()
            else float("nan"),
        )
        work.conflict_rows.extend(record.table(severity=severity))
        work.tick()
    tol = max(_TOL, 2.0 / len(work.labels))
    return {"monotone": _monotone(work.rows[1:], work.rows[0], tol)}


def _figures(work: _Work) -> dict[str, bytes]:
    rows, extras = work.rows, work.extras
    clean_row, clean = rows[0], extras[0]
    shifted = [k for k, r in enumerate(rows) if r["kind"] != "clean" and r["variant"] != "adaptive"]
    figures: dict[str, bytes] = {}
    cfg = work.config
    unit = "severity (1-5)" if cfg.shift is not None else f"eps ({cfg.norm.value}, training standard deviations)"
    name = cfg.shift.value if cfg.shift is not None else cfg.attack.value
    for metric in ("accuracy", "ece"):
        curves = _curves(rows, metric, clean_row)
        if curves:
            figures[f"{metric}_vs_budget.png"] = metric_curves(
                curves, xlabel=unit, ylabel=metric.upper() if metric == "ece" else metric, title=f"{name}: {metric}"
            )
    focus = shifted[-1] if shifted else None
    label = "" if focus is None else f"{rows[focus]['attack']} {rows[focus]['modality']} eps={rows[focus]['eps']:g}"
    bins = {"clean": reliability_bins(clean["probs"], clean["labels"])}
    scores = {"clean": clean["entropy"].numpy()}
    mi = {"clean": clean["mi"].numpy()}
    if focus is not None:
        bins[label] = reliability_bins(extras[focus]["probs"], extras[focus]["labels"])
        scores[label] = extras[focus]["entropy"].numpy()
        mi[label] = extras[focus]["mi"].numpy()
    figures["reliability.png"] = reliability_diagram(bins, title="Reliability (top label, 15 bins)")
    rc = {"clean": risk_coverage(clean["entropy"], clean["correct"])}
    if focus is not None:
        rc[label] = risk_coverage(extras[focus]["entropy"], extras[focus]["correct"])
    figures["risk_coverage.png"] = metric_curves(
        {key: (c.coverage.tolist(), c.risk.tolist()) for key, c in rc.items()},
        xlabel="coverage (share of rows answered, most certain first by entropy)",
        ylabel="risk (error rate on answered rows)",
        title="Selective prediction: risk vs coverage",
        marker=None,
    )
    figures["entropy_hist.png"] = entropy_histograms(scores, xlabel="predictive entropy (nats)", title="Entropy")
    if work.stochastic:
        figures["mi_hist.png"] = entropy_histograms(mi, xlabel="mutual information (nats)", title="Mutual information")
    return figures


def _robustness(rows: list[dict[str, Any]]) -> dict[str, float]:
    """MultiBench's relative robustness of each accuracy curve (shift severities on its 0.1 grid)."""
    out = {}
    for key, (x, y) in _curves(rows[1:], "accuracy", rows[0]).items():
        grid = [v / 10.0 for v in x] if rows[-1]["kind"] == "shift" else x
        if len(x) > 1 and all(b > a for a, b in itertools.pairwise(grid)):
            out[key] = relative_robustness(y, grid)
    return out


def evaluate(
    run: LoadedRun,
    config: EvaluationConfig,
    *,
    name: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    data: MultimodalDataset | None = None,
) -> EvaluationReport:
    """Score ``run``'s model on its test split, clean and under ``config``'s attack or shift, and write the result.

    Attack budgets are in units of each feature's training standard deviation (the run's standardisation).
    Options are checked before anything is written, and the output folder appears only when complete.

    Args:
        run: A loaded run (:func:`probfusion.api.load_run`).
        config: The attack or shift and its grid; with a shift, the attack is not run.
        name: Folder name under ``<run>/evaluations``; ``None`` picks a fresh one (``pgd-linf``, ``pgd-linf-2``).
        overwrite: Replace an existing evaluation of the same ``name``.
        progress: Called with ``(units done, units total)`` as the work advances.
        data: Labelled rows to score instead of the run's test split
            (:func:`~probfusion.data.features.labelled_rows`); the run's own
            validation and training rows still set the selective-prediction threshold and the donor rows.

    Returns:
        The report, with rows, checks and figure paths.

    Raises:
        ConfigError: On a modality the run lacks, or a speaker shift on a run not split by speaker.
        RunExistsError: If ``name`` exists and ``overwrite`` is false.
        RunLockedError: If another process (a fit or an evaluation) is writing the run.
    """
    with run_lock(run.path):
        return _evaluate(run, config, name=name, overwrite=overwrite, progress=progress, data=data)


def _evaluate(
    run: LoadedRun,
    config: EvaluationConfig,
    *,
    name: str | None,
    overwrite: bool,
    progress: Callable[[int, int], None] | None,
    data: MultimodalDataset | None,
) -> EvaluationReport:
    run.model.eval()
    if data is not None and config.shift is ShiftKind.SPEAKER:
        raise ConfigError("Shift 'speaker' scores the run's own held-out speaker; drop --data or choose another shift.")
    sets = _modality_sets(config.modality, tuple(run.model.modalities))
    if config.shift is ShiftKind.SPEAKER and run.config.data.split is not SplitKind.SPEAKER:
        raise ConfigError(
            f"Shift 'speaker' needs a run fitted with --split speaker; {run.path} was split "
            f"{run.config.data.split.value!r}. Fit one with `probfusion fit --split speaker`."
        )
    target = _target(run.path, name, config, overwrite)
    # Models that draw from torch's global RNG (Pyro's, for one) get a seeded, forked copy: the result is
    # reproducible and the caller's RNG state is left alone. Models that take a generator use ours.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        work = _Work(run, config, progress, data)
        clean = {"kind": "clean", "attack": AttackKind.NONE.value, "variant": "clean", "modality": "none", "eps": 0.0}
        work.score(work.views, clean)
        work.clean = {k: work.extras[0][k] for k in ("entropy", "mi", "vacuity") if k in work.extras[0]}
        work.tick()
        if config.shift is not None:
            checks = _shift_work(work, sets)
        elif config.attack is not AttackKind.NONE:
            checks = _attack_work(work, sets)
        else:
            checks = {}
    checks["robustness"] = {"relative": _robustness(work.rows)}
    checks["stochastic_model"] = work.stochastic
    figures = _figures(work)
    scored = {
        "test_rows": "external" if data is not None else "the run's test split",
        "source": work.test_set.name,
        "sha256": dataset_fingerprint(work.test_set),
        "rows": work.test_set.num_samples,
        "run_data": run.data_fingerprint,
    }
    tables = {"conflict_rows.csv": work.conflict_rows} if config.shift is ShiftKind.CONFLICT else {}
    return _write(target, config, work.rows, checks, figures, scored, overwrite=overwrite, tables=tables)


def _write(
    target: Path,
    config: EvaluationConfig,
    rows: list[dict[str, Any]],
    checks: dict[str, Any],
    figures: dict[str, bytes],
    scored: dict[str, Any],
    *,
    overwrite: bool,
    tables: dict[str, list[dict[str, Any]]] | None = None,
) -> EvaluationReport:
    target.parent.mkdir(parents=True, exist_ok=True)
    exists = f"{target} already holds an evaluation; pass --overwrite or choose another name."
    with staged_dir(target, overwrite=overwrite, exists_message=exists) as staging:
        atomic_write_json(staging / "rows.json", {"rows": rows})
        atomic_write_csv(staging / "rows.csv", rows)
        atomic_write_json(staging / "checks.json", checks)
        atomic_write_json(staging / "config.json", config.to_dict())
        atomic_write_json(staging / "data.json", scored)  # the rows behind every number: source and SHA-256
        for file, table in (tables or {}).items():
            atomic_write_csv(staging / file, table)
        (staging / "figures").mkdir()
        for file, png in figures.items():
            atomic_write_bytes(staging / "figures" / file, png)
    return EvaluationReport(
        path=target, rows=rows, checks=checks, figures=tuple(target / "figures" / f for f in figures)
    )
