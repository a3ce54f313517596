"""How models are fitted and queried: training loops and predictive probabilities."""

from probfusion.inference.data import StreamingData, TensorData
from probfusion.inference.predictive import predict_probabilities, score_classifier
from probfusion.inference.training import EpochRecord, FitResult, TrainingState, train_classifier

__all__ = [
    "EpochRecord",
    "FitResult",
    "StreamingData",
    "TensorData",
    "TrainingState",
    "predict_probabilities",
    "score_classifier",
    "train_classifier",
]
