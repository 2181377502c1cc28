"""Interactive explorers for the notebooks, built on ipywidgets, that degrade to a static output headless.

Each explorer is a pure *view* function (inputs -> a figure or a table) plus the controls that feed it. With
a live front end (JupyterLab, Notebook, VS Code, Colab) the controls are shown and the view is redrawn on every
change; headless (``nbconvert``, ``nbval``, CI, a plain Python script) the view is rendered once with the
default values, as an ordinary output, so an executed notebook shows it and its tests can check it.
Set ``COOP_TUTORIAL_WIDGETS=static`` or ``=interactive`` to override the detection.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import pandas as pd
import torch

from .clip_loader import ClipBundle
from .evaluation import evaluate
from .features import FeatureSet
from .interpret import DriftTracker, context_similarity, nearest_tokens
from .plots import grouped_bars, heatmap, training_curves
from .prompt_learner import PromptLearner
from .zero_shot import zero_shot_classifier

ENV_SWITCH = "COOP_TUTORIAL_WIDGETS"


def has_frontend() -> bool:
    """Whether widgets can be rendered: an IPython kernel with a front end that draws them.

    A kernel cannot ask its client what it renders, so this reads the traces front ends leave: Colab's module,
    the ``JPY_SESSION_NAME`` that jupyter_server gives kernels it starts for a notebook, VS Code's
    ``VSCODE_PID``. ``nbconvert``/``nbval`` leave none of them. ipywidgets older than 8 counts as no front end
    (``widgets_supported``). ``COOP_TUTORIAL_WIDGETS`` overrides.
    """
    forced = os.environ.get(ENV_SWITCH, "").strip().lower()
    if forced in ("static", "interactive"):
        return forced == "interactive"
    if not widgets_supported():
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    return "google.colab" in sys.modules or bool(os.environ.get("JPY_SESSION_NAME")) or "VSCODE_PID" in os.environ


def widgets_supported() -> bool:
    """Whether ipywidgets 8 or later is installed: the explorers' controls use its API (Colab ships 7.x, where
    they render statically instead of asking for an upgrade that would clash with Colab's pinned front end)."""
    try:
        import ipywidgets
    except ImportError:
        return False
    major = str(getattr(ipywidgets, "__version__", "0")).split(".")[0]
    return major.isdigit() and int(major) >= 8


def _display(value: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # plain Python: print tables, leave figures to the caller
        if isinstance(value, (pd.DataFrame, pd.Series, str)):
            print(value)
        return
    display(value)


@dataclass
class View:
    """What a view returns: what to show (a figure, a table or a message) and the numbers behind it."""

    shown: Any
    numbers: dict = field(default_factory=dict)

    def _ipython_display_(self) -> None:
        _display(self.shown)


@dataclass
class Explorer:
    """A view and its controls. ``last`` holds what the view returned most recently (figure or table);
    ``widget`` is the ipywidgets container, or ``None`` when rendered statically."""

    view: Callable[..., Any]
    defaults: dict
    widget: Any = None
    last: Any = None
    history: list = field(default_factory=list)

    def render(self, **values: Any) -> Any:
        """Compute the view for ``values`` (missing ones take the defaults) and remember it."""
        self.last = self.view(**{**self.defaults, **values})
        self.history.append({**self.defaults, **values})
        return self.last

    def _ipython_display_(self) -> None:
        if self.widget is not None:
            _display(self.widget)
        elif self.last is not None:
            _display(self.last)


def explore(view: Callable[..., Any], controls: Mapping[str, Any], static: Optional[bool] = None) -> Explorer:
    """Wire ``controls`` (name -> ipywidgets control) to ``view(**values)``.

    Headless (``static=True``, or no front end detected) the view runs once with the controls' initial values
    and the Explorer displays its result; otherwise the Explorer displays the controls and an output area that
    the view redraws on every change. Either way ``Explorer.last`` is the latest result.
    """
    static = (not has_frontend()) if static is None else static
    explorer = Explorer(view, {name: control.value for name, control in controls.items()})
    explorer.render()
    if static:
        return explorer
    import ipywidgets as widgets

    output = widgets.Output()

    def redraw(_change: Any = None) -> None:
        result = explorer.render(**{name: control.value for name, control in controls.items()})
        output.clear_output(wait=True)
        with output:
            _display(result)

    for control in controls.values():
        control.observe(redraw, names="value")
    with output:
        _display(explorer.last)
    explorer.widget = widgets.VBox([widgets.HBox(list(controls.values())), output])
    return explorer


# --------------------------------------------------------------------------------------- prompt playground


def template_view(clip: ClipBundle, features: FeatureSet, classnames: Sequence[str], template: str,
                  reference: Optional[pd.Series] = None) -> View:
    """Per-class zero-shot accuracy (%) of one template as a bar chart (a message for a malformed template);
    ``numbers``: ``accuracy`` (%) and ``per_class`` (Series, %).

    ``reference`` (class -> accuracy %) is drawn next to it, e.g. the task's default prompt.
    """
    if not isinstance(template, str) or template.count("{}") != 1:
        return View(f"A template needs exactly one '{{}}' where the class name goes, e.g. 'a photo of a {{}}.'; "
                    f"got {template!r}.")
    result = evaluate(zero_shot_classifier(clip, classnames, template), features, classnames=classnames)
    columns = {f"'{template}'": 100 * result.per_class_accuracy}
    reference_label = str(reference.name or "reference") if reference is not None else ""
    if reference is not None:
        columns = {reference_label: reference, **columns}
    fig = grouped_bars(pd.DataFrame(columns), f"'{template}': {100 * result.accuracy:.1f}% overall",
                       "test accuracy (%)", "class",
                       colours={reference_label: "#bbbbbb", f"'{template}'": "#d62728"},
                       reference=100 / len(classnames), reference_label="chance")
    return View(fig, {"accuracy": 100 * result.accuracy, "per_class": 100 * result.per_class_accuracy})


def template_playground(clip: ClipBundle, features: FeatureSet, classnames: Sequence[str],
                        template: str = "a photo of a {}.", reference: Optional[pd.Series] = None,
                        static: Optional[bool] = None) -> Explorer:
    """Type a template, see zero-shot accuracy per class (``features``: the test split, encoded once)."""
    import ipywidgets as widgets

    text = widgets.Text(value=template, description="template", continuous_update=False,
                        layout=widgets.Layout(width="60%"))
    return explore(lambda template: template_view(clip, features, classnames, template, reference),
                   {"template": text}, static)


# ------------------------------------------------------------------------------------------- live training


class LiveCurves:
    """``train_coop`` callback drawing loss and accuracy curves while CoOp trains.

    With a front end the figure is redrawn every ``every`` epochs in place; headless it is drawn once, at
    the end of training (redrawing would only add outputs nobody watches). ``figure`` is the last drawing.
    """

    def __init__(self, every: int = 1, title: str = "CoOp training (live)", static: Optional[bool] = None):
        self.every, self.title = max(1, int(every)), title
        self.static = (not has_frontend()) if static is None else static
        self.records: list[dict] = []
        self.figure = None
        self._handle = None

    def _draw(self) -> None:
        frame = pd.DataFrame(self.records).set_index("epoch")
        self.figure = training_curves(frame, self.title)
        try:
            from IPython.display import display
        except ImportError:
            return
        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)

    def on_train_start(self, learner: PromptLearner) -> None:
        self.records, self.figure, self._handle = [], None, None

    def on_epoch_end(self, record: dict, learner: PromptLearner) -> None:
        self.records.append(dict(record))
        if not self.static and len(self.records) % self.every == 0:
            self._draw()

    def on_train_end(self, result: Any) -> None:
        if self.static or len(self.records) % self.every != 0:
            self._draw()


