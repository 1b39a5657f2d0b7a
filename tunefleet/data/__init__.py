"""Datasets by name or file; loaded in the driver, shared with trials through Ray's object store."""

from .datasets import (DATASET_LOADERS, DATASET_TASKS, DataInfo, DataNotFoundError, Dataset,
                       TrainingData, arrays_as_raw, infer_task, load_dataset, load_test_split,
                       save_test_split)
from .sources import RawData

__all__ = ["DATASET_LOADERS", "DATASET_TASKS", "DataInfo", "DataNotFoundError", "Dataset",
           "RawData", "TrainingData", "arrays_as_raw", "infer_task", "load_dataset",
           "load_test_split", "save_test_split"]
