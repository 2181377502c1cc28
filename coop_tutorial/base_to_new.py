"""CoCoOp's two generalisation protocols, as sweeps for both worlds, and how the embedded CoCoOp recipe was chosen.

* **Base-to-new** (CoCoOp, Table 1): each task's classes are split in half by label (``base_new_classes``: base =
  the first ``ceil(n / 2)``). Methods learn from 16 shots of the base classes and are tested on the base test
  images and, with the learned context moved to the other class names, on the new ones. The harmonic mean
  ``H = 2 B N / (B + N)`` is computed from the *seed-averaged* base and new accuracies (as the MaPLe and KgCoOp
  authors clarified; the mean of per-seed H's is a little lower), and the average over tasks likewise.
* **Cross-dataset transfer** (CoCoOp, Table 2): learn on one task with all its classes, test on the others.

    python -m coop_tutorial.base_to_new                   # the embedded world's base-to-new table (3 seeds)
    python -m coop_tutorial.base_to_new --recipe-search   # how CoCoOpConfig.embedded was chosen (validation only)
    python -m coop_tutorial.base_to_new --cross-dataset shapes   # learn on shapes, test on every other task

``PROTOCOLS`` names both sweeps with one signature, the seam a reproduction grid can call.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .clip_loader import ClipBundle, weights_fingerprint
from .cocoop import (CoCoOpConfig, CoCoOpResult, build_cocoop_classifier, load_cocoop,
                     save_cocoop, train_cocoop)
from .classifier import CoOpClassifier
from .datasets.splits import base_new_classes
from .features import FeatureSet
from .evaluation import score
from .run_cache import code_fingerprint, digest
from .sweeps import DEFAULT_SEEDS, Recipe, final_val_only, fit_coop, recipe_config
from .task_features import TaskFeatures, encode_task
from .training import CoOpConfig, with_epochs
from .zero_shot import zero_shot_classifier

METHODS = ("zero_shot", "coop", "cocoop")
# The control that separates CoCoOp's two changes to CoOp: its recipe (4 vectors from "a photo of a", its optimiser
# and epochs) without its meta-network, i.e. CoOp trained exactly as CoCoOp is, minus the per-image shift.
CONTROL = "no_meta_net"
# The real world's default tasks: the course classic (Flowers102) and the texture set the other notebooks use.
REAL_BASE_TO_NEW_TASKS = ("oxford_flowers", "dtd")
# The real world's default backbone here: the CoCoOp paper's (its base-to-new tables are ViT-B/16's), not RN50.
REAL_BASE_TO_NEW_BACKBONE = "ViT-B-16"
MIN_CLASSES = 8  # the embedded tasks big enough for two halves of >= 4 classes

# The CoCoOp paper, ViT-B/16, average over 11 datasets (base, new, H), as the MaPLe README reports it.
PAPER_BASE_TO_NEW = pd.DataFrame({"base": [69.34, 82.69, 80.47], "new": [74.22, 63.22, 71.69],
                                  "H": [71.70, 71.66, 75.83]}, index=pd.Index(list(METHODS), name="method"))


class _Labels(torch.utils.data.Dataset):
    """Labels and class names only: what the few-shot split functions read from a dataset."""

    def __init__(self, targets: Sequence[int], classnames: Sequence[str]):
        self.targets, self.classnames = [int(t) for t in targets], list(classnames)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        raise TypeError("A base/new half holds features, not images; index the original task's dataset instead.")


def _keep_classes(features: FeatureSet, classes: Sequence[int], names: list[str]) -> FeatureSet:
    relabel = torch.full((int(features.labels.max()) + 1 if features.labels.numel() else 1,), -1, dtype=torch.long)
    relabel[torch.as_tensor(list(classes))] = torch.arange(len(classes))
    keep = torch.nonzero(relabel[features.labels] >= 0).flatten()
    return FeatureSet(features.features[:, keep], relabel[features.labels[keep]], names,
                      {**features.meta, "classes": list(classes)})


def class_half(task: TaskFeatures, half: str) -> TaskFeatures:
    """The ``"base"`` or ``"new"`` half of a task's classes, relabelled 0..k-1, as a TaskFeatures (no re-encoding).

    Raises:
        ValueError: for a task with fewer than 2 classes (one half would be empty).
    """
    if half not in ("base", "new"):
        raise ValueError(f"half must be 'base' or 'new', got {half!r}.")
    n = len(task.classnames)
    if n < 2:
        raise ValueError(f"Base-to-new splits a task's classes in two, but {task.name!r} has {n} class(es); "
                         f"use a task with at least 2 classes (the notebooks use those with >= {MIN_CLASSES}).")
    classes = base_new_classes(n, half)
    names = [task.classnames[c] for c in classes]
    parts = {split: _keep_classes(getattr(task, split), classes, names)
             for split in ("train", "train_views", "val", "test")}
    datasets = {split: _Labels(parts[split].targets, names) for split in ("train", "val", "test")}
    return TaskFeatures.from_encoded(f"{task.name}[{half}]", names, task.templates, parts["train"],
                                     parts["train_views"], parts["val"], parts["test"], datasets)


def default_tasks(world, names: Optional[Sequence[str]] = None) -> list[str]:
    """The tasks the base-to-new notebook uses: embedded, every main task with >= 8 classes; real, Flowers102 and
    DTD (``names`` overrides either)."""
    if names is not None:
        return list(names)
    if world.kind == "real":
        return list(REAL_BASE_TO_NEW_TASKS)
    return [n for n in world.roles().main if len(world.load_task(n, "test").classnames) >= MIN_CLASSES]


def default_backbone(kind: str, backbone: Optional[str] = None) -> Optional[str]:
    """The backbone the base-to-new notebook runs in world ``kind``: ``backbone`` when given; else the embedded
    world's own (``None``: the tiny CLIP) or, in the real world, ViT-B/16, the backbone of the CoCoOp paper's
    base-to-new table (the other notebooks default to CoOp's RN50)."""
    if backbone is not None:
        return backbone
    return REAL_BASE_TO_NEW_BACKBONE if kind == "real" else None


def cocoop_recipe(world, epochs: Optional[int] = None) -> CoCoOpConfig:
    """The embedded preset in the embedded world, the paper's recipe in the real one. ``epochs``: fewer than the
    recipe's, for a quick look (the warm-up epoch is dropped if it would leave none), as ``world.recipe`` does."""
    return with_epochs(CoCoOpConfig.embedded() if world.kind == "embedded" else CoCoOpConfig.paper(), epochs)


def _require_recipes(methods: Sequence[str], coop_config, cocoop_config) -> None:
    """No hidden default recipe: the tiny model's recipe would silently train real CLIP with the wrong optimiser."""
    if "coop" in methods and coop_config is None:
        raise ValueError("coop_config is required for CoOp: pass the world's recipe, world.recipe() "
                         "(a (shots, dataset=...) -> CoOpConfig function, such as CoOpConfig.paper, or a CoOpConfig).")
    if ({"cocoop", CONTROL} & set(methods)) and cocoop_config is None:
        raise ValueError("cocoop_config is required for CoCoOp: pass the world's recipe, cocoop_recipe(world) "
                         "(CoCoOpConfig.embedded() or CoCoOpConfig.paper()).")


def fit_cocoop(clip: ClipBundle, task: TaskFeatures, shots: int, seed: int, config: CoCoOpConfig,
               cache_dir: Optional[Union[str, Path]] = None) -> CoCoOpResult:
    """CoCoOp on one few-shot draw of ``task`` (its augmented views); cached in ``cache_dir`` as ``fit_coop`` is."""
    if not isinstance(config, CoCoOpConfig):
        raise ValueError(f"config must be a CoCoOpConfig (the world's recipe: cocoop_recipe(world)), got "
                         f"{type(config).__name__}.")
    config = config.replace(seed=seed, progress=False)
    path = cocoop_cache_path(cache_dir, clip, task, shots, config) if cache_dir is not None else None
    if path is not None and path.exists():
        learner = load_cocoop(path, clip)
        classifier = build_cocoop_classifier(clip, learner, config)
        classifier.eval()
        return CoCoOpResult(learner, classifier, [], config)
    _, views, _ = task.few_shot(shots, seed)
    result = train_cocoop(clip, views, config=config, classnames=task.classnames)
    if path is not None:
        save_cocoop(path, result, extra={"task": task.name, "shots": shots, "seed": seed})
    return result


def cocoop_cache_path(cache_dir: Union[str, Path], clip: ClipBundle, task: TaskFeatures, shots: int,
                      config: CoCoOpConfig) -> Path:
    """The cache file of one CoCoOp run: a hash of the weights, task features, shots, config and the code."""
    here = Path(__file__).parent
    settings = {k: v for k, v in config.to_dict().items()
                if k not in ("progress", "device", "eval_every", "log_every")}
    key = json.dumps({"model": clip.name, "pretrained": str(clip.pretrained), "weights": weights_fingerprint(clip),
                      "task": task.name, "classnames": task.classnames, "n_train": len(task.datasets["train"]),
                      "views": {"n_views": task.n_views, "seed": task.seed, "transform": "train"},
                      "shots": shots, "config": settings, "code": code_fingerprint(),
                      "cocoop": digest((here / "cocoop.py").read_bytes(), (here / "base_to_new.py").read_bytes())},
                     sort_keys=True, default=str)
    safe = task.name.replace("[", "_").replace("]", "")
    return Path(cache_dir) / safe / f"cocoop_{shots}shots_seed{config.seed}_{digest(key.encode())}.safetensors"


def _coop_half_accuracies(clip: ClipBundle, base: TaskFeatures, new: TaskFeatures, shots: int, seed: int,
                          config: CoOpConfig, cache_dir) -> tuple[float, float, Any]:
    result = fit_coop(clip, base, shots, seed, final_val_only(config), cache_dir)
    moved = CoOpClassifier(clip, result.learner.with_classnames(clip, new.classnames))
    return score(result.classifier, base.test), score(moved, new.test), result


def coop_config_like(config: CoCoOpConfig) -> CoOpConfig:
    """A CoOpConfig that trains CoOp as ``config`` trains CoCoOp (same context, optimiser, schedule, views, seed)."""
    shared = {k: v for k, v in config.to_dict().items() if k in CoOpConfig.__dataclass_fields__}
    return CoOpConfig(**shared)


def _cocoop_half_accuracies(clip: ClipBundle, base: TaskFeatures, new: TaskFeatures, shots: int, seed: int,
                            config: CoCoOpConfig, cache_dir) -> tuple[float, float, CoCoOpResult]:
    result = fit_cocoop(clip, base, shots, seed, config, cache_dir)
    moved = build_cocoop_classifier(clip, result.learner.with_classnames(clip, new.classnames), config)
    moved.eval()
    return (score(result.classifier, base.test),
            score(moved, new.test), result)


def base_to_new_sweep(clip: ClipBundle, tasks: Sequence[TaskFeatures], shots: int = 16,
                      seeds: Sequence[int] = DEFAULT_SEEDS, methods: Sequence[str] = METHODS,
                      coop_config: Optional[Union[Recipe, CoOpConfig]] = None,
                      cocoop_config: Optional[CoCoOpConfig] = None, progress: bool = True,
                      cache_dir: Optional[Union[str, Path]] = None, keep: Optional[dict] = None) -> pd.DataFrame:
    """Test accuracy (%) on base and new classes: one row per (task, method, seed) with columns ``base``, ``new``.

    Args:
        tasks: encoded tasks (all classes); each is split with ``class_half``.
        coop_config: the recipe, required for CoOp: ``world.recipe()``, called with each task's name (ImageNet's
            differs), or one ``CoOpConfig`` for every task (see ``sweeps.recipe_config``).
        methods: any of ``METHODS`` and ``CONTROL`` (``"no_meta_net"``: CoOp trained with ``cocoop_config``'s
            context and recipe, i.e. CoCoOp without its meta-network).
        cocoop_config: required for CoCoOp and the control (``cocoop_recipe(world)``).
        cache_dir: learned contexts are cached there (``fit_coop``, ``fit_cocoop``).
        keep: if a dict, the trained results are stored in it under ``(task, method, seed)`` (for analyses).
    Zero-shot (each task's default template) is deterministic: its rows have seed 0.
    """
    unknown = set(methods) - set(METHODS + (CONTROL,))
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS + (CONTROL,))}.")
    _require_recipes(methods, coop_config, cocoop_config)
    halves = [(task, class_half(task, "base"), class_half(task, "new")) for task in tasks]
    rows = []
    if "zero_shot" in methods:
        for task, base, new in halves:
            rows.append(dict(task=task.name, method="zero_shot", seed=0,
                             base=100 * score(zero_shot_classifier(clip, base.classnames, task.templates[0]),
                                                  base.test),
                             new=100 * score(zero_shot_classifier(clip, new.classnames, task.templates[0]),
                                                 new.test)))
    jobs = [(h, m, s) for h in halves for m in methods if m != "zero_shot" for s in seeds]
    for (task, base, new), method, seed in tqdm(jobs, desc="base-to-new", disable=not progress):
        if method == "coop":
            b, n, result = _coop_half_accuracies(clip, base, new, shots, seed,
                                                 recipe_config(coop_config, shots, task.name), cache_dir)
        elif method == CONTROL:
            b, n, result = _coop_half_accuracies(clip, base, new, shots, seed, coop_config_like(cocoop_config),
                                                 cache_dir)
        else:
            b, n, result = _cocoop_half_accuracies(clip, base, new, shots, seed, cocoop_config, cache_dir)
        if keep is not None:
            keep[(task.name, method, seed)] = result
        rows.append(dict(task=task.name, method=method, seed=seed, base=100 * b, new=100 * n))
    return pd.DataFrame(rows, columns=["task", "method", "seed", "base", "new"])


