"""The paper's 11 datasets and 4 ImageNet variants, read from the folder layouts CoOp users already have.

``load_real_dataset(name, split)`` returns an ``ImageListDataset`` of ``(image, label)`` with ``.classnames``,
``.targets`` and ``.paths``. Layouts, class-name rules and sizes are data in ``metadata.py``; each module reads
one family of layouts; ``splits.py`` holds CoOp's split rules. Most users call ``coop_tutorial.load_task``.
"""
from .base import (DatasetLayoutError, DatasetNotFoundError, DatasetWarning, GeneratedSplitWarning, ImageListDataset,
                   IncompleteDatasetWarning, Item, RelabeledSubset, UnreadableImageError, load_image)
from .layout import DATA_ROOT_ENV, find_dataset, resolve_data_root
from .metadata import REAL_DATASETS, DatasetInfo
from .registry import canonical_name, load_real_dataset, real_dataset_names
from .splits import base_new_classes, subsample_classes

__all__ = [
    "DATA_ROOT_ENV", "REAL_DATASETS", "DatasetInfo", "DatasetLayoutError", "DatasetNotFoundError", "DatasetWarning",
    "GeneratedSplitWarning", "ImageListDataset", "IncompleteDatasetWarning", "Item", "RelabeledSubset",
    "UnreadableImageError", "base_new_classes", "canonical_name", "find_dataset", "load_image",
    "load_real_dataset", "real_dataset_names", "resolve_data_root", "subsample_classes",
]
