"""Datasets by name or file; loaded in the driver, shared with trials through Ray's object store."""

from .datasets import (DATASET_LOADERS, DATASET_TASKS, DataInfo, DataNotFoundError, Dataset,
                       TrainingData, arrays_as_raw, infer_task, load_dataset, load_raw_test_rows,
                       load_test_split, save_test_split)
from .preprocessing import Preprocessing
from .sources import RawData

__all__ = ["DATASET_LOADERS", "DATASET_TASKS", "DataInfo", "DataNotFoundError", "Dataset",
           "Preprocessing", "RawData", "TrainingData", "arrays_as_raw", "infer_task",
           "load_dataset", "load_raw_test_rows", "load_test_split", "save_test_split"]
