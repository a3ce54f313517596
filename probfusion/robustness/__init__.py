"""Attacks and shifts of test inputs, against any :class:`~probfusion.fusion.protocol.Predictor`.

Budgets are in units of each feature's training standard deviation: inputs are standardised with the run's
training statistics, so eps is a radius in standardised space.
"""

from probfusion.robustness.attacks import (
    AttackResult,
    attack_loss,
    fgsm,
    is_stochastic,
    pgd,
    run_attack,
    sample_logits,
)
from probfusion.robustness.budgets import NormKind, parse_budgets, project, random_start, steepest_ascent
from probfusion.robustness.checks import monotone_check, strength_check
from probfusion.robustness.conflict import ConflictRecord, conflict_shares, conflictive_views
from probfusion.robustness.shifts import (
    DROPOUT_RATES,
    NOISE_LEVELS,
    Imputation,
    feature_dropout,
    gaussian_noise,
    marginal_missing_probabilities,
    missing_modality,
)

__all__ = [
    "DROPOUT_RATES",
    "NOISE_LEVELS",
    "AttackResult",
    "ConflictRecord",
    "Imputation",
    "NormKind",
    "attack_loss",
    "conflict_shares",
    "conflictive_views",
    "feature_dropout",
    "fgsm",
    "gaussian_noise",
    "is_stochastic",
    "marginal_missing_probabilities",
    "missing_modality",
    "monotone_check",
    "parse_budgets",
    "pgd",
    "project",
    "random_start",
    "run_attack",
    "sample_logits",
    "steepest_ascent",
    "strength_check",
]
