"""Caltech101: ``caltech-101/101_ObjectCategories/<class>/`` (CoOp) or ``caltech101/...`` (torchvision).

CoOp drops ``BACKGROUND_Google`` (clutter, not a class) and ``Faces_easy`` (a duplicate of ``Faces``), leaving
100 classes, and renames four folders for prompts (``airplanes`` -> ``airplane``...).
"""
from __future__ import annotations

from .class_folders import read_class_folder_dataset
from .layout import DatasetLocation
from .metadata import CALTECH101_IGNORED, CALTECH101_RENAMES
from .splits import SplitData


def read(location: DatasetLocation, split: str) -> SplitData:
    return read_class_folder_dataset(location, split, ignored=CALTECH101_IGNORED, renames=CALTECH101_RENAMES)
