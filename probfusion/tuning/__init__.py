"""Hyperparameter search on validation NLL (``probfusion tune``): the space, the study folder, the search.

:class:`SearchSpace` documents every searched dimension (range and scale), :class:`TuneConfig` the budget,
workers, storage, sampler and pruner; :func:`tune` runs the study and writes its folder (layout in
:mod:`probfusion.tuning.study`).
"""

from probfusion.tuning.search import TuneProgress, TuneResult, default_study_dir, tune
from probfusion.tuning.space import (
    BoolDimension,
    ChoiceDimension,
    FloatDimension,
    IntDimension,
    SearchSpace,
    TuneConfig,
)

__all__ = [
    "BoolDimension",
    "ChoiceDimension",
    "FloatDimension",
    "IntDimension",
    "SearchSpace",
    "TuneConfig",
    "TuneProgress",
    "TuneResult",
    "default_study_dir",
    "tune",
]
