"""Food101: ``food-101/images/<dish>/`` (CoOp and torchvision share this layout).

CoOp does not use Food101's official ``meta/train.json``/``test.json``: it uses ``split_zhou_Food101.json``
(or its 50/20/30 rule), which is why its test set is 30,300 images and not 25,250.
"""
from __future__ import annotations

from .class_folders import read_class_folder_dataset
from .layout import DatasetLocation
from .splits import SplitData


def read(location: DatasetLocation, split: str) -> SplitData:
    return read_class_folder_dataset(location, split)
