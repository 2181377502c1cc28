"""Reference-equivalence tests of the PromptLearner against CLIP itself and the official CoOp layout."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES, make_clip

pytestmark = pytest.mark.usefixtures("single_thread")

POSITIONS = ["end", "middle", "front"]


def encode_text(clip, texts):
    """CLIP's own text features: the reference everything is compared with."""
    with torch.no_grad():
        return clip.model.encode_text(clip.tokenizer(texts))


def official_prompts(clip, classnames, ctx, position, prompt_prefix):
    """Re-implementation of the official PromptLearner (trainers/coop.py): tokenize, slice, concatenate.

    Built independently of PromptLearner's buffers: the prompt text is tokenized here, the prefix and suffix
    are sliced here, and the per-class loop concatenates exactly as the official forward does.
    """
    n_cls, n_ctx = len(classnames), ctx.shape[-2]
    names = [n.replace("_", " ") for n in classnames]
    name_lens = [len(clip.tokenizer.encode(n)) for n in names]
    tokenized = clip.tokenizer([prompt_prefix + " " + n + "." for n in names])
    with torch.no_grad():
        embedding = clip.model.token_embedding(tokenized)
    prefix, suffix = embedding[:, :1, :], embedding[:, 1 + n_ctx:, :]
    if ctx.dim() == 2:
        ctx = ctx.unsqueeze(0).expand(n_cls, -1, -1)
    if position == "end":
        return torch.cat([prefix, ctx, suffix], dim=1), tokenized
    prompts = []
    for i in range(n_cls):
        class_i, suffix_i = suffix[i:i + 1, :name_lens[i]], suffix[i:i + 1, name_lens[i]:]
        if position == "middle":
            half = n_ctx // 2
            parts = [prefix[i:i + 1], ctx[i:i + 1, :half], class_i, ctx[i:i + 1, half:], suffix_i]
        else:
            parts = [prefix[i:i + 1], class_i, ctx[i:i + 1], suffix_i]
        prompts.append(torch.cat(parts, dim=1))
    return torch.cat(prompts, dim=0), tokenized


def official_text_features(model, prompts, tokenized):
    """The official TextEncoder on an open_clip model: full length, EOS = argmax of the token ids."""
    x = prompts + model.positional_embedding
    x = model.transformer(x, attn_mask=model.attn_mask)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ model.text_projection


def test_word_init_untrained_equals_encode_text(any_clip):
    learner = ct.PromptLearner(any_clip, CLASSNAMES, ctx_init="a photo of a")
    clf = ct.CoOpClassifier(any_clip, learner)
    texts = [f"a photo of a {c.replace('_', ' ')}." for c in CLASSNAMES]
    reference = encode_text(any_clip, texts)
    with torch.no_grad():
        ours = clf.text_encoder(learner(), learner.tokenized_prompts)
    assert learner.n_ctx == 4
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(clf.text_features(), F.normalize(reference, dim=-1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("position, text", [
    ("middle", "a photo {} of a."),  # first n_ctx // 2 = 2 words, the class, the remaining 2
    ("front", "{} a photo of a."),
])
def test_word_init_layouts_equal_the_sentence_they_spell(clip77, position, text):
    learner = ct.PromptLearner(clip77, CLASSNAMES, ctx_init="a photo of a", class_token_position=position)
    reference = encode_text(clip77, [text.format(c.replace("_", " ")) for c in CLASSNAMES])
    with torch.no_grad():
        ours = ct.TextEncoder(clip77.model)(learner(), learner.tokenized_prompts)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("csc", [False, True])
@pytest.mark.parametrize("ctx_init", [None, "a photo of a"])
def test_layout_matches_official_implementation(any_clip, position, csc, ctx_init):
    generator = torch.Generator().manual_seed(3)
    learner = ct.PromptLearner(any_clip, CLASSNAMES, n_ctx=5, ctx_init=ctx_init, csc=csc,
                               class_token_position=position, generator=generator)
    with torch.no_grad():  # a trained-looking context, so that every vector matters
        learner.ctx.normal_(0, 0.5, generator=generator)
    prefix_text = ctx_init if ctx_init else " ".join(["X"] * learner.n_ctx)
    reference, tokenized = official_prompts(any_clip, CLASSNAMES, learner.ctx.detach(), position, prefix_text)
    prompts = learner()
    assert prompts.shape == (len(CLASSNAMES), any_clip.context_length, any_clip.width)
    assert torch.equal(prompts.detach(), reference)  # the same rows in the same places, bit for bit
    assert torch.equal(learner.tokenized_prompts, tokenized)
    clf = ct.CoOpClassifier(any_clip, learner)
    with torch.no_grad():
        expected = F.normalize(official_text_features(any_clip.model, reference, tokenized), dim=-1)
        torch.testing.assert_close(clf.text_features(), expected, atol=1e-5, rtol=0)
        image_features = F.normalize(torch.randn(3, any_clip.embed_dim, generator=generator), dim=-1)
        logits = any_clip.model.logit_scale.exp() * image_features @ expected.t()
        torch.testing.assert_close(clf.logits_from_features(image_features), logits, atol=1e-4, rtol=0)


def test_buffers_follow_the_official_slicing(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=3)
    names = [c.replace("_", " ") for c in CLASSNAMES]
    ids = clip32.tokenizer(["X X X " + n + "." for n in names])
    embedding = clip32.model.token_embedding(ids)
    assert torch.equal(learner.token_prefix, embedding[:, :1])
    assert torch.equal(learner.token_suffix, embedding[:, 4:])
    assert learner.name_lens == [len(clip32.tokenizer.encode(n)) for n in names]
    assert learner.n_cls == len(CLASSNAMES) and learner.n_ctx == 3
    assert set(learner.state_dict()) == {"ctx", "token_prefix", "token_suffix"}  # the official keys


def test_context_shapes_and_random_init(clip32):
    unified = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=16, generator=torch.Generator().manual_seed(0))
    csc = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=16, csc=True, generator=torch.Generator().manual_seed(0))
    assert unified.ctx.shape == (16, clip32.width)
    assert csc.ctx.shape == (len(CLASSNAMES), 16, clip32.width)
    assert abs(float(csc.ctx.detach().std()) - 0.02) < 0.002  # N(0, 0.02)
    again = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(unified.ctx, again.ctx)
    assert [name for name, p in unified.named_parameters() if p.requires_grad] == ["ctx"]


