"""The few-shot protocol: K images per class from the train split, drawn by seed.

As in CoOp (Dassl's ``generate_fewshot_dataset``): K per class for training, ``min(K, 4)`` per class for
validation, and a class with fewer than K images keeps all it has. The draw for class ``c`` depends only on
``(seed, c)``, so it is deterministic and does not change when other classes are added or removed.

"More shots asked than exist": a class with fewer than K images is kept whole with a warning (the paper's
protocol); ``strict=True`` turns that into a ValueError; a class with no image at all is always a
ValueError, since CoOp cannot learn a class it never sees.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset, Subset


class FewShotSubset(Subset):
    """A ``Subset`` that keeps the dataset interface of this package: ``.classnames`` and ``.targets``."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], classnames: Sequence[str], targets: Sequence[int]):
        super().__init__(dataset, list(indices))
        self.classnames = list(classnames)
        self.targets = list(targets)


def dataset_labels(dataset: Dataset) -> list[int]:
    """Labels of every item (``dataset.targets`` when present; otherwise read item by item, slower)."""
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return [int(t) for t in targets]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def few_shot_split(dataset: Dataset, shots: int, seed: int = 1, strict: bool = False,
                   classnames: Optional[Sequence[str]] = None) -> FewShotSubset:
    """``shots`` images per class, sampled without replacement by ``seed``.

    Args:
        dataset: a dataset with ``.classnames`` (or pass ``classnames``) and ``.targets`` (or readable labels).
        shots: K, images per class (>= 1).
        seed: the draw; CoOp reports seeds 1, 2, 3.
        strict: raise instead of warning when a class has fewer than ``shots`` images.

    Returns:
        A FewShotSubset grouped by class (class 0's images first), indices ascending within a class.
    """
    if isinstance(shots, bool) or not isinstance(shots, numbers.Integral) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1 (images per class; the paper uses 1, 2, 4, 8, 16), "
                         f"got {shots!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    shots, seed = int(shots), int(seed)
    names = list(classnames) if classnames is not None else getattr(dataset, "classnames", None)
    if names is None:
        raise ValueError("The dataset has no .classnames; pass classnames=... (one name per label).")
    labels = dataset_labels(dataset)
    out_of_range = sorted({y for y in labels if not 0 <= y < len(names)})
    if out_of_range:
        raise ValueError(f"Labels out of range: {out_of_range[:5]} but there are {len(names)} class names "
                         f"(valid labels 0..{len(names) - 1}). Check that classnames match the dataset.")
    by_class: list[list[int]] = [[] for _ in names]
    for index, label in enumerate(labels):
        by_class[label].append(index)

    empty = [names[c] for c, items in enumerate(by_class) if not items]
    if empty:
        raise ValueError(f"{len(empty)} class(es) have no images to sample from: {empty[:5]}. Drop those classes "
                         f"from classnames (and relabel), or use a split that contains them.")
    short = {names[c]: len(items) for c, items in enumerate(by_class) if len(items) < shots}
    if short:
        listing = ", ".join(f"{name!r} ({n})" for name, n in list(short.items())[:5])
        message = (f"{len(short)} class(es) have fewer than {shots} images: {listing}"
                   f"{' ...' if len(short) > 5 else ''}.")
        if strict:
            raise ValueError(message + " Ask for fewer shots, or pass strict=False to keep all images of those "
                                       "classes (the CoOp protocol).")
        warnings.warn(message + " Keeping all their images, as the CoOp protocol does.", stacklevel=2)

    indices: list[int] = []
    for c, items in enumerate(by_class):
        rng = np.random.default_rng([seed, c])
        take = min(shots, len(items))
        indices.extend(sorted(int(i) for i in rng.choice(items, size=take, replace=False)))
    return FewShotSubset(dataset, indices, names, [labels[i] for i in indices])


def few_shot_val_split(dataset: Dataset, shots: int, seed: int = 1,
                       classnames: Optional[Sequence[str]] = None) -> FewShotSubset:
    """The validation split of the protocol: ``min(shots, 4)`` images per class from ``dataset``."""
    if isinstance(shots, bool) or not isinstance(shots, numbers.Integral) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1, got {shots!r}.")
    return few_shot_split(dataset, min(int(shots), 4), seed=seed, classnames=classnames)
