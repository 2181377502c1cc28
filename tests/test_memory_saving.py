"""The memory-saving text pass (``text_chunk_size``): same features and same context gradients as one batch."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")

# Names of different token lengths, so chunks are truncated to different lengths.
MANY_CLASSES = CLASSNAMES + ["dog", "a very long class name with many words", "cat", "sea_turtle", "x"]


def _loss_and_grad(classifier: ct.CoOpClassifier, image_features: torch.Tensor,
                   labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(text features, loss, d loss / d ctx) of one CoOp step."""
    learner = classifier.prompt_learner
    learner.ctx.grad = None
    text = classifier.text_features()
    loss = F.cross_entropy(classifier.logits_from_features(image_features, text), labels)
    loss.backward()
    return text.detach(), loss.detach(), learner.ctx.grad.clone()


@pytest.mark.parametrize("csc", [False, True])
@pytest.mark.parametrize("truncate", [True, False])
@pytest.mark.parametrize("chunk", [1, 3, 4])
def test_chunked_pass_gives_equal_features_and_gradients(clip77, csc, truncate, chunk):
    learner = ct.PromptLearner(clip77, MANY_CLASSES, n_ctx=4, csc=csc, generator=torch.Generator().manual_seed(0))
    plain = ct.CoOpClassifier(clip77, learner, truncate_text=truncate)
    chunked = ct.CoOpClassifier(clip77, learner, truncate_text=truncate, text_chunk_size=chunk)
    generator = torch.Generator().manual_seed(1)
    image_features = torch.randn(6, clip77.embed_dim, generator=generator)
    labels = torch.randint(len(MANY_CLASSES), (6,), generator=generator)
    text, loss, grad = _loss_and_grad(plain, image_features, labels)
    text_c, loss_c, grad_c = _loss_and_grad(chunked, image_features, labels)
    assert grad.abs().sum() > 0
    torch.testing.assert_close(text_c, text, atol=1e-6, rtol=0)
    torch.testing.assert_close(loss_c, loss, atol=1e-6, rtol=0)
    # Chunks change the order of float32 sums in backward: equal up to rounding, relative to the gradient's size.
    torch.testing.assert_close(grad_c, grad, atol=1e-4 * float(grad.abs().max()), rtol=0)


def test_chunks_are_checkpointed_only_when_gradients_flow(clip77):
    learner = ct.PromptLearner(clip77, MANY_CLASSES, n_ctx=4)
    classifier = ct.CoOpClassifier(clip77, learner, text_chunk_size=4, share_prefix=False)
    calls = []
    hook = clip77.model.transformer.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            classifier.text_features()
        no_grad_calls = list(calls)
        calls.clear()
        classifier.text_features().sum().backward()  # forward per chunk, then one recompute per chunk
    finally:
        hook.remove()
    sizes = [4, 4, 2]
    assert no_grad_calls == sizes  # no gradients: chunks, nothing to recompute
    assert calls[:3] == sizes and sorted(calls[3:]) == sorted(sizes)  # backward recomputes each chunk once


def test_shared_prefix_chunks_are_checkpointed_too(clip77):
    learner = ct.PromptLearner(clip77, MANY_CLASSES, n_ctx=4)
    classifier = ct.CoOpClassifier(clip77, learner, text_chunk_size=4)
    calls = []
    hook = clip77.model.transformer.resblocks[0].ln_1.register_forward_hook(
        lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        classifier.text_features().sum().backward()
    finally:
        hook.remove()
    # The prefix once (batch 1; its keys and values are reused by every chunk), then each chunk runs its own
    # positions, and backward recomputes each chunk once.
    chunk_calls = [c for c in calls if c != 1]
    assert calls[0] == 1 and sorted(chunk_calls) == sorted([4, 4, 2] * 2)


def test_training_with_chunks_matches_training_without(clip32, make_dataset):
    dataset = make_dataset(per_class=4)
    base = ct.CoOpConfig(epochs=2, warmup_epochs=0, batch_size=8, n_views=2, optimizer="adam", lr=1e-2,
                         progress=False)
    plain = ct.train_coop(clip32, dataset, config=base)
    chunked = ct.train_coop(clip32, dataset, config=base.replace(text_chunk_size=2))
    torch.testing.assert_close(chunked.learner.ctx, plain.learner.ctx, atol=1e-5, rtol=0)
    assert [round(r["loss"], 5) for r in chunked.history] == [round(r["loss"], 5) for r in plain.history]


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_bad_chunk_size_is_refused(clip32, value):
    with pytest.raises(ValueError, match="text_chunk_size"):
        ct.CoOpConfig(text_chunk_size=value)
    with pytest.raises(ValueError, match="chunk_size"):
        ct.TextEncoder(clip32.model, chunk_size=value)
