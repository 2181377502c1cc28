"""The explorers of ``coop_tutorial.widgets``: headless they render once with their defaults; with a front end
they build ipywidgets whose changes redraw the view. Small random CLIP, fast."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from coop_tutorial import CoOpConfig, DriftTracker, PromptLearner, encode_dataset, train_coop, widgets
from conftest import CLASSNAMES


@pytest.fixture(scope="module")
def features(clip32):
    from conftest import FakeImages

    return encode_dataset(clip32, FakeImages(CLASSNAMES, per_class=3), progress=False)


def test_has_frontend_headless_and_overrides(monkeypatch):
    monkeypatch.delenv(widgets.ENV_SWITCH, raising=False)
    assert widgets.has_frontend() is False  # plain pytest: no IPython kernel
    monkeypatch.setenv(widgets.ENV_SWITCH, "interactive")
    assert widgets.has_frontend() is True
    monkeypatch.setenv(widgets.ENV_SWITCH, "static")
    assert widgets.has_frontend() is False


def test_template_view_numbers_and_bad_template(clip32, features):
    view = widgets.template_view(clip32, features, CLASSNAMES, "a photo of a {}.")
    assert isinstance(view.shown, Figure)
    per_class = view.numbers["per_class"]
    assert list(per_class.index) == CLASSNAMES
    assert view.numbers["accuracy"] == pytest.approx(per_class.mean())  # balanced classes
    message = widgets.template_view(clip32, features, CLASSNAMES, "no placeholder")
    assert isinstance(message.shown, str) and "{}" in message.shown and not message.numbers


def test_template_playground_static_renders_once(clip32, features):
    reference = pd.Series(50.0, index=CLASSNAMES, name="default")
    explorer = widgets.template_playground(clip32, features, CLASSNAMES, "a {}.", reference=reference, static=True)
    assert explorer.widget is None and explorer.history == [{"template": "a {}."}]
    legend = [t.get_text() for t in explorer.last.shown.axes[0].get_legend().get_texts()]
    assert "default" in legend


def test_template_playground_interactive_redraws(clip32, features):
    explorer = widgets.template_playground(clip32, features, CLASSNAMES, "a {}.", static=False)
    text = explorer.widget.children[0].children[0]
    text.value = "a photo of the {}."
    assert explorer.history[-1] == {"template": "a photo of the {}."}
    assert explorer.last.numbers["accuracy"] == pytest.approx(
        widgets.template_view(clip32, features, CLASSNAMES, "a photo of the {}.").numbers["accuracy"])


def test_live_curves_draws_at_the_end_headless(clip32, features):
    live = widgets.LiveCurves(every=1, static=True)
    config = CoOpConfig.embedded(1, epochs=3, n_views=0, n_ctx=2, batch_size=4, progress=False)
    train_coop(clip32, features, config=config, callbacks=[live], classnames=CLASSNAMES)
    assert len(live.records) == 3 and isinstance(live.figure, Figure)
    assert list(live.figure.axes[0].lines[0].get_xdata()) == [1, 2, 3]


def test_live_curves_redraws_every_n_epochs(monkeypatch):
    live = widgets.LiveCurves(every=2, static=False)
    draws = []
    monkeypatch.setattr(live, "_draw", lambda: draws.append(len(live.records)))
    live.on_train_start(None)
    for epoch in range(1, 6):
        live.on_epoch_end(dict(epoch=epoch, loss=1.0, train_acc=0.5, val_acc=None, lr=0.1), None)
    live.on_train_end(None)
    assert draws == [2, 4, 5]  # every second epoch, and the last one


def test_nearest_words_view_unified_and_class_specific(clip32):
    unified = PromptLearner(clip32, CLASSNAMES[:2], n_ctx=3)
    table = widgets.nearest_words_view(unified, clip32, k=2)
    assert list(table.index) == [1, 2, 3] and list(table.columns) == ["nearest 1", "nearest 2"]
    csc = PromptLearner(clip32, CLASSNAMES[:2], n_ctx=3, csc=True)
    assert widgets.nearest_words_view(csc, clip32, k=1).index.names == ["class", "position"]


def test_context_explorer_needs_snapshots_and_moves_through_epochs(clip32, features):
    with pytest.raises(ValueError, match="keep_snapshots"):
        widgets.context_explorer(DriftTracker(), clip32)
    tracker = DriftTracker(keep_snapshots=True)
    config = CoOpConfig.embedded(1, epochs=2, n_views=0, n_ctx=2, batch_size=4, progress=False)
    train_coop(clip32, features, config=config, callbacks=[tracker], classnames=CLASSNAMES)
    static = widgets.context_explorer(tracker, clip32, k=2, static=True)
    assert static.history == [{"epoch": 2, "metric": "euclidean", "k": 2}] and len(static.last) == 2
    live = widgets.context_explorer(tracker, clip32, static=False)
    epoch_slider = live.widget.children[0].children[0]
    epoch_slider.value = 0
    assert live.history[-1]["epoch"] == 0


def test_similarity_view_and_explorer():
    a, b = torch.eye(3, 4), torch.eye(3, 4).flip(0)
    view = widgets.similarity_view({"a": a, "b": b}, "a", "a")
    assert view.numbers["diagonal_mean"] == pytest.approx(1.0)
    explorer = widgets.similarity_explorer({"a": a, "b": b}, static=True)
    assert explorer.history == [{"first": "a", "second": "b"}]
    assert explorer.last.numbers["similarity"].shape == (3, 3)
    with pytest.raises(ValueError, match="two contexts"):
        widgets.similarity_explorer({"a": a})


def test_old_ipywidgets_render_statically(monkeypatch):
    import sys
    import types

    from coop_tutorial import widgets

    monkeypatch.delenv(widgets.ENV_SWITCH, raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", types.SimpleNamespace(__version__="7.7.1"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert not widgets.widgets_supported() and not widgets.has_frontend()
