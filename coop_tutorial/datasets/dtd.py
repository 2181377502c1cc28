"""DTD (Describable Textures): ``dtd/images/<texture>/`` (CoOp) or ``dtd/dtd/images/`` (torchvision).

CoOp ignores DTD's ten official partitions and uses its own ``split_zhou_DescribableTextures.json``.
"""
from __future__ import annotations

from .class_folders import read_class_folder_dataset
from .layout import DatasetLocation
from .splits import SplitData


def read(location: DatasetLocation, split: str) -> SplitData:
    return read_class_folder_dataset(location, split)
