"""Data: the dataset type, validation, splits, standardisation, bundled and generated datasets, user files.

Registered datasets: ``av-digits`` (8x8 digit images x spoken digits, speakers), ``mfeat`` (UCI Multiple
Features, six views) and ``synthetic`` (planted interaction of known CP rank). User data comes from a path:
``.npz``, a multi-view MATLAB ``.mat``, a MultiBench pickle (with ``trust_pickle``), or a folder of
``x_<m>.npy`` files read through memory maps (:mod:`probfusion.data.folder`, for data larger than memory).
"""

from probfusion.data.dataset import MultimodalDataset
from probfusion.data.folder import FolderDataset, load_folder
from probfusion.data.registry import DatasetInfo, list_datasets, load_dataset
from probfusion.data.splits import DataSplits, split_dataset, split_indices
from probfusion.data.synthetic import make_planted_interaction
from probfusion.data.transforms import Standardizer

__all__ = [
    "DataSplits",
    "DatasetInfo",
    "FolderDataset",
    "MultimodalDataset",
    "Standardizer",
    "list_datasets",
    "load_dataset",
    "load_folder",
    "make_planted_interaction",
    "split_dataset",
    "split_indices",
]
