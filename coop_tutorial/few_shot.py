"""The few-shot protocol: K images per class from the train split, drawn by seed.

As in CoOp (Dassl's ``generate_fewshot_dataset``): K per class for training, ``min(K, 4)`` per class for
validation, and a class with fewer than K images keeps all it has. The draw for class ``c`` depends only on
``(seed, c)``, so it is deterministic and does not change when other classes are added or removed.

"More shots asked than exist": a class with fewer than K images is kept whole with a warning (the paper's
protocol); ``strict=True`` turns that into a ValueError; a class with no image at all is always a
ValueError, since CoOp cannot learn a class it never sees.

Two draws (``method``):

* ``"seeded"``: the draw for class ``c`` depends only on ``(seed, c)`` (NumPy), indices ascending within a class;
  stable when classes are added or removed. The embedded world uses it.
* ``"official"``: the same images, in the same order, as the official code: Dassl's
  ``generate_fewshot_dataset`` run right after ``set_random_seed(seed)``. Only Python's ``random`` takes part
  in that draw; classes come in the order their first image appears in the split, ``random.sample`` picks K
  of a class's images (in split order), a class with fewer than K images is drawn *with replacement*
  (``random.choices``, so it repeats images, as the official ``repeat=True`` does), and the validation draw
  (``min(K, 4)``) continues the same generator after the training draw. A private ``random.Random(seed)`` gives
  the same sequence as the global ``random.seed(seed)`` without touching global state. The real world's default.

``method="auto"`` (the default) picks ``"official"`` for the paper's datasets (``coop_tutorial.datasets``) and
``"seeded"`` for everything else.
"""
from __future__ import annotations

import numbers
import random
import warnings
from typing import Optional, Sequence

import numpy as np
from torch.utils.data import Dataset, Subset

METHODS = ("auto", "seeded", "official")


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


def draw_method(dataset: Dataset, method: str = "auto") -> str:
    """The draw ``method`` stands for: ``"auto"`` is ``"official"`` for the paper's datasets, else ``"seeded"``."""
    if method not in METHODS:
        raise ValueError(f"Unknown few-shot draw method {method!r}; use 'official' (the official code's draws), "
                         f"'seeded' (per-class NumPy draws) or 'auto' (official for the paper's datasets).")
    if method != "auto":
        return method
    from .datasets.base import ImageListDataset

    return "official" if isinstance(dataset, ImageListDataset) else "seeded"


def few_shot_split(dataset: Dataset, shots: int, seed: int = 1, strict: bool = False,
                   classnames: Optional[Sequence[str]] = None, method: str = "auto") -> FewShotSubset:
    """``shots`` images per class, drawn by ``seed`` without replacement (a class with fewer images: all of them,
    or, in the official draw, ``shots`` drawn with replacement).

    Args:
        dataset: a dataset with ``.classnames`` (or pass ``classnames``) and ``.targets`` (or readable labels).
        shots: K, images per class (>= 1).
        seed: the draw; CoOp reports seeds 1, 2, 3.
        strict: raise instead of warning when a class has fewer than ``shots`` images.
        method: ``"seeded"``, ``"official"`` or ``"auto"`` (see the module docstring).

    Returns:
        A FewShotSubset. Seeded: grouped by class (class 0's images first), indices ascending within a class.
        Official: the official list, in its order (classes by first appearance, images in drawn order).
    """
    return _draw(dataset, shots, seed, strict, classnames, draw_method(dataset, method), None)


def few_shot_val_split(dataset: Dataset, shots: int, seed: int = 1,
                       classnames: Optional[Sequence[str]] = None, method: str = "auto",
                       train: Optional[Dataset] = None) -> FewShotSubset:
    """The validation split of the protocol: ``min(shots, 4)`` images per class from ``dataset``.

    The official validation draw continues the generator the training draw used, so ``method="official"``
    needs ``train`` (the whole train split the training images are drawn from) to replay that draw first;
    ``official_few_shot_splits`` returns both at once. ``method="auto"`` without ``train`` falls back to the
    seeded draw (the official code picks no model on validation, so only the reported ``val_acc`` differs).
    """
    if isinstance(shots, bool) or not isinstance(shots, numbers.Integral) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1, got {shots!r}.")
    method = "seeded" if method == "auto" and train is None else draw_method(dataset, method)
    if method == "official":
        if train is None:
            raise ValueError("The official validation draw continues the random generator after the training "
                             "draw: pass train=<the whole train split>, or use official_few_shot_splits(train, "
                             "val, shots, seed).")
        return official_few_shot_splits(train, dataset, shots, seed, classnames=classnames)[1]
    return _draw(dataset, min(int(shots), 4), seed, False, classnames, "seeded", None)


def official_few_shot_splits(train: Dataset, val: Optional[Dataset], shots: int, seed: int = 1,
                             classnames: Optional[Sequence[str]] = None,
                             strict: bool = False) -> tuple[FewShotSubset, Optional[FewShotSubset]]:
    """The official training and validation draws of one seed: K per class from ``train``, then
    ``min(K, 4)`` per class from ``val`` with the same generator (``val=None``: ImageNet, which draws no val)."""
    rng = random.Random(_check_seed(seed))
    train_subset = _draw(train, shots, seed, strict, classnames, "official", rng)
    if val is None:
        return train_subset, None
    return train_subset, _draw(val, min(int(shots), 4), seed, False, classnames, "official", rng)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _draw(dataset: Dataset, shots: int, seed: int, strict: bool, classnames: Optional[Sequence[str]], method: str,
          rng: Optional[random.Random]) -> FewShotSubset:
    if isinstance(shots, bool) or not isinstance(shots, numbers.Integral) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1 (images per class; the paper uses 1, 2, 4, 8, 16), "
                         f"got {shots!r}.")
    shots, seed = int(shots), _check_seed(seed)
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
        if method == "official":
            warnings.warn(message + f" Drawing {shots} of them with replacement (some images repeat), as the "
                                    f"official code does.", stacklevel=3)
        else:
            warnings.warn(message + " Keeping all their images, as the CoOp protocol does.", stacklevel=3)

    indices: list[int] = []
    if method == "official":
        rng = rng if rng is not None else random.Random(seed)
        first_seen = list(dict.fromkeys(labels))  # Dassl groups by label in order of first appearance
        for c in first_seen:
            items = by_class[c]
            indices.extend(rng.sample(items, shots) if len(items) >= shots else rng.choices(items, k=shots))
    else:
        for c, items in enumerate(by_class):
            generator = np.random.default_rng([seed, c])
            take = min(shots, len(items))
            indices.extend(sorted(int(i) for i in generator.choice(items, size=take, replace=False)))
    return FewShotSubset(dataset, indices, names, [labels[i] for i in indices])
