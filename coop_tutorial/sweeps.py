"""Method fits and sweeps: every method on every task, from image features encoded once per task.

Notebooks (shot scaling, design choices, robustness) and the embedded world's report all go through these
functions, so a sweep is one call and its numbers are computed the same way everywhere. Each task's splits are
encoded once (``task_features.TaskFeatures``); few-shot draws are slices of those features; learned contexts are
cached (``run_cache``) so later notebooks reuse earlier runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import pandas as pd
import torch
from tqdm.auto import tqdm

from .checkpoint import save_context
from .classifier import CoOpClassifier
from .clip_loader import ClipBundle
from .evaluation import accuracy, score
from .features import FeatureSet
from .linear_probe import LinearProbe, fit_linear_probe
from .run_cache import coop_cache_path, load_cached_result
from .task_features import TaskFeatures
from .training import CoOpConfig, TrainResult, train_coop
from .zero_shot import zero_shot_classifier

DEFAULT_SHOTS = (1, 2, 4, 8, 16)
DEFAULT_SEEDS = (1, 2, 3)

# The paper's design choices (unified vs class-specific context, class position, context length, word init),
# as CoOpConfig overrides; "default" is the recipe itself (unified, class at the end, 16 random vectors).
DESIGN_VARIANTS: dict[str, dict] = {
    "default": {},
    "class-specific": {"csc": True},
    "class in the middle": {"class_token_position": "middle"},
    "4 vectors": {"n_ctx": 4},
    "4 vectors from 'a photo of a'": {"ctx_init": "a photo of a"},
}


def fit_probe(task: TaskFeatures, shots: int, seed: int) -> LinearProbe:
    """The linear probe on one few-shot draw (its C searched on the draw's validation images)."""
    train, _, val = task.few_shot(shots, seed)
    return fit_linear_probe(train, val)


# What a sweep is given as its recipe: ``recipe(shots, dataset=task_name) -> CoOpConfig`` (``world.recipe()``);
# the dataset matters (the paper trains ImageNet 50 epochs at every shot count).
Recipe = Callable[..., CoOpConfig]


def recipe_config(recipe: Union[Recipe, CoOpConfig], shots: int, dataset: str) -> CoOpConfig:
    """The config a sweep trains ``dataset`` at ``shots`` with: ``recipe`` itself when it is a ``CoOpConfig``,
    else ``recipe(shots, dataset=dataset)``."""
    if isinstance(recipe, CoOpConfig):
        return recipe
    if not callable(recipe):
        raise TypeError(f"A recipe is a CoOpConfig or a function (shots, dataset=...) -> CoOpConfig such as "
                        f"world.recipe(), got {type(recipe).__name__}.")
    return recipe(shots, dataset=dataset)


def fit_coop(clip: ClipBundle, task: TaskFeatures, shots: int, seed: int,
             config: CoOpConfig, cache_dir: Optional[Union[str, Path]] = None) -> TrainResult:
    """CoOp on one few-shot draw with ``config`` (the world's recipe: ``world.recipe()(shots, dataset=...)``).

    With ``cache_dir`` the learned context is stored there (``coop_cache_path``) and a later call with the same
    model, task features, shots, seed, config and training code loads it instead of training again.
    """
    if not isinstance(config, CoOpConfig):
        raise TypeError(f"fit_coop needs a CoOpConfig (e.g. world.recipe()({shots}, dataset="
                        f"{task.name!r})), got {type(config).__name__}: there is no default recipe, since the "
                        f"embedded model's and the paper's differ.")
    config = config.replace(seed=seed, progress=False)
    path = coop_cache_path(cache_dir, clip, task, shots, config) if cache_dir is not None else None
    if path is not None and path.exists():
        return load_cached_result(path, clip, task, config)
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

    ``config``: the recipe, ``(shots, dataset=...) -> CoOpConfig`` (``world.recipe()``; needed when
    ``methods`` has CoOp); the zero-shot
    reference rows (``shots == 0``) use each task's default (first) template. ``cache_dir``: see ``fit_coop``.
    """
    unknown = set(methods) - {"linear_probe", "coop"}
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}; choose from 'linear_probe' and 'coop'.")
    if "coop" in methods and config is None:
        raise ValueError("shot_sweep trains CoOp: pass config=world.recipe() (the world's recipe per "
                         "dataset); there is no default, since the embedded model's recipe and the paper's differ.")
    rows = []
    for task in tasks:
        zero = zero_shot_classifier(clip, task.classnames, task.templates[0])
        rows.append(dict(task=task.name, method="zero_shot", shots=0, seed=0,
                         accuracy=100 * score(zero, task.test)))
    jobs = [(t, m, k, s) for t in tasks for m in methods for k in shots for s in seeds]
    for task, method, k, seed in tqdm(jobs, desc="shot sweep", disable=not progress):
        if method == "linear_probe":
            accuracy = score(fit_probe(task, k, seed), task.test)
        else:
            accuracy = score(fit_coop(clip, task, k, seed, final_val_only(recipe_config(config, k, task.name)),
                                      cache_dir).classifier, task.test)
        rows.append(dict(task=task.name, method=method, shots=k, seed=seed, accuracy=100 * accuracy))
    return pd.DataFrame(rows)


def final_val_only(config: CoOpConfig) -> CoOpConfig:
    """A sweep reports test accuracy only: validate after the last epoch, not after each (what is learned is
    the same; on the embedded model per-epoch validation cost about a tenth of the training time)."""
    return config.replace(eval_every=config.epochs)



def shift_table(clip: ClipBundle, source: TaskFeatures, targets: dict[str, FeatureSet], shots: int = 16,
                seeds: Sequence[int] = DEFAULT_SEEDS, config: Union[Recipe, CoOpConfig, None] = None,
                cache_dir: Optional[Union[str, Path]] = None) -> pd.DataFrame:
    """Learn on ``source``, test on it and on each shifted test set, as in the paper's robustness table.

    Rows: zero-shot (the source's default template), linear probe and CoOp; columns: the source and each
    target, accuracy (%) averaged over ``seeds``. ``config``: the recipe (``world.recipe()``, called with the
    source's name, or one ``CoOpConfig``). A shifted set may hold a subset of the source's classes (ImageNet-A and
    -R: 200 of ImageNet's 1000); it is scored as the official code does: CoOp's prompts are rebuilt for its class
    names with the learned context kept (``PromptLearner.with_classnames``), zero-shot CLIP gets a prompt per
    class of the set, and the linear probe's scores are read for those classes only.
    ``cache_dir``: see ``fit_coop`` (a shot sweep with the same recipe has already trained these contexts).
    """
    if config is None:
        raise ValueError("shift_table trains CoOp: pass config=world.recipe() (or a CoOpConfig).")
    columns = shifted_columns(source, targets)
    sets = {source.name: source.test, **targets}
    zero = {name: zero_shot_classifier(clip, list(f.classnames) if columns.get(name) else source.classnames,
                                       source.templates[0]) for name, f in sets.items()}
    table = {"zero_shot": {n: 100 * score(zero[n], f) for n, f in sets.items()}}
    probe_rows, coop_rows = [], []
    config = recipe_config(config, shots, source.name)
    for seed in seeds:
        probe = fit_probe(source, shots, seed)
        coop = fit_coop(clip, source, shots, seed, config, cache_dir)
        probe_rows.append({n: 100 * _probe_accuracy(probe, f, columns.get(n)) for n, f in sets.items()})
        coop_rows.append(coop_shift_scores(clip, coop, sets, columns))
    table["linear_probe"] = pd.DataFrame(probe_rows).mean().to_dict()
    table["coop"] = pd.DataFrame(coop_rows).mean().to_dict()
    return pd.DataFrame(table).T[list(sets)]


def shifted_columns(source: TaskFeatures, targets: dict[str, FeatureSet]) -> dict[str, Optional[list[int]]]:
    """Per shifted set: the source's label of each of its classes, or None when its classes are the source's."""
    columns = {}
    for name, features in targets.items():
        names = list(features.classnames) if features.classnames is not None else None
        if names is None:
            raise ValueError(f"{name!r} has no class names; a shifted test set needs them to be scored.")
        unknown = [n for n in names if n not in source.classnames]
        if unknown:
            raise ValueError(f"{name!r} has classes that {source.name!r} does not have ({unknown[:3]}); a shifted "
                             f"test set must hold the source's classes or a subset of them.")
        columns[name] = None if names == source.classnames else [source.classnames.index(n) for n in names]
    return columns


def coop_shift_scores(clip: ClipBundle, coop: TrainResult, sets: dict[str, FeatureSet],
                      columns: dict[str, Optional[list[int]]]) -> dict[str, float]:
    """Accuracy (%) of one learned context on each set; on a class subset its prompts are rebuilt for the
    subset's class names with the context kept (``PromptLearner.with_classnames``), as the official code does."""
    return {n: 100 * score(coop.classifier if columns.get(n) is None else CoOpClassifier(
        clip, coop.learner.with_classnames(clip, list(f.classnames))), f) for n, f in sets.items()}


def _probe_accuracy(probe: LinearProbe, features: FeatureSet, columns: Optional[list[int]]) -> float:
    """The probe's accuracy, its scores restricted to ``columns`` (the source labels of a subset's classes)."""
    if columns is None:
        return score(probe, features)
    with torch.no_grad():
        logits = probe.logits_from_features(features.view(0))[:, columns]
    return accuracy(logits, features.labels)


def shift_drops(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Points lost from the source to each target, per method (positive = worse under shift)."""
    return -(table.drop(columns=[source]).sub(table[source], axis=0))



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
        raise ValueError("design_sweep needs config=world.recipe(), the recipe its variants change; "
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
                          final_val_only(recipe_config(config, shots, task.name).replace(**overrides)), cache_dir)
        rows.append(dict(task=task.name, variant=name, shots=shots, seed=seed,
                         accuracy=100 * score(result.classifier, task.test)))
    order = {name: i for i, name in enumerate(variants)}
    frame = pd.DataFrame(rows, columns=["task", "variant", "shots", "seed", "accuracy"])
    return frame.sort_values(["variant", "task", "seed"], key=lambda c: c.map(order) if c.name == "variant" else c,
                             ignore_index=True)
