"""Data: embedded data sets, users' files, splits and standardisation."""

from handgrad.data.dataset import Dataset
from handgrad.data.datasets import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
