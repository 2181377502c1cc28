"""The notebooks' figures, one function each; every function returns a matplotlib ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` rather than ``pyplot``, so nothing global changes and a
notebook shows each figure exactly once (when a cell returns it); ``save_figure`` writes one to disk. Methods
keep one colour everywhere: zero-shot CLIP grey, the linear probe blue, CoOp red. Accuracies are in percent.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .evaluation import mean_and_std
from .prompt_learner import PromptLearner, arrange

METHOD_COLOURS = {"zero_shot": "#7f7f7f", "linear_probe": "#1f77b4", "coop": "#d62728"}
METHOD_LABELS = {"zero_shot": "zero-shot CLIP", "linear_probe": "linear probe", "coop": "CoOp"}
# The token kinds of a prompt and how the layout picture colours them.
TOKEN_COLOURS = {"special": "#d9d9d9", "context": "#f4a582", "class": "#92c5de", "period": "#d9d9d9",
                 "padding": "#f7f7f7"}


def save_figure(fig: Figure, path: Union[str, Path], dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG (small enough for a README at the default dpi); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _grid(n_panels: int, n_cols: int, panel_size: tuple[float, float]) -> tuple[Figure, list]:
    n_cols = max(1, min(n_cols, n_panels))
    n_rows = math.ceil(n_panels / n_cols)
    fig = Figure(figsize=(panel_size[0] * n_cols, panel_size[1] * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


# --------------------------------------------------------------------------------------------------- overview


def _box(ax, x: float, y: float, text: str, colour: str, width: float = 0.26, height: float = 0.1,
         fontsize: int = 9) -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.01",
                                facecolor=colour, edgecolor="#444444", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], colour: str = "#444444",
           style: str = "-|>", dashed: bool = False) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=colour, lw=1.2,
                                                          linestyle="--" if dashed else "-"))


def method_diagram() -> Figure:
    """Zero-shot CLIP next to CoOp: the same frozen encoders; CoOp swaps the hand-written words of the prompt
    for learnable vectors ``[V]_1..[V]_M`` and trains only those, through the frozen text encoder."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    frozen, learn, feature = "#e8e8e8", TOKEN_COLOURS["context"], "#c7e9c0"
    for ax, coop in zip(axes, (False, True)):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        _box(ax, 0.22, 0.88, "image", "#ffffff")
        _box(ax, 0.22, 0.64, "image encoder\n(frozen)", frozen)
        _box(ax, 0.22, 0.40, "image feature f", feature)
        prompt = "[V]$_1$ [V]$_2$ ... [V]$_M$ [CLASS]." if coop else '"a photo of a [CLASS]."'
        _box(ax, 0.74, 0.88, prompt, learn if coop else "#ffffff", width=0.42)
        _box(ax, 0.74, 0.64, "text encoder\n(frozen)", frozen)
        _box(ax, 0.74, 0.40, "one text feature w$_k$\nper class k", feature, width=0.3)
        _box(ax, 0.48, 0.14, r"logits$_k$ = exp($\tau$) cos(f, w$_k$)  →  softmax", "#ffffff", width=0.62)
        for x in (0.22, 0.74):
            _arrow(ax, (x, 0.83), (x, 0.70))
            _arrow(ax, (x, 0.58), (x, 0.46))
        _arrow(ax, (0.22, 0.35), (0.40, 0.19))
        _arrow(ax, (0.74, 0.34), (0.56, 0.19))
        if coop:
            # the loss gradient reaches the context vectors through the frozen text encoder
            _arrow(ax, (0.97, 0.16), (0.97, 0.86), colour="#d62728", dashed=True)
            ax.text(0.985, 0.5, "cross-entropy gradient\n(updates only the [V])", rotation=90, va="center",
                    ha="left", fontsize=8, color="#d62728")
            ax.set_title("CoOp: learn the context words from a few labelled images", fontsize=11)
        else:
            ax.set_title("Zero-shot CLIP: a hand-written prompt per class", fontsize=11)
    return fig


