"""Linear probe: logistic regression on frozen CLIP image features (the CoOp paper's strongest baseline).

The regularisation strength is chosen on the validation split as CoOp's ``lpclip/linear_probe.py`` does:
a coarse log grid ``C = 1e6, 1e4, ..., 1e-6``, then a bisection in log space around the best value
(``n_steps`` rounds, each comparing the two ends of the current interval; an end kept from the previous
round is not fitted again). One difference: we fit on
L2-normalised features (what CoOp itself classifies with); lpclip feeds raw features.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from .evaluation import accuracy
from .features import FeatureSet, check_labels

COARSE_GRID = (1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6)
Data = Union[FeatureSet, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LinearProbe:
    """A fitted probe. ``search`` lists every ``(C, val accuracy)`` tried, in order."""

    model: LogisticRegression
    C: float
    n_classes: int
    classnames: Optional[list[str]] = None
    val_accuracy: Optional[float] = None
    search: list[tuple[float, float]] = field(default_factory=list)

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        """Decision scores ``(B, n_classes)``; classes absent from training get ``-inf``."""
        x = _normalise(features)
        scores = self.model.decision_function(x)
        if scores.ndim == 1:  # two classes seen: sklearn returns the score of classes_[1] only
            scores = np.stack([-scores, scores], axis=1)
        logits = torch.full((x.shape[0], self.n_classes), float("-inf"), dtype=torch.float32)
        logits[:, torch.as_tensor(self.model.classes_, dtype=torch.long)] = torch.as_tensor(scores, dtype=torch.float32)
        return logits

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted labels ``(B,)`` for features ``(B, embed_dim)``."""
        return self.logits_from_features(features).argmax(dim=1)

def fit_linear_probe(train: Data, val: Optional[Data] = None, C: Optional[float] = None, n_steps: int = 8,
                     max_iter: int = 1000, n_classes: Optional[int] = None) -> LinearProbe:
    """Fit logistic regression on image features, choosing ``C`` on ``val``.

    Args:
        train: a FeatureSet (all its views are used) or ``(features (N, D), labels (N,))``.
        val: validation data for the search; ``None`` only together with an explicit ``C``.
        C: skip the search and use this inverse regularisation strength.
        n_steps: bisection rounds after the coarse grid (lpclip uses 8).
        max_iter: L-BFGS iterations per fit.
        n_classes: number of classes (default: ``len(train.classnames)`` or ``max label + 1``).
    """
    x, y = _unpack(train, all_views=True)
    classnames = train.classnames if isinstance(train, FeatureSet) else None
    n_classes = n_classes or (len(classnames) if classnames else int(y.max()) + 1)
    check_labels(y, range(n_classes))
    if C is not None:
        if not C > 0:
            raise ValueError(f"C must be a positive number, got {C!r}.")
        return LinearProbe(_fit(x, y, C, max_iter), float(C), n_classes, classnames)
    if val is None:
        raise ValueError("fit_linear_probe needs a validation split to choose C (val=...), or an explicit C=....")
    xv, yv = _unpack(val, all_views=False)
    check_labels(yv, range(n_classes))
    search: list[tuple[float, float]] = []
    x, xv = _normalise(x), _normalise(xv)  # once, not once per fit
    fitted: dict[float, tuple[float, LogisticRegression]] = {}

    def score(c: float) -> tuple[float, LogisticRegression]:
        # The bisection keeps one end of its interval from the previous round: fit each C once.
        if c not in fitted:
            model = _fit(x, y, c, max_iter, normalised=True)
            acc = accuracy(torch.as_tensor(model.predict(xv)), yv)
            search.append((c, acc))
            fitted[c] = (acc, model)
        return fitted[c]

    coarse = [score(c) for c in COARSE_GRID]
    peak = int(np.argmax([acc for acc, _ in coarse]))
    best_c, (best_acc, best_model) = COARSE_GRID[peak], coarse[peak]
    log_left, log_right = np.log10(best_c) - 1, np.log10(best_c) + 1
    for _ in range(n_steps):
        (acc_l, model_l), (acc_r, model_r) = score(10 ** log_left), score(10 ** log_right)
        mid = 0.5 * (log_left + log_right)
        if acc_l < acc_r:  # keep the better end, halve the interval towards it (lpclip's rule)
            best_c, best_acc, best_model, log_left = 10 ** log_right, acc_r, model_r, mid
        else:
            best_c, best_acc, best_model, log_right = 10 ** log_left, acc_l, model_l, mid
    return LinearProbe(best_model, float(best_c), n_classes, classnames, best_acc, search)


def _fit(x, y: torch.Tensor, C: float, max_iter: int, normalised: bool = False) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # very large C on separable few-shot data
        features = x if normalised else _normalise(x)
        return LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs").fit(features, y.numpy())


def _normalise(features) -> np.ndarray:
    x = torch.as_tensor(features, dtype=torch.float32).cpu()
    return torch.nn.functional.normalize(x, dim=-1).numpy()


def _unpack(data: Data, all_views: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, FeatureSet):
        return data.flat() if all_views else (data.view(0), data.labels)
    if isinstance(data, Sequence) and len(data) == 2:
        features, labels = data
        return torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)
    raise ValueError(f"Expected a FeatureSet or a (features, labels) pair, got {type(data).__name__}; "
                     f"make one with ct.encode_dataset(clip, dataset).")
