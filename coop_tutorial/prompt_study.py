"""Zero-shot prompt studies: how much the wording of a hand-written prompt matters, and what ensembles buy.

Each table reads only a task's test features (``encode_test_split`` is enough) and the frozen CLIP; notebook 02
and the embedded world's report build on them.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import pandas as pd

from .clip_loader import ClipBundle
from .evaluation import score
from .task_features import EncodedTestSplit, TaskFeatures
from .templates import task_ensemble
from .zero_shot import template_accuracies, zero_shot_classifier

# What a prompt table reads: a task's name, class names, templates and encoded test split.
Encoded = Union[TaskFeatures, EncodedTestSplit]


def prompt_table(clip: ClipBundle, tasks: Iterable[Encoded]) -> pd.DataFrame:
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


def ensemble_table(clip: ClipBundle, tasks: Iterable[Encoded],
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
            row[name] = 100 * score(zero_shot_classifier(clip, task.classnames, list(templates)), task.test)
        rows[task.name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("task")
