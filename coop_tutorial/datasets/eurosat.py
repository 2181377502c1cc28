"""EuroSAT (RGB): ``eurosat/2750/<LandUse>/`` (CoOp and torchvision share this layout).

Folder names such as ``SeaLake`` become CoOp's prompt names (``Sea or Lake``); renames also apply to split files
that carry the folder names, so either kind of json gives the same class names.
"""
from __future__ import annotations

from .class_folders import read_class_folder_dataset
from .layout import DatasetLocation
from .metadata import EUROSAT_RENAMES
from .splits import SplitData


def read(location: DatasetLocation, split: str) -> SplitData:
    return read_class_folder_dataset(location, split, renames=EUROSAT_RENAMES)
