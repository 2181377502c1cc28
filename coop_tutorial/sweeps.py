"""Shared experiments: every method on every task, from image features encoded once per task.

Notebooks (prompt sensitivity, shot scaling, robustness) and the embedded world's report all go through
these functions, so a sweep is one call and its numbers are computed the same way everywhere. Each task's
splits are encoded once (``TaskFeatures``); few-shot draws are slices of those features.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .clip_loader import ClipBundle
from .features import FeatureSet, encode_dataset
from .few_shot import few_shot_split, few_shot_val_split
from .linear_probe import LinearProbe, fit_linear_probe
from .training import CoOpConfig, TrainResult, features_accuracy, train_coop
from .zero_shot import template_accuracies, zero_shot_classifier

DEFAULT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)


def _default_loader() -> Callable:
    from .tasks import load_task

    return load_task


@dataclass
class TaskFeatures:
    """The splits of one task encoded once by one CLIP.

    ``train_views`` holds ``n_views`` augmented views per training image (what CoOp trains on);
    ``train``, ``val`` and ``test`` the eval-transform features (what probes fit and everything is tested on).
    """

    name: str
    classnames: list[str]
    templates: list[str]
    train: FeatureSet
    train_views: FeatureSet
    val: FeatureSet
    test: FeatureSet
    datasets: dict = field(repr=False, default_factory=dict)

    def few_shot(self, shots: int, seed: int) -> tuple[FeatureSet, FeatureSet, FeatureSet]:
        """(train eval-view features, train augmented-view features, val features) of one few-shot draw."""
        train_idx = few_shot_split(self.datasets["train"], shots, seed=seed).indices
        val_idx = few_shot_val_split(self.datasets["val"], shots, seed=seed).indices
        return (subset_features(self.train, train_idx), subset_features(self.train_views, train_idx),
                subset_features(self.val, val_idx))


def subset_features(features: FeatureSet, indices: Sequence[int]) -> FeatureSet:
    index = torch.as_tensor(list(indices), dtype=torch.long)
    return FeatureSet(features.features[:, index], features.labels[index], features.classnames,
                      {**features.meta, "subset": len(index)})


def encode_task(clip: ClipBundle, name: str, n_views: int = 8, seed: int = 0,
                load_task: Optional[Callable] = None, progress: bool = False) -> TaskFeatures:
    """Load and encode every split of task ``name`` (train with ``n_views`` augmented views too)."""
    load_task = load_task or _default_loader()
    datasets = {split: load_task(name, split) for split in ("train", "val", "test")}
    encoded = {split: encode_dataset(clip, ds, progress=progress, name=f"{name}-{split}")
               for split, ds in datasets.items()}
    views = encode_dataset(clip, datasets["train"], augment=True, n_views=n_views, seed=seed, progress=progress,
                           name=f"{name}-train-views")
    test = datasets["test"]
    templates = list(getattr(test, "templates", None) or _templates_for(name))
    return TaskFeatures(name, list(test.classnames), templates, encoded["train"], views, encoded["val"],
                        encoded["test"], datasets)


def encode_test_set(clip: ClipBundle, name: str, load_task: Optional[Callable] = None) -> FeatureSet:
    """Eval features of a test-only task (a shifted test set)."""
    load_task = load_task or _default_loader()
    return encode_dataset(clip, load_task(name, "test"), progress=False, name=f"{name}-test")


def _templates_for(name: str) -> list[str]:
    """A real dataset's paper template first, then CLIP's short generic ensemble."""
    from .templates import CLIP_IMAGENET_TEMPLATES_SMALL, dataset_template

    first = dataset_template(name)
    return [first] + [t for t in CLIP_IMAGENET_TEMPLATES_SMALL if t != first]


def prompt_table(clip: ClipBundle, tasks: Iterable[TaskFeatures]) -> pd.DataFrame:
    """Zero-shot accuracy (%) of every hand-written template of every task: columns task, template, accuracy."""
    frames = []
    for task in tasks:
        frame = template_accuracies(clip, task.test, task.templates, task.classnames)
        frame.insert(0, "task", task.name)
        frame["accuracy"] = frame["accuracy"] * 100
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def prompt_summary(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per task: best, worst and mean hand-written prompt, the spread, and which template was best."""
    grouped = prompts.groupby("task", sort=False)["accuracy"]
    summary = pd.DataFrame({"best_prompt": grouped.max(), "worst_prompt": grouped.min(), "mean_prompt": grouped.mean()})
    summary["spread"] = summary["best_prompt"] - summary["worst_prompt"]
    best_rows = prompts.loc[grouped.idxmax()]
    summary["best_template"] = best_rows.set_index("task")["template"]
    return summary


