"""Datasets by name; loaded in the driver, shared with trials through Ray's object store."""

from .datasets import (DATASET_LOADERS, DATASET_TASKS, DataInfo, Dataset, TrainingData, load_dataset,
                       load_test_split, save_test_split)

__all__ = ["DATASET_LOADERS", "DATASET_TASKS", "DataInfo", "Dataset", "TrainingData", "load_dataset",
           "load_test_split", "save_test_split"]
