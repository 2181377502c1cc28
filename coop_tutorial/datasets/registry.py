"""``load_real_dataset``: name -> folder -> split -> ``ImageListDataset``, the real world's half of ``load_task``."""
from __future__ import annotations

import difflib
import re
import warnings
from pathlib import Path
from typing import Callable, Mapping, Optional, Union

from . import (caltech101, dtd, eurosat, fgvc_aircraft, flowers, food101, imagenet, imagenet_variants, oxford_pets,
               stanford_cars, sun397, ucf101)
from .base import ImageListDataset, IncompleteDatasetWarning
from .layout import DatasetLocation, find_dataset, resolve_data_root
from .metadata import REAL_DATASETS, DatasetInfo
from .splits import SplitData, check_subsample, subsample_classes

READERS: dict[str, Callable[[DatasetLocation, str], SplitData]] = {
    "imagenet": imagenet.read,
    "caltech101": caltech101.read,
    "oxford_pets": oxford_pets.read,
    "stanford_cars": stanford_cars.read,
    "oxford_flowers": flowers.read,
    "food101": food101.read,
    "fgvc_aircraft": fgvc_aircraft.read,
    "sun397": sun397.read,
    "dtd": dtd.read,
    "eurosat": eurosat.read,
    "ucf101": ucf101.read,
    "imagenet_v2": imagenet_variants.read_v2,
    "imagenet_sketch": imagenet_variants.read_by_wnid,
    "imagenet_a": imagenet_variants.read_by_wnid,
    "imagenet_r": imagenet_variants.read_by_wnid,
}


def name_key(name: str) -> str:
    """What two spellings of a name must share: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Every spelling accepted: registry names, aliases, CoOp's config names (OxfordFlowers, ImageNetV2...),
# compared without case, dashes or underscores.
_LOOKUP: dict[str, str] = {}
for _info in REAL_DATASETS.values():
    for _spelling in (_info.name, _info.title, *_info.aliases):
        _LOOKUP.setdefault(name_key(_spelling), _info.name)


def real_dataset_names() -> list[str]:
    """Registry names of the paper's datasets, in the paper's order."""
    return list(REAL_DATASETS)


def canonical_name(name: str) -> Optional[str]:
    """The registry name for any accepted spelling (``"Flowers102"`` -> ``"oxford_flowers"``), else ``None``."""
    return _LOOKUP.get(name_key(name)) if isinstance(name, str) else None


def real_spellings() -> dict[str, str]:
    """Every accepted spelling (as ``name_key`` writes it) -> registry name."""
    return dict(_LOOKUP)


def suggest(name: str, spellings: Mapping[str, str]) -> str:
    """`` Did you mean ...?`` naming the closest registry names (aliases count: ``flowrs102`` finds
    ``oxford_flowers``), or an empty string."""
    close = difflib.get_close_matches(name_key(str(name)), list(spellings), n=6, cutoff=0.6)
    names = list(dict.fromkeys(spellings[spelling] for spelling in close))[:3]
    return f" Did you mean {' or '.join(repr(n) for n in names)}?" if names else ""


def load_real_dataset(name: str, split: str, transform: Optional[Callable] = None,
                      root: Optional[Union[str, Path]] = None, download: bool = False, subsample: str = "all",
                      split_file: Optional[Union[str, Path]] = None) -> ImageListDataset:
    """One split of one of the paper's datasets, read from its CoOp (or torchvision) folder layout.

    Args:
        name: ``"eurosat"``, ``"oxford_flowers"`` (``"flowers102"``), ... see ``real_dataset_names()``.
        split: ``"train"``, ``"val"`` or ``"test"`` (ImageNet variants: ``"test"`` only).
        transform: applied to each PIL image (e.g. ``clip.preprocess``); ``None`` returns PIL images.
        root: the folder holding every dataset; default ``$COOP_DATA`` or ``./data``.
        download: let torchvision fetch the dataset when it is missing (where torchvision can).
        subsample: ``"all"``, or the ``"base"``/``"new"`` half of the classes (relabelled from 0).
        split_file: a ``split_zhou_*.json`` kept elsewhere than the dataset folder.
    """
    canonical = canonical_name(name)
    if canonical is None:
        raise ValueError(f"Unknown dataset {name!r}.{suggest(name, real_spellings())} "
                         f"Known: {', '.join(real_dataset_names())}.")
    info = REAL_DATASETS[canonical]
    check_split(info, split)
    if split_file is not None and info.split_json is None:
        raise ValueError(f"{info.title} has no split file (its split is fixed by its folders or official lists): "
                         f"leave split_file unset.")
    check_subsample(subsample)  # before touching the disk
    location = find_dataset(info, resolve_data_root(root), download=download, split_file=split_file)
    data = READERS[canonical](location, split)
    _warn_if_incomplete(info, data)
    dataset = ImageListDataset([(item.path, item.label) for item in data.items], data.classnames, transform,
                               name=info.name, split=split, source=data.source)
    return subsample_classes(dataset, subsample)


def check_split(info: DatasetInfo, split: str) -> None:
    if split not in info.splits:
        only = (f"{info.title} is a test set only (a distribution shift of ImageNet): use split='test'"
                if info.splits == ("test",) else f"split must be one of {', '.join(repr(s) for s in info.splits)}")
        raise ValueError(f"Unknown split {split!r} for {info.name}: {only}.")


def _warn_if_incomplete(info: DatasetInfo, data: SplitData) -> None:
    if len(data.classnames) != info.n_classes:
        warnings.warn(f"{info.title}: found {len(data.classnames)} classes where the paper's dataset has "
                      f"{info.n_classes} ({data.source}). An incomplete download or the wrong folder? Results will "
                      f"not compare with the paper's.", IncompleteDatasetWarning, stacklevel=3)