def fit_probe(task: TaskFeatures, shots: int, seed: int) -> LinearProbe:
    train, _, val = task.few_shot(shots, seed)
    return fit_linear_probe(train, val)


def fit_coop(clip: ClipBundle, task: TaskFeatures, shots: int, seed: int,
             config: Optional[CoOpConfig] = None) -> TrainResult:
    """CoOp on one few-shot draw; ``config`` defaults to the embedded recipe for ``shots``."""
    _, views, val = task.few_shot(shots, seed)
    config = (config or CoOpConfig.embedded(shots)).replace(seed=seed, progress=False)
    return train_coop(clip, views, val, config=config, classnames=task.classnames)


def shot_sweep(clip: ClipBundle, tasks: Sequence[TaskFeatures], shots: Sequence[int] = DEFAULT_SHOTS,
               seeds: Sequence[int] = DEFAULT_SEEDS, methods: Sequence[str] = ("linear_probe", "coop"),
               config: Optional[Callable[[int], CoOpConfig]] = None, progress: bool = True) -> pd.DataFrame:
    """Test accuracy (%) of few-shot methods: one row per (task, method, shots, seed).

    ``config`` maps a shot count to a CoOpConfig (default ``CoOpConfig.embedded``); the zero-shot
    reference rows (``shots == 0``) use each task's default (first) template.
    """
    unknown = set(methods) - {"linear_probe", "coop"}
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}; choose from 'linear_probe' and 'coop'.")
    make_config = config or CoOpConfig.embedded
    rows = []
    for task in tasks:
        zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
        rows.append(dict(task=task.name, method="zero_shot", shots=0, seed=0,
                         accuracy=100 * _accuracy(zero, task.test)))
    jobs = [(t, m, k, s) for t in tasks for m in methods for k in shots for s in seeds]
    for task, method, k, seed in tqdm(jobs, desc="shot sweep", disable=not progress):
        if method == "linear_probe":
            accuracy = fit_probe(task, k, seed).accuracy(task.test)
        else:
            accuracy = features_accuracy(fit_coop(clip, task, k, seed, make_config(k)).classifier, task.test)
        rows.append(dict(task=task.name, method=method, shots=k, seed=seed, accuracy=100 * accuracy))
    return pd.DataFrame(rows)


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds: index (task, method, shots)."""
    return sweep.groupby(["task", "method", "shots"], sort=False)["accuracy"].agg(["mean", "std"]).fillna(0.0)


def _accuracy(classifier, features: FeatureSet) -> float:
    with torch.no_grad():
        logits = classifier.logits_from_features(features.view(0))
    return float((logits.argmax(1) == features.labels).float().mean())


def shift_table(clip: ClipBundle, source: TaskFeatures, targets: dict[str, FeatureSet], shots: int = 16,
                seeds: Sequence[int] = DEFAULT_SEEDS, config: Optional[CoOpConfig] = None) -> pd.DataFrame:
    """Learn on ``source``, test on it and on each shifted test set, as in the paper's robustness table.

    Rows: zero-shot (the source's default template), linear probe and CoOp; columns: the source and each
    target, accuracy (%) averaged over ``seeds``. The shifted sets must share the source's classes.
    """
    for name, features in targets.items():
        if features.classnames is not None and list(features.classnames) != source.classnames:
            raise ValueError(f"{name!r} has other classes than {source.name!r}; a shifted test set must share them.")
    sets = {source.name: source.test, **targets}
    zero = zero_shot_classifier(clip, source.classnames, source.templates[0])
    table = {"zero_shot": {n: 100 * _accuracy(zero, f) for n, f in sets.items()}}
    probe_rows, coop_rows = [], []
    for seed in seeds:
        probe = fit_probe(source, shots, seed)
        coop = fit_coop(clip, source, shots, seed, config).classifier
        probe_rows.append({n: 100 * probe.accuracy(f) for n, f in sets.items()})
        coop_rows.append({n: 100 * features_accuracy(coop, f) for n, f in sets.items()})
    table["linear_probe"] = pd.DataFrame(probe_rows).mean().to_dict()
    table["coop"] = pd.DataFrame(coop_rows).mean().to_dict()
    return pd.DataFrame(table).T[list(sets)]


def shift_drops(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Points lost from the source to each target, per method (positive = worse under shift)."""
    return -(table.drop(columns=[source]).sub(table[source], axis=0))


def mean_over_seeds(values: Iterable[float]) -> float:
    return float(np.mean(list(values)))
