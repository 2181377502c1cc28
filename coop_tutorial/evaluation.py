"""Accuracy, per-class accuracy and confusion matrices for any classifier of this package, and the
mean +- std over seeds that the paper reports.

A classifier here is anything with ``logits_from_features(features (N, D)) -> (N, n_cls)``, the one protocol
every classifier of the package follows (``ZeroShotClassifier``, ``LinearProbe``, ``CoOpClassifier``,
``CoCoOpClassifier``): it takes features on any device, of any batch size, and bounds its own memory (CoOp runs
its text pass once; CoCoOp, whose prompts depend on each image, goes in groups). ``score`` is the one accuracy
every sweep, report, notebook and training loop uses. Data is a FeatureSet, a ``(features, labels)`` pair, or an
image dataset (encoded with the eval transform first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from .clip_loader import ClipBundle
from .features import FeatureSet, check_labels, encode_dataset
from .validation import check_features, check_same_classes

Data = Union[Dataset, FeatureSet, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class EvalResult:
    """Predictions of a classifier on a dataset. Accuracies are fractions in [0, 1]."""

    accuracy: float
    per_class_accuracy: pd.Series  # indexed by class name; NaN for a class with no test image
    confusion: torch.Tensor  # (n_cls, n_cls): row = true class, column = predicted class
    predictions: torch.Tensor  # (N,)
    labels: torch.Tensor  # (N,)
    classnames: list[str]

    def confusion_frame(self) -> pd.DataFrame:
        """The confusion matrix with class names on both axes."""
        return pd.DataFrame(self.confusion.numpy(), index=pd.Index(self.classnames, name="true"),
                            columns=pd.Index(self.classnames, name="predicted"))


def predict_logits(classifier: Any, data: Data, clip: Optional[ClipBundle] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (N, n_cls), labels (N,))`` of ``classifier`` on ``data`` (first view of a FeatureSet), on the CPU."""
    features, labels = _features(classifier, data, clip)
    with torch.no_grad():
        logits = classifier.logits_from_features(features).float().cpu()
    if logits.numel():
        check_labels(labels, range(logits.shape[1]))
    return logits, labels


def score(classifier: Any, data: Data, clip: Optional[ClipBundle] = None) -> float:
    """Accuracy in [0, 1] of ``classifier`` on ``data`` (NaN for no data): the one scoring function of the package."""
    return accuracy(*predict_logits(classifier, data, clip))


def evaluate(classifier: Any, data: Data, clip: Optional[ClipBundle] = None,
             classnames: Optional[Sequence[str]] = None) -> EvalResult:
    """Accuracy, per-class accuracy and confusion matrix of ``classifier`` on ``data``."""
    logits, labels = predict_logits(classifier, data, clip)
    n_classes = logits.shape[1]
    names = list(classnames or getattr(classifier, "classnames", None) or [str(i) for i in range(n_classes)])
    predictions = logits.argmax(dim=1)
    per_class = per_class_accuracy(predictions, labels, n_classes)
    return EvalResult(accuracy(predictions, labels), pd.Series(per_class.numpy(), index=names, name="accuracy"),
                      confusion_matrix(predictions, labels, n_classes), predictions, labels, names)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction correct; ``predictions`` are labels ``(N,)`` or logits ``(N, n_cls)``.

    Counted, then divided in double precision: a float32 mean would turn 504/800 into 0.62999999, and tables that
    round means of such numbers would print one decimal lower than the counts say.
    """
    if predictions.dim() == 2:
        predictions = predictions.argmax(dim=1)
    return int((predictions.cpu() == labels.cpu()).sum()) / labels.numel() if labels.numel() else float("nan")


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(n_classes, n_classes)`` counts; row = true class, column = predicted class."""
    flat = labels.cpu().long() * n_classes + predictions.cpu().long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(n_classes,)`` accuracy of each class (NaN where a class has no sample)."""
    confusion = confusion_matrix(predictions, labels, n_classes).double()
    return (confusion.diagonal() / confusion.sum(dim=1)).float()


def seed_std(values) -> float:
    """The spread over seeds every table and figure of the package reports: the population std (ddof=0), as
    CoOp's ``parse_test_res.py`` computes it with ``np.std`` (0 for a single seed)."""
    return float(np.std(np.asarray(values, dtype=float))) if len(values) else float("nan")