def harmonic_mean(base: Union[float, np.ndarray, pd.Series], new: Union[float, np.ndarray, pd.Series]):
    """``2 B N / (B + N)``: high only when both are (0 where both are 0)."""
    total = base + new
    return np.where(total > 0, 2 * base * new / np.where(total > 0, total, 1), 0.0) if not np.isscalar(total) \
        else (2 * base * new / total if total > 0 else 0.0)


def base_to_new_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Index (task, method), plus task ``"average"``: seed-averaged ``base`` and ``new``, ``H`` from those means,
    and the seed standard deviations ``base_std``, ``new_std`` (0 for zero-shot). The average row averages base
    and new over tasks first and takes H of those, as the papers' "average over datasets" rows do."""
    grouped = sweep.groupby(["task", "method"], sort=False)
    table = grouped[["base", "new"]].mean()
    table[["base_std", "new_std"]] = grouped[["base", "new"]].std().fillna(0.0).to_numpy()
    average = table.groupby(level="method", sort=False)[["base", "new"]].mean()
    average["base_std"] = average["new_std"] = np.nan
    average.index = pd.MultiIndex.from_product([["average"], average.index], names=["task", "method"])
    table = pd.concat([table, average])
    table.insert(2, "H", harmonic_mean(table["base"].to_numpy(), table["new"].to_numpy()))
    return table


