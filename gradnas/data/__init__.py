"""Data sets and loaders; depends only on torch, numpy and scikit-learn."""

from .digits import DataSplits, load_digits_splits
from .loaders import EpochBatchSampler, InfiniteStream, make_loader, split_dataset

__all__ = [
    "DataSplits",
    "EpochBatchSampler",
    "InfiniteStream",
    "load_digits_splits",
    "make_loader",
    "split_dataset",
]
