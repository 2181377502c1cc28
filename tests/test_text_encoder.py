"""The text pass: equal to open_clip's encode_text, truncated equal to full length."""
from __future__ import annotations

import pytest
import torch

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")

TEXTS = ["a photo of a dog.", "x", "a very long and winding description of a small red square on the left side."]


def test_full_and_truncated_pass_equal_encode_text(any_clip):
    ids = any_clip.tokenizer(TEXTS)
    embeddings = any_clip.model.token_embedding(ids)
    encoder = ct.TextEncoder(any_clip.model)
    with torch.no_grad():
        reference = any_clip.model.encode_text(ids)
        full = encoder(embeddings, ids, truncate=False)
        truncated = encoder(embeddings, ids, truncate=True)
    torch.testing.assert_close(full, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(truncated, full, atol=1e-5, rtol=0)


def test_truncated_pass_runs_only_up_to_the_longest_eos(clip77):
    learner = ct.PromptLearner(clip77, CLASSNAMES, n_ctx=4)
    encoder = ct.TextEncoder(clip77.model)
    seen = []
    hook = clip77.model.transformer.register_forward_pre_hook(lambda module, args, kwargs: seen.append(
        (args[0].shape[1], kwargs["attn_mask"].shape)), with_kwargs=True)
    try:
        with torch.no_grad():
            encoder(learner(), learner.tokenized_prompts)
            encoder(learner(), learner.tokenized_prompts, truncate=False)
    finally:
        hook.remove()
    longest = int(learner.tokenized_prompts.argmax(dim=-1).max()) + 1
    assert longest < 20
    assert seen == [(longest, (longest, longest)), (77, (77, 77))]


def test_truncate_flag_default_and_override(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4)
    full = ct.CoOpClassifier(clip32, learner, truncate_text=False)
    fast = ct.CoOpClassifier(clip32, learner)
    assert fast.text_encoder.truncate and not full.text_encoder.truncate
    torch.testing.assert_close(fast.text_features(), full.text_features(), atol=1e-6, rtol=0)


def test_no_causal_mask_means_full_length(clip32):
    # A tower that attends to padding cannot be truncated: the encoder must fall back to the full pass.
    encoder = ct.TextEncoder(clip32.model)
    encoder.attn_mask = None
    ids = clip32.tokenizer(TEXTS[:2])
    seen = []
    hook = clip32.model.transformer.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[1]))
    try:
        with torch.no_grad():
            encoder(clip32.model.token_embedding(ids), ids)
    finally:
        hook.remove()
    assert seen == [clip32.context_length]


# --- shared prefix: SOS + a unified context computed once -------------------------------------------------------

NAMES = CLASSNAMES + ["dog", "a very long class name with many words", "sea_turtle"]


def _step(classifier: ct.CoOpClassifier, image_features: torch.Tensor, labels: torch.Tensor):
    """(text features, d loss / d ctx) of one CoOp step."""
    learner = classifier.prompt_learner
    learner.ctx.grad = None
    text = classifier.text_features()
    torch.nn.functional.cross_entropy(classifier.logits_from_features(image_features, text), labels).backward()
    return text.detach(), learner.ctx.grad.clone()


@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize("csc", [False, True])
@pytest.mark.parametrize("chunk", [0, 3])
def test_shared_prefix_equals_the_per_class_pass(any_clip, position, csc, chunk):
    # Word init puts equal values in every class's context: a class-specific context must still get its own
    # gradient per class (sharing must follow the layout, not equal values).
    learner = ct.PromptLearner(any_clip, NAMES, ctx_init="a photo of a", csc=csc, class_token_position=position)
    with torch.no_grad():  # then break the symmetry a little, as training would
        learner.ctx.add_(0.05 * torch.randn(learner.ctx.shape, generator=torch.Generator().manual_seed(0)))
    shared = ct.CoOpClassifier(any_clip, learner, text_chunk_size=chunk)
    plain = ct.CoOpClassifier(any_clip, learner, text_chunk_size=chunk, share_prefix=False)
    generator = torch.Generator().manual_seed(1)
    image_features = torch.randn(8, any_clip.embed_dim, generator=generator)
    labels = torch.randint(len(NAMES), (8,), generator=generator)
    text, grad = _step(plain, image_features, labels)
    text_s, grad_s = _step(shared, image_features, labels)
    torch.testing.assert_close(text_s, text, atol=1e-5, rtol=0)
    torch.testing.assert_close(grad_s, grad, atol=1e-5, rtol=1e-4)
    assert grad.abs().sum() > 0


def test_shared_prefix_length_follows_the_layout(clip32):
    def length(**kwargs):
        return ct.PromptLearner(clip32, NAMES, n_ctx=6, **kwargs).shared_prefix_length
    assert length() == 7 and length(class_token_position="middle") == 4
    assert length(class_token_position="front") == 1 and length(csc=True) == 1


def test_shared_prefix_runs_the_prefix_once(clip32):
    # The shared positions go through each block once (batch 1); the rest run per class after them.
    learner = ct.PromptLearner(clip32, NAMES, n_ctx=8)
    classifier = ct.CoOpClassifier(clip32, learner)
    seen = []
    hooks = [clip32.model.transformer.resblocks[0].ln_1.register_forward_hook(
        lambda module, args, out: seen.append(tuple(args[0].shape[:2])))]
    try:
        with torch.no_grad():
            classifier.text_features()
    finally:
        for hook in hooks:
            hook.remove()
    longest = int(learner.tokenized_prompts.argmax(dim=-1).max()) + 1
    assert (1, 9) in seen and (len(NAMES), longest - 9) in seen
    assert all(shape[0] * shape[1] < len(NAMES) * longest for shape in seen)


def test_shared_prefix_off_for_the_official_loop_and_untouched_models(clip32):
    learner = ct.PromptLearner(clip32, NAMES, n_ctx=4)
    encoder = ct.TextEncoder(clip32.model, truncate=False)
    with torch.no_grad():
        full = encoder(learner(), learner.tokenized_prompts, shared_prefix=learner.shared_prefix_length)
        reference = encoder(learner(), learner.tokenized_prompts)
    assert torch.equal(full, reference)  # truncate=False: the official full-length pass, bit for bit
    with pytest.raises(ValueError, match="shared_prefix"):
        ct.TextEncoder(clip32.model)(learner(), learner.tokenized_prompts, shared_prefix=40)


def test_pretraining_text_pass_is_open_clip_encode_text(clip32):
    # pretraining encodes captions with TextEncoder (truncated to the longest caption): the same features as
    # open_clip's full-length encode_text, so the tiny CLIP is trained on exactly what CoOp later reads
    tokens = clip32.tokenizer(["a red circle", "two small blue stars on stripes", "a sketch"])
    encoder = ct.TextEncoder(clip32.model)
    with torch.no_grad():
        ours = encoder(clip32.model.token_embedding(tokens), tokens)
        theirs = clip32.model.encode_text(tokens)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
