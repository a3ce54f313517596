"""Fusion layers (LMF, TFN, concatenation), the classifier head and the deterministic classifier."""

from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.concat import ConcatFusion
from probfusion.fusion.factory import build_fusion, build_head
from probfusion.fusion.heads import ClassifierHead
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.protocol import Predictor
from probfusion.fusion.tfn import MAX_TFN_WEIGHTS, TensorFusion

__all__ = [
    "MAX_TFN_WEIGHTS",
    "ClassifierHead",
    "ConcatFusion",
    "LowRankFusion",
    "MultimodalClassifier",
    "Predictor",
    "TensorFusion",
    "build_fusion",
    "build_head",
]
