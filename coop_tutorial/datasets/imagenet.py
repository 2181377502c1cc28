"""ImageNet (ILSVRC2012): ``imagenet/images/{train,val}/n*/`` and ``imagenet/classnames.txt``.

As in CoOp, the validation set is the test set (``split="val"`` and ``"test"`` read the same images) and labels
follow the sorted class ids. Class names come from ``classnames.txt`` (one ``wnid name`` a line) or, when it is
absent, from open_clip's ``IMAGENET_CLASSNAMES``: CLIP's cleaned names, which that file copies.
"""
from __future__ import annotations

import os
from pathlib import Path

from .._text import duplicate_classnames
from .base import DatasetLayoutError, folder_items, list_class_folders, read_lines, see_docs
from .layout import DatasetLocation
from .metadata import imagenet_default_classnames
from .splits import SplitData


def read_classnames(dataset_dir: Path) -> tuple[dict[str, str], str]:
    """wnid -> name, in file order, and where the names came from."""
    path = dataset_dir / "classnames.txt"
    if not path.is_file():
        return dict(imagenet_default_classnames()), "open_clip's IMAGENET_CLASSNAMES (no classnames.txt)"
    names: dict[str, str] = {}
    for number, line in enumerate(read_lines(path, "ImageNet class names"), 1):
        wnid, _, name = line.partition(" ")
        if not name.strip():
            raise DatasetLayoutError(f"{path}, line {number}: expected '<wnid> <class name>', got {line!r}.")
        names[wnid] = name.strip()
    return names, str(path)


def names_for_folders(folders: list[str], names: dict[str, str], names_source: str, where: Path) -> list[str]:
    """The class name of each wnid folder, or an error naming folders that are not ImageNet classes."""
    unknown = [folder for folder in folders if folder not in names]
    if unknown:
        raise DatasetLayoutError(
            f"{len(unknown)} folder(s) in {where} are not ImageNet class ids known to {names_source}: "
            f"{unknown[:5]}. Each class folder must be named by its WordNet id (e.g. n01440764). "
            f"{see_docs('imagenet')}")
    classnames = [names[folder] for folder in folders]
    clashes = [f"{folders[i]} and {folders[j]} are both {classnames[j]!r}"
               for i, j in duplicate_classnames(classnames)]
    if clashes:
        raise DatasetLayoutError(
            f"{names_source} gives {len(clashes)} name(s) to more than one class ({'; '.join(clashes[:5])}), so "
            f"their prompts would be identical and CoOp could not tell them apart. Give each a distinct name in "
            f"that file (e.g. its WordNet name: n04008634, open_clip's second 'missile', is 'projectile' "
            f"here). {see_docs('imagenet')}")
    return classnames


def read(location: DatasetLocation, split: str) -> SplitData:
    subfolder = "train" if split == "train" else "val"  # CoOp: the val set is both val and test
    names, names_source = read_classnames(location.dataset_dir)
    split_dir = location.image_dir / subfolder
    folders = list_class_folders(split_dir, f"ImageNet {subfolder} images, one n* folder per class", "imagenet")
    other_dir = location.image_dir / ("val" if subfolder == "train" else "train")
    if other_dir.is_dir():
        other = sorted(e.name for e in os.scandir(other_dir) if e.is_dir() and not e.name.startswith("."))
        if other and other != folders:
            differ = sorted(set(folders) ^ set(other))
            raise DatasetLayoutError(
                f"{location.image_dir / 'train'} and {location.image_dir / 'val'} hold different class folders "
                f"({len(differ)} differ, e.g. {differ[:5]}), so their labels would not match. Complete the "
                f"missing classes. {see_docs('imagenet')}")
    classnames = names_for_folders(folders, names, names_source, split_dir)
    return SplitData(folder_items(split_dir, folders, classnames, "imagenet"), classnames,
                     f"folders of {split_dir}, names from {names_source}")
