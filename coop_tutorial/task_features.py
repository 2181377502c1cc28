"""A task's images as CLIP features, encoded once: what every study (prompt tables, sweeps, shift tables) reads.

Two entry points, one per need:

- ``encode_task``: a task to learn on (``TaskFeatures``): its test split encoded now, the train and val images of
  each few-shot draw encoded when drawn.
- ``encode_test_split``: only a task's test split, with its class names and templates (``EncodedTestSplit``): all
  that zero-shot tables need, and all a test-only shifted set has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch.utils.data import Dataset

from .clip_loader import ClipBundle
from .features import (FeatureSet, encode_dataset, encode_images, images_cache_path, read_images_cache,
                       write_images_cache)
from .few_shot import draw_method, few_shot_split, few_shot_val_split, official_few_shot_splits
from .tasks import load_task as load_any_task
from .templates import CLIP_IMAGENET_TEMPLATES_SMALL, dataset_template


@dataclass
class TaskFeatures:
    """One task's splits, encoded by one CLIP as far as they are used.

    The test split is encoded up front (every method is tested on all of it); of the train and val splits only
    the images a few-shot draw picks are ever encoded (``few_shot``), each image once (and, with ``cache_dir``,
    once per draw across notebooks): ImageNet's full train split would be ~1.3M images x 9 views.
    ``train``, ``train_views`` and ``val`` encode a whole split on first use (the embedded world's validation
    sweeps use ``val``).
    """

    name: str
    classnames: list[str]
    templates: list[str]
    test: FeatureSet
    datasets: dict = field(repr=False, default_factory=dict)
    clip: Optional[ClipBundle] = field(repr=False, default=None)
    n_views: int = 8
    seed: int = 0
    cache_dir: Optional[Path] = field(repr=False, default=None)
    _rows: dict = field(repr=False, default_factory=dict)  # (split, augmented) -> {image index: (V, D) features}

    def few_shot(self, shots: int, seed: int) -> tuple[FeatureSet, FeatureSet, FeatureSet]:
        """(train eval-view features, train augmented-view features, val features) of one few-shot draw."""
        train_idx, val_idx = (split.indices for split in self.few_shot_splits(shots, seed))
        return (self.encode("train", train_idx), self.encode("train", train_idx, augment=True),
                self.encode("val", val_idx))

    def encode(self, split: str, indices: Sequence[int], augment: bool = False) -> FeatureSet:
        """Features of the images ``indices`` of ``split`` (augmented: ``n_views`` views), each encoded once."""
        indices = [int(i) for i in indices]
        dataset = self.datasets[split]
        rows = self._rows.setdefault((split, augment), {})
        views = dict(augment=True, n_views=self.n_views, seed=self.seed) if augment else {}
        name = f"{self.name}-{split}"
        missing = [i for i in indices if i not in rows]
        if missing:
            # On disk a whole draw is one entry (another notebook asks for the same draws); in memory each image
            # is encoded once, however many draws pick it.
            path = images_cache_path(self.clip, indices, self.cache_dir, name, **views) if self.cache_dir else None
            cached = read_images_cache(path, dataset, indices) if path is not None else None
            wanted, features = (indices, cached) if cached is not None else (
                missing, encode_images(self.clip, dataset, missing, name=name, **views))
            rows.update({i: features.features[:, k] for k, i in enumerate(wanted)})
        width = self.test.features.shape[-1]
        stacked = (torch.stack([rows[i] for i in indices], dim=1) if indices
                   else torch.zeros(self.n_views if augment else 1, 0, width))
        labels = torch.as_tensor([int(dataset.targets[i]) for i in indices], dtype=torch.long)
        result = FeatureSet(stacked, labels, list(self.classnames),
                            {**self.test.meta, "transform": "train" if augment else "eval", "subset": len(indices),
                             "n_views": self.n_views if augment else 1, "seed": self.seed if augment else None})
        if missing and path is not None and cached is None:
            write_images_cache(path, result)
        return result

    @classmethod
    def from_encoded(cls, name: str, classnames: list[str], templates: list[str], train: FeatureSet,
                     train_views: FeatureSet, val: FeatureSet, test: FeatureSet, datasets: dict) -> "TaskFeatures":
        """A task whose train and val splits are already encoded whole (e.g. one half of another task's classes):
        draws read the given features; nothing is encoded again."""
        task = cls(name, list(classnames), list(templates), test, datasets, None, train_views.n_views,
                   int(train_views.meta.get("seed") or 0))
        for (split, augmented), features in {("train", False): train, ("train", True): train_views,
                                             ("val", False): val}.items():
            task._rows[(split, augmented)] = {i: features.features[:, i] for i in range(features.n_images)}
        return task

    @property
    def train(self) -> FeatureSet:
        """The whole train split, eval transform."""
        return self.encode("train", range(len(self.datasets["train"])))

    @property
    def train_views(self) -> FeatureSet:
        """The whole train split, ``n_views`` augmented views per image."""
        return self.encode("train", range(len(self.datasets["train"])), augment=True)

    @property
    def val(self) -> FeatureSet:
        """The whole validation split."""
        return self.encode("val", range(len(self.datasets["val"])))

    def few_shot_splits(self, shots: int, seed: int) -> tuple:
        """The few-shot draws of images (train, val): the official ones for the paper's datasets, seeded ones
        in the embedded world (``few_shot.draw_method``)."""
        train, val = self.datasets["train"], self.datasets["val"]
        if draw_method(train) == "official":
            return official_few_shot_splits(train, val, shots, seed)
        return few_shot_split(train, shots, seed=seed), few_shot_val_split(val, shots, seed=seed)


def subset_features(features: FeatureSet, indices: Sequence[int]) -> FeatureSet:
    """The images ``indices`` of ``features`` (every view kept), e.g. the validation images no draw picked."""
    index = torch.as_tensor(list(indices), dtype=torch.long)
    return FeatureSet(features.features[:, index], features.labels[index], features.classnames,
                      {**features.meta, "subset": len(index)})


def encode_task(clip: ClipBundle, name: str, n_views: int = 8, seed: int = 0,
                load_task: Optional[Callable] = None, progress: bool = False,
                cache_dir: Optional[Union[str, Path]] = None) -> TaskFeatures:
    """Load task ``name``'s splits and encode its test split; train and val images are encoded when a few-shot
    draw asks for them (``n_views`` augmented views per training image; ``cache_dir``: see ``encode_images``)."""
    load_task = load_task or load_any_task
    datasets = {split: load_task(name, split) for split in ("train", "val", "test")}
    test = datasets["test"]
    features = encode_dataset(clip, test, progress=progress, name=f"{name}-test", cache_dir=cache_dir)
    templates = task_templates(test, name)
    return TaskFeatures(name, list(test.classnames), templates, features, datasets, clip, n_views, seed,
                        Path(cache_dir) if cache_dir is not None else None)


@dataclass
class EncodedTestSplit:
    """The test split of a task, encoded, with its class names and templates: all that zero-shot tables
    (``prompt_table``, ``ensemble_table``) and a shifted test set (``shift_table``'s targets) need."""

    name: str
    classnames: list[str]
    templates: list[str]
    test: FeatureSet


def encode_test_split(clip: ClipBundle, name: str, load_task: Optional[Callable] = None, progress: bool = False,
                      cache_dir: Optional[Union[str, Path]] = None) -> EncodedTestSplit:
    """Encode only the test split of task ``name``: zero-shot studies and test-only shifted sets need no training
    images (``cache_dir``: see ``encode_images``)."""
    load_task = load_task or load_any_task
    test = load_task(name, "test")
    features = encode_dataset(clip, test, progress=progress, name=f"{name}-test", cache_dir=cache_dir)
    return EncodedTestSplit(name, list(test.classnames), task_templates(test, name), features)


def task_templates(dataset: Dataset, name: str) -> list[str]:
    """The hand-written templates of task ``name``: an embedded task's own (``dataset.templates``); for a real
    dataset its paper template first, then CLIP's short generic ensemble."""
    own = getattr(dataset, "templates", None)
    if own:
        return list(own)
    first = dataset_template(name)
    return [first] + [t for t in CLIP_IMAGENET_TEMPLATES_SMALL if t != first]
