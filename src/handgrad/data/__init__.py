"""Data: embedded data sets, users' files, chunk sources, splits and standardisation."""

from handgrad.data.dataset import Dataset
from handgrad.data.datasets import DATASETS, load_dataset
from handgrad.data.sources import ArraySource, NpySource, Source

__all__ = ["DATASETS", "ArraySource", "Dataset", "NpySource", "Source", "load_dataset"]
