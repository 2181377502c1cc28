"""An interpretation lab for learned contexts: what a context *does*, not only which words it is near.

``interpret.py`` reads a context by its nearest words, norms and drift (what the official ``interpret_prompt.py``
does, plus a little). Nearest words of a learned context often read as gibberish, and they can be made to say
anything (the waywardness test below). The instruments here measure behaviour instead, each against a null:

* ``load_corpus``: every context the run cache holds, as one table (task, shots, seed, method, n_ctx, accuracy,
  vectors);
* ``position_ablation``: replace one vector (by zero, the mean word, a random vector of the same norm, or its
  initial vector) and measure the accuracy change, with a bootstrap interval over test images;
* ``interpolation_path``: accuracy along the straight line between two contexts (two seeds, a context and its
  initial words, a context and its nearest-word projection), and the barrier on it;
* ``recover_discrete_prompt``: a hard prompt of real (trained) tokens found by projected optimisation, as in PEZ
  (Wen et al. 2023), scored as an ordinary zero-shot template;
* ``waywardness_test``: contexts pulled toward an arbitrary phrase while solving the task (Khashabi et al. 2022);
* ``compare_contexts``: similarity of function (prediction agreement, CKA of text features) against similarity
  of parameters (cosine after the best matching of positions), with untrained contexts as the null.

Every search over the vocabulary runs in chunks of rows and of tokens, so real CLIP's 49,408-token table fits in
memory whatever the number of context vectors.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ._text import token_ids
from .classifier import CoOpClassifier
from .clip_loader import ClipBundle, weights_fingerprint
from .evaluation import accuracy, evaluate, predict_logits
from .features import FeatureSet
from .prompt_learner import PromptLearner, arrange
from .training import CoOpConfig, train_coop
from .zero_shot import zero_shot_classifier

if TYPE_CHECKING:  # annotations only: figures and widgets load matplotlib and ipywidgets when used
    from matplotlib.figure import Figure

    from .widgets import Explorer, View

Context = Union[PromptLearner, torch.Tensor]
ABLATIONS = ("zero", "mean", "random", "initial")


# ------------------------------------------------------------------------------------------ shared helpers


def _vectors(context: Context, clip: Optional[ClipBundle] = None) -> torch.Tensor:
    """The context as a float CPU tensor ``(n_ctx, width)`` or ``(n_cls, n_ctx, width)``, checked against ``clip``."""
    if isinstance(context, PromptLearner):
        if clip is not None and context.clip_name != clip.name:
            raise ValueError(f"model: this context was learned on {context.clip_name!r} but the CLIP given is "
                             f"{clip.name!r}; a context only means something to the model it was learned on.")
        ctx = context.ctx
    else:
        ctx = context
    if not isinstance(ctx, torch.Tensor) or ctx.dim() not in (2, 3):
        raise ValueError("Expected a PromptLearner or a context tensor (n_ctx, width) / (n_cls, n_ctx, width), got "
                         f"{tuple(ctx.shape) if isinstance(ctx, torch.Tensor) else type(ctx).__name__}.")
    if clip is not None and ctx.shape[-1] != clip.width:
        raise ValueError(f"width: the context has width {ctx.shape[-1]} but {clip.name!r} has token embeddings of "
                         f"width {clip.width}; it was learned on another model.")
    return ctx.detach().float().cpu()


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: contexts of shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be compared; "
                         f"both need the same number of vectors and the same width (the same model).")


def token_table(clip: ClipBundle, restrict_to_trained: bool = True,
                whole_words: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(token ids (V,), their embeddings (V, width))``: the candidates of every vocabulary search here."""
    from .interpret import vocabulary

    ids = vocabulary(clip, restrict_to_trained, whole_words)
    weight = clip.model.token_embedding.weight
    return ids, weight.detach()[ids.to(weight.device)].float().cpu()


