"""Self-checks for course exercises: a student's function against the package's reference implementation.

Each ``check_*`` takes the student's function, runs it and the reference (``prompt_learner.py``,
``text_encoder.py``, ``training.learning_rate``, ``zero_shot.py``, ``interpret.py``, the training loop) on the
embedded tiny CLIP over several cases, and either returns a one-line success message or raises an
``AssertionError`` whose message is a hint: the first case that differs, what differs (type, shape, dtype,
device, NaN, which class and position, how far off), and, when the answer matches a known mistake (the EOS read
at the last position, ``logit_scale`` not exponentiated, the cosine over ``max_epochs - warmup``...), which one.
A student function that raises gets the same treatment: a hint naming the case and the error, never a traceback
from inside the checker.

The checks are what the assignments in ``notebooks/assignments/`` grade with (otter-grader test cells call
them), and they work on their own in any notebook::

    from coop_tutorial.exercises import check_logits
    check_logits(my_logits)      # 'check_logits: all 6 cases match the reference.' or an AssertionError hint

Every check takes an optional ``clip`` (a ``ClipBundle``; default ``load_clip("tiny")``, loaded once). Cases use
class names whose tokens the tiny model was trained on, so that no two prompt rows are accidentally equal.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from .classifier import CoOpClassifier
from .clip_loader import ClipBundle, load_clip
from .prompt_learner import CLASS_TOKEN_POSITIONS, PromptLearner
from .text_encoder import TextEncoder
from .training import CoOpConfig, learning_rate
from .zero_shot import zero_shot_weights

__all__ = ["check_prompt_layout", "check_text_features", "check_learning_rate", "check_logits",
           "check_zero_shot_weights", "check_nearest_tokens", "check_training_step", "CHECKS"]

# Class-name sets of the cases: one class, names of one to three BPE tokens, several class counts. Every token
# is one the tiny model was trained on (an untrained token reads as the shared mean vector, so two different
# untrained words would give equal rows and hide a misplaced name).
NAME_SETS: tuple[tuple[str, ...], ...] = (
    ("circle",),
    ("polka-dotted", "navy", "film negative"),
    ("red square", "crescent", "light blue", "arrow", "navy"),
)


class ExerciseFailure(AssertionError):
    """A self-check failed; the message is the hint."""


@functools.lru_cache(maxsize=1)
def _tiny_clip() -> ClipBundle:
    # One frozen model shared by all checks: loading it costs about half a second each time otherwise.
    return load_clip("tiny")


def _clip(clip: Optional[ClipBundle]) -> ClipBundle:
    return _tiny_clip() if clip is None else clip


def _checked(check: Callable) -> Callable:
    """Turn internal failures into one short ``AssertionError`` raised from the check itself (no chained
    traceback from inside the checker)."""

    @functools.wraps(check)
    def wrapper(fn: Callable, *args: Any, **kwargs: Any) -> str:
        if not callable(fn):
            raise AssertionError(f"{check.__name__} needs your function itself (e.g. {check.__name__}(my_function)), "
                                 f"got {type(fn).__name__}.")
        message = None
        try:
            return check(fn, *args, **kwargs)
        except ExerciseFailure as failure:
            message = str(failure)
        raise AssertionError(message)  # raised here, outside the except: no chained traceback from the checker

    return wrapper


def _call(fn: Callable, args: tuple, case: str) -> Any:
    """Run the student's function; any exception becomes a hint naming the case."""
    try:
        with torch.random.fork_rng(devices=[]):
            return fn(*args)
    except ExerciseFailure:
        raise
    except Exception as error:  # noqa: BLE001 - the student's code may raise anything; report it as a hint
        raise ExerciseFailure(f"Case {case}: your function raised {type(error).__name__}: {error}") from None


