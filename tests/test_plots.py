"""Every figure of ``coop_tutorial.plots`` draws from small synthetic inputs, with a title and labelled axes."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from coop_tutorial import PromptLearner, plots
from conftest import FakeImages


def titled(fig: Figure) -> bool:
    """A figure title, or every visible panel titled."""
    if fig._suptitle is not None and fig._suptitle.get_text():
        return True
    return all(ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>")


def labelled(fig: Figure) -> bool:
    """Every visible panel with data has axis labels (colour bars aside)."""
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>" and ax.axison]
    return all(ax.get_xlabel() and (ax.get_ylabel() or len(ax.get_yticks()) == 0) for ax in panels)


def check(fig: Figure, tmp_path, axes_labels: bool = True) -> None:
    assert isinstance(fig, Figure) and titled(fig)
    if axes_labels:
        assert labelled(fig)
    path = plots.save_figure(fig, tmp_path / "figure.png")
    assert path.stat().st_size > 1000


@pytest.fixture
def sweep() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [dict(task=t, method="zero_shot", shots=0, seed=0, accuracy=40.0) for t in ("a", "b")]
    rows += [dict(task=t, method=m, shots=k, seed=s, accuracy=float(rng.uniform(20, 80)))
             for t in ("a", "b") for m in ("linear_probe", "coop") for k in (1, 2, 4) for s in (1, 2)]
    return pd.DataFrame(rows)


def test_method_diagram(tmp_path):
    fig = plots.method_diagram()
    assert len(fig.axes) == 2 and titled(fig)
    plots.save_figure(fig, tmp_path / "diagram.png")


def test_example_grid_shows_distinct_classes(tmp_path):
    dataset = FakeImages(["red", "green", "blue"], per_class=3)
    fig = plots.example_grid({"fake": dataset}, per_task=4)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 4 and set(titles[:3]) == {"red", "green", "blue"}
    check(fig, tmp_path, axes_labels=False)


def test_heatmap_and_confusion(tmp_path):
    fig = plots.heatmap(torch.eye(3), "identity", "column", "row", "value", row_labels=list("abc"),
                        col_labels=list("xyz"))
    check(fig, tmp_path)
    confusion = pd.DataFrame([[8, 2], [1, 9]], index=["cat", "dog"], columns=["cat", "dog"])
    fig = plots.confusion_heatmap(confusion, "confusions")
    values = [t.get_text() for t in fig.axes[0].texts]
    assert values == ["80", "20", "10", "90"]  # row-normalised percentages
    check(fig, tmp_path)


def test_prompt_sensitivity_one_panel_per_task(tmp_path):
    prompts = pd.DataFrame({"task": ["a", "a", "b", "b", "b"], "template": ["x {}.", "y {}.", "x {}.", "z {}.", "{}."],
                            "accuracy": [30.0, 40.0, 50.0, 55.0, 20.0]})
    fig = plots.prompt_sensitivity(prompts, chance={"a": 10.0, "b": 25.0})
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2 and "10.0 points" in visible[0].get_title()
    check(fig, tmp_path)


def test_grouped_bars(tmp_path):
    values = pd.DataFrame({"zero_shot": [10.0, 20.0], "coop": [30.0, 40.0]}, index=["cat", "dog"])
    fig = plots.grouped_bars(values, "per class", "accuracy (%)", "class", reference=50.0, reference_label="chance",
                             errors=values / 10)
    assert len(fig.axes[0].patches) == 4
    check(fig, tmp_path)


def test_token_layout_rows_follow_the_positions(tmp_path, clip32):
    names = ["red square", "star"]
    learners = {p: PromptLearner(clip32, names, n_ctx=4, class_token_position=p) for p in ("end", "middle", "front")}
    fig = plots.token_layout(learners, class_index=0, tokenizer=clip32.tokenizer)
    texts = [t.get_text() for t in fig.axes[0].texts]
    end = texts[:texts.index("end")]
    assert end[:7] == ["SOS", "V1", "V2", "V3", "V4", "red", "square"] and end[7:9] == [".", "EOS"]
    middle = texts[texts.index("end") + 1:texts.index("middle")]
    assert middle[:7] == ["SOS", "V1", "V2", "red", "square", "V3", "V4"]
    check(fig, tmp_path, axes_labels=False)
    # without the tokenizer a multi-token name is shown as numbered parts
    texts = [t.get_text() for t in plots.token_layout({"end": learners["end"]}).axes[0].texts]
    assert "red square\n(1/2)" in texts


def test_training_curves(tmp_path):
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.5, 0.4], "train_acc": [0.5, 0.7, 0.8],
                            "val_acc": [None, 0.6, 0.7], "lr": [0.01] * 3}).set_index("epoch")
    fig = plots.training_curves(history)
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 2
    check(fig, tmp_path)


def test_shot_scaling_panels_and_average(tmp_path, sweep):
    fig = plots.shot_scaling(sweep, best_prompt={"a": 45.0, "b": 35.0})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["a", "b", "average over tasks"]
    check(fig, tmp_path)


def test_method_curves_average_is_over_tasks_then_seeds(sweep):
    curves = plots._method_curves(sweep)["average over tasks"]
    coop = sweep[sweep["method"] == "coop"]
    per_seed = coop[coop["shots"] == 2].groupby("seed")["accuracy"].mean()
    assert curves.loc[("coop", 2), "mean"] == pytest.approx(per_seed.mean())
    assert curves.loc[("coop", 2), "std"] == pytest.approx(per_seed.std(ddof=0))  # the official convention (np.std)


def test_design_choices(tmp_path):
    rows = [dict(task=t, variant=v, shots=16, seed=s, accuracy=50.0 + i + s)
            for i, v in enumerate(["default", "csc"]) for t in ("a", "b") for s in (1, 2)]
    fig = plots.design_choices(pd.DataFrame(rows))
    check(fig, tmp_path)


def test_robustness(tmp_path):
    table = pd.DataFrame({"src": [50.0, 60.0, 65.0], "sketch": [40.0, 30.0, 50.0]},
                         index=["zero_shot", "linear_probe", "coop"])
    fig = plots.robustness(table, "src")
    heights = [p.get_height() for p in fig.axes[1].patches]
    assert heights == [10.0, 30.0, 15.0]
    check(fig, tmp_path)


def test_context_norm_bars_and_drift(tmp_path):
    fig = plots.context_norm_bars({"unified": torch.ones(4), "csc": torch.ones(3, 4) * 2}, reference=1.5)
    assert len(fig.axes[0].lines) == 3
    check(fig, tmp_path)
    drift = pd.DataFrame({"epoch": [0, 0, 1, 1], "class": [None] * 4, "position": [1, 2, 1, 2],
                          "cos_to_init": [1.0, 1.0, 0.8, 0.5], "word": ["a", "photo", "a", "cat"]})
    fig = plots.drift_curves(drift)
    kept = fig.axes[1].lines[0].get_ydata()
    assert list(kept) == [100.0, 50.0]
    check(fig, tmp_path)


def test_docs_figure_path_only_inside_a_checkout(tmp_path):
    assert plots.docs_figure_path("x.png", start=tmp_path) is None
    path = plots.docs_figure_path("x.png")  # the tests run inside the repository
    assert path is not None and path.parent.name == "figures" and path.parent.parent.name == "docs"