def example_grid(datasets: Mapping[str, Any], per_task: int = 8, seed: int = 0) -> Figure:
    """A row of example images per dataset (distinct classes first), titled with their class names.

    ``datasets`` maps a row title to a dataset of ``(PIL image, label)`` with ``.classnames``.
    """
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.25 * per_task, 1.45 * len(datasets)), layout="constrained")
    axes = fig.subplots(len(datasets), per_task, squeeze=False)
    for row, (title, dataset) in enumerate(datasets.items()):
        order = rng.permutation(len(dataset))
        labels = getattr(dataset, "targets", None)
        seen, picked = set(), []
        for index in order:  # one image per class until every class was shown
            label = int(labels[index]) if labels is not None else int(dataset[int(index)][1])
            if label not in seen or len(seen) == len(dataset.classnames):
                seen.add(label)
                picked.append(int(index))
            if len(picked) == per_task:
                break
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(picked):
                ax.set_visible(False)
                continue
            image, label = dataset[picked[col]]
            ax.imshow(image)
            ax.set_title(str(dataset.classnames[int(label)]).replace("_", " "), fontsize=8)
            if col == 0:
                ax.set_ylabel(title, fontsize=9)
    fig.suptitle("Example test images with their class names", fontsize=11)
    return fig


def heatmap(matrix: Union[np.ndarray, torch.Tensor, pd.DataFrame], title: str, xlabel: str, ylabel: str,
            colorbar_label: str, row_labels: Optional[Sequence[str]] = None,
            col_labels: Optional[Sequence[str]] = None, annotate: bool = True, fmt: str = "{:.2f}",
            cmap: str = "viridis", vmin: Optional[float] = None, vmax: Optional[float] = None) -> Figure:
    """A labelled heatmap (similarities, confusion matrices), values written in the cells when ``annotate``."""
    if isinstance(matrix, pd.DataFrame):
        row_labels = row_labels if row_labels is not None else [str(i) for i in matrix.index]
        col_labels = col_labels if col_labels is not None else [str(c) for c in matrix.columns]
        matrix = matrix.to_numpy()
    values = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor) else matrix, dtype=float)
    n_rows, n_cols = values.shape
    cell = 0.55 if annotate else 0.32  # inches per cell: room for the numbers only where they are written
    fig = Figure(figsize=(min(2.8 + cell * n_cols, 10), min(1.8 + cell * 0.8 * n_rows, 7)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    fig.colorbar(image, ax=ax, label=colorbar_label)
    ax.set_xticks(range(n_cols), col_labels if col_labels is not None else range(1, n_cols + 1),
                  rotation=45 if col_labels is not None else 0, ha="right" if col_labels is not None else "center",
                  fontsize=8)
    ax.set_yticks(range(n_rows), row_labels if row_labels is not None else range(1, n_rows + 1), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    if annotate and n_rows * n_cols <= 400:
        middle = np.nanmean(values) if np.isfinite(values).any() else 0.0
        for r in range(n_rows):
            for c in range(n_cols):
                ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=7,
                        color="white" if values[r, c] < middle else "black")
    return fig


def confusion_heatmap(confusion: pd.DataFrame, title: str) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted) as row-normalised percentages."""
    counts = confusion.to_numpy().astype(float)
    rates = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return heatmap(pd.DataFrame(rates, index=confusion.index, columns=confusion.columns), title,
                   "predicted class", "true class", "share of the true class's test images (%)", fmt="{:.0f}",
                   cmap="Blues", vmin=0, vmax=100)


# ----------------------------------------------------------------------------------------------------- prompts


def prompt_sensitivity(prompts: pd.DataFrame, chance: Optional[Mapping[str, float]] = None,
                       n_cols: int = 3) -> Figure:
    """One panel per task: zero-shot accuracy of each hand-written template (best in red), chance dashed.

    ``prompts`` is a ``prompt_table`` (columns task, template, accuracy in %).
    """
    tasks = list(dict.fromkeys(prompts["task"]))
    longest = max(len(t) for t in prompts["template"])
    fig, axes = _grid(len(tasks), n_cols, (3.0 + 0.055 * longest, 0.3 * prompts.groupby("task").size().max() + 1.3))
    for ax, task in zip(axes, tasks):
        rows = prompts[prompts["task"] == task].sort_values("accuracy")
        colours = [METHOD_COLOURS["zero_shot"]] * len(rows)
        colours[-1] = METHOD_COLOURS["coop"]
        ax.barh(rows["template"], rows["accuracy"], color=colours)
        low, high = rows["accuracy"].min(), rows["accuracy"].max()
        if chance and task in chance:
            ax.axvline(chance[task], color="black", linestyle="--", linewidth=1, label="chance")
            low = min(low, chance[task])
        ax.set_xlim(max(0.0, low - 8), min(100.0, high + 5))
        ax.set_title(f"{task}: {high - rows['accuracy'].min():.1f} points from worst to best", fontsize=10)
        ax.set_xlabel("zero-shot test accuracy (%)")
        ax.set_ylabel("hand-written template", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
    if chance:
        axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("The cost of prompt engineering: the same classes, differently worded prompts", fontsize=12)
    return fig


def grouped_bars(values: pd.DataFrame, title: str, ylabel: str, xlabel: str = "",
                 colours: Optional[Mapping[str, str]] = None, errors: Optional[pd.DataFrame] = None,
                 reference: Optional[float] = None, reference_label: str = "") -> Figure:
    """Bars grouped by row label (x) with one bar per column (e.g. per-class accuracy: prompt vs CoOp)."""
    n_groups, n_bars = values.shape
    fig = Figure(figsize=(max(5.0, 0.32 * n_groups * n_bars + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / n_bars
    x = np.arange(n_groups)
    for i, column in enumerate(values.columns):
        colour = (colours or {}).get(column, METHOD_COLOURS.get(column))
        err = errors[column].to_numpy() if errors is not None and column in errors else None
        ax.bar(x + (i - (n_bars - 1) / 2) * width, values[column].to_numpy(), width, yerr=err, capsize=2,
               color=colour, label=METHOD_LABELS.get(column, column))
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=reference_label or None)
    ax.set_xticks(x, [str(i) for i in values.index], rotation=30 if n_groups > 4 else 0,
                  ha="right" if n_groups > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, ncols=min(n_bars + (reference is not None), 4))
    return fig


# ------------------------------------------------------------------------------------------------ CoOp itself


def _layout_cells(learner: "PromptLearner", class_index: int, padding: int,
                  tokenizer: Any = None) -> list[tuple[str, str]]:
    """(label, kind) per token position of one class's prompt, up to EOS plus ``padding`` pad positions."""
    name = learner.classnames[class_index].replace("_", " ")
    n_name = learner.name_lens[class_index]
    ctx = [(f"V{i + 1}", "context") for i in range(learner.n_ctx)]
    if tokenizer is not None and hasattr(tokenizer, "decode"):
        # the class tokens sit right after the n_ctx placeholders in the tokenized "X X ... X name." prompt
        ids = learner.tokenized_prompts[class_index, 1 + learner.n_ctx:1 + learner.n_ctx + n_name].tolist()
        cls = [(tokenizer.decode([i]).strip() or "?", "class") for i in ids]
    else:
        cls = [(name if n_name == 1 else f"{name}\n({j + 1}/{n_name})", "class") for j in range(n_name)]
    pad = [("0", "padding")] * padding
    return ([("SOS", "special")] + arrange(learner.class_token_position, ctx, cls) + [(".", "period"), ("EOS", "special")]
            + pad)


def token_layout(learners: Mapping[str, "PromptLearner"], class_index: int = 0, padding: int = 2,
                 tokenizer: Any = None) -> Figure:
    """The prompt as the text encoder sees it, one row per learner: one box per token position.

    Grey: frozen embeddings of real tokens (SOS, ".", EOS: the ``token_prefix``/``token_suffix`` buffers);
    orange: the learnable ``ctx`` vectors; blue: the class-name tokens (frozen); white: padding, which the
    causal mask keeps from influencing the EOS feature. With the CLIP's ``tokenizer`` the class-name boxes show
    the actual (BPE) tokens.
    """
    rows = {title: _layout_cells(learner, class_index, padding, tokenizer) for title, learner in learners.items()}
    n_cells = max(len(cells) for cells in rows.values())
    fig = Figure(figsize=(max(6.0, 0.62 * n_cells + 1.5), 0.95 * len(rows) + 1.0), layout="constrained")
    ax = fig.subplots()
    for r, (title, cells) in enumerate(rows.items()):
        y = len(rows) - 1 - r
        for position, (label, kind) in enumerate(cells):
            ax.add_patch(FancyBboxPatch((position + 0.05, y + 0.1), 0.9, 0.65, boxstyle="round,pad=0.02",
                                        facecolor=TOKEN_COLOURS[kind], edgecolor="#555555", linewidth=0.7))
            ax.text(position + 0.5, y + 0.43, label, ha="center", va="center",
                    fontsize=7 if "\n" in label or len(label) > 5 else 8)
        ax.text(-0.2, y + 0.43, title, ha="right", va="center", fontsize=9)
    ax.set_xlim(-0.1, n_cells + 0.1)
    ax.set_ylim(-0.1, len(rows))
    ax.set_yticks([])
    ax.set_xticks(np.arange(n_cells) + 0.5, range(n_cells), fontsize=7)
    ax.set_xlabel("token position (0 = SOS); each box is one vector of the text transformer's width")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [FancyBboxPatch((0, 0), 1, 1, facecolor=c, edgecolor="#555555") for c in
               (TOKEN_COLOURS["context"], TOKEN_COLOURS["class"], TOKEN_COLOURS["special"], TOKEN_COLOURS["padding"])]
    ax.legend(handles, ["learnable context [V]", "class name (frozen)", "SOS / . / EOS (frozen)", "padding"],
              loc="upper center", bbox_to_anchor=(0.5, -0.35), ncols=4, fontsize=8, frameon=False)
    ax.set_title("The CoOp prompt, position by position", fontsize=11)
    return fig


def training_curves(history: pd.DataFrame, title: str = "CoOp training") -> Figure:
    """Loss and train/validation accuracy per epoch, from ``TrainResult.history_frame()`` (indexed by epoch)."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = history.index.to_numpy()
    loss_ax.plot(epochs, history["loss"], marker=".", color=METHOD_COLOURS["coop"])
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("training cross-entropy (nats)")
    loss_ax.set_title("loss")
    acc_ax.plot(epochs, 100 * history["train_acc"].astype(float), marker=".", color=METHOD_COLOURS["coop"],
                label="train (augmented views)")
    if "val_acc" in history and history["val_acc"].notna().any():
        val = history["val_acc"].dropna().astype(float)
        acc_ax.plot(val.index, 100 * val, marker="o", color=METHOD_COLOURS["linear_probe"], label="validation")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy (%)")
    acc_ax.set_title("accuracy")
    acc_ax.legend(fontsize=8)
    for ax in (loss_ax, acc_ax):
        ax.set_xlim(0.5, max(float(epochs.max()) if len(epochs) else 1.0, 1.0) + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=11)
    return fig


# ------------------------------------------------------------------------------------------------ shot scaling

SHOT_POSITIONS_NOTE = "shots per class (0 = zero-shot)"


def _method_curves(sweep: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per panel (each task, then the average over tasks): mean and std over seeds, indexed (method, shots)."""
    panels = {}
    for task, rows in sweep.groupby("task", sort=False):
        panels[task] = mean_and_std(rows.groupby(["method", "shots"])["accuracy"])
    # the average: first average over tasks within each seed, then mean and std over seeds
    per_seed = sweep.groupby(["method", "shots", "seed"])["accuracy"].mean()
    panels["average over tasks"] = mean_and_std(per_seed.groupby(["method", "shots"]))
    return panels


def shot_scaling(sweep: pd.DataFrame, best_prompt: Optional[Mapping[str, float]] = None, n_cols: int = 4) -> Figure:
    """The paper's few-shot figure: test accuracy against shots, one panel per task plus the average.

    ``sweep`` is a ``shot_sweep`` result (zero-shot rows have ``shots == 0``); error bars are one
    standard deviation over seeds. ``best_prompt`` (task -> accuracy) adds the best hand-written prompt, an
    oracle chosen on the test set, as a dotted line; its average is drawn in the average panel.
    """
    panels = _method_curves(sweep)
    shots = sorted(int(k) for k in sweep["shots"].unique() if k > 0)
    positions = {0: 0, **{k: i + 1 for i, k in enumerate(shots)}}
    fig, axes = _grid(len(panels), n_cols, (3.2, 2.8))
    for ax, (title, curves) in zip(axes, panels.items()):
        for method in ("linear_probe", "coop"):
            if method in curves.index.get_level_values(0):
                curve = curves.loc[method]
                ax.errorbar([positions[k] for k in curve.index], curve["mean"], yerr=curve["std"], marker="o",
                            markersize=4, capsize=3, color=METHOD_COLOURS[method], label=METHOD_LABELS[method])
        if "zero_shot" in curves.index.get_level_values(0):
            ax.plot([0], curves.loc["zero_shot"]["mean"].iloc[:1], marker="*", markersize=13, linestyle="none",
                    color=METHOD_COLOURS["zero_shot"], label="zero-shot CLIP (default prompt)")
        if best_prompt:
            level = (float(np.mean(list(best_prompt.values()))) if title == "average over tasks"
                     else best_prompt.get(title))
            if level is not None:
                ax.axhline(level, color=METHOD_COLOURS["zero_shot"], linestyle=":", linewidth=1.2,
                           label="best hand-written prompt")
        ax.set_xticks(list(positions.values()), [str(k) for k in positions])
        ax.set_title(title, fontsize=10, fontweight="bold" if title == "average over tasks" else "normal")
        ax.set_xlabel(SHOT_POSITIONS_NOTE, fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9, frameon=False)
    fig.suptitle("Few-shot learning: CoOp against the linear probe and zero-shot CLIP (mean ± std over seeds)",
                 fontsize=12)
    return fig


def design_choices(results: pd.DataFrame, baseline: str = "default") -> Figure:
    """The design-choice ablation: average accuracy per variant (mean ± std over seeds of the task average),
    and each task's change against ``baseline`` (points) as a heatmap. ``results`` is a ``design_sweep``."""
    variants = list(dict.fromkeys(results["variant"]))
    per_seed = results.groupby(["variant", "seed"])["accuracy"].mean()
    average = mean_and_std(per_seed.groupby("variant")).reindex(variants)
    per_task = results.groupby(["task", "variant"], sort=False)["accuracy"].mean().unstack()[variants]
    change = per_task.sub(per_task[baseline], axis=0)
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    bars_ax, heat_ax = fig.subplots(1, 2, width_ratios=(1, 1.3))
    colours = [METHOD_COLOURS["coop"] if v == baseline else "#f4a582" for v in variants]
    bars_ax.bar(range(len(variants)), average["mean"], yerr=average["std"], capsize=3, color=colours)
    bars_ax.set_xticks(range(len(variants)), variants, rotation=25, ha="right", fontsize=8)
    bars_ax.set_ylabel("test accuracy (%), average over tasks")
    bars_ax.set_xlabel("design variant")
    low = float((average["mean"] - average["std"]).min())
    bars_ax.set_ylim(max(0.0, low - 5), float((average["mean"] + average["std"]).max()) + 2)
    bars_ax.set_title(f"Average over tasks ({int(results['shots'].iloc[0])} shots)", fontsize=10)
    limit = max(float(np.abs(change.to_numpy()).max()), 1.0)
    image = heat_ax.imshow(change.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    fig.colorbar(image, ax=heat_ax, label=f"change against '{baseline}' (points)")
    heat_ax.set_xticks(range(len(variants)), variants, rotation=25, ha="right", fontsize=8)
    heat_ax.set_yticks(range(len(change.index)), change.index, fontsize=8)
    for r in range(change.shape[0]):
        for c in range(change.shape[1]):
            heat_ax.text(c, r, f"{change.iat[r, c]:+.1f}", ha="center", va="center", fontsize=7)
    heat_ax.set_title("Per task, against the default", fontsize=10)
    heat_ax.set_xlabel("design variant")
    heat_ax.set_ylabel("task")
    fig.suptitle("CoOp's design choices", fontsize=12)
    return fig


# -------------------------------------------------------------------------------------------------- robustness


def robustness(table: pd.DataFrame, source: str) -> Figure:
    """Accuracy of each method on the source task and its shifted test sets, and the points each loses.

    ``table`` is a ``shift_table`` (rows: methods, columns: the source, then each shifted set).
    """
    methods = [m for m in table.index]
    sets = list(table.columns)
    shifted = [s for s in sets if s != source]
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    acc_ax, drop_ax = fig.subplots(1, 2)
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        offset = (i - (len(methods) - 1) / 2) * width
        colour, label = METHOD_COLOURS.get(method), METHOD_LABELS.get(method, method)
        acc_ax.bar(np.arange(len(sets)) + offset, table.loc[method, sets], width, color=colour, label=label)
        drops = table.loc[method, source] - table.loc[method, shifted]
        drop_ax.bar(np.arange(len(shifted)) + offset, drops, width, color=colour, label=label)
    acc_ax.set_xticks(range(len(sets)), [f"{s}\n(source)" if s == source else s for s in sets], fontsize=8)
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_xlabel("test set")
    acc_ax.set_title(f"Learned on {source}, tested on its shifts", fontsize=10)
    acc_ax.legend(fontsize=8)
    drop_ax.axhline(0, color="black", linewidth=0.8)
    drop_ax.set_xticks(range(len(shifted)), shifted, fontsize=8)
    drop_ax.set_xlabel("shifted test set")
    drop_ax.set_ylabel(f"points lost against {source} (higher = less robust)")
    drop_ax.set_title("Drop under each shift", fontsize=10)
    fig.suptitle("Robustness to distribution shift", fontsize=12)
    return fig


def training_length(table: pd.DataFrame, zero_shot: pd.Series, recipe_epochs: Optional[int] = None) -> Figure:
    """CoOp's accuracy on each set against how long it trained (``shift_study.training_length_study``), each
    set's zero-shot accuracy dashed in the same colour: where a line falls under its dash, the context has
    fitted something of the source's images that the shifted set lacks."""
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.subplots()
    epochs = list(table.index)
    for i, name in enumerate(table.columns):
        colour = f"C{i}"
        ax.plot(epochs, table[name], marker="o", color=colour, label=f"{name}" + (" (source)" if i == 0 else ""))
        ax.axhline(zero_shot[name], color=colour, linestyle="--", linewidth=0.9)
    if recipe_epochs is not None:
        ax.axvline(recipe_epochs, color="grey", linewidth=0.8)
        ax.annotate("the recipe", (recipe_epochs, ax.get_ylim()[1]), fontsize=8, ha="right", va="top")
    ax.set_xscale("log")
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.set_xlabel("epochs CoOp trained (cosine schedule over them)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("CoOp by training length (solid) against zero-shot CLIP (dashed)", fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


# ----------------------------------------------------------------------------------------- inside the context


def context_norm_bars(norms: Mapping[str, Union[torch.Tensor, np.ndarray]], reference: Optional[float] = None) -> Figure:
    """L2 norm of every context vector (one line per context) against the typical word-embedding norm."""
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    for label, values in norms.items():
        values = np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=float)
        if values.ndim == 2:  # class-specific: the mean over classes per position
            values = values.mean(axis=0)
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", label=label)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="median norm of a word embedding")
    ax.set_xlabel("context position")
    ax.set_ylabel("L2 norm of the vector")
    ax.set_title("How large the learned context vectors are", fontsize=11)
    ax.legend(fontsize=8)
    return fig


def drift_curves(drift: pd.DataFrame, title: str = "How far the context moves from its initial words") -> Figure:
    """From a ``DriftTracker.frame()``: cosine to the initial vector per position over epochs, and (when the
    tracker recorded words) the share of positions whose nearest word is still the initial one."""
    has_words = "word" in drift.columns
    fig = Figure(figsize=(10 if has_words else 5.5, 3.4), layout="constrained")
    axes = fig.subplots(1, 2 if has_words else 1, squeeze=False).ravel()
    for position, rows in drift.groupby("position"):
        mean = rows.groupby("epoch")["cos_to_init"].mean()
        axes[0].plot(mean.index, mean.to_numpy(), marker=".", label=f"[V{position}]")
    axes[0].set_xlabel("epoch (0 = initial context)")
    axes[0].set_ylabel("cosine to the initial vector")
    axes[0].set_title("Direction kept from the start", fontsize=10)
    axes[0].legend(fontsize=7, ncols=2)
    if has_words:
        start = drift[drift["epoch"] == drift["epoch"].min()]
        first = {(c, p): w for c, p, w in zip(start["class"], start["position"], start["word"])}
        kept = drift.assign(kept=[w == first.get((c, p)) for c, p, w in
                                  zip(drift["class"], drift["position"], drift["word"])])
        share = 100 * kept.groupby("epoch")["kept"].mean()
        axes[1].plot(share.index, share.to_numpy(), marker="o", color=METHOD_COLOURS["coop"])
        axes[1].set_ylim(-5, 105)
        axes[1].set_xlabel("epoch (0 = initial context)")
        axes[1].set_ylabel("positions still nearest their initial word (%)")
        axes[1].set_title("Nearest word unchanged", fontsize=10)
    fig.suptitle(title, fontsize=11)
    return fig


def docs_figure_path(name: str, start: Union[str, Path, None] = None) -> Optional[Path]:
    """``docs/figures/<name>`` of the coop-tutorial checkout that ``start`` (default: the working directory) is
    in, or ``None`` outside a checkout (e.g. in Colab), so notebooks refresh the README's figures only where
    there is a README to refresh."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "coop_tutorial").is_dir() and (folder / "docs").is_dir():
            return folder / "docs" / "figures" / name
    return None


def save_docs_figure(fig: Figure, name: str, dpi: int = 100, world=None) -> Optional[Path]:
    """Save ``fig`` to the checkout's ``docs/figures/<name>`` (see ``docs_figure_path``); ``None`` if none.

    The README's figures are the embedded world's with the shipped model: given a ``world`` that is not that one
    (real CLIP, other weights), nothing is saved, so a real or dry run leaves the documentation alone.
    """
    if world is not None and not (world.kind == "embedded" and world.pretrained is None):
        return None
    path = docs_figure_path(name)
    return save_figure(fig, path, dpi) if path is not None else None