def _tensor(out: Any, expected: torch.Tensor, case: str, what: str, integer: bool = False) -> torch.Tensor:
    """The student's output as a tensor with the expected shape, dtype kind, device and finite values."""
    if isinstance(out, tuple) and len(out) > 0 and isinstance(out[0], torch.Tensor):
        raise ExerciseFailure(f"Case {case}: your function returned a tuple of {len(out)} items; return only "
                              f"{what}, a tensor of shape {tuple(expected.shape)}.")
    if not isinstance(out, torch.Tensor):
        raise ExerciseFailure(f"Case {case}: your function returned {type(out).__name__}, expected {what}: a "
                              f"torch.Tensor of shape {tuple(expected.shape)}.")
    if tuple(out.shape) != tuple(expected.shape):
        hint = ""
        if out.dim() == 2 and tuple(out.shape) == tuple(expected.shape)[::-1]:
            hint = " (transposed?)"
        raise ExerciseFailure(f"Case {case}: {what} have shape {tuple(out.shape)}, expected "
                              f"{tuple(expected.shape)}{hint}.")
    if integer:
        if out.dtype.is_floating_point or out.dtype.is_complex or out.dtype == torch.bool:
            raise ExerciseFailure(f"Case {case}: {what} have dtype {out.dtype}; return integer indices (e.g. the "
                                  f"indices topk or argsort give, dtype torch.long), not distances or scores.")
    elif out.dtype != expected.dtype:
        raise ExerciseFailure(f"Case {case}: {what} have dtype {out.dtype}, expected {expected.dtype} (keep the "
                              f"model's dtype; do not cast).")
    if out.device != expected.device:
        raise ExerciseFailure(f"Case {case}: {what} are on {out.device}, expected {expected.device} (where the "
                              f"inputs are).")
    if not integer and not torch.isfinite(out.detach()).all():
        raise ExerciseFailure(f"Case {case}: {what} contain NaN or inf values.")
    return out.detach()


def _known_mistakes(matches: list[str]) -> str:
    """The hint's last sentence: which known mistakes give the student's answer (several can coincide)."""
    if not matches:
        return ""
    return f" Your answer matches a known mistake: {'; or: '.join(matches)}."


def _diagnosis(out: torch.Tensor, variants: dict[str, torch.Tensor], atol: float = 1e-4, rtol: float = 1e-4) -> str:
    return _known_mistakes([description for description, value in variants.items()
                            if value.shape == out.shape and torch.allclose(out, value, atol=atol, rtol=rtol)])


def _first_row(diff: torch.Tensor) -> int:
    """Index of the first row (dim 0) whose largest difference is the largest anywhere past tolerance."""
    return int(diff.reshape(diff.shape[0], -1).amax(dim=1).argmax())


# ------------------------------------------------------------------------------------------------------------
# (a) the prompt layout


@dataclass
class _LayoutCase:
    learner: PromptLearner
    name: str


def _layout_cases(clip: ClipBundle) -> list[_LayoutCase]:
    cases = []
    generator = torch.Generator().manual_seed(0)
    for names, n_ctx in zip(NAME_SETS, (4, 5, 16)):
        for csc in (False, True):
            for position in CLASS_TOKEN_POSITIONS:
                learner = PromptLearner(clip, list(names), n_ctx=n_ctx, csc=csc, class_token_position=position,
                                        generator=generator)
                kind = "class-specific" if csc else "unified"
                cases.append(_LayoutCase(learner, f"'{position}', {kind} context, {len(names)} class"
                                                  f"{'es' if len(names) > 1 else ''}, M={n_ctx}"))
    return cases


def _row_labels(learner: PromptLearner, c: int) -> tuple[list[str], list[torch.Tensor]]:
    """Labels and rows of every piece of class ``c``'s prompt (SOS, V1.., class tokens, '.', EOS, padding)."""
    ctx = learner.ctx.detach()
    ctx = ctx[c] if ctx.dim() == 3 else ctx
    name_len = learner.name_lens[c]
    labels, rows = ["[SOS]"], [learner.token_prefix[c, 0]]
    labels += [f"[V{i + 1}]" for i in range(learner.n_ctx)]
    rows += list(ctx)
    suffix = learner.token_suffix[c]
    for j in range(suffix.shape[0]):
        if j < name_len:
            labels.append(f"class token {j + 1}/{name_len}")
        elif j == name_len:
            labels.append("'.'")
        elif j == name_len + 1:
            labels.append("[EOS]")
        else:
            labels.append("padding")
        rows.append(suffix[j])
    return labels, rows


def _label_of(row: torch.Tensor, labels: list[str], rows: list[torch.Tensor]) -> str:
    for label, candidate in zip(labels, rows):
        if torch.equal(row, candidate):
            return label
    return "a vector that is none of the pieces (prefix, context or suffix rows) of this class"