# ------------------------------------------------------------------------------------ inside the context


def nearest_words_view(context: Union[PromptLearner, torch.Tensor], clip: ClipBundle, k: int = 3,
                       metric: str = "euclidean") -> pd.DataFrame:
    """The ``k`` nearest vocabulary words of each context vector: rows = positions, columns = ranks."""
    table = nearest_tokens(context, clip, k=k, metric=metric)
    table["cell"] = [f"{w} ({s:.2f})" for w, s in zip(table["word"], table["score"])]
    index = ["position"] if table["class"].isna().all() else ["class", "position"]
    wide = table.pivot_table(index=index, columns="rank", values="cell", aggfunc="first")
    wide.columns = [f"nearest {r}" for r in wide.columns]
    return wide


def context_explorer(tracker: DriftTracker, clip: ClipBundle, k: int = 3, static: Optional[bool] = None) -> Explorer:
    """Slide through training (``DriftTracker(keep_snapshots=True)``) and read each vector's nearest words.

    Headless it shows the last epoch with the paper's Euclidean metric.
    """
    import ipywidgets as widgets

    if not tracker.snapshots:
        raise ValueError("The tracker kept no snapshots: create it with DriftTracker(clip, keep_snapshots=True) "
                         "and pass it to train_coop(callbacks=[...]).")
    epoch = widgets.IntSlider(value=len(tracker.snapshots) - 1, min=0, max=len(tracker.snapshots) - 1,
                              description="epoch")
    metric = widgets.Dropdown(options=["euclidean", "cosine"], value="euclidean", description="metric")
    top = widgets.IntSlider(value=k, min=1, max=10, description="k")
    return explore(lambda epoch, metric, k: nearest_words_view(tracker.snapshots[epoch], clip, k, metric),
                   {"epoch": epoch, "metric": metric, "k": top}, static)


def similarity_view(contexts: Mapping[str, Union[PromptLearner, torch.Tensor]], first: str, second: str) -> View:
    """Cosine similarity between every vector of context ``first`` and every vector of ``second`` as a heatmap;
    ``numbers``: the ``similarity`` matrix and its ``diagonal_mean`` (same-position cosine)."""
    similarity = context_similarity(contexts[first], contexts[second])
    n = min(similarity.shape)
    diagonal = float(similarity[:n, :n].diagonal().mean())
    fig = heatmap(similarity, f"{first} vs {second}: mean same-position cosine {diagonal:.2f}",
                  f"vector of {second}", f"vector of {first}", "cosine similarity", annotate=similarity.numel() <= 64,
                  cmap="RdBu_r", vmin=-1, vmax=1)
    return View(fig, {"similarity": similarity, "diagonal_mean": diagonal})


def similarity_explorer(contexts: Mapping[str, Union[PromptLearner, torch.Tensor]],
                        static: Optional[bool] = None) -> Explorer:
    """Pick two learned contexts and compare them vector by vector (headless: the first two)."""
    import ipywidgets as widgets

    names = list(contexts)
    if len(names) < 2:
        raise ValueError("similarity_explorer needs at least two contexts to compare.")
    first = widgets.Dropdown(options=names, value=names[0], description="context A")
    second = widgets.Dropdown(options=names, value=names[1], description="context B")
    return explore(lambda first, second: similarity_view(contexts, first, second),
                   {"first": first, "second": second}, static)