def mean_and_std(grouped) -> pd.DataFrame:
    """``mean`` and ``std`` (``seed_std``) columns of a pandas groupby over seeds."""
    return grouped.agg(mean="mean", std=seed_std)


def summarize_seeds(results: Union[pd.DataFrame, Sequence[dict]], metrics: Optional[Sequence[str]] = None,
                    seed_column: str = "seed") -> pd.DataFrame:
    """Mean and standard deviation over seeds, one row per setting.

    Args:
        results: one row per run, e.g. ``{"method": "coop", "shots": 16, "seed": 1, "accuracy": 0.81}``.
        metrics: columns to summarise; default: every float column. Every other column except
            ``seed_column`` identifies the setting.

    Returns:
        Columns: the setting columns, ``<metric>_mean``, ``<metric>_std`` for each metric, ``n_seeds``.
        The std is the population std (ddof=0), as CoOp's ``parse_test_res.py`` (np.std) reports it.
    """
    frame = pd.DataFrame(results)
    if frame.empty:
        raise ValueError("summarize_seeds got no results.")
    if metrics is None:
        metrics = [c for c in frame.columns if c != seed_column and pd.api.types.is_float_dtype(frame[c])]
    missing = [m for m in metrics if m not in frame.columns]
    if missing or not metrics:
        raise ValueError(f"Metric column(s) {missing or '(none)'} not found; columns are {list(frame.columns)}. "
                         f"Pass metrics=[...] naming numeric columns.")
    keys = [c for c in frame.columns if c not in metrics and c != seed_column]
    grouped = frame.groupby(keys, sort=False, dropna=False) if keys else frame.groupby(lambda _: 0)
    summary = grouped[list(metrics)].agg(["mean", seed_std])
    summary.columns = [f"{metric}_{'mean' if stat == 'mean' else 'std'}" for metric, stat in summary.columns]
    summary["n_seeds"] = grouped.size()
    return summary.reset_index(drop=not keys)


def _features(classifier: Any, data: Data, clip: Optional[ClipBundle]) -> tuple[torch.Tensor, torch.Tensor]:
    """The data's image features and labels, checked: finite, of the classifier's width, for its classes."""
    if isinstance(data, FeatureSet):
        features, labels, names = data.view(0), data.labels, data.classnames
    elif isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        features, labels, names = data[0], torch.as_tensor(data[1], dtype=torch.long), None
    else:
        clip = clip or getattr(classifier, "clip", None)
        if clip is None:
            raise ValueError(f"Evaluating a {type(classifier).__name__} on images needs the CLIP that encodes "
                             f"them: pass clip=..., or encode first with ct.encode_dataset(clip, dataset).")
        encoded = encode_dataset(clip, data, progress=False)
        features, labels, names = encoded.view(0), encoded.labels, encoded.classnames
    own = getattr(getattr(classifier, "clip", None), "embed_dim", None)
    check_features(features, own, "The evaluation data's features")
    check_same_classes(classifier_classnames(classifier), names, "the classifier", "the data",
                       "Build the classifier for the data's classes (a unified CoOp context: "
                       "learner.with_classnames(data.classnames); zero-shot: zero_shot_classifier(clip, "
                       "data.classnames, ...)), or evaluate it on data of its own task; pass (features, labels) to skip "
                       "this check when the names differ on purpose.")
    return features, labels


def classifier_classnames(classifier: Any) -> Optional[list[str]]:
    """The class names a classifier predicts (label order), or None if it does not know them."""
    names = getattr(classifier, "classnames", None)
    if names is None:
        names = getattr(getattr(classifier, "learner", None), "classnames", None)
    return list(names) if names is not None else None


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds (``seed_std``, ddof=0 as the official
    ``parse_test_res.py``): index (task, method, shots)."""
    return mean_and_std(sweep.groupby(["task", "method", "shots"], sort=False)["accuracy"])


def sampling_error(accuracy: float, n: int) -> float:
    """Standard error (points) of an accuracy (%) measured on ``n`` test images: ``100 * sqrt(p (1 - p) / n)``.

    Two accuracies on the same test set that differ by less than about twice this are within sampling noise.
    """
    p = min(max(accuracy / 100.0, 0.0), 1.0)
    return 100.0 * float(np.sqrt(p * (1.0 - p) / max(n, 1)))
