"""The family of datasets stored as one folder per class (DTD, Food101, Caltech101, EuroSAT).

Without a split json, CoOp splits each class 50/20/30 (its ``DTD.read_and_split_data``); labels follow the
sorted folder names, Python's case-sensitive sort (so Caltech101's ``Faces``, ``Leopards``, ``Motorbikes``
come before ``accordion``, exactly as in the official split file).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from .base import Item, list_class_folders, list_images
from .layout import DatasetLocation
from .splits import PER_CLASS_RULE, SplitData, resolve_split, select_split, split_per_class


def class_folder_items(image_dir: Path, ignored: Sequence[str] = (), renames: Mapping[str, str] | None = None,
                       anchor: str = "") -> list[list[Item]]:
    """Images of each class folder (sorted), labelled by folder order; ``renames`` gives prompt names."""
    renames = renames or {}
    folders = [f for f in list_class_folders(image_dir, "one sub-folder per class", anchor) if f not in ignored]
    return [[Item(str(image_dir / folder / name), label, renames.get(folder, folder))
             for name in list_images(image_dir / folder, anchor)]
            for label, folder in enumerate(folders)]


def read_class_folder_dataset(location: DatasetLocation, split: str, ignored: Sequence[str] = (),
                              renames: Mapping[str, str] | None = None) -> SplitData:
    """``split`` of a class-folder dataset: from its split json, or CoOp's 50/20/30 rule."""
    def build():
        return split_per_class(class_folder_items(location.image_dir, ignored, renames, location.anchor))

    def current_classes():
        folders = list_class_folders(location.image_dir, "one sub-folder per class", location.anchor)
        return [(renames or {}).get(f, f) for f in folders if f not in ignored]

    splits, source = resolve_split(location, build, PER_CLASS_RULE, renames, current_classes)
    return select_split(splits, split, source)
