"""Inside CoCoOp: how far the meta-network moves the context for each image, and which images move it most.

CoCoOp's prompt for image ``x`` is ``[V_1 + pi(x)] ... [V_M + pi(x)] [CLASS]``, one shift ``pi(x)`` added to every
context vector. Its size against the context vectors' own (``|pi(x)| / mean |V_m|``) says whether the conditioning
is a nudge or a rewrite; which images get the largest shifts, and whether removing the shift changes their
prediction, says what the meta-network reacts to. ``shift_explorer`` browses it class by class.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .cocoop import CoCoOpClassifier, CoCoOpPromptLearner
from .evaluation import predict_logits
from .features import FeatureSet

if TYPE_CHECKING:  # widgets imports ipywidgets; only the figure path needs it at run time
    from .widgets import View


def meta_shift_table(learner: CoCoOpPromptLearner, features: FeatureSet) -> pd.DataFrame:
    """Per image: the shift's norm ``|pi(x)|``, the mean context-vector norm ``|V|``, their ``ratio``; the
    image-specific part of the shift, ``pi(x)`` minus its mean over these images (``specific_norm``,
    ``specific_ratio`` against ``|V|``); and the cosine between the shift and the mean context vector.

    The mean shift is the same for every image: a learned offset of the context, which a CoOp context could hold as
    well. Only the specific part conditions the prompt on the image. Columns ``image, label, class, shift_norm,
    ctx_norm, ratio, specific_norm, specific_ratio, cosine_to_ctx``, in image order (``image`` indexes ``features``
    and the dataset it was encoded from).
    """
    with torch.no_grad():
        shifts = learner.shifts(features.view(0).to(learner.ctx.device)).float().cpu()
        ctx = learner.ctx.detach().float().cpu()
    ctx_norm = float(ctx.norm(dim=-1).mean())
    names = features.classnames or [str(c) for c in range(int(features.labels.max()) + 1)]
    shift_norm = shifts.norm(dim=-1)
    specific = (shifts - shifts.mean(0, keepdim=True)).norm(dim=-1)
    cosine = F.cosine_similarity(shifts, ctx.mean(0, keepdim=True), dim=-1)
    return pd.DataFrame({"image": range(features.n_images), "label": features.labels.tolist(),
                         "class": [names[int(y)] for y in features.labels], "shift_norm": shift_norm.numpy(),
                         "ctx_norm": ctx_norm, "ratio": (shift_norm / ctx_norm).numpy(),
                         "specific_norm": specific.numpy(), "specific_ratio": (specific / ctx_norm).numpy(),
                         "cosine_to_ctx": cosine.numpy()})


def mean_shift_norm(learner: CoCoOpPromptLearner, features: FeatureSet) -> float:
    """``|mean over images of pi(x)|``: the size of the shift's image-independent part."""
    with torch.no_grad():
        return float(learner.shifts(features.view(0).to(learner.ctx.device)).float().mean(0).norm())


def correct_vector(classifier: CoCoOpClassifier, features: FeatureSet) -> torch.Tensor:
    """``(N,)`` booleans: whether each image is classified correctly."""
    logits, labels = predict_logits(classifier, features)
    return logits.argmax(1) == labels


class _ConstantShift(torch.nn.Module):
    """Stands in for the meta-network: the same shift for every image."""

    def __init__(self, shift: torch.Tensor):
        super().__init__()
        self.shift = shift

    def forward(self, image_features: torch.Tensor) -> torch.Tensor:
        return self.shift.expand(image_features.shape[0], -1)


def shift_effect(classifier: CoCoOpClassifier, features: FeatureSet) -> pd.DataFrame:
    """Per image, whether it is classified correctly: by CoCoOp (``correct``); when every image gets the mean shift
    instead of its own (``correct_mean_shift``: the conditioning removed, the learned offset kept); with no shift
    at all (``correct_no_shift``: ``ctx`` alone). Columns ``image, correct, correct_mean_shift, correct_no_shift``."""
    learner = classifier.prompt_learner
    meta_net = learner.meta_net
    with torch.no_grad():
        correct = correct_vector(classifier, features)
        mean = learner.shifts(features.view(0).to(learner.ctx.device)).mean(0, keepdim=True)
        results = {}
        try:
            for name, shift in (("correct_mean_shift", mean), ("correct_no_shift", torch.zeros_like(mean))):
                learner.meta_net = _ConstantShift(shift)
                results[name] = correct_vector(classifier, features).numpy()
        finally:
            learner.meta_net = meta_net
    return pd.DataFrame({"image": range(features.n_images), "correct": correct.numpy(), **results})


