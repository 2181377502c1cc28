"""Oxford-IIIT Pets: ``oxford_pets/{images,annotations}/`` (CoOp) or ``oxford-iiit-pet/`` (torchvision).

Without ``split_zhou_OxfordPets.json`` CoOp keeps the official test list and splits the official trainval list
80/20 into train/val. Class names are the breed part of the file name, lower-cased (``american_bulldog``).
"""
from __future__ import annotations

from pathlib import Path

from .base import DatasetLayoutError, Item, read_lines
from .layout import DatasetLocation
from .splits import TRAINVAL_RULE, SplitData, resolve_split, select_split, split_trainval


def read_annotation_list(path: Path, image_dir: Path, anchor: str = "oxford_pets") -> list[Item]:
    """Items of ``trainval.txt``/``test.txt``: lines ``<image> <class id 1..37> <species> <breed id>``."""
    items = []
    for number, line in enumerate(read_lines(path, "the official Pets split, needed to build a split when "
                                                   "split_zhou_OxfordPets.json is absent", anchor), 1):
        if line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit():
            raise DatasetLayoutError(f"{path}, line {number}: expected '<image> <class id> <species> <breed id>', "
                                     f"got {line!r}.")
        image, class_id = fields[0], int(fields[1])
        breed = "_".join(image.split("_")[:-1]).lower()
        items.append(Item(str(image_dir / f"{image}.jpg"), class_id - 1, breed))
    return items


def read(location: DatasetLocation, split: str) -> SplitData:
    annotations = location.dataset_dir / "annotations"

    def build():
        trainval = read_annotation_list(annotations / "trainval.txt", location.image_dir)
        train, val = split_trainval(trainval)
        return {"train": train, "val": val, "test": read_annotation_list(annotations / "test.txt",
                                                                         location.image_dir)}

    splits, source = resolve_split(location, build, TRAINVAL_RULE)
    return select_split(splits, split, source)
