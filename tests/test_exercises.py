"""The self-checks of coop_tutorial.exercises: each passes a correct implementation written differently from the
reference, catches at least three plausible mistakes with a hint that names the case (and the mistake, where it
is a known one), and turns broken student functions (raising, wrong shape, dtype, device, NaN) into hints."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from coop_tutorial import exercises as ex

pytestmark = pytest.mark.usefixtures("single_thread")


# ---------------------------------------------------------------------------------------------------------------
# Correct implementations, written the way a student might (not copied from the package).


def layout_loop(prefix, ctx, suffix, name_lens, position):
    """Per class, with explicit slices (the reference uses one gather)."""
    n_cls = prefix.shape[0]
    if ctx.dim() == 2:
        ctx = ctx.expand(n_cls, -1, -1)
    half = ctx.shape[1] // 2
    prompts = []
    for c in range(n_cls):
        name, rest = suffix[c, :name_lens[c]], suffix[c, name_lens[c]:]
        middle = {"end": [ctx[c], name], "middle": [ctx[c, :half], name, ctx[c, half:]], "front": [name, ctx[c]]}
        prompts.append(torch.cat([prefix[c], *middle[position], rest]))
    return torch.stack(prompts)


def text_features_gather_first(model, prompts, tokenized_prompts):
    """LayerNorm after picking the EOS rows (per-row, so the same), projection by einsum."""
    x = prompts + model.positional_embedding
    x = model.transformer(x, attn_mask=model.attn_mask)
    eos = tokenized_prompts.argmax(dim=-1)
    x = model.ln_final(x[torch.arange(x.shape[0]), eos])
    return torch.einsum("nw,we->ne", x, model.text_projection)


def lr_closed_form(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    t = epoch - warmup_epochs
    return warmup_lr if t < 0 else base_lr * (1 + math.cos(math.pi * t / max_epochs)) / 2


def logits_by_division(image_features, text_features, logit_scale):
    image = image_features / image_features.norm(dim=-1, keepdim=True)
    text = text_features / text_features.norm(dim=-1, keepdim=True)
    return torch.exp(logit_scale) * torch.einsum("bd,cd->bc", image, text)


def zero_shot_with_encode_text(clip, classnames, templates):
    """open_clip's encode_text (full-length pass) instead of the package's truncated text encoder."""
    weights = []
    for name in classnames:
        ids = clip.tokenizer([t.format(name.replace("_", " ")) for t in templates])
        with torch.no_grad():
            features = F.normalize(clip.model.encode_text(ids), dim=-1)
        weights.append(F.normalize(features.mean(dim=0), dim=-1))
    return torch.stack(weights)


def nearest_by_squared_distance(ctx, token_embedding, k):
    """Squared distances by broadcasting and a full sort: same order as the distances."""
    return ((ctx[:, None, :] - token_embedding[None]) ** 2).sum(-1).argsort(dim=1)[:, :k]


def step_by_hand(classifier, optimizer, image_features, labels):
    """The text pass and the logits written out instead of classifier.logits_from_features."""
    learner = classifier.prompt_learner
    text = classifier.text_encoder(learner(), learner.tokenized_prompts)
    text = text / text.norm(dim=-1, keepdim=True)
    image = image_features / image_features.norm(dim=-1, keepdim=True)
    logits = classifier.logit_scale.exp() * image @ text.t()
    optimizer.zero_grad()
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.detach()


CORRECT = [
    (ex.check_prompt_layout, layout_loop),
    (ex.check_text_features, text_features_gather_first),
    (ex.check_learning_rate, lr_closed_form),
    (ex.check_logits, logits_by_division),
    (ex.check_zero_shot_weights, zero_shot_with_encode_text),
    (ex.check_nearest_tokens, nearest_by_squared_distance),
    (ex.check_training_step, step_by_hand),
]


@pytest.mark.parametrize("check, fn", CORRECT, ids=[c.__name__ for c, _ in CORRECT])
def test_a_correct_implementation_written_differently_passes(check, fn):
    message = check(fn)
    assert message.startswith(check.__name__) and "match" in message


def test_every_check_is_listed_and_covered():
    assert set(ex.CHECKS) == {c.__name__ for c, _ in CORRECT}
    assert {c.__name__ for c, _, _ in MISTAKES} == set(ex.CHECKS)


# ---------------------------------------------------------------------------------------------------------------
# Plausible mistakes: (check, wrong function, text the hint must contain).


def layout_middle_rounds_up(prefix, ctx, suffix, name_lens, position):
    if position != "middle":
        return layout_loop(prefix, ctx, suffix, name_lens, position)
    n_cls = prefix.shape[0]
    ctx = ctx.expand(n_cls, -1, -1) if ctx.dim() == 2 else ctx
    half = (ctx.shape[1] + 1) // 2
    return torch.stack([torch.cat([prefix[c], ctx[c, :half], suffix[c, :name_lens[c]], ctx[c, half:],
                                   suffix[c, name_lens[c]:]]) for c in range(n_cls)])


def layout_ignores_position(prefix, ctx, suffix, name_lens, position):
    ctx = ctx.expand(prefix.shape[0], -1, -1) if ctx.dim() == 2 else ctx
    return torch.cat([prefix, ctx, suffix], dim=1)


def layout_first_class_context(prefix, ctx, suffix, name_lens, position):
    """Class-specific context read as if unified: every class gets class 0's vectors."""
    return layout_loop(prefix, ctx[0] if ctx.dim() == 3 else ctx, suffix, name_lens, position)