def shift_view(table: pd.DataFrame, dataset: Optional[Any] = None, classname: str = "all", k: int = 6,
               by: str = "specific_ratio") -> "View":
    """Left: every image's shift (``by``: its image-specific part ``specific_ratio``, or the whole ``ratio``, in
    units of a context vector's norm), one row per class; right: the ``k`` images (of ``classname``, or of all
    classes) that move it most, when ``dataset`` (the images ``table`` was computed on) is given. ``numbers``:
    ``top`` (those rows) and ``median`` (of ``by`` over the shown class)."""
    from .widgets import View

    rows = table if classname == "all" else table[table["class"] == classname]
    if rows.empty:
        return View(f"No image of class {classname!r}; pick one of: {', '.join(table['class'].unique())}.")
    top = rows.nlargest(k, by)
    classes = list(dict.fromkeys(table["class"]))
    show_images = dataset is not None
    fig = Figure(figsize=(10 if show_images else 5.5, max(2.6, 0.35 * len(classes) + 1.2)), layout="constrained")
    grid = fig.add_gridspec(2, 1 + k, width_ratios=[k] + [1] * k) if show_images else fig.add_gridspec(1, 1)
    ax = fig.add_subplot(grid[:, 0] if show_images else grid[0, 0])
    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        values = table.loc[table["class"] == name, by].to_numpy()
        ax.scatter(values, i + rng.uniform(-0.2, 0.2, len(values)), s=6, alpha=0.5,
                   color="#d62728" if name == classname else "#7f7f7f")
    ax.scatter(top[by], [classes.index(c) for c in top["class"]], s=40, facecolors="none", edgecolors="black",
               label=f"top {len(top)}")
    ax.set_yticks(range(len(classes)), [c.replace("_", " ") for c in classes], fontsize=8)
    ax.invert_yaxis()
    what = "image-specific part of the shift" if by == "specific_ratio" else "shift"
    ax.set_xlabel(f"|{what}| / mean |context vector|")
    ax.set_title(f"{what.capitalize()} per image (median {rows[by].median():.2f})", fontsize=10)
    ax.legend(fontsize=8)
    if show_images:
        for j, (_, row) in enumerate(top.iterrows()):
            image_ax = fig.add_subplot(grid[:, 1 + j])
            image, _ = dataset[int(row["image"])]
            image_ax.imshow(image)
            image_ax.set_xticks([])
            image_ax.set_yticks([])
            image_ax.set_title(f"{row['class']}\n{row[by]:.2f}", fontsize=7)
    return View(fig, {"top": top, "median": float(rows[by].median())})


def shift_explorer(table: pd.DataFrame, dataset: Optional[Any] = None, k: int = 6,
                   static: Optional[bool] = None):
    """Pick a class (or all), how many images, and which size (the image-specific part or the whole shift): every
    image's shift and the images that move the context most (headless: all classes, the specific part)."""
    import ipywidgets as widgets

    from .widgets import explore

    options = ["all"] + list(dict.fromkeys(table["class"]))
    choice = widgets.Dropdown(options=options, value="all", description="class")
    count = widgets.IntSlider(value=k, min=1, max=10, description="images")
    size = widgets.Dropdown(options=[("image-specific part", "specific_ratio"), ("whole shift", "ratio")],
                            value="specific_ratio", description="size")
    return explore(lambda classname, k, by: shift_view(table, dataset, classname, k, by),
                   {"classname": choice, "k": count, "by": size}, static)


def shift_summary(table: pd.DataFrame, effect: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Per class: median whole and image-specific shift ratios, and (with ``effect``) accuracy (%) of CoCoOp, with
    the mean shift for every image, and with no shift."""
    grouped = table.groupby("class", sort=False)
    summary = pd.DataFrame({"median_ratio": grouped["ratio"].median(),
                            "median_specific_ratio": grouped["specific_ratio"].median()})
    if effect is not None:
        merged = table[["image", "class"]].merge(effect, on="image").groupby("class", sort=False)
        for column in ("correct", "correct_mean_shift", "correct_no_shift"):
            summary["acc" + column[len("correct"):]] = 100 * merged[column].mean()
    return summary


def images_changed_by_shift(effect: pd.DataFrame, against: str = "correct_mean_shift") -> dict[str, int]:
    """How many images CoCoOp gets right that ``against`` (default: the mean shift for every image) gets wrong
    (``fixed``), and the reverse (``broken``)."""
    return {"fixed": int((effect["correct"] & ~effect[against]).sum()),
            "broken": int((~effect["correct"] & effect[against]).sum())}


__all__: Sequence[str] = ("meta_shift_table", "mean_shift_norm", "shift_effect", "shift_view", "shift_explorer",
                          "shift_summary", "images_changed_by_shift")
