"""Looking inside a learned context.

The context vectors live in the token-embedding space, so one can ask which vocabulary tokens lie nearest
to each of them (the CoOp paper does this with the Euclidean distance and finds the words only partly
readable). Two things make the answer more honest than a raw nearest-neighbour search:

* candidates are restricted to tokens the model was trained on when that set is known (the embedded
  model's ``clip.trained_token_ids``); untrained rows would be meaningless noise;
* by default only whole-word tokens are candidates, so the answer is words, not BPE fragments
  (``whole_words=False`` shows fragments too, marked with a trailing ``-``).

Also here: vector norms, drift from the initial vectors during training, similarity of two contexts, how far
apart the vocabulary's words are (the scale for a context's distance to its nearest word), and contexts
transplanted between tasks.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import pandas as pd
import torch
import torch.nn.functional as F

from .classifier import CoOpClassifier
from .clip_loader import ClipBundle
from .evaluation import score
from .prompt_learner import PromptLearner
from .task_features import TaskFeatures
from .zero_shot import zero_shot_classifier

Context = Union[PromptLearner, torch.Tensor]
METRICS = ("euclidean", "cosine")


def _ctx(context: Context) -> torch.Tensor:
    ctx = context.ctx if isinstance(context, PromptLearner) else context
    if not isinstance(ctx, torch.Tensor) or ctx.dim() not in (2, 3):
        raise ValueError("Expected a PromptLearner or a context tensor (n_ctx, width) / (n_cls, n_ctx, width).")
    return ctx.detach().float().cpu()


def _rows(context: Context) -> tuple[torch.Tensor, list, list[int]]:
    """Context as ``(R, width)`` rows with the class (None when unified) and 1-based position of each row."""
    ctx = _ctx(context)
    if ctx.dim() == 2:
        return ctx, [None] * ctx.shape[0], list(range(1, ctx.shape[0] + 1))
    n_cls, n_ctx, _ = ctx.shape
    names = context.classnames if isinstance(context, PromptLearner) else list(range(n_cls))
    classes = [names[c] for c in range(n_cls) for _ in range(n_ctx)]
    return ctx.reshape(n_cls * n_ctx, -1), classes, list(range(1, n_ctx + 1)) * n_cls


def vocabulary(clip: ClipBundle, restrict_to_trained: bool = True, whole_words: bool = True) -> torch.Tensor:
    """Candidate token ids ``(V,)`` for nearest-word searches (special tokens excluded)."""
    tokenizer = clip.tokenizer
    ids = torch.arange(clip.model.token_embedding.weight.shape[0])
    if restrict_to_trained and clip.trained_token_ids is not None:
        ids = clip.trained_token_ids.long().cpu()
    special = {getattr(tokenizer, "sot_token_id", None), getattr(tokenizer, "eot_token_id", None)}
    decoder = getattr(tokenizer, "decoder", None)
    keep = [t for t in ids.tolist() if t not in special and (decoder is None or t in decoder)
            and not (whole_words and decoder is not None and not decoder[t].endswith("</w>"))]
    if not keep:
        raise ValueError("No candidate tokens left; try whole_words=False or restrict_to_trained=False.")
    return torch.tensor(keep, dtype=torch.long)


def token_word(clip: ClipBundle, token_id: int) -> str:
    """A readable form of one token: the word, or a BPE fragment marked with a trailing ``-``."""
    tokenizer = clip.tokenizer
    if not hasattr(tokenizer, "decode"):
        return str(token_id)
    text = tokenizer.decode([token_id]).strip()
    decoder = getattr(tokenizer, "decoder", None)
    whole = decoder is None or decoder.get(token_id, "").endswith("</w>")
    return text if whole else text + "-"


def nearest_tokens(context: Context, clip: ClipBundle, k: int = 5, metric: str = "euclidean",
                   restrict_to_trained: bool = True, whole_words: bool = True) -> pd.DataFrame:
    """The ``k`` vocabulary tokens nearest to each context vector.

    Args:
        context: a PromptLearner or its ``ctx`` (unified ``(n_ctx, width)`` or class-specific).
        metric: ``"euclidean"`` (the paper's choice; ``score`` is the distance, smaller is nearer) or
            ``"cosine"`` (``score`` is the similarity, larger is nearer).

    Returns:
        One row per (class, position, rank): ``class`` (None for a unified context), ``position``
        (1-based), ``rank`` (1 = nearest), ``word``, ``token_id``, ``score``.
    """
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use 'euclidean' or 'cosine'.")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    rows, classes, positions = _rows(context)
    if rows.shape[1] != clip.width:
        raise ValueError(f"width: the context has width {rows.shape[1]} but {clip.name!r} has {clip.width}.")
    ids = vocabulary(clip, restrict_to_trained, whole_words)
    table = clip.model.token_embedding.weight.detach().float().cpu()[ids]  # (V, width)
    k = min(k, len(ids))
    scores, indices = [], []
    for chunk in rows.split(256):  # bounded memory for large class-specific contexts
        if metric == "cosine":
            s, i = (F.normalize(chunk, dim=-1) @ F.normalize(table, dim=-1).t()).topk(k, dim=1)
        else:
            # The direct formula: the faster matmul expansion loses ~1e-3 to cancellation near zero distance.
            distances = torch.cdist(chunk, table, compute_mode="donot_use_mm_for_euclid_dist")
            s, i = distances.topk(k, dim=1, largest=False)
        scores.append(s)
        indices.append(i)
    scores, indices = torch.cat(scores), torch.cat(indices)
    token_ids = ids[indices]  # (R, k)
    words = {t: token_word(clip, t) for t in set(token_ids.flatten().tolist())}
    records = [dict(**{"class": classes[r]}, position=positions[r], rank=j + 1, word=words[int(token_ids[r, j])],
                    token_id=int(token_ids[r, j]), score=float(scores[r, j]))
               for r in range(rows.shape[0]) for j in range(k)]
    return pd.DataFrame(records)


def context_words(context: Context, clip: ClipBundle, metric: str = "euclidean",
                  **kwargs) -> Union[str, dict]:
    """The nearest word to each vector, read as a phrase: a string (unified) or ``{class: string}`` (csc)."""
    top = nearest_tokens(context, clip, k=1, metric=metric, **kwargs)
    if top["class"].isna().all():
        return " ".join(top["word"])
    return {c: " ".join(group["word"]) for c, group in top.groupby("class", sort=False)}


def context_norms(context: Context) -> torch.Tensor:
    """L2 norm of each context vector: ``(n_ctx,)`` or ``(n_cls, n_ctx)``."""
    return _ctx(context).norm(dim=-1)


def vocabulary_norm(clip: ClipBundle, restrict_to_trained: bool = True) -> float:
    """Median norm of the (trained) token embeddings, the scale to compare context norms with."""
    table = clip.model.token_embedding.weight.detach().float().cpu()
    if restrict_to_trained and clip.trained_token_ids is not None:
        table = table[clip.trained_token_ids.long().cpu()]
    return float(table.norm(dim=-1).median())


def vocabulary_neighbour_distance(clip: ClipBundle) -> torch.Tensor:
    """For every candidate word of ``nearest_tokens`` (trained, whole-word tokens): the Euclidean
    distance to its nearest *other* word ``(V,)``: how far apart words are in the token-embedding space, the
    scale against which a context vector's distance to its nearest word can be judged."""
    ids = vocabulary(clip).to(clip.model.token_embedding.weight.device)
    table = clip.model.token_embedding.weight.detach().float()[ids]
    # Real CLIP has ~33k whole words: the distances go in row chunks (the whole matrix would take ~4 GB) and through
    # a matrix product (|a|^2 + |b|^2 - 2ab), which is BLAS-fast; the exact pairwise loop took 39 s on a 32-wide
    # table and would take ~10 minutes on a 512-wide one. The product's rounding (~1e-6 relative) does not matter
    # for a distance scale. Only the nearest distance of each word is kept.
    nearest = []
    for start in range(0, len(table), 1024):
        distances = torch.cdist(table[start:start + 1024], table, compute_mode="use_mm_for_euclid_dist")
        rows = torch.arange(distances.shape[0], device=distances.device)
        distances[rows, rows + start] = float("inf")
        nearest.append(distances.min(dim=1).values.cpu())
    return torch.cat(nearest)


def context_drift(initial: Context, current: Context) -> pd.DataFrame:
    """How far each vector moved: ``class``, ``position``, ``cos_to_init``, ``l2_to_init``, ``norm``."""
    a = _rows(initial)[0]
    b, classes, positions = _rows(current)
    if a.shape != b.shape:
        raise ValueError(f"Contexts of different shapes cannot be compared position by position: "
                         f"{tuple(a.shape)} vs {tuple(b.shape)}.")
    return pd.DataFrame({"class": classes, "position": positions,
                         "cos_to_init": F.cosine_similarity(a, b, dim=-1).numpy(),
                         "l2_to_init": (a - b).norm(dim=-1).numpy(), "norm": b.norm(dim=-1).numpy()})


def context_similarity(a: Context, b: Context) -> torch.Tensor:
    """Cosine similarity ``(R_a, R_b)`` between every vector of ``a`` and every vector of ``b``.

    Rows are positions (class-major for class-specific contexts). For two unified contexts of the same
    length the diagonal compares position with position; a high off-diagonal shows the same vector
    learned at another position.
    """
    rows_a, rows_b = _rows(a)[0], _rows(b)[0]
    if rows_a.shape[1] != rows_b.shape[1]:
        raise ValueError(f"width: the contexts have widths {rows_a.shape[1]} and {rows_b.shape[1]}.")
    return F.normalize(rows_a, dim=-1) @ F.normalize(rows_b, dim=-1).t()


class DriftTracker:
    """``train_coop`` callback recording, each epoch, how far the context moved from its initial value.

    With ``clip`` it also records the nearest word of every vector, to watch "a photo of a" turn into
    something else. ``frame()`` gives one row per (epoch, class, position); epoch 0 is the initial context.
    """

    def __init__(self, clip: Optional[ClipBundle] = None, metric: str = "euclidean", keep_snapshots: bool = False):
        self.clip, self.metric, self.keep_snapshots = clip, metric, keep_snapshots
        self.initial: Optional[torch.Tensor] = None
        self.snapshots: list[torch.Tensor] = []
        self._frames: list[pd.DataFrame] = []

    def on_train_start(self, learner: PromptLearner) -> None:
        self.initial = _ctx(learner).clone()
        self.snapshots, self._frames = [], []
        self._record(0, learner)

    def on_epoch_end(self, record: dict, learner: PromptLearner) -> None:
        self._record(int(record["epoch"]), learner)

    def _record(self, epoch: int, learner: PromptLearner) -> None:
        frame = context_drift(self.initial, learner)
        if self.clip is not None:
            frame["word"] = nearest_tokens(learner, self.clip, k=1, metric=self.metric)["word"].to_numpy()
        frame.insert(0, "epoch", epoch)
        self._frames.append(frame)
        if self.keep_snapshots:
            self.snapshots.append(_ctx(learner).clone())

    def frame(self) -> pd.DataFrame:
        """All records so far."""
        return pd.concat(self._frames, ignore_index=True) if self._frames else pd.DataFrame()


def transplant_table(clip: ClipBundle, contexts: dict, tasks: Sequence[TaskFeatures]) -> pd.DataFrame:
    """Test accuracy (%) of unified contexts moved between tasks.

    ``contexts`` maps the task a context was learned on to its ``PromptLearner``; each is rebuilt for every
    task's class names (``PromptLearner.with_classnames``: same ``ctx``, new class tokens) and tested there.
    Rows: the task the context comes from, then ``zero-shot`` (each task's default template) for reference;
    columns: the task it is tested on.
    """
    table = {}
    for source, learner in contexts.items():
        table[source] = {task.name: 100 * score(
            CoOpClassifier(clip, learner.with_classnames(clip, task.classnames)), task.test) for task in tasks}
    table["zero-shot"] = {task.name: 100 * score(zero_shot_classifier(clip, task.classnames, task.templates[0]),
                                                     task.test) for task in tasks}
    return pd.DataFrame(table).T.rename_axis(index="context learned on", columns="tested on")