def seed_values(sweep: pd.DataFrame, method: str, column: str, task: Optional[str] = None) -> pd.Series:
    """Per seed: ``base``, ``new`` or ``H`` of ``method``, on ``task`` or averaged over tasks (H of those
    averages). Zero-shot has one row, seed 0."""
    rows = sweep[sweep["method"] == method]
    if task is not None:
        rows = rows[rows["task"] == task]
    if rows.empty:
        raise ValueError(f"No rows for method {method!r}" + (f" on task {task!r}" if task else "") + ".")
    per_seed = rows.groupby("seed")[["base", "new"]].mean()
    if column == "H":
        return pd.Series(harmonic_mean(per_seed["base"].to_numpy(), per_seed["new"].to_numpy()), index=per_seed.index)
    return per_seed[column]


def paired_difference(sweep: pd.DataFrame, a: str, b: str, column: str, task: Optional[str] = None) -> dict:
    """``a - b`` in ``column`` (points; on ``task`` or the average over tasks) and its seed noise.

    Seeds are paired (seed s of CoOp and of CoCoOp learned from the same few-shot draw); a deterministic method
    (zero-shot) is subtracted from every seed. Returns ``difference`` (of the seed-averaged values; for ``H``, of
    the H of seed-averaged base and new, as the summary), ``se`` (standard error of the per-seed differences,
    NaN with one seed) and ``n`` (seeds)."""
    va, vb = seed_values(sweep, a, column, task), seed_values(sweep, b, column, task)
    if list(va.index) == [0]:
        va = pd.Series(va.iloc[0], index=vb.index)
    if list(vb.index) == [0]:
        vb = pd.Series(vb.iloc[0], index=va.index)
    per_seed = (va - vb).dropna()
    n = len(per_seed)
    summary = base_to_new_summary(sweep[sweep["method"].isin([a, b])])
    where = task if task is not None else "average"
    difference = float(summary.loc[(where, a), column] - summary.loc[(where, b), column])
    se = float(per_seed.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {"difference": difference, "se": se, "n": n}


def cross_dataset_sweep(clip: ClipBundle, source: TaskFeatures, targets: Sequence[Any], shots: int = 16,
                        seeds: Sequence[int] = DEFAULT_SEEDS, methods: Sequence[str] = METHODS,
                        coop_config: Optional[Union[Recipe, CoOpConfig]] = None,
                        cocoop_config: Optional[CoCoOpConfig] = None, progress: bool = True,
                        cache_dir: Optional[Union[str, Path]] = None) -> pd.DataFrame:
    """Learn on ``source`` (all its classes), test on it and on every target task's classes: one row per
    (method, seed, task) with ``accuracy`` (%). ``targets``: ``TaskFeatures`` or ``EncodedTestSplit``
    (anything with ``name``, ``classnames``, ``templates``, ``test``). Zero-shot uses each task's default template.
    ``coop_config``: the recipe (``world.recipe()``, called with the source's name, or a ``CoOpConfig``)."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}.")
    _require_recipes(methods, coop_config, cocoop_config)
    everything = [source] + [t for t in targets if t.name != source.name]
    rows = []
    if "zero_shot" in methods:
        for task in everything:
            zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
            rows.append(dict(method="zero_shot", seed=0, task=task.name, accuracy=100 * score(zero, task.test)))
    jobs = [(m, s) for m in methods if m != "zero_shot" for s in seeds]
    for method, seed in tqdm(jobs, desc=f"cross-dataset from {source.name}", disable=not progress):
        if method == "coop":
            config = recipe_config(coop_config, shots, source.name)
            learner = fit_coop(clip, source, shots, seed, final_val_only(config), cache_dir).learner
            for task in everything:
                classifier = CoOpClassifier(clip, learner.with_classnames(clip, task.classnames))
                rows.append(dict(method=method, seed=seed, task=task.name,
                                 accuracy=100 * score(classifier, task.test)))
        else:
            learner = fit_cocoop(clip, source, shots, seed, cocoop_config, cache_dir).learner
            for task in everything:
                classifier = build_cocoop_classifier(clip, learner.with_classnames(clip, task.classnames),
                                                     cocoop_config)
                classifier.eval()
                rows.append(dict(method=method, seed=seed, task=task.name,
                                 accuracy=100 * score(classifier, task.test)))
    return pd.DataFrame(rows, columns=["method", "seed", "task", "accuracy"])


def cross_dataset_table(sweep: pd.DataFrame) -> pd.DataFrame:
    """Rows: methods; columns: the source first, then the targets, then ``target_mean``; seed-averaged (%)."""
    table = sweep.pivot_table(index="method", columns="task", values="accuracy", aggfunc="mean", sort=False)
    table["target_mean"] = table.iloc[:, 1:].mean(axis=1)
    return table


METHOD_COLOURS = {"zero_shot": "#7f7f7f", "coop": "#d62728", "cocoop": "#2ca02c", CONTROL: "#98df8a"}
METHOD_LABELS = {"zero_shot": "zero-shot CLIP", "coop": "CoOp", "cocoop": "CoCoOp",
                 CONTROL: "CoCoOp without meta-net"}


def base_to_new_figure(summary: pd.DataFrame, title: str = "Base-to-new: learned on base classes, tested on both"):
    """One panel per task (and the average): base, new and H per method, seed standard deviations as error bars.
    ``summary`` is a ``base_to_new_summary``."""
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(summary.index.get_level_values("task")))
    methods = list(dict.fromkeys(summary.index.get_level_values("method")))
    columns = min(len(tasks), 5)
    rows = -(-len(tasks) // columns)
    fig = Figure(figsize=(2.9 * columns, 2.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    width = 0.8 / len(methods)
    for ax, task in zip(axes, tasks):
        for i, method in enumerate(methods):
            if (task, method) not in summary.index:
                continue
            row = summary.loc[(task, method)]
            errors = [row.get("base_std", 0.0), row.get("new_std", 0.0), 0.0]
            ax.bar(np.arange(3) + (i - (len(methods) - 1) / 2) * width, [row["base"], row["new"], row["H"]], width,
                   yerr=np.nan_to_num(errors), capsize=2, color=METHOD_COLOURS.get(method),
                   label=METHOD_LABELS.get(method, method))
        ax.set_xticks(range(3), ["base", "new", "H"])
        ax.set_title(task, fontsize=10)
        ax.set_ylim(0, 100)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    axes[0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(methods), fontsize=8)
    fig.suptitle(title, fontsize=11)
    return fig


# The protocols as a reproduction grid would call them: name -> sweep(clip, tasks, **options).
PROTOCOLS: dict[str, Callable[..., pd.DataFrame]] = {
    "base_to_new": lambda clip, tasks, **options: base_to_new_sweep(clip, tasks, **options),
    "cross_dataset": lambda clip, tasks, **options: cross_dataset_sweep(clip, tasks[0], tasks[1:], **options),
}


# ------------------------------------------------------------------------------------------- recipe search

# Candidates for CoCoOpConfig.embedded, each a set of changes on the paper's recipe (CoCoOpConfig.paper()); the
# scores they got are in cocoop.py's comment on EMBEDDED_COCOOP_RECIPE.
RECIPE_CANDIDATES: dict[str, dict[str, Any]] = {
    "paper (sgd 2e-3, batch 1, 10 epochs)": {},
    "adam 3e-3, batch 8, 20 epochs": dict(optimizer="adam", lr=3e-3, weight_decay=0.0, warmup_epochs=0,
                                          batch_size=8, epochs=20),
    "adam 3e-3, batch 8, 40 epochs": dict(optimizer="adam", lr=3e-3, weight_decay=0.0, warmup_epochs=0,
                                          batch_size=8, epochs=40),
    "adam 1e-3, batch 8, 20 epochs": dict(optimizer="adam", lr=1e-3, weight_decay=0.0, warmup_epochs=0,
                                          batch_size=8, epochs=20),
    "adam 1e-3, batch 8, 10 epochs": dict(optimizer="adam", lr=1e-3, weight_decay=0.0, warmup_epochs=0,
                                          batch_size=8, epochs=10),
    "sgd 2e-2, batch 8, 20 epochs": dict(lr=2e-2, batch_size=8, epochs=20),
}


def recipe_search(clip: ClipBundle, tasks: Sequence[TaskFeatures], candidates: Mapping[str, Mapping[str, Any]],
                  shots: int = 16, seeds: Sequence[int] = (1, 2), progress: bool = True) -> pd.DataFrame:
    """Validation accuracy (%) of CoCoOp trained on the base classes, on the base and on the new classes'
    validation images (never a test split): one row per (candidate, task, seed)."""
    rows = []
    jobs = [(c, t, s) for c in candidates for t in tasks for s in seeds]
    halves = {t.name: (class_half(t, "base"), class_half(t, "new")) for t in tasks}
    for name, task, seed in tqdm(jobs, desc="CoCoOp recipe search", disable=not progress):
        base, new = halves[task.name]
        config = CoCoOpConfig.paper(**candidates[name])
        result = fit_cocoop(clip, base, shots, seed, config)
        moved = build_cocoop_classifier(clip, result.learner.with_classnames(clip, new.classnames), config).eval()
        rows.append(dict(candidate=name, task=task.name, seed=seed,
                         base_val=100 * score(result.classifier, base.val),
                         new_val=100 * score(moved, new.val)))
    return pd.DataFrame(rows)


def recipe_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Per candidate: mean base and new validation accuracy over tasks and seeds, their H (the criterion), best
    first."""
    table = results.groupby("candidate", sort=False)[["base_val", "new_val"]].mean()
    table["H_val"] = harmonic_mean(table["base_val"].to_numpy(), table["new_val"].to_numpy())
    return table.sort_values("H_val", ascending=False)


def main(argv: Optional[list[str]] = None) -> None:
    from .clip_loader import load_clip
    from .worlds import use_world

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe-search", action="store_true", help="compare RECIPE_CANDIDATES on validation")
    parser.add_argument("--cross-dataset", metavar="SOURCE", default=None,
                        help="instead: learn on SOURCE (all classes, 16 shots) and test on every main task")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--candidates", nargs="+", default=list(RECIPE_CANDIDATES), choices=list(RECIPE_CANDIDATES))
    args = parser.parse_args(argv)
    start = time.time()
    torch.set_num_threads(1)
    world = use_world("embedded")
    clip = load_clip("tiny")
    if args.cross_dataset:
        names = [args.cross_dataset] + [n for n in world.roles().main if n != args.cross_dataset]
        encoded = [encode_task(clip, name) for name in names]
        sweep = cross_dataset_sweep(clip, encoded[0], encoded[1:], seeds=args.seeds or DEFAULT_SEEDS,
                                    coop_config=world.recipe(), cocoop_config=cocoop_recipe(world))
        print(f"Cross-dataset: learned on {args.cross_dataset} (16 shots), test accuracy (%), mean of seeds "
              f"{args.seeds or list(DEFAULT_SEEDS)}")
        print(cross_dataset_table(sweep).rename(index=METHOD_LABELS).to_string(float_format=lambda v: f"{v:.1f}"))
        print(f"\n({time.time() - start:.0f} s)")
        return
    tasks = [encode_task(clip, name) for name in default_tasks(world)]
    if args.recipe_search:
        seeds = args.seeds or [1, 2]
        results = recipe_search(clip, tasks, {c: RECIPE_CANDIDATES[c] for c in args.candidates}, seeds=seeds)
        print(f"CoCoOp trained on base classes, validation accuracy (%) on base and new classes, seeds {seeds} "
              f"(test splits unused)")
        print(results.pivot_table(index="candidate", columns="task", values=["base_val", "new_val"], sort=False)
              .to_string(float_format=lambda v: f"{v:.1f}"))
        print(recipe_summary(results).to_string(float_format=lambda v: f"{v:.1f}"))
    else:
        sweep = base_to_new_sweep(clip, tasks, seeds=args.seeds or DEFAULT_SEEDS, coop_config=world.recipe(),
                                  cocoop_config=cocoop_recipe(world))
        print(base_to_new_summary(sweep).to_string(float_format=lambda v: f"{v:.1f}"))
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
