"""probfusion: robust, uncertainty-aware multimodal fusion.

Low-rank multimodal fusion (LMF) over joint Wasserstein autoencoder (jWAE) latents; Bayesian rank factors with
ARD priors (:mod:`probfusion.inference`); TFN, concatenation and GP + MKL baselines (:mod:`probfusion.baselines`);
attacks and shifts (:mod:`probfusion.robustness`, :mod:`probfusion.evaluation`); metrics; ArviZ diagnostics and
attributions (:mod:`probfusion.diagnostics`); run directories and a CLI. Shapes in docstrings use the legend of
:mod:`probfusion._shapes`: ``(n, d_m)`` features of modality m, ``(n, d)`` latents, ``(r, h, d_m + 1)`` rank
factors, ``(s, n, c)`` predictive samples.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from probfusion.api import LoadedRun, Run, fit, load_run
from probfusion.config import (
    BayesConfig,
    DataConfig,
    EvaluationConfig,
    FusionConfig,
    GPMKLConfig,
    JWAEConfig,
    RunConfig,
    SyntheticConfig,
    TrainConfig,
)
from probfusion.errors import (
    CheckpointError,
    ConfigError,
    InputDataError,
    ProbfusionError,
    RunExistsError,
    UntrustedFileError,
)
from probfusion.options import AlignmentKind, DeviceKind, FusionKind, HeadKind, PriorPenalty, RankPrior, SplitKind

try:
    __version__ = version("probfusion")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# Tuning pulls in Optuna (and SQLAlchemy); it loads on first use, so `import probfusion` stays as light as before.
_TUNING = frozenset({"SearchSpace", "TuneConfig", "TuneResult", "tune"})


def __getattr__(name: str) -> Any:
    if name in _TUNING:
        from probfusion import tuning

        return getattr(tuning, name)
    raise AttributeError(f"module 'probfusion' has no attribute {name!r}")


__all__ = [
    "AlignmentKind",
    "BayesConfig",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DeviceKind",
    "EvaluationConfig",
    "FusionConfig",
    "FusionKind",
    "GPMKLConfig",
    "HeadKind",
    "InputDataError",
    "JWAEConfig",
    "LoadedRun",
    "PriorPenalty",
    "ProbfusionError",
    "RankPrior",
    "Run",
    "RunConfig",
    "RunExistsError",
    "SearchSpace",
    "SplitKind",
    "SyntheticConfig",
    "TrainConfig",
    "TuneConfig",
    "TuneResult",
    "UntrustedFileError",
    "__version__",
    "fit",
    "load_run",
    "tune",
]
