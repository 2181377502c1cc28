"""Inside CoCoOp: how far the meta-network moves the context for each image, and which images move it most.

CoCoOp's prompt for image ``x`` is ``[V_1 + pi(x)] ... [V_M + pi(x)] [CLASS]``, one shift ``pi(x)`` added to every
context vector. Its size against the context vectors' own (``|pi(x)| / mean |V_m|``) says whether the conditioning
is a nudge or a rewrite; which images get the largest shifts, and whether removing the shift changes their
prediction, says what the meta-network reacts to. ``shift_explorer`` browses it class by class.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .cocoop import CoCoOpClassifier, CoCoOpPromptLearner, cocoop_logits
from .features import FeatureSet


def meta_shift_table(learner: CoCoOpPromptLearner, features: FeatureSet) -> pd.DataFrame:
    """Per image: the shift's norm ``|pi(x)|``, the mean context-vector norm ``|V|``, their ``ratio``, and the
    cosine between the shift and the mean context vector. Columns ``image, label, class, shift_norm, ctx_norm,
    ratio, cosine_to_ctx``, in image order (``image`` indexes ``features`` and the dataset it was encoded from)."""
    with torch.no_grad():
        shifts = learner.shifts(features.view(0).to(learner.ctx.device)).float().cpu()
        ctx = learner.ctx.detach().float().cpu()
    ctx_norm = float(ctx.norm(dim=-1).mean())
    names = features.classnames or [str(c) for c in range(int(features.labels.max()) + 1)]
    shift_norm = shifts.norm(dim=-1)
    cosine = F.cosine_similarity(shifts, ctx.mean(0, keepdim=True), dim=-1)
    return pd.DataFrame({"image": range(features.n_images), "label": features.labels.tolist(),
                         "class": [names[int(y)] for y in features.labels], "shift_norm": shift_norm.numpy(),
                         "ctx_norm": ctx_norm, "ratio": (shift_norm / ctx_norm).numpy(),
                         "cosine_to_ctx": cosine.numpy()})


def correct_vector(classifier: CoCoOpClassifier, features: FeatureSet, batch_size: int = 64) -> torch.Tensor:
    """``(N,)`` booleans: whether each image is classified correctly."""
    return cocoop_logits(classifier, features, batch_size).argmax(1) == features.labels


def shift_effect(classifier: CoCoOpClassifier, features: FeatureSet) -> pd.DataFrame:
    """Per image: correct with the shift (CoCoOp), and with ``pi(x) = 0`` (CoCoOp's ``ctx`` used alone, as a CoOp
    context). Columns ``image, correct_with_shift, correct_without``."""
    linear2 = classifier.prompt_learner.meta_net.linear2
    with torch.no_grad():
        with_shift = correct_vector(classifier, features)
        saved = [p.detach().clone() for p in linear2.parameters()]
        try:
            for p in linear2.parameters():
                p.zero_()
            without = correct_vector(classifier, features)
        finally:
            for p, value in zip(linear2.parameters(), saved):
                p.copy_(value)
    return pd.DataFrame({"image": range(features.n_images), "correct_with_shift": with_shift.numpy(),
                         "correct_without": without.numpy()})


def shift_view(table: pd.DataFrame, dataset: Optional[Any] = None, classname: str = "all", k: int = 6) -> "View":
    """Left: the shift-to-context ratio of every image, one row per class; right: the ``k`` images (of
    ``classname``, or of all classes) with the largest shifts, when ``dataset`` (the images ``table`` was computed
    on) is given. ``numbers``: ``top`` (those rows) and ``median_ratio``."""
    from .widgets import View

    rows = table if classname == "all" else table[table["class"] == classname]
    if rows.empty:
        return View(f"No image of class {classname!r}; pick one of: {', '.join(table['class'].unique())}.")
    top = rows.nlargest(k, "ratio")
    classes = list(dict.fromkeys(table["class"]))
    show_images = dataset is not None
    fig = Figure(figsize=(10 if show_images else 5.5, max(2.6, 0.35 * len(classes) + 1.2)), layout="constrained")
    grid = fig.add_gridspec(2, 1 + k, width_ratios=[k] + [1] * k) if show_images else fig.add_gridspec(1, 1)
    ax = fig.add_subplot(grid[:, 0] if show_images else grid[0, 0])
    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        values = table.loc[table["class"] == name, "ratio"].to_numpy()
        ax.scatter(values, i + rng.uniform(-0.2, 0.2, len(values)), s=6, alpha=0.5,
                   color="#d62728" if name == classname else "#7f7f7f")
    ax.scatter(top["ratio"], [classes.index(c) for c in top["class"]], s=40, facecolors="none", edgecolors="black",
               label=f"top {len(top)}")
    ax.set_yticks(range(len(classes)), [c.replace("_", " ") for c in classes], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("|shift| / mean |context vector|")
    ax.set_title(f"Meta-network shift per image (median {rows['ratio'].median():.2f})", fontsize=10)
    ax.legend(fontsize=8)
    if show_images:
        for j, row in enumerate(top.itertuples()):
            image_ax = fig.add_subplot(grid[0:2, 1 + j] if len(top) <= k else grid[0, 1 + j])
            image, _ = dataset[int(row.image)]
            image_ax.imshow(image)
            image_ax.set_xticks([])
            image_ax.set_yticks([])
            image_ax.set_title(f"{row._3}\n{row.ratio:.2f}", fontsize=7)
    return View(fig, {"top": top, "median_ratio": float(rows["ratio"].median())})


def shift_explorer(table: pd.DataFrame, dataset: Optional[Any] = None, k: int = 6,
                   static: Optional[bool] = None):
    """Pick a class (or all) and how many images: their shifts and the images that move the context most."""
    import ipywidgets as widgets

    from .widgets import explore

    options = ["all"] + list(dict.fromkeys(table["class"]))
    choice = widgets.Dropdown(options=options, value="all", description="class")
    count = widgets.IntSlider(value=k, min=1, max=10, description="images")
    return explore(lambda classname, k: shift_view(table, dataset, classname, k), {"classname": choice, "k": count},
                   static)


def shift_summary(table: pd.DataFrame, effect: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """Per class: median and max shift ratio, and (with ``effect``) accuracy (%) with and without the shift."""
    summary = table.groupby("class", sort=False)["ratio"].agg(median_ratio="median", max_ratio="max")
    if effect is not None:
        merged = table[["image", "class"]].merge(effect, on="image")
        grouped = merged.groupby("class", sort=False)
        summary["acc_with_shift"] = 100 * grouped["correct_with_shift"].mean()
        summary["acc_without_shift"] = 100 * grouped["correct_without"].mean()
    return summary


def images_changed_by_shift(effect: pd.DataFrame) -> dict[str, int]:
    """How many images the shift makes right that were wrong without it, and the reverse."""
    return {"fixed": int((effect["correct_with_shift"] & ~effect["correct_without"]).sum()),
            "broken": int((~effect["correct_with_shift"] & effect["correct_without"]).sum())}


__all__: Sequence[str] = ("meta_shift_table", "shift_effect", "shift_view", "shift_explorer", "shift_summary",
                          "images_changed_by_shift")
