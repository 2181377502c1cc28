"""Oxford Flowers102: ``oxford_flowers/{jpg/,imagelabels.mat,cat_to_name.json}`` (CoOp) or ``flowers-102/``
(torchvision, which has no ``cat_to_name.json``: the same names then come from the package metadata).

Without ``split_zhou_OxfordFlowers.json`` CoOp ignores the official ``setid.mat`` and splits each class 50/20/30.
"""
from __future__ import annotations

import json

from .base import DatasetLayoutError, DatasetNotFoundError, Item, see_docs
from .layout import DatasetLocation
from .metadata import flowers102_classnames
from .splits import PER_CLASS_RULE, SplitData, resolve_split, select_split, split_per_class


def flower_names(location: DatasetLocation) -> dict[int, str]:
    """1-based label -> name, from ``cat_to_name.json`` when present, else the package table (same names)."""
    path = location.dataset_dir / "cat_to_name.json"
    if path.is_file():
        try:
            return {int(label): name for label, name in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError) as exc:
            raise DatasetLayoutError(f"{path} is not a {{\"label\": \"name\"}} JSON object ({exc}).") from exc
    return {label: name for label, name in enumerate(flowers102_classnames(), 1)}


def read(location: DatasetLocation, split: str) -> SplitData:
    def build():
        from scipy.io import loadmat

        path = location.dataset_dir / "imagelabels.mat"
        if not path.is_file():
            raise DatasetNotFoundError(f"Expected {path} (Flowers102 labels, needed to build a split when "
                                       f"split_zhou_OxfordFlowers.json is absent). {see_docs('oxford_flowers')}")
        labels = [int(label) for label in loadmat(str(path))["labels"].ravel()]
        names = flower_names(location)
        unnamed = sorted(set(labels) - set(names))
        if unnamed:
            raise DatasetLayoutError(f"{path} uses labels {unnamed[:5]} that have no name in cat_to_name.json.")
        by_label: dict[int, list[Item]] = {}
        for index, label in enumerate(labels, 1):  # image_00001.jpg has the first label
            item = Item(str(location.image_dir / f"image_{index:05d}.jpg"), label - 1, names[label])
            by_label.setdefault(label, []).append(item)
        return split_per_class([by_label[label] for label in sorted(by_label)])

    splits, source = resolve_split(location, build, PER_CLASS_RULE)
    return select_split(splits, split, source)