def test_csc_with_ctx_init_copies_the_words_to_every_class(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo of a", csc=True)
    words = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo of a")
    assert learner.ctx.shape == (len(CLASSNAMES), 4, clip32.width)
    for c in range(len(CLASSNAMES)):
        assert torch.equal(learner.ctx[c], words.ctx)
    assert torch.equal(learner(), words())  # untrained: the same prompts as the unified word init


def test_ctx_init_counts_tokens_not_words(clip77):
    # "zyzzogeton" is one word but five BPE tokens; counting words (as the official code does) would
    # misalign the prompt. Counting tokens keeps the untrained prompt equal to the sentence.
    learner = ct.PromptLearner(clip77, CLASSNAMES, ctx_init="a zyzzogeton of")
    assert learner.n_ctx == len(clip77.tokenizer.encode("a zyzzogeton of")) == 7
    reference = encode_text(clip77, [f"a zyzzogeton of {c.replace('_', ' ')}." for c in CLASSNAMES])
    with torch.no_grad():
        ours = ct.TextEncoder(clip77.model)(learner(), learner.tokenized_prompts)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)


def test_ctx_init_underscores_read_as_spaces(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a_photo_of_a")
    assert learner.ctx_init == "a photo of a" and learner.n_ctx == 4


def test_ctx_init_words_unseen_in_pretraining_warn(clip32):
    trained = torch.tensor(clip32.tokenizer.encode("a of red square") + [49406, 49407])  # + SOS, EOS
    restricted = make_clip(32, name=clip32.name, trained_token_ids=trained)
    with pytest.warns(UserWarning, match="1 token.*'a photo of a'.*never appeared"):
        ct.PromptLearner(restricted, CLASSNAMES, ctx_init="a photo of a")


def test_layout_string_shows_the_prompt(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4, class_token_position="middle")
    assert learner.layout_string(0) == "[SOS] [V1] [V2] red square [V3] [V4] . [EOS]"


def test_with_classnames_keeps_a_unified_context(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4)
    other = learner.with_classnames(clip32, ["cat", "dog"])
    assert torch.equal(other.ctx, learner.ctx) and other.n_cls == 2
    csc = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4, csc=True)
    with pytest.raises(ValueError, match="csc"):
        csc.with_classnames(clip32, ["cat", "dog"])


def test_gradients_reach_only_the_context(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4, class_token_position="middle")
    clf = ct.CoOpClassifier(clip32, learner)
    clf.text_features().sum().backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip32.model.parameters())