def _layout_hint(out: torch.Tensor, expected: torch.Tensor, case: _LayoutCase) -> str:
    learner = case.learner
    differs = (out != expected).reshape(out.shape[0], out.shape[1], -1).any(dim=-1)  # (n_cls, L)
    c, p = (int(i) for i in differs.nonzero()[0])
    labels, rows = _row_labels(learner, c)
    got, want = _label_of(out[c, p], labels, rows), _label_of(expected[c, p], labels, rows)
    layout = learner.layout_string(c)
    return (f"Case {case.name}: class {c} ({learner.classnames[c]!r}, {learner.name_lens[c]} token"
            f"{'s' if learner.name_lens[c] > 1 else ''}), position {p} (0 = SOS) holds {got} but should hold {want}. "
            f"The expected prompt is {layout} followed by padding.")


@_checked
def check_prompt_layout(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(prefix, ctx, suffix, name_lens, position) -> prompts`` against ``PromptLearner.forward``.

    ``prefix`` ``(n_cls, 1, w)`` (SOS), ``ctx`` ``(M, w)`` (unified) or ``(n_cls, M, w)`` (class-specific),
    ``suffix`` ``(n_cls, L-1-M, w)`` (class tokens, '.', EOS, padding), ``name_lens`` the number of tokens of each
    class name, ``position`` ``"end"``, ``"middle"`` or ``"front"``; the result ``(n_cls, L, w)`` must equal the
    official layout row for row (``middle``: the first ``M // 2`` vectors, the class, the rest).
    """
    cases = _layout_cases(_clip(clip))
    for case in cases:
        learner = case.learner
        with torch.no_grad():
            expected = learner()
        args = (learner.token_prefix.clone(), learner.ctx.detach().clone(), learner.token_suffix.clone(),
                list(learner.name_lens), learner.class_token_position)
        out = _tensor(_call(fn, args, case.name), expected, case.name, "the prompts")
        if not torch.equal(out, expected):
            raise ExerciseFailure(_layout_hint(out, expected, case))
    return (f"check_prompt_layout: all {len(cases)} cases match the reference (end/middle/front, unified and "
            f"class-specific context, 1/3/5 classes, names of 1-3 tokens).")


# ------------------------------------------------------------------------------------------------------------
# (b) the text pass from embeddings


def _text_variants(model: torch.nn.Module, prompts: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of common mistakes in the text pass, to name the one a student made."""
    eos = ids.argmax(dim=-1)
    rows = torch.arange(prompts.shape[0])

    def run(x, mask=True, ln=True, proj=True, pos=True, pick="eos"):
        if pos:
            x = x + model.positional_embedding
        x = model.transformer(x, attn_mask=model.attn_mask if mask else None)
        if ln:
            x = model.ln_final(x)
        x = {"eos": x[rows, eos], "last": x[:, -1], "first": x[:, 0], "mean": x.mean(dim=1)}[pick]
        return x @ model.text_projection if proj else x

    with torch.no_grad():
        return {
            "the feature is read at the last position (the EOS token sits at tokenized_prompts.argmax(-1))":
                run(prompts, pick="last"),
            "the feature is read at the first position (SOS), not at the EOS token": run(prompts, pick="first"),
            "the token outputs are averaged instead of read at the EOS token": run(prompts, pick="mean"),
            "the positional embedding is missing": run(prompts, pos=False),
            "the transformer runs without its causal mask (attn_mask=model.attn_mask)": run(prompts, mask=False),
            "ln_final is missing": run(prompts, ln=False),
            "text_projection is missing (multiply by model.text_projection at the end)": run(prompts, proj=False),
            "the features are L2-normalised (return them as the text tower gives them; the logits normalise)":
                F.normalize(run(prompts), dim=-1),
        }


def _text_cases(clip: ClipBundle) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    cases = []
    generator = torch.Generator().manual_seed(1)
    for names, n_ctx, csc, position in ((NAME_SETS[1], 4, False, "end"), (NAME_SETS[2], 16, False, "middle"),
                                        (NAME_SETS[1], 5, True, "front"), (NAME_SETS[0], 8, False, "end")):
        learner = PromptLearner(clip, list(names), n_ctx=n_ctx, csc=csc, class_token_position=position,
                                generator=generator)
        with torch.no_grad():
            prompts = learner()
        kind = "class-specific" if csc else "unified"
        cases.append((f"CoOp prompts ('{position}', {kind}, {len(names)} classes, M={n_ctx})", prompts,
                      learner.tokenized_prompts))
    texts = ["a photo of a circle.", "a drawing of two small red squares on a wavy background.", "navy"]
    ids = clip.tokenizer(texts, context_length=clip.context_length)
    with torch.no_grad():
        cases.append(("the token embeddings of three sentences of different lengths",
                      clip.model.token_embedding(ids), ids))
    return cases


@_checked
def check_text_features(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(clip_model, prompts, tokenized_prompts) -> (n, embed_dim)`` against ``TextEncoder``.

    ``prompts`` ``(n, L, w)`` are prompt embeddings; the features are CLIP's (not normalised): positional
    embedding, the transformer with its causal mask, ``ln_final``, the output at each EOS token
    (``tokenized_prompts.argmax(-1)``), ``text_projection``.
    """
    clip = _clip(clip)
    model = clip.model
    reference = TextEncoder(model, truncate=False, share_prefix=False)
    cases = _text_cases(clip)
    for name, prompts, ids in cases:
        with torch.no_grad():
            expected = reference(prompts, ids)
        out = _tensor(_call(fn, (model, prompts.clone(), ids.clone()), name), expected, name, "the text features")
        if not torch.allclose(out, expected, atol=1e-4, rtol=1e-4):
            diff = (out - expected).abs()
            row = _first_row(diff)
            raise ExerciseFailure(
                f"Case {name}: the features of prompt {row} differ from the reference by up to "
                f"{float(diff[row].max()):.3g} (feature values are about {float(expected.abs().mean()):.2g})."
                + _diagnosis(out, _text_variants(model, prompts, ids)))
    return (f"check_text_features: all {len(cases)} cases match the reference (CoOp prompts in every layout, "
            f"plain sentences of different lengths).")


# ------------------------------------------------------------------------------------------------------------
# (c) the schedule and one training step

# (max_epochs, base_lr, warmup_epochs, warmup_lr): the paper's 1-shot and 16-shot recipes, the embedded preset
# (no warm-up), a longer warm-up.
SCHEDULES: tuple[tuple[int, float, int, float], ...] = (
    (50, 0.002, 1, 1e-5), (200, 0.002, 1, 1e-5), (20, 3e-3, 0, 1e-5), (12, 0.1, 3, 1e-3))


def _schedule_variants(epoch: int, max_epochs: int, base_lr: float, warmup: int, warmup_lr: float) -> dict[str, float]:
    cos = lambda t, period: base_lr * 0.5 * (1 + math.cos(math.pi * t / period))  # noqa: E731
    after = epoch >= warmup
    return {
        "the cosine runs over max_epochs - warmup_epochs; Dassl's period is max_epochs (the last epoch does not "
        "reach 0)": cos(epoch - warmup, max(max_epochs - warmup, 1)) if after else warmup_lr,
        "the cosine is not shifted by the warm-up (use epoch - warmup_epochs)": cos(epoch, max_epochs)
        if after else warmup_lr,
        "the epoch is read as 1-based (epoch 0 is the first epoch)": cos(epoch + 1 - warmup, max_epochs)
        if epoch + 1 >= warmup else warmup_lr,
        "the warm-up is linear; Dassl's constant warm-up holds warmup_lr": cos(epoch - warmup, max_epochs)
        if after else base_lr * (epoch + 1) / warmup,
        "the warm-up epochs are missing": cos(epoch, max_epochs),
    }


@_checked
def check_learning_rate(fn: Callable) -> str:
    """Check ``fn(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr) -> float`` against
    ``training.learning_rate``: 0-based epoch, Dassl's constant warm-up (``warmup_lr`` for the first
    ``warmup_epochs``), then ``base_lr * (1 + cos(pi * (epoch - warmup_epochs) / max_epochs)) / 2``."""
    n = 0
    for max_epochs, base_lr, warmup, warmup_lr in SCHEDULES:
        config = CoOpConfig(epochs=max_epochs, lr=base_lr, warmup_epochs=warmup, warmup_lr=warmup_lr)
        for epoch in range(max_epochs):
            n += 1
            case = (f"epoch={epoch}, max_epochs={max_epochs}, base_lr={base_lr:g}, warmup_epochs={warmup}, "
                    f"warmup_lr={warmup_lr:g}")
            out = _call(fn, (epoch, max_epochs, base_lr, warmup, warmup_lr), case)
            if isinstance(out, torch.Tensor) and out.numel() == 1:
                out = out.item()
            if isinstance(out, bool) or not isinstance(out, (int, float)):
                raise ExerciseFailure(f"Case {case}: your function returned {type(out).__name__}, expected a "
                                      f"float (the learning rate of that epoch).")
            if not math.isfinite(out):
                raise ExerciseFailure(f"Case {case}: your function returned {out}.")
            expected = learning_rate(epoch, config)
            if not math.isclose(out, expected, rel_tol=1e-6, abs_tol=1e-12):
                mistakes = [d for d, v in _schedule_variants(epoch, max_epochs, base_lr, warmup, warmup_lr).items()
                            if math.isclose(out, v, rel_tol=1e-6, abs_tol=1e-12)]
                raise ExerciseFailure(f"Case {case}: got {out:.6g}, expected {expected:.6g}."
                                      + _known_mistakes(mistakes))
    return f"check_learning_rate: all {n} epochs of {len(SCHEDULES)} schedules match the reference."


# ------------------------------------------------------------------------------------------------------------
# logits


def _reference_logits(image_features: torch.Tensor, text_features: torch.Tensor,
                      logit_scale: torch.Tensor) -> torch.Tensor:
    return logit_scale.exp() * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).t()


@_checked
def check_logits(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(image_features, text_features, logit_scale) -> (B, C)``: ``logit_scale.exp()`` times the cosine
    of every image with every class (``logit_scale`` as CLIP stores it, in log space; neither feature
    normalised on input)."""
    clip = _clip(clip)
    generator = torch.Generator().manual_seed(2)
    scales = {"the tiny model's logit_scale": clip.model.logit_scale.detach().clone(),
              "logit_scale = log(100) (CLIP's)": torch.tensor(math.log(100.0))}
    n = 0
    for batch, classes in ((4, 3), (1, 5), (6, 6)):
        for scale_name, scale in scales.items():
            n += 1
            dim = clip.embed_dim
            image = torch.randn(batch, dim, generator=generator) * 3
            text = torch.randn(classes, dim, generator=generator) * 0.5
            case = f"B={batch} images, C={classes} classes, {scale_name}"
            expected = _reference_logits(image, text, scale)
            out = _tensor(_call(fn, (image.clone(), text.clone(), scale.clone()), case), expected, case, "the logits")
            if not torch.allclose(out, expected, atol=1e-4, rtol=1e-4):
                cos = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()
                variants = {
                    "logit_scale is not exponentiated (it is stored as a log; use logit_scale.exp())":
                        scale * cos,
                    "the logits are not scaled at all (multiply by logit_scale.exp())": cos,
                    "the image features are not normalised": scale.exp() * image @ F.normalize(text, dim=-1).t(),
                    "the text features are not normalised": scale.exp() * F.normalize(image, dim=-1) @ text.t(),
                    "neither feature is normalised": scale.exp() * image @ text.t(),
                    "the result is transposed (rows must be images, columns classes)": scale.exp() * cos.t(),
                }
                diff = (out - expected).abs()
                raise ExerciseFailure(f"Case {case}: logits differ from the reference by up to "
                                      f"{float(diff.max()):.3g}." + _diagnosis(out, variants))
    return f"check_logits: all {n} cases match the reference."


# ------------------------------------------------------------------------------------------------------------
# (d) zero-shot weights from a template ensemble

ZERO_SHOT_CASES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("circle", "crescent", "arrow"), ("a photo of a {}.",)),
    (("red square", "navy", "light blue", "film negative"), ("a photo of a {}.", "a drawing of a {}.", "a {} shape.")),
    (("red_square", "polka-dotted"), ("a photo of a {}.", "a {} shape.")),
)


