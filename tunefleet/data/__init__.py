"""Datasets by name or file; loaded in the driver, shared with trials through Ray's object store
(arrays), or listed in the driver and streamed by each trial (``image_folder``)."""

from .datasets import (DATASET_LOADERS, DATASET_TASKS, DataInfo, DataNotFoundError, Dataset,
                       TrainingData, arrays_as_raw, infer_task, load_dataset, load_raw_test_rows,
                       load_test_split, save_test_split)
from .image_folder import ImageFolderData, ImageFolderFeed, list_image_folder
from .preprocessing import Preprocessing
from .sources import RawData

__all__ = ["DATASET_LOADERS", "DATASET_TASKS", "DataInfo", "DataNotFoundError", "Dataset",
           "ImageFolderData", "ImageFolderFeed", "Preprocessing", "RawData", "TrainingData",
           "arrays_as_raw", "infer_task", "list_image_folder", "load_dataset",
           "load_raw_test_rows", "load_test_split", "save_test_split"]