def nearest_rows(rows: torch.Tensor, table: torch.Tensor, row_chunk: int = 1024,
                 token_chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean nearest row of ``table`` ``(V, width)`` for each of ``rows`` ``(R, width)``: ``(distance (R,),
    index (R,))``.

    Runs over blocks of ``row_chunk`` rows and ``token_chunk`` tokens with a running minimum, so memory stays at
    ``row_chunk * token_chunk`` scores whatever R and V (a class-specific context of 1000 classes against real
    CLIP's 49,408 tokens would otherwise need a 3 GB distance matrix). The search ranks by ``|t|^2 - 2 r.t`` (one
    matrix product per block; ``|r|^2`` is the same for every token); the distance returned is then computed
    directly, ``|r - t|``, since the expanded form loses precision near zero distance.
    """
    rows, table = rows.float(), table.float()
    best_index = torch.empty(rows.shape[0], dtype=torch.long)
    table_norms = table.pow(2).sum(dim=1)
    for start in range(0, rows.shape[0], row_chunk):
        block = rows[start:start + row_chunk]
        score = torch.full((block.shape[0],), float("inf"))
        index = torch.zeros(block.shape[0], dtype=torch.long)
        for token_start in range(0, table.shape[0], token_chunk):
            stop = token_start + token_chunk
            chunk_score, chunk_index = (table_norms[token_start:stop] - 2 * block @ table[token_start:stop].t()).min(1)
            better = chunk_score < score
            score = torch.where(better, chunk_score, score)
            index = torch.where(better, chunk_index + token_start, index)
        best_index[start:start + row_chunk] = index
    return (rows - table[best_index]).norm(dim=-1), best_index


def nearest_word_projection(clip: ClipBundle, context: Context, restrict_to_trained: bool = True,
                            whole_words: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The context with every vector replaced by its nearest word's embedding: ``(projected (same shape),
    token ids (..., n_ctx))``. The hard-prompt read-back of ``interpret.context_words``, as vectors."""
    ctx = _vectors(context, clip)
    ids, table = token_table(clip, restrict_to_trained, whole_words)
    _, index = nearest_rows(ctx.reshape(-1, ctx.shape[-1]), table)
    return table[index].reshape(ctx.shape), ids[index].reshape(ctx.shape[:-1])


def mean_token_embedding(clip: ClipBundle, restrict_to_trained: bool = True, chunk: int = 8192) -> torch.Tensor:
    """Mean embedding ``(width,)`` of the (trained) vocabulary, summed in chunks."""
    weight = clip.model.token_embedding.weight.detach()
    ids = torch.arange(weight.shape[0])
    if restrict_to_trained and clip.trained_token_ids is not None:
        ids = clip.trained_token_ids.long().cpu()
    total = torch.zeros(weight.shape[1], dtype=torch.float64)
    for start in range(0, len(ids), chunk):
        total += weight[ids[start:start + chunk].to(weight.device)].double().sum(dim=0).cpu()
    return (total / len(ids)).float()


def initial_context(clip: ClipBundle, learner: PromptLearner, seed: Optional[int] = None) -> torch.Tensor:
    """The vectors ``learner`` started from: its ``ctx_init`` words, or (random init) the N(0, 0.02) draw that
    ``train_coop`` makes with ``config.seed == seed``."""
    if learner.ctx_init:
        words = PromptLearner(clip, learner.classnames[:1], ctx_init=learner.ctx_init).ctx.detach().float().cpu()
        return words.unsqueeze(0).repeat(learner.n_cls, 1, 1) if learner.csc else words
    if seed is None:
        raise ValueError("This context started from random vectors, not words: pass the training seed "
                         "(CoOpConfig.seed) to rebuild its initial draw, e.g. initial_context(clip, learner, seed=1).")
    fresh = PromptLearner(clip, learner.classnames, n_ctx=learner.n_ctx, csc=learner.csc,
                          class_token_position=learner.class_token_position,
                          generator=torch.Generator().manual_seed(seed))
    return fresh.ctx.detach().float().cpu()


class ContextScorer:
    """Scores many contexts in one prompt layout (class names, class position) on one set of image features.

    A private copy of the layout's learner is used, so the caller's learner is never modified. ``correct(ctx)``
    is the per-image outcome ``(N,)`` from which accuracies and bootstrap intervals are computed.
    """

    def __init__(self, clip: ClipBundle, layout: PromptLearner, features: Optional[FeatureSet] = None):
        _vectors(layout, clip)
        self.clip = clip
        self.learner = PromptLearner(clip, layout.classnames, n_ctx=layout.n_ctx, csc=layout.csc,
                                     class_token_position=layout.class_token_position, generator=torch.Generator())
        self.learner.ctx_init = layout.ctx_init
        self.classifier = CoOpClassifier(clip, self.learner)
        self.classifier.eval()
        self.shape = tuple(self.learner.ctx.shape)
        self.features = features
        if features is not None and features.classnames is not None \
                and len(features.classnames) != len(layout.classnames):
            raise ValueError(f"The features have {len(features.classnames)} classes but the context's prompts have "
                             f"{len(layout.classnames)}; score a context on its own task's features.")

    def _load(self, ctx: Context) -> None:
        vectors = _vectors(ctx, self.clip)
        if tuple(vectors.shape) != self.shape:
            raise ValueError(f"A context of shape {tuple(vectors.shape)} does not fit this layout {self.shape} "
                             f"(number of vectors, class-specific or not, width).")
        with torch.no_grad():
            self.learner.ctx.copy_(vectors.to(self.learner.ctx.device, self.learner.ctx.dtype))

    def text_features(self, ctx: Context, classnames: Optional[Sequence[str]] = None) -> torch.Tensor:
        """L2-normalised class text features ``(n_cls, embed_dim)`` (other ``classnames`` for a unified context)."""
        self._load(ctx)
        classifier = self.classifier
        if classnames is not None:
            classifier = CoOpClassifier(self.clip, self.learner.with_classnames(self.clip, classnames))
        with torch.no_grad():
            return classifier.text_features().float().cpu()

    def predictions(self, ctx: Context, features: Optional[FeatureSet] = None) -> torch.Tensor:
        """Predicted class ``(N,)`` of every image of ``features`` (default: the scorer's)."""
        features = features if features is not None else self.features
        if features is None:
            raise ValueError("No image features: pass features=... (a FeatureSet, e.g. task.test).")
        self._load(ctx)
        logits, _ = predict_logits(self.classifier, (features.view(0), features.labels))
        return logits.argmax(1)

    def correct(self, ctx: Context, features: Optional[FeatureSet] = None) -> torch.Tensor:
        """Per-image correctness ``(N,)`` (bool)."""
        features = features if features is not None else self.features
        return self.predictions(ctx, features) == features.labels.cpu()

    def accuracy(self, ctx: Context, features: Optional[FeatureSet] = None) -> float:
        """Accuracy (%), counted as ``evaluation.accuracy`` counts it."""
        predictions = self.predictions(ctx, features)  # says what is missing when there are no features
        return 100 * accuracy(predictions, (features if features is not None else self.features).labels)


def _scorer(clip: ClipBundle, layout: Optional[PromptLearner], contexts: Sequence[Context],
            features: Optional[FeatureSet]) -> ContextScorer:
    layout = layout or next((c for c in contexts if isinstance(c, PromptLearner)), None)
    if layout is None:
        raise ValueError("Pass layout=<a PromptLearner> (or one of the contexts as a PromptLearner): it gives the "
                         "class names and prompt layout the vectors are scored in.")
    return ContextScorer(clip, layout, features)


def bootstrap_interval(values: torch.Tensor, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                       chunk: int = 200) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` ``(N,)`` (resampling the N items)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}.")
    values = values.double().flatten()
    generator = torch.Generator().manual_seed(seed)
    means = []
    for start in range(0, n_boot, chunk):  # bounded memory: chunk x N indices at a time
        index = torch.randint(len(values), (min(chunk, n_boot - start), len(values)), generator=generator)
        means.append(values[index].mean(dim=1))
    means = torch.cat(means)
    tail = (1 - level) / 2
    return float(torch.quantile(means, tail)), float(torch.quantile(means, 1 - tail))


# ---------------------------------------------------------------------------------------------- 1. corpus


def _corpus_dir(source: Any) -> Path:
    if hasattr(source, "kind") and hasattr(source, "data_root"):  # a World
        return source.cache_dir
    if isinstance(source, (str, Path)):
        return Path(source)
    raise ValueError(f"Pass a World (ct.use_world(...)) or a cache folder, got {type(source).__name__}.")


def load_corpus(source: Any, clip: Optional[ClipBundle] = None) -> pd.DataFrame:
    """Every context the run cache holds, one row each: ``task, shots, seed, method, n_ctx, csc,
    class_token_position, ctx_init, model, accuracy, vectors, path``.

    Args:
        source: a ``World`` (its ``cache_dir`` folder) or a cache folder.
        clip: keep only contexts learned on this model (same name, width and weights: another pretraining run of
            the embedded model has the same name).

    A run cached twice (the training code changed in between, so it was trained again under a new name) counts
    once: its newest file.

    ``accuracy`` is the final *validation* accuracy (%) the run recorded (the cache stores no test numbers,
    and reading contexts should not tune anything on the test set); ``vectors`` holds the ``ctx`` tensor and
    ``path`` the file (``ct.load_context(path, clip)`` rebuilds the learner).
    """
    from .checkpoint import read_context

    folder = _corpus_dir(source)
    how = ("Fill it by running notebook 04 (its sweeps cache every CoOp run) or by training with a cache folder: "
           "ct.fit_coop(clip, task, shots, seed, world.recipe()(shots, dataset=task.name), "
           "cache_dir=world.cache_dir), or ct.shot_sweep(clip, tasks, config=world.recipe(), cache_dir=...).")
    rows, models = [], set()
    fingerprint = weights_fingerprint(clip) if clip is not None else None
    for path in sorted(folder.glob("**/*.safetensors")) if folder.is_dir() else []:
        try:
            ctx, meta = read_context(path)
        except ValueError:
            continue  # another safetensors file (e.g. cached image features)
        extra = meta.get("extra", {})
        models.add(meta["model_name"])
        if clip is not None and (meta["model_name"] != clip.name or meta["width"] != clip.width
                                 or meta.get("weights_fingerprint") not in (None, fingerprint)):
            continue
        history = extra.get("history") or []
        val = [h.get("val_acc") for h in history if h.get("val_acc") is not None]
        config = meta.get("config") or {}
        rows.append(dict(task=extra.get("task"), shots=extra.get("shots"), seed=extra.get("seed", config.get("seed")),
                         method=extra.get("method", "coop"), n_ctx=meta["n_ctx"], csc=meta["csc"],
                         class_token_position=meta["class_token_position"], ctx_init=meta.get("ctx_init"),
                         model=meta["model_name"], accuracy=100 * val[-1] if val else float("nan"), vectors=ctx,
                         path=str(path), config=json.dumps(config, sort_keys=True), mtime=path.stat().st_mtime))
    if not rows:
        if models:
            raise ValueError(f"The cache {folder} holds contexts of {sorted(models)} only, none of {clip.name!r}. "
                             f"{how}")
        raise ValueError(f"No cached contexts in {folder}. {how}")
    frame = pd.DataFrame(rows)
    same_run = ["task", "method", "shots", "seed", "n_ctx", "csc", "class_token_position", "ctx_init", "model", "config"]
    frame = frame.sort_values("mtime").drop_duplicates(same_run, keep="last").drop(columns=["config", "mtime"])
    return frame.sort_values(["task", "method", "csc", "class_token_position", "n_ctx", "shots", "seed"],
                             key=lambda c: c.astype(str) if c.dtype == object else c, ignore_index=True)


# ----------------------------------------------------------------------------------- 2. per-position ablation


def position_ablation(clip: ClipBundle, learner: PromptLearner, features: FeatureSet,
                      replacements: Sequence[str] = ABLATIONS, initial: Optional[torch.Tensor] = None,
                      n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                      progress: bool = False) -> pd.DataFrame:
    """Accuracy change when one context vector is replaced, position by position.

    Replacements: ``"zero"`` (the zero vector), ``"mean"`` (the mean trained-token embedding), ``"random"`` (a
    random direction with the vector's own norm; seeded), ``"initial"`` (its initial vector: the word it was
    initialised from, or ``initial`` given explicitly, e.g. ``initial_context(clip, learner, seed)``). For a
    class-specific context position i is replaced in every class.

    Returns one row per (position, replacement): ``position`` (1-based), ``replacement``, ``accuracy`` (%),
    ``change`` (points, ablated minus intact) and ``low``/``high``, a paired percentile bootstrap interval of the
    change over test images. ``attrs["accuracy"]`` is the intact context's accuracy.
    """
    unknown = set(replacements) - set(ABLATIONS)
    if unknown or not replacements:
        raise ValueError(f"Unknown replacement(s) {sorted(unknown)}; choose from {', '.join(ABLATIONS)}.")
    scorer = ContextScorer(clip, learner, features)
    ctx = _vectors(learner, clip)
    if "initial" in replacements:
        initial = initial_context(clip, learner) if initial is None else _vectors(initial, clip)
        _same_shape(ctx, initial, "initial")
    mean = mean_token_embedding(clip)
    generator = torch.Generator().manual_seed(seed)
    intact = scorer.correct(ctx).double()
    rows = []
    for position in tqdm(range(ctx.shape[-2]), desc="position ablation", disable=not progress):
        for name in replacements:
            ablated = ctx.clone()
            original = ctx[..., position, :]
            if name == "zero":
                ablated[..., position, :] = 0
            elif name == "mean":
                ablated[..., position, :] = mean
            elif name == "random":
                direction = F.normalize(torch.randn(original.shape, generator=generator), dim=-1)
                ablated[..., position, :] = direction * original.norm(dim=-1, keepdim=True)
            else:
                ablated[..., position, :] = initial[..., position, :]
            difference = scorer.correct(ablated).double() - intact
            low, high = bootstrap_interval(difference, n_boot, level, seed=seed + position)
            rows.append(dict(position=position + 1, replacement=name,
                             accuracy=100 * float((intact + difference).mean()),
                             change=100 * float(difference.mean()), low=100 * low, high=100 * high))
    frame = pd.DataFrame(rows)
    frame.attrs["accuracy"] = 100 * float(intact.mean())
    return frame


def ablation_figure(table: pd.DataFrame, replacement: str = "zero") -> "Figure":
    """Accuracy change per position (bars) with its bootstrap interval, for one replacement."""
    from matplotlib.figure import Figure

    rows = table[table["replacement"] == replacement]
    if rows.empty:
        raise ValueError(f"No rows for replacement {replacement!r}; the table has {sorted(set(table['replacement']))}.")
    fig = Figure(figsize=(max(5.0, 0.35 * len(rows) + 2), 3.4), layout="constrained")
    ax = fig.subplots()
    errors = np.vstack([rows["change"] - rows["low"], rows["high"] - rows["change"]])
    ax.bar(rows["position"], rows["change"], yerr=errors, capsize=2, color="#d62728")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(rows["position"])
    ax.set_xlabel("context position replaced")
    ax.set_ylabel("accuracy change (points)")
    title = f"Replacing one vector by '{replacement}'"
    if "accuracy" in table.attrs:
        title += f" (intact: {table.attrs['accuracy']:.1f}%)"
    ax.set_title(title, fontsize=11)
    return fig


# ------------------------------------------------------------------------------------- 3. interpolation paths


def interpolation_path(clip: ClipBundle, start: Context, end: Context, features: FeatureSet, steps: int = 11,
                       layout: Optional[PromptLearner] = None) -> pd.DataFrame:
    """Accuracy (%) at ``steps`` evenly spaced points of the straight line ``(1 - alpha) start + alpha end``.

    ``layout`` gives the class names and prompt layout (default: whichever of ``start``/``end`` is a
    PromptLearner). Columns: ``alpha``, ``accuracy``, ``linear`` (the straight line between the two end
    accuracies), ``norm`` (mean vector norm along the path; a straight line between two far-apart vectors passes
    through shorter ones).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (the two ends included), got {steps!r}.")
    scorer = _scorer(clip, layout, (start, end), features)
    a, b = _vectors(start, clip), _vectors(end, clip)
    _same_shape(a, b, "interpolation_path")
    rows = []
    for alpha in torch.linspace(0, 1, steps).tolist():
        point = torch.lerp(a, b, alpha)
        rows.append(dict(alpha=alpha, accuracy=scorer.accuracy(point), norm=float(point.norm(dim=-1).mean())))
    frame = pd.DataFrame(rows)
    first, last = frame["accuracy"].iloc[0], frame["accuracy"].iloc[-1]
    frame["linear"] = first + frame["alpha"] * (last - first)
    return frame[["alpha", "accuracy", "linear", "norm"]]


def path_barrier(path: pd.DataFrame) -> float:
    """How far (points) accuracy dips below the straight line between the two ends; 0 when it never does."""
    return float(max(0.0, (path["linear"] - path["accuracy"]).max()))


def paths_figure(paths: Mapping[str, pd.DataFrame], alpha: Optional[float] = None,
                 reference: Optional[float] = None, reference_label: str = "zero-shot") -> "Figure":
    """Accuracy along each path (alpha 0: the start, 1: the end); a vertical line marks ``alpha``, a dashed one
    the ``reference`` accuracy (e.g. zero-shot CLIP)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, path in paths.items():
        ax.plot(path["alpha"], path["accuracy"], marker="o", markersize=3, label=name)
    if alpha is not None:
        ax.axvline(alpha, color="black", linestyle=":", linewidth=1)
    if reference is not None:
        ax.axhline(reference, color="#7f7f7f", linestyle="--", linewidth=1, label=reference_label)
    ax.set_xlabel("alpha (0 = start, 1 = end)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy along straight paths between contexts", fontsize=11)
    ax.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------------------- 4. discrete prompt recovery


@dataclass
class DiscretePrompt:
    """A hard prompt recovered from a learned context.

    ``template`` is a plain zero-shot template (``"w1 w2 ... {}."``); ``accuracy`` (%) is that template's accuracy
    through ``zero_shot_classifier`` on the dataset's test features; ``val_accuracy`` (%) the score it was
    selected by; ``retokenizes`` whether tokenizing the template gives back exactly the chosen tokens (when False,
    the text a user types is not the prompt that was optimised, and ``accuracy`` measures the text).
    """

    template: str
    words: list[str]
    token_ids: list[int]
    accuracy: float
    val_accuracy: float
    retokenizes: bool
    history: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def _template(words: Sequence[str], position: str) -> str:
    return " ".join(arrange(position, words, ["{}"])) + "."


def _splits(dataset: Any, val: Optional[FeatureSet]) -> tuple[FeatureSet, FeatureSet]:
    test = getattr(dataset, "test", dataset)
    val = val if val is not None else getattr(dataset, "val", None)
    if not isinstance(test, FeatureSet) or not isinstance(val, FeatureSet):
        raise ValueError("dataset must be a TaskFeatures (ct.encode_task; its .val selects, its .test is reported), or a test "
                         "FeatureSet together with val=<validation FeatureSet>: the prompt is never chosen on the "
                         "set it is reported on.")
    return val, test


def recover_discrete_prompt(clip: ClipBundle, learner: PromptLearner, dataset: Any, steps: int = 300,
                            seed: int = 0, lr: Optional[float] = None, init: str = "random", eval_every: int = 10,
                            val: Optional[FeatureSet] = None, progress: bool = False) -> DiscretePrompt:
    """A hard prompt of real tokens that does what ``learner``'s context does (PEZ, Wen et al. 2023).

    Continuous vectors are optimised so that the *projected* prompt (each vector replaced by its nearest trained
    whole-word token) gives the same class text features as the learned context (loss: 1 - mean cosine); the
    gradient at the projection updates the continuous vectors (straight-through). Every ``eval_every`` steps the
    projected prompt is scored on the validation features and the best one is kept.

    Args:
        dataset: a ``TaskFeatures`` (``.val`` selects, ``.test`` is reported), or a test FeatureSet with
            ``val=``.
        init: ``"random"`` (random trained words, seeded: PEZ's start) or ``"context"`` (the learned vectors
            themselves, so step 0 is the nearest-word read-back).
        lr: Adam step (default: 0.1 x the median word-embedding norm, PEZ's 0.1 at CLIP's scale).
    """
    if learner.csc:
        raise ValueError("csc: a class-specific context has one prompt per class; recover a unified context "
                         "(csc=False), whose one hard prompt is a zero-shot template.")
    if init not in ("random", "context"):
        raise ValueError(f"init must be 'random' or 'context', got {init!r}.")
    for name, value, minimum in (("steps", steps, 0), ("eval_every", eval_every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    val, test = _splits(dataset, val)
    scorer = ContextScorer(clip, learner, val)
    ids, table = token_table(clip)
    decoder = getattr(clip.tokenizer, "decoder", {})
    # a brace in a word would break the "{}" template the result is used as
    usable = torch.tensor([not {"{", "}"} & set(decoder.get(t, "")) for t in ids.tolist()])
    ids, table = ids[usable], table[usable]
    target = scorer.text_features(learner)
    generator = torch.Generator().manual_seed(seed)
    if init == "random":
        soft = table[torch.randint(len(ids), (learner.n_ctx,), generator=generator)].clone()
    else:
        soft = _vectors(learner, clip).clone()
    soft.requires_grad_(True)
    from .interpret import vocabulary_norm

    optimizer = torch.optim.Adam([soft], lr=lr if lr is not None else 0.1 * vocabulary_norm(clip))
    work = scorer.learner
    scores: dict[tuple, float] = {}
    history, best = [], None
    for step in tqdm(range(steps + 1), desc="discrete prompt", disable=not progress):
        _, index = nearest_rows(soft.detach(), table)
        hard = table[index]
        with torch.no_grad():
            work.ctx.copy_(hard.to(work.ctx.device, work.ctx.dtype))
        work.ctx.grad = None
        with torch.enable_grad():
            loss = 1 - (scorer.classifier.text_features().float().cpu() * target).sum(-1).mean()
            loss.backward()
        key = tuple(index.tolist())
        if step % eval_every == 0 or step == steps:
            if key not in scores:
                scores[key] = scorer.accuracy(hard)
            history.append(dict(step=step, loss=float(loss.detach()), val_accuracy=scores[key]))
            if best is None or scores[key] > best[1]:
                best = (key, scores[key])
        if step < steps:
            soft.grad = work.ctx.grad.detach().float().cpu().clone()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    chosen = ids[list(best[0])].tolist()
    from .interpret import token_word

    words = [token_word(clip, t) for t in chosen]
    template = _template(words, learner.class_token_position)
    retokenizes = token_ids(clip.tokenizer, " ".join(words)) == chosen
    zero_shot = zero_shot_classifier(clip, learner.classnames, template)
    accuracy = 100 * evaluate(zero_shot, test).accuracy
    return DiscretePrompt(template, words, chosen, accuracy, best[1], retokenizes, pd.DataFrame(history))


def template_choice(clip: ClipBundle, templates: Sequence[str], classnames: Sequence[str], val: FeatureSet,
                    test: FeatureSet) -> pd.DataFrame:
    """Hand-written templates scored on validation and test: the best one is the top *validation* row (the
    honest "best hand-written prompt"; picking it on the test set would be an oracle)."""
    from .zero_shot import template_accuracies

    frame = template_accuracies(clip, val, list(templates), classnames).rename(columns={"accuracy": "val_accuracy"})
    frame["accuracy"] = template_accuracies(clip, test, list(templates), classnames)["accuracy"].to_numpy()
    frame[["val_accuracy", "accuracy"]] *= 100
    return frame.sort_values("val_accuracy", ascending=False, kind="stable", ignore_index=True)


# ---------------------------------------------------------------------------------------- 5. waywardness


def phrase_vectors(clip: ClipBundle, phrase: str, n_ctx: int) -> torch.Tensor:
    """Token embeddings ``(L, width)`` of ``phrase`` (L <= n_ctx), the target of the waywardness pull."""
    if not isinstance(phrase, str) or not phrase.strip():
        raise ValueError(f"phrase must be a non-empty string of words, got {phrase!r}.")
    ids = token_ids(clip.tokenizer, " ".join(phrase.split()))
    if len(ids) > n_ctx:
        raise ValueError(f"The phrase {phrase!r} is {len(ids)} tokens but the context has only {n_ctx} vectors; use "
                         f"a shorter phrase or a longer context (CoOpConfig.n_ctx >= {len(ids)}).")
    from .clip_loader import warn_if_untrained

    warn_if_untrained(clip, phrase)
    weight = clip.model.token_embedding.weight
    return weight.detach()[torch.tensor(ids, device=weight.device)].float().cpu()


class PhrasePull:
    """``train_coop`` callback: after every optimiser step, move the first L context vectors a fraction ``pull``
    of the way toward the phrase's L token embeddings (a decoupled pull, as AdamW's weight decay is a decoupled
    pull toward zero). ``pull = 0`` is plain CoOp; needs ``config.log_every = 1``."""

    def __init__(self, target: torch.Tensor, pull: float):
        if isinstance(pull, bool) or not isinstance(pull, (int, float)) or not 0 <= pull <= 1:
            raise ValueError(f"pull must be a number in [0, 1] (the fraction of the way moved each step), "
                             f"got {pull!r}.")
        self.target, self.pull = target, float(pull)

    def on_step_end(self, record: dict, learner: PromptLearner) -> None:
        if self.pull:
            with torch.no_grad():
                rows = learner.ctx[..., :self.target.shape[0], :]
                rows.lerp_(self.target.to(rows.device, rows.dtype), self.pull)


def waywardness_test(clip: ClipBundle, train: FeatureSet, val: FeatureSet, test: FeatureSet, phrase: str,
                     pulls: Sequence[float] = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1),
                     config: Optional[CoOpConfig] = None, classnames: Optional[Sequence[str]] = None,
                     progress: bool = False) -> pd.DataFrame:
    """Train one context per ``pull`` strength, each pulled toward ``phrase`` while it solves the task.

    Returns one row per pull: ``pull``, ``accuracy`` (test, %), ``val_accuracy`` (%), ``phrase_match`` (share of the
    phrase's positions whose nearest word is the phrase's word), ``distance`` (mean Euclidean distance of those
    vectors to the phrase's embeddings), ``words`` (the nearest-word reading of the whole context). If accuracy
    holds while ``phrase_match`` reaches 1, the nearest words spell an arbitrary phrase and still the context
    works: nearest words cannot be what explains it. ``attrs["phrase_accuracy"]`` (%): the phrase typed as a
    zero-shot template (``attrs["phrase_template"]``), what a reader of the nearest words would expect.
    """
    from .interpret import context_words

    config = config or CoOpConfig.embedded(16)
    # validation only after the last epoch (the table reports that one); the pull acts after every step
    config = config.replace(log_every=1, progress=False, eval_every=config.epochs)
    names = list(classnames) if classnames is not None else train.classnames
    target = phrase_vectors(clip, phrase, config.n_ctx if config.ctx_init is None else
                            PromptLearner(clip, names[:1], ctx_init=config.ctx_init).n_ctx)
    wanted = token_ids(clip.tokenizer, " ".join(phrase.split()))
    rows = []
    for pull in tqdm(list(pulls), desc="waywardness", disable=not progress):
        result = train_coop(clip, train, val, config, callbacks=[PhrasePull(target, pull)], classnames=names)
        ctx = _vectors(result.learner, clip)[..., :target.shape[0], :]
        _, nearest = nearest_word_projection(clip, ctx, whole_words=False)
        rows.append(dict(pull=float(pull), accuracy=100 * evaluate(result.classifier, test).accuracy,
                         val_accuracy=100 * (result.history[-1]["val_acc"] or float("nan")),
                         phrase_match=float((nearest.reshape(-1, len(wanted)) == torch.tensor(wanted)).float().mean()),
                         distance=float((ctx - target).norm(dim=-1).mean()),
                         words=context_words(result.learner, clip)))
    table = pd.DataFrame(rows)
    # the phrase itself as a hard prompt, in the context's layout: what the nearest words would predict
    template = _template(phrase.split(), config.class_token_position)
    table.attrs["phrase_template"] = template
    table.attrs["phrase_accuracy"] = 100 * evaluate(zero_shot_classifier(clip, names, template), test).accuracy
    return table


def waywardness_reach(table: pd.DataFrame, tolerance: float) -> float:
    """The strongest pull whose test accuracy stays within ``tolerance`` points of the unpulled context's."""
    reference = float(table.loc[table["pull"] == table["pull"].min(), "accuracy"].iloc[0])
    held = table[table["accuracy"] >= reference - tolerance]
    return float(held["pull"].max())


def waywardness_findings(table: pd.DataFrame, tolerance: float) -> dict[str, Any]:
    """What the waywardness claims compare, read from ``waywardness_test``'s table (accuracies in %).

    ``unpulled``: the weakest pull's accuracy; ``phrase``: the phrase typed as a prompt; ``spelled_pull`` and
    ``spelled_accuracy``: the weakest pull whose nearest words spell the phrase exactly (NaN when no pull does, e.g.
    too few steps: every claim about a spelled context is then false, not an error); ``nearly``: the accuracies of
    the pulls that spell most (>= 90%) but not all of it; ``reach``: ``waywardness_reach(table, tolerance)``.
    """
    spelled = table[table["phrase_match"] >= 1.0].sort_values("pull")
    nearly = table[(table["phrase_match"] >= 0.9) & (table["phrase_match"] < 1.0)]
    return dict(unpulled=float(table.loc[table["pull"] == table["pull"].min(), "accuracy"].iloc[0]),
                phrase=float(table.attrs["phrase_accuracy"]),
                spelled_pull=float(spelled["pull"].iloc[0]) if len(spelled) else math.nan,
                spelled_accuracy=float(spelled["accuracy"].iloc[0]) if len(spelled) else math.nan,
                nearly=[float(a) for a in nearly["accuracy"]],
                reach=waywardness_reach(table, tolerance))


# ------------------------------------------------------------------------------ 6. function vs parameters


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) of two representations ``(n, d1)``, ``(n, d2)`` of the same n items."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2:
        raise ValueError(f"CKA needs the same items (>= 2) in both: got {x.shape[0]} and {y.shape[0]} rows.")
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    cross = (x.t() @ y).norm() ** 2
    return float(cross / ((x.t() @ x).norm() * (y.t() @ y).norm()))


def matched_cosine(a: Context, b: Context) -> tuple[float, list[int]]:
    """Mean cosine between the vectors of two unified contexts after the best one-to-one matching of positions
    (Hungarian algorithm): ``(mean cosine, the position of b matched to each position of a)``. Word order in a
    context need not be the same across seeds; this is the most similar they can be made to look."""
    from scipy.optimize import linear_sum_assignment

    x, y = _vectors(a), _vectors(b)
    _same_shape(x, y, "matched_cosine")
    if x.dim() != 2:
        raise ValueError("matched_cosine compares unified contexts (n_ctx, width); pass one class's vectors of a "
                         "class-specific context.")
    similarity = F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).t()
    rows, cols = linear_sum_assignment(similarity.numpy(), maximize=True)
    return float(similarity[rows, cols].mean()), cols.tolist()


def untrained_contexts(clip: ClipBundle, layout: PromptLearner, seeds: Sequence[int]) -> dict[str, torch.Tensor]:
    """Independently initialised, untrained contexts shaped like ``layout``'s (the random N(0, 0.02) start of
    ``train_coop`` with each seed): the null for ``compare_contexts``."""
    names = layout.classnames if layout.csc else layout.classnames[:1]  # a unified context needs no class names
    # built as train_coop builds its learner (a CPU generator, then moved to the model's device and dtype)
    return {f"untrained seed {seed}": PromptLearner(clip, names, n_ctx=layout.n_ctx, csc=layout.csc,
                                                    generator=torch.Generator().manual_seed(seed)).ctx.detach()
            .float().cpu() for seed in seeds}


def compare_contexts(clip: ClipBundle, contexts: Mapping[str, Context], features: FeatureSet,
                     layout: Optional[PromptLearner] = None, cka_classnames: Optional[Sequence[str]] = None,
                     null: Optional[Mapping[str, Context]] = None) -> pd.DataFrame:
    """Function against parameters for every pair of ``contexts`` (and of the ``null`` contexts, e.g.
    ``untrained_contexts``): one row per pair with ``a``, ``b``, ``kind`` (``"learned-learned"``,
    ``"learned-null"`` or ``"null-null"``), ``agreement`` (% of images of ``features`` given the same class),
    ``cka`` (linear CKA of the class text features each context produces for ``cka_classnames``, default the
    layout's classes), ``matched_cosine`` and ``same_position_cosine`` (mean cosine of vector i with vector i)."""
    null = dict(null or {})
    clash = set(null) & set(contexts)
    if clash:
        raise ValueError(f"Names used both for contexts and for the null: {sorted(clash)}.")
    everything = {**contexts, **null}
    names = list(everything)
    if len(names) < 2:
        raise ValueError("compare_contexts needs at least two contexts.")
    scorer = _scorer(clip, layout, list(everything.values()), features)
    vectors = {n: _vectors(c, clip) for n, c in everything.items()}
    for n in names[1:]:
        _same_shape(vectors[names[0]], vectors[n], f"compare_contexts ({names[0]!r} vs {n!r})")
    predictions = {n: scorer.predictions(v) for n, v in vectors.items()}
    classnames = list(cka_classnames) if cka_classnames is not None else None
    text = {n: scorer.text_features(v, classnames) for n, v in vectors.items()}
    rows = []
    for a, b in itertools.combinations(names, 2):
        same = F.cosine_similarity(vectors[a], vectors[b], dim=-1).mean()
        matched = matched_cosine(vectors[a], vectors[b])[0] if vectors[a].dim() == 2 else math.nan
        kind = "-".join(sorted(("null" if n in null else "learned") for n in (a, b)))
        rows.append(dict(a=a, b=b, kind=kind, agreement=100 * float((predictions[a] == predictions[b]).float().mean()),
                         cka=linear_cka(text[a], text[b]),
                         matched_cosine=matched,
                         same_position_cosine=float(same)))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------ widgets


def ablation_explorer(table: pd.DataFrame, static: Optional[bool] = None) -> "Explorer":
    """Pick a replacement, see the accuracy change of every position (headless: the first replacement)."""
    import ipywidgets as widgets

    from .widgets import explore

    options = list(dict.fromkeys(table["replacement"]))
    choice = widgets.Dropdown(options=options, value=options[0], description="replace by")
    return explore(lambda replacement: ablation_figure(table, replacement), {"replacement": choice}, static)


def path_view(clip: ClipBundle, paths: Mapping[str, pd.DataFrame], ends: Mapping[str, tuple[Context, Context]],
              path: str, alpha: float, reference: Optional[float] = None) -> "View":
    """The accuracy curves with ``alpha`` marked, and the nearest words of the context at ``alpha`` on ``path``."""
    from .interpret import context_words
    from .widgets import View

    start, end = (_vectors(c, clip) for c in ends[path])
    point = torch.lerp(start, end, float(alpha))
    row = paths[path].iloc[(paths[path]["alpha"] - alpha).abs().argmin()]
    words = context_words(point, clip)
    fig = paths_figure(paths, alpha, reference)
    fig.axes[0].set_title(f"{path}, alpha {alpha:.2f}: {row['accuracy']:.1f}%\nnearest words: {words}", fontsize=9)
    return View(fig, {"accuracy": float(row["accuracy"]), "words": words})


def path_explorer(clip: ClipBundle, paths: Mapping[str, pd.DataFrame],
                  ends: Mapping[str, tuple[Context, Context]], reference: Optional[float] = None,
                  static: Optional[bool] = None) -> "Explorer":
    """Slide along a path between two contexts: its accuracy and the nearest words of the point reached
    (headless: the first path at its midpoint). ``ends`` maps each path's name to its ``(start, end)``;
    ``reference``: an accuracy drawn across (e.g. zero-shot CLIP)."""
    import ipywidgets as widgets

    from .widgets import explore

    names = list(paths)
    missing = [n for n in names if n not in ends]
    if missing:
        raise ValueError(f"No (start, end) given for path(s) {missing}.")
    which = widgets.Dropdown(options=names, value=names[0], description="path")
    alphas = paths[names[0]]["alpha"]
    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=float(alphas.iloc[1] - alphas.iloc[0]),
                                 description="alpha")
    return explore(lambda path, alpha: path_view(clip, paths, ends, path, alpha, reference),
                   {"path": which, "alpha": slider}, static)
