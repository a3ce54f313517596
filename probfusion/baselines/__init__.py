"""The GP + MKL baseline: per-modality kernels, MKL weights from a convex dual (cvxpy), a fixed-kernel GP."""

from probfusion.baselines.gp import FixedWeightSumKernel, GPMKLClassifier
from probfusion.baselines.gp_fit import GPMKLFit, dirichlet_targets, fit_gp_mkl
from probfusion.baselines.kernels import gram, kernel_factor, kernel_scale, median_bandwidth
from probfusion.baselines.mkl import MKLResult, MKLSolverError, solve_mkl_dual
from probfusion.baselines.multiclass_mkl import MulticlassProblem, joint_basis, multiclass_lanckriet
from probfusion.baselines.simple_mkl import SimpleMKLResult, simple_mkl

__all__ = [
    "FixedWeightSumKernel",
    "GPMKLClassifier",
    "GPMKLFit",
    "MKLResult",
    "MKLSolverError",
    "MulticlassProblem",
    "SimpleMKLResult",
    "dirichlet_targets",
    "fit_gp_mkl",
    "gram",
    "joint_basis",
    "kernel_factor",
    "kernel_scale",
    "median_bandwidth",
    "multiclass_lanckriet",
    "simple_mkl",
    "solve_mkl_dual",
]
