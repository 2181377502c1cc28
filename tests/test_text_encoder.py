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
