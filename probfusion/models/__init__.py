"""Model kinds, one module each, and the registry that :mod:`probfusion.api` looks them up in."""

from probfusion.models.registry import BAYES_LMF, ModelSpec, StageResult, model_spec, registered_kinds

__all__ = ["BAYES_LMF", "ModelSpec", "StageResult", "model_spec", "registered_kinds"]
