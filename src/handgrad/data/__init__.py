"""Data: embedded data sets, users' files, chunk sources, splits and standardisation.

The chunk sources (``handgrad.data.sources``) are imported from their module, not here:
this package is imported by ``handgrad train --help``, which must not load NumPy's users.
"""

from handgrad.data.dataset import Dataset
from handgrad.data.datasets import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "load_dataset"]
