"""ImageNet's distribution shifts, test sets only: V2, Sketch, A and R (CoOp's domain-generalisation targets).

* ImageNet-V2: ``imagenetv2/imagenetv2-matched-frequency-format-val/<0..999>/``: folder ``i`` is ImageNet label ``i``.
* ImageNet-Sketch: ``imagenet-sketch/images/n*/`` (``sketch/`` as the official zip names it is accepted too).
* ImageNet-A / -R: ``imagenet-adversarial/imagenet-a/n*/``, ``imagenet-rendition/imagenet-r/n*/``: 200-class
  subsets, labelled 0..199 in sorted-id order, with the prompts' class names rebuilt for those 200 classes.

Names come from ``classnames.txt`` (a copy of ImageNet's) or open_clip's ImageNet names.
"""
from __future__ import annotations

from .base import DatasetLayoutError, Item, folder_items, list_class_folders, list_images, see_docs
from .imagenet import names_for_folders, read_classnames
from .layout import DatasetLocation
from .metadata import imagenet_wnids
from .splits import SplitData


def read_v2(location: DatasetLocation, split: str) -> SplitData:
    names, names_source = read_classnames(location.dataset_dir)
    classnames = list(names.values())
    image_dir = location.image_dir
    folders = list_class_folders(image_dir, "one folder per ImageNet label, named 0..999", location.anchor)
    numbered = {int(f): f for f in folders if f.isdigit()}
    outside = sorted(set(numbered) - set(range(len(classnames))))
    missing = sorted(set(range(len(classnames))) - set(numbered))
    if outside or missing:
        raise DatasetLayoutError(
            f"{image_dir} must hold one folder per label 0..{len(classnames) - 1} ({names_source} lists "
            f"{len(classnames)} classes); missing: {missing[:5]}{' ...' if len(missing) > 5 else ''}, unexpected: "
            f"{outside[:5]}. Re-extract imagenetv2-matched-frequency.tar.gz. {see_docs(location.anchor)}")
    items = [Item(str(image_dir / numbered[label] / name), label, classnames[label])
             for label in range(len(classnames)) for name in list_images(image_dir / numbered[label], location.anchor)]
    return SplitData(items, classnames, f"folders of {image_dir}, names from {names_source}")


def read_by_wnid(location: DatasetLocation, split: str) -> SplitData:
    """Sketch, A and R: one ``n*`` folder per class, labels in sorted-id order (A and R: checked against
    their known 200 ids, so pointing them at another dataset fails loudly)."""
    names, names_source = read_classnames(location.dataset_dir)
    image_dir = location.image_dir
    folders = list_class_folders(image_dir, "one n* folder per class", location.anchor)
    if location.info.name in ("imagenet_a", "imagenet_r"):
        known = set(imagenet_wnids(location.info.name))
        foreign = [f for f in folders if f not in known]
        if foreign:
            raise DatasetLayoutError(
                f"{len(foreign)} folder(s) in {image_dir} are not among {location.info.title}'s 200 classes: "
                f"{foreign[:5]}. Is this the {location.info.title} folder? {see_docs(location.anchor)}")
    classnames = names_for_folders(folders, names, names_source, image_dir)
    return SplitData(folder_items(image_dir, folders, classnames, location.anchor), classnames,
                     f"folders of {image_dir}, names from {names_source}")
