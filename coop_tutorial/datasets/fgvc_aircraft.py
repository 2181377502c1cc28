"""FGVC-Aircraft: ``fgvc_aircraft/`` (CoOp: the archive's ``data/`` renamed) or ``fgvc-aircraft-2013b/data/``
(torchvision). The 100 *variants* are the classes; the official ``images_variant_{train,val,test}.txt`` are the
split (CoOp has no json for it), ``variants.txt`` gives the label order.
"""
from __future__ import annotations

from .base import DatasetLayoutError, Item, read_lines
from .layout import DatasetLocation
from .splits import SplitData, check_files_exist


def read(location: DatasetLocation, split: str) -> SplitData:
    folder = location.dataset_dir
    variants = read_lines(folder / "variants.txt", "the 100 aircraft variants, one per line", location.anchor)
    label_of = {name: label for label, name in enumerate(variants)}
    listing = folder / f"images_variant_{split}.txt"
    items = []
    for number, line in enumerate(read_lines(listing, f"the official {split} split", location.anchor), 1):
        image, _, variant = line.partition(" ")
        if variant not in label_of:
            raise DatasetLayoutError(f"{listing}, line {number}: variant {variant!r} is not listed in "
                                     f"{folder / 'variants.txt'}.")
        items.append(Item(str(location.image_dir / f"{image}.jpg"), label_of[variant], variant))
    check_files_exist({split: items}, location.image_dir, listing)
    return SplitData(items, list(variants), f"official split file {listing}")
