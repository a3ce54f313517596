"""Data: the dataset type, validation, splits, standardisation, bundled and generated datasets, user files.

Registered datasets: ``av-digits`` (8x8 digit images x spoken digits, speakers), ``mfeat`` (UCI Multiple
Features, six views) and ``synthetic`` (planted interaction of known CP rank). User data comes from a path:
``.npz``, a multi-view MATLAB ``.mat`` or a MultiBench pickle (with ``trust_pickle``).
"""

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.registry import DatasetInfo, list_datasets, load_dataset
from probfusion.data.splits import DataSplits, split_dataset, split_indices
from probfusion.data.synthetic import make_planted_interaction
from probfusion.data.transforms import Standardizer

__all__ = [
    "DataSplits",
    "DatasetInfo",
    "MultimodalDataset",
    "Standardizer",
    "list_datasets",
    "load_dataset",
    "make_planted_interaction",
    "split_dataset",
    "split_indices",
]