def layout_front_after_period(prefix, ctx, suffix, name_lens, position):
    """'front' with the whole suffix (name, '.', EOS) first: the period and EOS move before the context."""
    if position != "front":
        return layout_loop(prefix, ctx, suffix, name_lens, position)
    ctx = ctx.expand(prefix.shape[0], -1, -1) if ctx.dim() == 2 else ctx
    return torch.cat([prefix, suffix, ctx], dim=1)[:, :prefix.shape[1] + ctx.shape[1] + suffix.shape[1]]


def layout_one_token_names(prefix, ctx, suffix, name_lens, position):
    return layout_loop(prefix, ctx, suffix, [1] * len(name_lens), position)


def text_eos_last(model, prompts, ids):
    x = model.transformer(prompts + model.positional_embedding, attn_mask=model.attn_mask)
    return model.ln_final(x[:, -1]) @ model.text_projection


def text_no_mask(model, prompts, ids):
    x = model.transformer(prompts + model.positional_embedding)
    return model.ln_final(x[torch.arange(len(ids)), ids.argmax(-1)]) @ model.text_projection


def text_no_positional(model, prompts, ids):
    x = model.transformer(prompts, attn_mask=model.attn_mask)
    return model.ln_final(x[torch.arange(len(ids)), ids.argmax(-1)]) @ model.text_projection


def text_no_projection(model, prompts, ids):
    x = model.transformer(prompts + model.positional_embedding, attn_mask=model.attn_mask)
    return model.ln_final(x[torch.arange(len(ids)), ids.argmax(-1)])


def text_normalised(model, prompts, ids):
    return F.normalize(text_features_gather_first(model, prompts, ids), dim=-1)