def _zero_shot_variants(clip: ClipBundle, names: Sequence[str], templates: Sequence[str]) -> dict[str, torch.Tensor]:
    def raw(strip_underscore: bool = True) -> torch.Tensor:
        texts = [t.format(n.replace("_", " ") if strip_underscore else n) for t in templates for n in names]
        with torch.no_grad():
            features = clip.model.encode_text(clip.tokenizer(texts, context_length=clip.context_length))
        return features.reshape(len(templates), len(names), -1)

    features = raw()
    unit = F.normalize(features, dim=-1)
    return {
        "the ensemble average is not renormalised (normalise after the mean too)": unit.mean(dim=0),
        "the template features are averaged before being normalised (normalise each one first)":
            F.normalize(features.mean(dim=0), dim=-1),
        "only the first template is used": unit[0],
        "'_' in a class name is kept ('red_square' must read 'red square', as in CoOp)":
            F.normalize(F.normalize(raw(False), dim=-1).mean(dim=0), dim=-1),
        "the weights are not normalised at all": features.mean(dim=0),
    }


@_checked
def check_zero_shot_weights(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(clip, classnames, templates) -> (C, D)`` against ``zero_shot.zero_shot_weights``: each template
    filled with each class name (``_`` read as a space), encoded, L2-normalised, averaged over templates and
    normalised again. ``templates`` is a list of strings with one ``{}``."""
    clip = _clip(clip)
    for names, templates in ZERO_SHOT_CASES:
        case = f"classnames={list(names)}, templates={list(templates)}"
        expected = zero_shot_weights(clip, list(names), list(templates))
        out = _tensor(_call(fn, (clip, list(names), list(templates)), case), expected, case, "the class weights")
        if not torch.allclose(out, expected, atol=1e-4, rtol=1e-4):
            diff = (out - expected).abs()
            row = _first_row(diff)
            raise ExerciseFailure(f"Case {case}: the weights of class {row} ({names[row]!r}) differ by up to "
                                  f"{float(diff[row].max()):.3g} (norm of your row: {float(out[row].norm()):.3g})."
                                  + _diagnosis(out, _zero_shot_variants(clip, names, templates)))
    return f"check_zero_shot_weights: all {len(ZERO_SHOT_CASES)} cases match the reference."


# ------------------------------------------------------------------------------------------------------------
# (e) nearest tokens of a context


def _nearest_cases(clip: ClipBundle) -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    table = clip.model.token_embedding.weight.detach()
    trained = clip.trained_token_ids
    small = table[trained.long()] if trained is not None else table[:2000]
    generator = torch.Generator().manual_seed(3)
    ids = clip.tokenizer(["a photo of a"], context_length=clip.context_length)[0, 1:5]
    words = table[ids] + 0.01 * torch.randn(4, table.shape[1], generator=generator)
    learned = small[torch.randint(small.shape[0], (8,), generator=generator)] * 1.5 \
        + 0.3 * torch.randn(8, table.shape[1], generator=generator)
    return [
        ("the words 'a photo of a' plus a little noise, the trained rows of the token table, k=3", words, small, 3),
        ("8 vectors far from every word (a learned context), the trained rows, k=5", learned, small, 5),
        ("4 random vectors N(0, 0.02), the whole token table (ties: untrained tokens share one row), k=4",
         0.02 * torch.randn(4, table.shape[1], generator=generator), table, 4),
    ]


def _distances(ctx: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    # The direct formula: the matmul expansion loses ~1e-3 to cancellation near zero distance.
    return torch.cdist(ctx, table, compute_mode="donot_use_mm_for_euclid_dist")


@_checked
def check_nearest_tokens(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(ctx, token_embedding, k) -> (M, k)``: for each of the ``M`` context vectors ``ctx`` ``(M, w)``,
    the indices of the ``k`` rows of ``token_embedding`` ``(V, w)`` nearest in Euclidean distance, nearest first.

    Ties (the tiny model's untrained tokens share one vector) may be broken any way: the check compares the
    distances of the rows you return with the reference's.
    """
    clip = _clip(clip)
    cases = _nearest_cases(clip)
    for case, ctx, table, k in cases:
        distances = _distances(ctx, table)
        best, best_index = distances.topk(k, dim=1, largest=False)
        out = _tensor(_call(fn, (ctx.clone(), table.clone(), k), case), best_index, case, "the indices",
                      integer=True).long()
        if int(out.min()) < 0 or int(out.max()) >= table.shape[0]:
            raise ExerciseFailure(f"Case {case}: indices must be rows of token_embedding, in [0, {table.shape[0]}); "
                                  f"got values from {int(out.min())} to {int(out.max())}.")
        got = distances.gather(1, out)
        close = torch.isclose(got, best, atol=1e-4, rtol=1e-4)
        if not close.all():
            m, j = (int(i) for i in (~close).nonzero()[0])
            hint = ""
            cosine = (F.normalize(ctx, dim=-1) @ F.normalize(table, dim=-1).t()).topk(k, dim=1).indices
            if torch.equal(out, cosine):
                hint = " Your indices are the nearest by cosine similarity; the paper (and this check) use the " \
                       "Euclidean distance."
            elif torch.isclose(got, distances.topk(k, dim=1, largest=True).values, rtol=1e-4).all():
                hint = " Your indices are the farthest rows: use topk(..., largest=False) on distances."
            elif torch.equal(out, (ctx @ table.t()).topk(k, dim=1).indices):
                hint = " Your indices are the largest dot products, not the smallest Euclidean distances."
            raise ExerciseFailure(f"Case {case}: context vector {m}, rank {j + 1}: your row {int(out[m, j])} is at "
                                  f"distance {float(got[m, j]):.4g}, but the row of rank {j + 1} (1 = nearest) is at "
                                  f"distance {float(best[m, j]):.4g}.{hint}")
    return f"check_nearest_tokens: all {len(cases)} cases match the reference."


# ------------------------------------------------------------------------------------------------------------
# (c) one CoOp training step


@dataclass
class _StepCase:
    name: str
    classnames: tuple[str, ...]
    n_ctx: int
    csc: bool
    position: str
    optimizer: str
    lr: float


STEP_CASES: tuple[_StepCase, ...] = (
    _StepCase("unified 'end' context, 3 classes, SGD with momentum", NAME_SETS[1], 4, False, "end", "sgd", 0.5),
    _StepCase("class-specific 'middle' context, 5 classes, Adam", NAME_SETS[2], 5, True, "middle", "adam", 1e-2),
)


def _step_setup(clip: ClipBundle, case: _StepCase):
    learner = PromptLearner(clip, list(case.classnames), n_ctx=case.n_ctx, csc=case.csc,
                            class_token_position=case.position, generator=torch.Generator().manual_seed(4))
    classifier = CoOpClassifier(clip, learner)
    if case.optimizer == "sgd":
        optimizer = torch.optim.SGD([learner.ctx], lr=case.lr, momentum=0.9)
    else:
        optimizer = torch.optim.Adam([learner.ctx], lr=case.lr)
    return learner, classifier, optimizer


def _step_batches(clip: ClipBundle, n_cls: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(5)
    # Image features as the image encoder gives them: not normalised (CoOp normalises them in the logits).
    return [(torch.randn(8, clip.embed_dim, generator=generator) * 2, torch.randint(n_cls, (8,), generator=generator))
            for _ in range(3)]


def _reference_step(classifier: CoOpClassifier, optimizer: torch.optim.Optimizer, image_features: torch.Tensor,
                    labels: torch.Tensor) -> float:
    """The official step: cross-entropy on logit_scale.exp() * cos, gradients zeroed, one optimizer step."""
    logits = classifier.logits_from_features(image_features)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _step_variants(clip: ClipBundle, case: _StepCase, batches) -> dict[str, list[tuple[float, torch.Tensor]]]:
    """Loss and context after each step for common mistakes."""

    def run(step):
        learner, classifier, optimizer = _step_setup(clip, case)
        trace = []
        for image, labels in batches:
            loss = step(classifier, optimizer, image, labels)
            trace.append((loss, learner.ctx.detach().clone()))
        return trace

    def no_zero_grad(classifier, optimizer, image, labels):
        loss = F.cross_entropy(classifier.logits_from_features(image), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    def scaled(scale_fn, normalise_image=True):
        def step(classifier, optimizer, image, labels):
            text = classifier.text_features()
            image = F.normalize(image, dim=-1) if normalise_image else image
            loss = F.cross_entropy(scale_fn(classifier.logit_scale) * image @ text.t(), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()
        return step

    def loss_after_update(classifier, optimizer, image, labels):
        _reference_step(classifier, optimizer, image, labels)
        with torch.no_grad():
            return F.cross_entropy(classifier.logits_from_features(image), labels).item()

    return {
        "the gradients are never zeroed (call optimizer.zero_grad() before backward)": run(no_zero_grad),
        "the loss is computed again after the update (return the loss the step was taken on)":
            run(loss_after_update),
        "logit_scale is not exponentiated (use logit_scale.exp())": run(scaled(lambda s: s)),
        "the logits are not scaled by logit_scale.exp()": run(scaled(lambda s: 1.0)),
        "the image features are not normalised": run(scaled(lambda s: s.exp(), normalise_image=False)),
    }


def _state(clip: ClipBundle, learner: PromptLearner) -> dict[str, torch.Tensor]:
    state = {f"clip.model.{k}": v.detach().clone() for k, v in clip.model.state_dict().items()}
    state.update({f"prompt_learner.{k}": v.detach().clone() for k, v in learner.named_buffers()})
    return state


@_checked
def check_training_step(fn: Callable, clip: Optional[ClipBundle] = None) -> str:
    """Check ``fn(classifier, optimizer, image_features, labels) -> loss``: one CoOp training step.

    ``classifier`` is a ``CoOpClassifier`` (``classifier.prompt_learner()`` gives the prompts,
    ``classifier.text_encoder(prompts, classifier.tokenized_prompts)`` their features, ``classifier.logit_scale``
    the stored log scale); ``optimizer`` holds only the context; ``image_features`` ``(B, D)`` are not
    normalised. The step computes the cross-entropy of ``logit_scale.exp() * cos``, zeroes the gradients,
    back-propagates, steps the optimizer and returns the loss (a float or a 0-d tensor). Three steps in a row
    must give the reference's losses and contexts, and nothing but the context may change.
    """
    clip = _clip(clip)
    for case in STEP_CASES:
        batches = _step_batches(clip, len(case.classnames))
        ref_learner, ref_classifier, ref_optimizer = _step_setup(clip, case)
        learner, classifier, optimizer = _step_setup(clip, case)
        before = _state(clip, learner)
        try:
            for step, (image, labels) in enumerate(batches, start=1):
                name = f"{case.name}, step {step} of {len(batches)}"
                expected_loss = _reference_step(ref_classifier, ref_optimizer, image, labels)
                out = _call(fn, (classifier, optimizer, image.clone(), labels.clone()), name)
                if isinstance(out, torch.Tensor) and out.numel() == 1:
                    out = out.item()
                if isinstance(out, bool) or not isinstance(out, (int, float)):
                    raise ExerciseFailure(f"Case {name}: your function returned {type(out).__name__}; return the "
                                          f"loss (a float or a 0-d tensor).")
                if not math.isfinite(out):
                    raise ExerciseFailure(f"Case {name}: the loss is {out}.")
                changed = [k for k, v in _state(clip, learner).items() if not torch.equal(v, before[k])]
                if changed:
                    raise ExerciseFailure(f"Case {name}: your step changed {', '.join(changed[:3])}"
                                          f"{' and more' if len(changed) > 3 else ''}; CoOp updates the context "
                                          f"(prompt_learner.ctx) only and keeps CLIP frozen.")
                ctx, ref_ctx = learner.ctx.detach(), ref_learner.ctx.detach()
                loss_ok = math.isclose(out, expected_loss, rel_tol=1e-4, abs_tol=1e-5)
                ctx_ok = torch.allclose(ctx, ref_ctx, atol=1e-5, rtol=1e-4)
                if loss_ok and ctx_ok:
                    continue
                mistake = _known_mistakes([
                    description for description, trace in _step_variants(clip, case, batches).items()
                    if math.isclose(out, trace[step - 1][0], rel_tol=1e-4, abs_tol=1e-5)
                    and torch.allclose(ctx, trace[step - 1][1], atol=1e-5, rtol=1e-4)])
                if not loss_ok:
                    raise ExerciseFailure(f"Case {name}: loss {out:.6g}, expected {expected_loss:.6g}.{mistake}")
                start = _step_setup(clip, case)[0].ctx.detach() if step == 1 else None
                if start is not None and torch.equal(ctx, start):
                    raise ExerciseFailure(f"Case {name}: the loss is right but the context did not change: call "
                                          f"loss.backward() and optimizer.step().")
                raise ExerciseFailure(f"Case {name}: the loss is right but the context after the step differs from "
                                      f"the reference's by up to {float((ctx - ref_ctx).abs().max()):.3g}.{mistake}")
        finally:
            # A student step that wrote into the shared CLIP must not break the checks that follow.
            with torch.no_grad():
                for key, value in clip.model.state_dict().items():
                    value.copy_(before[f"clip.model.{key}"])
    return f"check_training_step: {len(STEP_CASES)} runs of {len(batches)} steps match the reference."


CHECKS: dict[str, Callable] = {check.__name__: check for check in (
    check_prompt_layout, check_text_features, check_learning_rate, check_logits, check_zero_shot_weights,
    check_nearest_tokens, check_training_step)}
