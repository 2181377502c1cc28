"""SUN397: ``sun397/SUN397/<letter>/<scene>[/<sub>]/`` plus the partition files (``ClassName.txt``,
``Training_01.txt``, ``Testing_01.txt``). Class names drop the letter and put qualifiers first, as CoOp does:
``a/apartment_building/outdoor`` -> ``outdoor apartment_building``.

Without ``split_zhou_SUN397.json``: the official code takes partition 01 (train/test) and splits its training
list 80/20 into train/val. Without the partition files either, each scene folder is split 50/20/30.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import DatasetLayoutError, Item, is_image_file, read_lines, see_docs
from .layout import DatasetLocation
from .splits import (PER_CLASS_RULE, TRAINVAL_RULE, SplitData, SplitItems, resolve_split, select_split,
                     split_per_class, split_trainval)


def coop_scene_name(category: str) -> str:
    """``"a/apartment_building/outdoor"`` -> ``"outdoor apartment_building"``."""
    return " ".join(category.strip("/").split("/")[1:][::-1])


def _from_partitions(location: DatasetLocation) -> SplitItems:
    folder = location.dataset_dir
    categories = [line.lstrip("/") for line in read_lines(folder / "ClassName.txt", "SUN397 class list")]
    label_of = {category: label for label, category in enumerate(categories)}

    def listing(name: str) -> list[Item]:
        items = []
        for line in read_lines(folder / name, "SUN397 partition 01"):
            relative = line.lstrip("/")
            category = os.path.dirname(relative)
            if category not in label_of:
                raise DatasetLayoutError(f"{folder / name}: {relative!r} is in no class of ClassName.txt.")
            items.append(Item(str(location.image_dir / relative), label_of[category], coop_scene_name(category)))
        return items

    train, val = split_trainval(listing("Training_01.txt"))
    return {"train": train, "val": val, "test": listing("Testing_01.txt")}


def _from_folders(location: DatasetLocation) -> SplitItems:
    image_dir = location.image_dir
    by_category: dict[str, list[str]] = {}
    for directory, _, files in os.walk(image_dir):
        images = sorted(name for name in files if is_image_file(name))
        if images:
            by_category[Path(os.path.relpath(directory, image_dir)).as_posix()] = images
    if not by_category:
        raise DatasetLayoutError(f"No images under {image_dir} (expected SUN397/<letter>/<scene>/*.jpg). "
                                 f"{see_docs(location.anchor)}")
    return split_per_class([[Item(str(image_dir / category / name), label, coop_scene_name(category))
                             for name in by_category[category]]
                            for label, category in enumerate(sorted(by_category))])


def read(location: DatasetLocation, split: str) -> SplitData:
    has_partitions = all((location.dataset_dir / name).is_file()
                         for name in ("ClassName.txt", "Training_01.txt", "Testing_01.txt"))
    if has_partitions:
        splits, source = resolve_split(location, lambda: _from_partitions(location), f"partition 01: {TRAINVAL_RULE}")
    else:
        splits, source = resolve_split(location, lambda: _from_folders(location),
                                       f"no partition files, so {PER_CLASS_RULE} over the scene folders")
    return select_split(splits, split, source)