def lr_cosine_over_remaining(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    t = epoch - warmup_epochs
    return warmup_lr if t < 0 else base_lr * (1 + math.cos(math.pi * t / (max_epochs - warmup_epochs))) / 2


def lr_one_based(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    return lr_closed_form(epoch + 1, max_epochs, base_lr, warmup_epochs, warmup_lr)


def lr_linear_warmup(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    if epoch < warmup_epochs:
        return base_lr * (epoch + 1) / warmup_epochs
    return lr_closed_form(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr)


def lr_unshifted(epoch, max_epochs, base_lr, warmup_epochs, warmup_lr):
    return warmup_lr if epoch < warmup_epochs else base_lr * (1 + math.cos(math.pi * epoch / max_epochs)) / 2


def logits_log_scale(image, text, scale):
    return scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()


def logits_image_not_normalised(image, text, scale):
    return scale.exp() * image @ F.normalize(text, dim=-1).t()


def logits_transposed(image, text, scale):
    return scale.exp() * F.normalize(text, dim=-1) @ F.normalize(image, dim=-1).t()


def zero_shot_no_renormalisation(clip, classnames, templates):
    return torch.stack([F.normalize(clip.model.encode_text(clip.tokenizer([t.format(n.replace("_", " "))
                                                                          for t in templates])), dim=-1).mean(0)
                        for n in classnames]).detach()


def zero_shot_mean_of_raw(clip, classnames, templates):
    return torch.stack([F.normalize(clip.model.encode_text(clip.tokenizer([t.format(n.replace("_", " "))
                                                                          for t in templates])).mean(0), dim=-1)
                        for n in classnames]).detach()


def zero_shot_keeps_underscores(clip, classnames, templates):
    weights = []
    for name in classnames:
        with torch.no_grad():
            features = F.normalize(clip.model.encode_text(clip.tokenizer([t.format(name) for t in templates])), dim=-1)
        weights.append(F.normalize(features.mean(dim=0), dim=-1))
    return torch.stack(weights)


def nearest_cosine(ctx, table, k):
    return (F.normalize(ctx, dim=-1) @ F.normalize(table, dim=-1).t()).topk(k, dim=1).indices


def nearest_largest(ctx, table, k):
    return torch.cdist(ctx, table).topk(k, dim=1).indices


def nearest_dot_product(ctx, table, k):
    return (ctx @ table.t()).topk(k, dim=1).indices


def nearest_returns_distances(ctx, table, k):
    return torch.cdist(ctx, table).topk(k, dim=1, largest=False).values


def step_no_zero_grad(classifier, optimizer, image, labels):
    loss = F.cross_entropy(classifier.logits_from_features(image), labels)
    loss.backward()
    optimizer.step()
    return loss


def step_log_scale(classifier, optimizer, image, labels):
    text = classifier.text_features()
    loss = F.cross_entropy(classifier.logit_scale * F.normalize(image, dim=-1) @ text.t(), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def step_loss_after_update(classifier, optimizer, image, labels):
    step_by_hand(classifier, optimizer, image, labels)
    with torch.no_grad():
        return F.cross_entropy(classifier.logits_from_features(image), labels)


def step_forgets_step(classifier, optimizer, image, labels):
    loss = F.cross_entropy(classifier.logits_from_features(image), labels)
    optimizer.zero_grad()
    loss.backward()
    return loss


def step_touches_clip(classifier, optimizer, image, labels):
    loss = step_by_hand(classifier, optimizer, image, labels)
    with torch.no_grad():
        classifier.logit_scale.add_(0.01)  # "also learn the temperature"
    return loss


MISTAKES = [
    (ex.check_prompt_layout, layout_middle_rounds_up, "'middle'"),
    (ex.check_prompt_layout, layout_ignores_position, "should hold class token 1"),
    (ex.check_prompt_layout, layout_first_class_context, "class-specific"),
    (ex.check_prompt_layout, layout_front_after_period, "'front'"),
    (ex.check_prompt_layout, layout_one_token_names, "class token 2/3"),
    (ex.check_text_features, text_eos_last, "last position"),
    (ex.check_text_features, text_no_mask, "causal mask"),
    (ex.check_text_features, text_no_positional, "positional embedding"),
    (ex.check_text_features, text_no_projection, "text_projection is missing"),
    (ex.check_text_features, text_normalised, "L2-normalised"),
    (ex.check_learning_rate, lr_cosine_over_remaining, "max_epochs - warmup_epochs"),
    (ex.check_learning_rate, lr_one_based, "1-based"),
    (ex.check_learning_rate, lr_linear_warmup, "linear"),
    (ex.check_learning_rate, lr_unshifted, "epoch - warmup_epochs"),
    (ex.check_logits, logits_log_scale, "not exponentiated"),
    (ex.check_logits, logits_image_not_normalised, "image features are not normalised"),
    (ex.check_logits, logits_transposed, "transposed"),
    (ex.check_zero_shot_weights, zero_shot_no_renormalisation, "not renormalised"),
    (ex.check_zero_shot_weights, zero_shot_mean_of_raw, "before being normalised"),
    (ex.check_zero_shot_weights, zero_shot_keeps_underscores, "'_'"),
    (ex.check_nearest_tokens, nearest_cosine, "cosine"),
    (ex.check_nearest_tokens, nearest_largest, "farthest"),
    (ex.check_nearest_tokens, nearest_dot_product, "dot product"),
    (ex.check_nearest_tokens, nearest_returns_distances, "integer indices"),
    (ex.check_training_step, step_no_zero_grad, "zero_grad"),
    (ex.check_training_step, step_log_scale, "not exponentiated"),
    (ex.check_training_step, step_loss_after_update, "after the update"),
    (ex.check_training_step, step_forgets_step, "did not change"),
    (ex.check_training_step, step_touches_clip, "logit_scale"),
]


@pytest.mark.parametrize("check, fn, hint", MISTAKES, ids=[f.__name__ for _, f, _ in MISTAKES])
def test_a_plausible_mistake_fails_with_a_hint(check, fn, hint):
    with pytest.raises(AssertionError) as failure:
        check(fn)
    message = str(failure.value)
    assert message.startswith("Case "), message
    assert hint in message, message
    assert failure.value.__cause__ is None and failure.value.__context__ is None  # no traceback from inside


def test_each_check_catches_at_least_three_mistakes():
    counts = {name: 0 for name in ex.CHECKS}
    for check, _, _ in MISTAKES:
        counts[check.__name__] += 1
    assert min(counts.values()) >= 3, counts


def test_a_student_step_that_changes_clip_does_not_break_later_checks():
    with pytest.raises(AssertionError):
        ex.check_training_step(step_touches_clip)
    ex.check_training_step(step_by_hand)
    ex.check_logits(logits_by_division)


# ---------------------------------------------------------------------------------------------------------------
# Broken student functions get hints, not tracebacks.


def _fake_output(kind):
    """A student function for check_logits that returns something broken of the given kind."""

    def fn(image, text, scale):
        good = logits_by_division(image, text, scale)
        return {
            "raises": lambda: image @ text,  # shape error inside the student's code
            "none": lambda: None,
            "numpy": lambda: good.numpy(),
            "tuple": lambda: (good, scale),
            "shape": lambda: good[:, :1],
            "dtype": lambda: good.double(),
            "device": lambda: torch.empty(good.shape, device="meta"),
            "nan": lambda: good * float("nan"),
        }[kind]()

    return fn


@pytest.mark.parametrize("kind, hint", [
    ("raises", "your function raised RuntimeError"),
    ("none", "returned NoneType"),
    ("numpy", "returned ndarray"),
    ("tuple", "tuple of 2 items"),
    ("shape", "have shape"),
    ("dtype", "dtype torch.float64"),
    ("device", "are on meta"),
    ("nan", "NaN"),
])
def test_broken_functions_get_a_hint(kind, hint):
    with pytest.raises(AssertionError) as failure:
        ex.check_logits(_fake_output(kind))
    assert hint in str(failure.value) and str(failure.value).startswith("Case "), str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__context__ is None


@pytest.mark.parametrize("check", list(ex.CHECKS.values()), ids=list(ex.CHECKS))
def test_an_unimplemented_exercise_gets_a_hint(check):
    """What a student notebook hands in before any work: a function that raises NotImplementedError."""

    def todo(*args):
        raise NotImplementedError("write this function")

    with pytest.raises(AssertionError, match="raised NotImplementedError: write this function"):
        check(todo)


def test_not_a_function():
    with pytest.raises(AssertionError, match="needs your function itself"):
        ex.check_logits(None)


def test_checks_work_on_another_clip(clip77):
    assert ex.check_text_features(text_features_gather_first, clip=clip77).startswith("check_text_features")


@pytest.mark.slow
def test_bench_exercises_smoke(capsys):
    """The benchmark that reports each check's time (no timing is asserted here)."""
    import importlib
    import sys
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    importlib.import_module("bench_exercises").main(["--smoke"])
    out = capsys.readouterr().out
    assert "torch threads: 1" in out and "| check" in out
    assert out.count("check_") >= len(ex.CHECKS) and "SUMMARY: slowest check" in out


def test_the_nearest_token_reference_is_interpret_nearest_tokens():
    """check_nearest_tokens's reference search is the one interpret.nearest_tokens runs (same distances, order)."""
    from coop_tutorial import interpret
    from coop_tutorial.prompt_learner import PromptLearner

    clip = ex._tiny_clip()
    learner = PromptLearner(clip, ["circle"], ctx_init="a photo of a")
    with torch.no_grad():
        learner.ctx.add_(0.05 * torch.randn(learner.ctx.shape, generator=torch.Generator().manual_seed(0)))
    ids = interpret.vocabulary(clip)
    table = clip.model.token_embedding.weight.detach()[ids]
    ours = ex._distances(learner.ctx.detach(), table).topk(3, dim=1, largest=False).indices
    theirs = interpret.nearest_tokens(learner, clip, k=3)
    assert ids[ours].flatten().tolist() == theirs["token_id"].tolist()
