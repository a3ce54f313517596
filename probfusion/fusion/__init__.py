"""Fusion layers (LMF, TFN, concatenation), the classifier head, the deterministic and evidential classifiers."""

from probfusion.fusion.classifier import MultimodalClassifier
from probfusion.fusion.concat import ConcatFusion
from probfusion.fusion.evidential import Combination, EvidentialClassifier
from probfusion.fusion.factory import build_fusion, build_head
from probfusion.fusion.heads import ClassifierHead
from probfusion.fusion.lmf import LowRankFusion
from probfusion.fusion.protocol import PartialViewPredictor, Predictor, VacuityPredictor
from probfusion.fusion.tfn import MAX_TFN_WEIGHTS, TensorFusion

__all__ = [
    "MAX_TFN_WEIGHTS",
    "ClassifierHead",
    "Combination",
    "ConcatFusion",
    "EvidentialClassifier",
    "LowRankFusion",
    "MultimodalClassifier",
    "PartialViewPredictor",
    "Predictor",
    "TensorFusion",
    "VacuityPredictor",
    "build_fusion",
    "build_head",
]
