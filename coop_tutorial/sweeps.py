"""Shared experiments: every method on every task, from image features encoded once per task.

Notebooks (prompt sensitivity, shot scaling, robustness) and the embedded world's report all go through
these functions, so a sweep is one call and its numbers are computed the same way everywhere. Each task's
splits are encoded once (``TaskFeatures``); few-shot draws are slices of those features.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .checkpoint import load_context, save_context
from .classifier import CoOpClassifier
from .clip_loader import ClipBundle, weights_fingerprint
from .evaluation import mean_and_std, score
from .features import (FeatureSet, encode_dataset, encode_images, images_cache_path, read_images_cache,
                       write_images_cache)
from .few_shot import draw_method, few_shot_split, few_shot_val_split, official_few_shot_splits
from .linear_probe import LinearProbe, fit_linear_probe
from .training import CoOpConfig, TrainResult, build_classifier, train_coop
from .templates import task_ensemble
from .zero_shot import template_accuracies, zero_shot_classifier

DEFAULT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)


def _default_loader() -> Callable:
    from .tasks import load_task

    return load_task


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
    index = torch.as_tensor(list(indices), dtype=torch.long)
    return FeatureSet(features.features[:, index], features.labels[index], features.classnames,
                      {**features.meta, "subset": len(index)})


def encode_task(clip: ClipBundle, name: str, n_views: int = 8, seed: int = 0,
                load_task: Optional[Callable] = None, progress: bool = False,
                cache_dir: Optional[Union[str, Path]] = None) -> TaskFeatures:
    """Load task ``name``'s splits and encode its test split; train and val images are encoded when a few-shot
    draw asks for them (``n_views`` augmented views per training image; ``cache_dir``: see ``encode_images``)."""
    load_task = load_task or _default_loader()
    datasets = {split: load_task(name, split) for split in ("train", "val", "test")}
    test = datasets["test"]
    features = encode_dataset(clip, test, progress=progress, name=f"{name}-test", cache_dir=cache_dir)
    templates = list(getattr(test, "templates", None) or _templates_for(name))
    return TaskFeatures(name, list(test.classnames), templates, features, datasets, clip, n_views, seed,
                        Path(cache_dir) if cache_dir is not None else None)


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


# What a sweep is given as its recipe: ``recipe(shots, dataset=task_name) -> CoOpConfig`` (``coop_recipe(world)``);
# the dataset matters (the paper trains ImageNet 50 epochs at every shot count).
Recipe = Callable[..., CoOpConfig]


def recipe_config(recipe: Union[Recipe, CoOpConfig], shots: int, dataset: str) -> CoOpConfig:
    """The config a sweep trains ``dataset`` at ``shots`` with: ``recipe`` itself when it is a ``CoOpConfig``,
    else ``recipe(shots, dataset=dataset)``."""
    if isinstance(recipe, CoOpConfig):
        return recipe
    if not callable(recipe):
        raise TypeError(f"A recipe is a CoOpConfig or a function (shots, dataset=...) -> CoOpConfig such as "
                        f"sweeps.coop_recipe(world), got {type(recipe).__name__}.")
    return recipe(shots, dataset=dataset)


def fit_coop(clip: ClipBundle, task: TaskFeatures, shots: int, seed: int,
             config: CoOpConfig, cache_dir: Optional[Union[str, Path]] = None) -> TrainResult:
    """CoOp on one few-shot draw with ``config`` (the world's recipe: ``coop_recipe(world)(shots, dataset=...)``).

    With ``cache_dir`` the learned context is stored there (``coop_cache_path``) and a later call with the same
    model, task features, shots, seed, config and training code loads it instead of training again.
    """
    if not isinstance(config, CoOpConfig):
        raise TypeError(f"fit_coop needs a CoOpConfig (e.g. sweeps.coop_recipe(world)({shots}, dataset="
                        f"{task.name!r})), got {type(config).__name__}: there is no default recipe, since the "
                        f"embedded model's and the paper's differ.")
    config = config.replace(seed=seed, progress=False)
    path = coop_cache_path(cache_dir, clip, task, shots, config) if cache_dir is not None else None
    if path is not None and path.exists():
        return _cached_result(path, clip, task, config)
    if config.cached:
        _, train, val = task.few_shot(shots, seed)
    else:  # the official loop: the few-shot images themselves, a fresh augmentation at every step
        train, val_split = task.few_shot_splits(shots, seed)
        val = task.encode("val", val_split.indices)
    result = train_coop(clip, train, val, config=config, classnames=task.classnames)
    if path is not None:
        save_context(path, result, extra={"task": task.name, "shots": shots, "seed": seed,
                                          "history": result.history})
    return result


def shot_sweep(clip: ClipBundle, tasks: Sequence[TaskFeatures], shots: Sequence[int] = DEFAULT_SHOTS,
               seeds: Sequence[int] = DEFAULT_SEEDS, methods: Sequence[str] = ("linear_probe", "coop"),
               config: Optional[Recipe] = None, progress: bool = True,
               cache_dir: Optional[Union[str, Path]] = None) -> pd.DataFrame:
    """Test accuracy (%) of few-shot methods: one row per (task, method, shots, seed).

    ``config``: the recipe, ``(shots, dataset=...) -> CoOpConfig`` (``coop_recipe(world)``; needed when
    ``methods`` has CoOp); the zero-shot
    reference rows (``shots == 0``) use each task's default (first) template. ``cache_dir``: see ``fit_coop``.
    """
    unknown = set(methods) - {"linear_probe", "coop"}
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}; choose from 'linear_probe' and 'coop'.")
    if "coop" in methods and config is None:
        raise ValueError("shot_sweep trains CoOp: pass config=sweeps.coop_recipe(world) (the world's recipe per "
                         "dataset); there is no default, since the embedded model's recipe and the paper's differ.")
    rows = []
    for task in tasks:
        zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
        rows.append(dict(task=task.name, method="zero_shot", shots=0, seed=0,
                         accuracy=100 * _accuracy(zero, task.test)))
    jobs = [(t, m, k, s) for t in tasks for m in methods for k in shots for s in seeds]
    for task, method, k, seed in tqdm(jobs, desc="shot sweep", disable=not progress):
        if method == "linear_probe":
            accuracy = score(fit_probe(task, k, seed), task.test)
        else:
            accuracy = score(fit_coop(clip, task, k, seed,
                                                  _final_val_only(recipe_config(config, k, task.name)),
                                                  cache_dir).classifier, task.test)
        rows.append(dict(task=task.name, method=method, shots=k, seed=seed, accuracy=100 * accuracy))
    return pd.DataFrame(rows)


def _final_val_only(config: CoOpConfig) -> CoOpConfig:
    """A sweep reports test accuracy only: validate after the last epoch, not after each (what is learned is
    the same; on the embedded model per-epoch validation cost about a tenth of the training time)."""
    return config.replace(eval_every=config.epochs)


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds (``evaluation.seed_std``, ddof=0 as the official
    ``parse_test_res.py``): index (task, method, shots)."""
    return mean_and_std(sweep.groupby(["task", "method", "shots"], sort=False)["accuracy"])


def _accuracy(classifier, features: FeatureSet) -> float:
    with torch.no_grad():
        logits = classifier.logits_from_features(features.view(0))
    return float((logits.argmax(1) == features.labels).float().mean())


def shift_table(clip: ClipBundle, source: TaskFeatures, targets: dict[str, FeatureSet], shots: int = 16,
                seeds: Sequence[int] = DEFAULT_SEEDS, config: Union[Recipe, CoOpConfig, None] = None,
                cache_dir: Optional[Union[str, Path]] = None) -> pd.DataFrame:
    """Learn on ``source``, test on it and on each shifted test set, as in the paper's robustness table.

    Rows: zero-shot (the source's default template), linear probe and CoOp; columns: the source and each
    target, accuracy (%) averaged over ``seeds``. ``config``: the recipe (``coop_recipe(world)``, called with the
    source's name, or one ``CoOpConfig``). A shifted set may hold a subset of the source's classes (ImageNet-A and
    -R: 200 of ImageNet's 1000); it is scored as the official code does: CoOp's prompts are rebuilt for its class
    names with the learned context kept (``PromptLearner.with_classnames``), zero-shot CLIP gets a prompt per
    class of the set, and the linear probe's scores are read for those classes only.
    ``cache_dir``: see ``fit_coop`` (a shot sweep with the same recipe has already trained these contexts).
    """
    if config is None:
        raise ValueError("shift_table trains CoOp: pass config=sweeps.coop_recipe(world) (or a CoOpConfig).")
    columns = {}  # target -> the source's label of each of its classes, or None when the classes are the same
    for name, features in targets.items():
        names = list(features.classnames) if features.classnames is not None else None
        if names is None:
            raise ValueError(f"{name!r} has no class names; a shifted test set needs them to be scored.")
        unknown = [n for n in names if n not in source.classnames]
        if unknown:
            raise ValueError(f"{name!r} has classes that {source.name!r} does not have ({unknown[:3]}); a shifted "
                             f"test set must hold the source's classes or a subset of them.")
        columns[name] = None if names == source.classnames else [source.classnames.index(n) for n in names]
    sets = {source.name: source.test, **targets}
    zero = {name: zero_shot_classifier(clip, list(f.classnames) if columns.get(name) else source.classnames,
                                       source.templates[0]) for name, f in sets.items()}
    table = {"zero_shot": {n: 100 * _accuracy(zero[n], f) for n, f in sets.items()}}
    probe_rows, coop_rows = [], []
    config = recipe_config(config, shots, source.name)
    for seed in seeds:
        probe = fit_probe(source, shots, seed)
        coop = fit_coop(clip, source, shots, seed, config, cache_dir)
        probe_rows.append({n: 100 * _probe_accuracy(probe, f, columns.get(n)) for n, f in sets.items()})
        coop_rows.append({n: 100 * score(
            coop.classifier if columns.get(n) is None else CoOpClassifier(
                clip, coop.learner.with_classnames(clip, list(f.classnames))), f) for n, f in sets.items()})
    table["linear_probe"] = pd.DataFrame(probe_rows).mean().to_dict()
    table["coop"] = pd.DataFrame(coop_rows).mean().to_dict()
    return pd.DataFrame(table).T[list(sets)]


def _probe_accuracy(probe: LinearProbe, features: FeatureSet, columns: Optional[list[int]]) -> float:
    """The probe's accuracy, its scores restricted to ``columns`` (the source labels of a subset's classes)."""
    if columns is None:
        return score(probe, features)
    with torch.no_grad():
        logits = probe.logits_from_features(features.view(0))[:, columns]
    return float((logits.argmax(1) == features.labels).float().mean())


def shift_drops(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Points lost from the source to each target, per method (positive = worse under shift)."""
    return -(table.drop(columns=[source]).sub(table[source], axis=0))


# ---------------------------------------------------------------------------------------------------------------
# Helpers the notebooks share: which task plays which role in a world, the world's CoOp recipe,
# prompt-wording and ensemble tables, and the design-choice ablations.
# ---------------------------------------------------------------------------------------------------------------

# The task each world's single-task notebooks use, and the source of its robustness study: DTD (textures, where
# the paper's CoOp gains most among natural-image datasets) and its embedded stand-in; ImageNet and shapes.
SHOWCASE_TASKS = {"embedded": "patterns", "real": "dtd"}
SHIFT_SOURCES = {"embedded": "shapes", "real": "imagenet"}

# The paper's design choices (unified vs class-specific context, class position, context length, word init),
# as CoOpConfig overrides; "default" is the recipe itself (unified, class at the end, 16 random vectors).
DESIGN_VARIANTS: dict[str, dict] = {
    "default": {},
    "class-specific": {"csc": True},
    "class in the middle": {"class_token_position": "middle"},
    "4 vectors": {"n_ctx": 4},
    "4 vectors from 'a photo of a'": {"ctx_init": "a photo of a"},
}


@dataclass(frozen=True)
class TaskRoles:
    """What each of a world's tasks is for: ``main`` tasks have train/val/test splits; ``shifts`` are the
    test-only shifted sets of ``source``; ``showcase`` is the task the single-task notebooks use."""

    main: list[str]
    source: str
    shifts: list[str]
    showcase: str

    def shift(self, kind: str) -> str:
        """The shifted set of one kind: ``"fresh"`` (ImageNet-V2 / shapes_v2), ``"sketch"``, ``"hard"`` (-A) or
        ``"rendition"`` (-R / shapes_painting)."""
        suffixes = {"fresh": ("_v2",), "sketch": ("_sketch",), "hard": ("_hard", "_a"),
                    "rendition": ("_painting", "_r")}
        if kind not in suffixes:
            raise ValueError(f"Unknown kind of shift {kind!r}; choose from {', '.join(suffixes)}.")
        found = [name for name in self.shifts if name.endswith(suffixes[kind])]
        if not found:
            raise ValueError(f"No {kind} shifted set of {self.source!r} among {self.shifts}.")
        return found[0]


def task_roles(world, only_available: bool = True, tasks: Optional[Sequence[str]] = None,
               source: Optional[str] = None) -> TaskRoles:
    """The roles of ``world``'s tasks (a ``coop_tutorial.World``), so notebooks name no world-specific task.

    ``tasks``: the main tasks to use (default: all the world's); ``source``: the shift study's source (default:
    the world's, ImageNet in the real world, whose four variants are the shifted sets; another source has no
    shifted sets). With ``only_available`` the main tasks and shifted sets are those whose test split loads (in
    the real world, the datasets present under the data root; a warning names the others, ``World.require``
    says where each is expected and how to get it), and the showcase falls back to the first available main task.
    The embedded world generates its tasks, so it always has them all.
    """
    if world.kind == "embedded":
        from .embedded.suite import TASKS

        specs = {name: TASKS[name] for name in world.tasks}
        source = source or SHIFT_SOURCES["embedded"]
        main = _chosen([n for n, s in specs.items() if s.source is None], tasks, "embedded")
        return TaskRoles(main, source, [n for n, s in specs.items() if s.source == source],
                         SHOWCASE_TASKS["embedded"] if SHOWCASE_TASKS["embedded"] in main else main[0])
    from .datasets import canonical_name
    from .datasets.metadata import REAL_DATASETS, SPLITS

    source = canonical_name(source) if source is not None else SHIFT_SOURCES["real"]
    if source is None or REAL_DATASETS[source].splits != SPLITS:
        raise ValueError(f"The shift study's source must be one of the paper's datasets with a train split, got "
                         f"{source!r}; ImageNet (the default) is the one with shifted test sets.")
    main = _chosen([n for n in world.tasks if REAL_DATASETS[n].splits == SPLITS], tasks, "real")
    # only ImageNet has shifted test sets (its four variants)
    shifts = [n for n in world.tasks if REAL_DATASETS[n].splits == ("test",)] if source == "imagenet" else []
    showcase = SHOWCASE_TASKS["real"] if SHOWCASE_TASKS["real"] in main else main[0]
    if only_available:
        missing = [n for n in main + shifts if not _loads(world, n)]
        if missing:
            import warnings

            warnings.warn(f"Not found under the data root, left out: {', '.join(missing)} (see docs/datasets.md; "
                          f"world.require(name) says where each is expected and how to get it).", stacklevel=2)
        main, shifts = [n for n in main if n not in missing], [n for n in shifts if n not in missing]
        showcase = showcase if showcase in main or not main else main[0]
    return TaskRoles(main, source, shifts, showcase)


def _chosen(main: list[str], tasks: Optional[Sequence[str]], kind: str) -> list[str]:
    """``tasks`` (checked against ``main``, in their canonical names), or ``main`` when None."""
    if tasks is None:
        return main
    if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks) or not tasks:
        raise ValueError(f"TASKS must be a non-empty list of task names such as {main[:2]}, or None for all "
                         f"of the {kind} world's; got {tasks!r}.")
    if kind == "real":
        from .datasets import canonical_name

        named = {t: canonical_name(t) for t in tasks}
    else:
        named = {t: t for t in tasks}
    unknown = [t for t, n in named.items() if n not in main]
    if unknown:
        raise ValueError(f"Unknown task(s) {unknown} in TASKS for the {kind} world; its tasks with train/val/test "
                         f"splits are: {', '.join(main)}.")
    return [named[t] for t in tasks]


def _loads(world, name: str) -> bool:
    try:
        world.load_task(name, "test")
    except FileNotFoundError:  # DatasetNotFoundError: the folder or a file of its layout is missing
        return False
    return True


@dataclass
class EncodedTestSplit:
    """The test split of a task, encoded: all that zero-shot tables (``prompt_table``, ``ensemble_table``) need."""

    name: str
    classnames: list[str]
    templates: list[str]
    test: FeatureSet


def encode_test_task(clip: ClipBundle, name: str, load_task: Optional[Callable] = None,
                     progress: bool = False) -> EncodedTestSplit:
    """Encode only the test split of task ``name`` (zero-shot studies need no training images)."""
    load_task = load_task or _default_loader()
    test = load_task(name, "test")
    features = encode_dataset(clip, test, progress=progress, name=f"{name}-test")
    templates = list(getattr(test, "templates", None) or _templates_for(name))
    return EncodedTestSplit(name, list(test.classnames), templates, features)


def coop_recipe(world, dataset: Optional[str] = None, epochs: Optional[int] = None) -> Recipe:
    """``(shots, dataset=None, **overrides) -> CoOpConfig``: the embedded preset in the embedded world, the paper's
    recipe in the real one (per dataset: ImageNet trains 50 epochs at every shot count).

    Notebooks and sweeps take their configs from here (sweeps call it with each task's name), so retuning
    ``CoOpConfig.embedded`` reaches every notebook. ``dataset``: the default when a call names none. ``epochs``:
    fewer epochs than the recipe's, for a quick look (a warm-up epoch is dropped if it would leave none).
    """
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"EPOCHS must be a positive integer, or None for the recipe's, got {epochs!r}.")
    default = dataset

    def recipe(shots: int, dataset: Optional[str] = None, **overrides) -> CoOpConfig:
        name = dataset if dataset is not None else default
        config = CoOpConfig.embedded(shots) if world.kind == "embedded" else CoOpConfig.paper(shots, dataset=name)
        if epochs is not None:
            config = config.replace(epochs=epochs, warmup_epochs=min(config.warmup_epochs, epochs - 1))
        return config.replace(**overrides) if overrides else config

    return recipe


def sampling_error(accuracy: float, n: int) -> float:
    """Standard error (points) of an accuracy (%) measured on ``n`` test images: ``100 * sqrt(p (1 - p) / n)``.

    Two accuracies on the same test set that differ by less than about twice this are within sampling noise.
    """
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    return 100.0 * float(np.sqrt(p * (1.0 - p) / max(n, 1)))


def _word_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance counted in words."""
    previous = list(range(len(b) + 1))
    for i, word_a in enumerate(a, start=1):
        current = [i]
        for j, word_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word_a != word_b)))
        previous = current
    return previous[-1]


def one_word_edits(prompts: pd.DataFrame) -> pd.DataFrame:
    """Pairs of a task's templates that differ by one word (substituted, added or removed), and how far that
    one word moved accuracy: columns ``task, template_a, template_b, accuracy_a, accuracy_b, change``
    (``b - a``, points), largest ``|change|`` first. ``prompts`` is a ``prompt_table``."""
    rows = []
    for task, group in prompts.groupby("task", sort=False):
        records = list(group[["template", "accuracy"]].itertuples(index=False))
        for i, (template_a, acc_a) in enumerate(records):
            for template_b, acc_b in records[i + 1:]:
                if _word_distance(template_a.split(), template_b.split()) == 1:
                    low, high = sorted([(acc_a, template_a), (acc_b, template_b)])
                    rows.append(dict(task=task, template_a=low[1], template_b=high[1], accuracy_a=low[0],
                                     accuracy_b=high[0], change=high[0] - low[0]))
    columns = ["task", "template_a", "template_b", "accuracy_a", "accuracy_b", "change"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("change", ascending=False, key=abs, ignore_index=True)


def ensemble_table(clip: ClipBundle, tasks: Iterable[TaskFeatures],
                   ensembles: Optional[dict[str, Sequence[str]]] = None) -> pd.DataFrame:
    """Zero-shot test accuracy (%) per task of single prompts against prompt ensembles.

    Columns: ``default_prompt`` (the task's first template), ``mean_prompt`` and ``best_prompt`` over its
    templates, ``task_ensemble`` (its templates averaged, as CLIP does; on ImageNet the official 7 selected ones,
    ``templates.task_ensemble``), then one column per extra
    ensemble in ``ensembles`` (name -> templates), e.g. ``{"clip_80": CLIP_IMAGENET_TEMPLATES}``.
    """
    rows = {}
    for task in tasks:
        singles = template_accuracies(clip, task.test, task.templates, task.classnames)["accuracy"] * 100
        row = dict(default_prompt=float(singles.iloc[0]), mean_prompt=float(singles.mean()),
                   best_prompt=float(singles.max()))
        own = task_ensemble(task.name, task.templates)  # ImageNet: the official 7, not its 8 listed templates
        for name, templates in {"task_ensemble": own, **(ensembles or {})}.items():
            row[name] = 100 * _accuracy(zero_shot_classifier(clip, task.classnames, list(templates)), task.test)
        rows[task.name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("task")


def design_sweep(clip: ClipBundle, tasks: Sequence[TaskFeatures], variants: Optional[dict[str, dict]] = None,
                 shots: int = 16, seeds: Sequence[int] = DEFAULT_SEEDS,
                 config: Optional[Recipe] = None, baseline: Optional[pd.DataFrame] = None,
                 progress: bool = True, cache_dir: Optional[Union[str, Path]] = None) -> pd.DataFrame:
    """CoOp test accuracy (%) under each design variant: one row per (task, variant, seed).

    Args:
        variants: name -> CoOpConfig overrides (default ``DESIGN_VARIANTS``).
        config: the recipe the overrides apply to, ``(shots, dataset=...) -> CoOpConfig`` (required).
        baseline: a ``shot_sweep`` result; the variant without overrides is then read from its CoOp rows at
            ``shots`` (same recipe, same seeds, so the same numbers) instead of being trained again.
        cache_dir: see ``fit_coop``.
    """
    variants = DESIGN_VARIANTS if variants is None else variants
    if config is None:
        raise ValueError("design_sweep needs config=sweeps.coop_recipe(world), the recipe its variants change; "
                         "there is no default, since the embedded model's recipe and the paper's differ.")
    rows, jobs = [], []
    for name, overrides in variants.items():
        reused = None
        if not overrides and baseline is not None:
            reused = baseline[(baseline["method"] == "coop") & (baseline["shots"] == shots)
                              & baseline["seed"].isin(list(seeds))]
        for task in tasks:
            if reused is not None and set(reused.loc[reused["task"] == task.name, "seed"]) == set(seeds):
                rows += [dict(task=task.name, variant=name, shots=shots, seed=int(r.seed), accuracy=float(r.accuracy))
                         for r in reused[reused["task"] == task.name].itertuples()]
            else:
                jobs += [(task, name, overrides, seed) for seed in seeds]
    for task, name, overrides, seed in tqdm(jobs, desc="design choices", disable=not progress):
        result = fit_coop(clip, task, shots, seed,
                          _final_val_only(recipe_config(config, shots, task.name).replace(**overrides)), cache_dir)
        rows.append(dict(task=task.name, variant=name, shots=shots, seed=seed,
                         accuracy=100 * score(result.classifier, task.test)))
    order = {name: i for i, name in enumerate(variants)}
    frame = pd.DataFrame(rows, columns=["task", "variant", "shots", "seed", "accuracy"])
    return frame.sort_values(["variant", "task", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c,
                             ignore_index=True)


def task_overview(world, names: Sequence[str]) -> pd.DataFrame:
    """One row per task: classes, split sizes, the default hand-written template and what it stands for."""
    rows = []
    for name in names:
        splits = {}
        for split in ("train", "val", "test"):
            try:
                splits[split] = world.load_task(name, split)
            except ValueError:  # a shifted set has a test split only
                continue
        test = splits["test"]
        templates = list(getattr(test, "templates", None) or _templates_for(name))
        spec = getattr(test, "spec", None)
        rows.append(dict(task=name, classes=len(test.classnames),
                         examples=", ".join(list(test.classnames)[:4]) + (", ..." if len(test.classnames) > 4 else ""),
                         **{f"n_{s}": len(d) for s, d in splits.items()}, default_template=templates[0],
                         stands_for=getattr(spec, "analogue", name)))
    frame = pd.DataFrame(rows).set_index("task")
    return frame.astype({c: "Int64" for c in frame.columns if c.startswith("n_")})


def transplant_table(clip: ClipBundle, contexts: dict, tasks: Sequence[TaskFeatures]) -> pd.DataFrame:
    """Test accuracy (%) of unified contexts moved between tasks.

    ``contexts`` maps the task a context was learned on to its ``PromptLearner``; each is rebuilt for every
    task's class names (``PromptLearner.with_classnames``: same ``ctx``, new class tokens) and tested there.
    Rows: the task the context comes from, then ``zero-shot`` (each task's default template) for reference;
    columns: the task it is tested on.
    """
    table = {}
    for source, learner in contexts.items():
        table[source] = {task.name: 100 * score(
            CoOpClassifier(clip, learner.with_classnames(clip, task.classnames)), task.test) for task in tasks}
    table["zero-shot"] = {task.name: 100 * _accuracy(zero_shot_classifier(clip, task.classnames, task.templates[0]),
                                                     task.test) for task in tasks}
    return pd.DataFrame(table).T.rename_axis(index="context learned on", columns="tested on")


def vocabulary_neighbour_distance(clip: ClipBundle) -> torch.Tensor:
    """For every candidate word of ``interpret.nearest_tokens`` (trained, whole-word tokens): the Euclidean
    distance to its nearest *other* word ``(V,)``: how far apart words are in the token-embedding space, the
    scale against which a context vector's distance to its nearest word can be judged."""
    from .interpret import vocabulary

    ids = vocabulary(clip).to(clip.model.token_embedding.weight.device)
    table = clip.model.token_embedding.weight.detach().float()[ids]
    # Real CLIP has ~33k whole words: the distances go in row chunks (the whole matrix would take ~4 GB) and through
    # a matrix product (|a|^2 + |b|^2 - 2ab), which is BLAS-fast; the exact pairwise loop took 39 s on a 32-wide
    # table and would take ~10 minutes on a 512-wide one. The product's rounding (~1e-6 relative) does not matter
    # for a distance scale. Only the nearest distance of each word is kept.
    nearest = []
    for start in range(0, len(table), 1024):
        distances = torch.cdist(table[start:start + 1024], table, compute_mode="use_mm_for_euclid_dist")
        rows = torch.arange(distances.shape[0], device=distances.device)
        distances[rows, rows + start] = float("inf")
        nearest.append(distances.min(dim=1).values.cpu())
    return torch.cat(nearest)


# ---------------------------------------------------------------------------------------------------------------
# A cache of learned contexts, so the notebooks after the shot sweep reuse its runs instead of training again.
# ---------------------------------------------------------------------------------------------------------------

# The modules whose code decides what a run learns (and, below, the functions of this one): any edit to them
# invalidates every cached context.
_TRAINING_CODE = ("training.py", "prompt_learner.py", "text_encoder.py", "classifier.py", "few_shot.py",
                  "features.py", "checkpoint.py")


def cache_dir_for(world) -> Path:
    """Where a world keeps cached runs: ``<data root>/cache/<backbone>`` (data root: the world's, else
    ``$COOP_DATA``, else ``./data``, as ``load_task`` finds data)."""
    root = Path(world.data_root) if world.data_root is not None else Path(os.environ.get("COOP_DATA", "data"))
    return root / "cache" / str(world.backbone).replace("/", "-")


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:16]


def _code_fingerprint() -> str:
    import inspect

    here = Path(__file__).parent
    own = [inspect.getsource(f).encode() for f in (fit_coop, TaskFeatures.few_shot, TaskFeatures.few_shot_splits,
                                                    TaskFeatures.encode, encode_task)]
    return _digest(*((here / name).read_bytes() for name in _TRAINING_CODE), *own)


def coop_cache_path(cache_dir: Union[str, Path], clip: ClipBundle, task: TaskFeatures, shots: int,
                    config: CoOpConfig) -> Path:
    """The file a CoOp run is cached in; its name hashes everything the run depends on: the model's weights,
    the task's features (name, sizes, how the views were made), shots, the config (seed included) and the
    training code."""
    # Settings that change only what is reported, not what is learned, stay out of the key.
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("progress", "device", "eval_every", "log_every")}
    key = json.dumps({"model": clip.name, "pretrained": str(clip.pretrained), "weights": weights_fingerprint(clip),
                      "task": task.name, "classnames": task.classnames, "n_train": len(task.datasets["train"]),
                      "n_val": len(task.datasets["val"]), "views": {"n_views": task.n_views, "seed": task.seed,
                                                                    "transform": "train",
                                                                    "image_size": clip.image_size},
                      "shots": shots, "config": settings, "code": _code_fingerprint()}, sort_keys=True, default=str)
    return Path(cache_dir) / task.name / f"coop_{shots}shots_seed{config.seed}_{_digest(key.encode())}.safetensors"


def _cached_result(path: Path, clip: ClipBundle, task: TaskFeatures, config: CoOpConfig) -> TrainResult:
    """A ``TrainResult`` rebuilt from a cached context (its history comes from the cache's metadata)."""
    from .checkpoint import read_context

    learner = load_context(path, clip, classnames=task.classnames)
    classifier = build_classifier(clip, learner, config)
    classifier.eval()
    history = read_context(path)[1].get("extra", {}).get("history", [])
    return TrainResult(learner, classifier, history, config)
