"""Looking inside the context: nearest words, norms, drift, similarity."""
from __future__ import annotations

import pytest
import torch

import coop_tutorial as ct
from conftest import CLASSNAMES, make_clip

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_word_initialised_context_reads_back_its_words(clip32, metric):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo of a")
    table = ct.nearest_tokens(learner, clip32, k=3, metric=metric)
    top = table[table["rank"] == 1]
    assert list(top["word"]) == ["a", "photo", "of", "a"]
    assert list(top["position"]) == [1, 2, 3, 4] and top["class"].isna().all()
    expected = 0.0 if metric == "euclidean" else 1.0
    assert top["score"].tolist() == pytest.approx([expected] * 4, abs=1e-5)
    assert len(table) == 4 * 3
    assert ct.context_words(learner, clip32, metric=metric) == "a photo of a"


def test_class_specific_context_gets_one_answer_per_class(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo", csc=True)
    with torch.no_grad():
        learner.ctx[1, 0] = clip32.model.token_embedding.weight[clip32.tokenizer.encode("dog")[0]]
    words = ct.context_words(learner, clip32)
    assert list(words) == CLASSNAMES
    assert words["red_square"] == "a photo" and words["green circle"] == "dog photo"


def test_candidates_are_trained_whole_words(clip32):
    tokenizer = clip32.tokenizer
    trained = torch.tensor(sorted({*tokenizer.encode("a photo of the red dog itap"), 7}))
    restricted = make_clip(32, name=clip32.name, trained_token_ids=trained)
    learner = ct.PromptLearner(restricted, CLASSNAMES, n_ctx=6, generator=torch.Generator().manual_seed(0))
    table = ct.nearest_tokens(learner, restricted, k=50)
    whole = {i for i in trained.tolist() if tokenizer.decoder[i].endswith("</w>")}
    assert set(table["token_id"]) <= whole
    assert not table["word"].str.endswith("-").any()
    fragments = ct.nearest_tokens(learner, restricted, k=50, whole_words=False)
    assert set(fragments["token_id"]) == set(trained.tolist())  # 'it' and a single byte are fragments
    assert fragments["word"].str.endswith("-").any()


def test_norms_similarity_and_drift(clip32):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo of a")
    initial = learner.ctx.detach().clone()
    assert ct.context_norms(learner).shape == (4,)
    assert ct.context_norms(torch.zeros(3, 4, 8)).shape == (3, 4)
    assert ct.vocabulary_norm(clip32) > 0
    similarity = ct.context_similarity(learner, initial)
    torch.testing.assert_close(similarity.diagonal(), torch.ones(4))
    assert similarity[0, 3] == pytest.approx(1.0)  # "a" at positions 1 and 4
    with torch.no_grad():
        learner.ctx[2] *= -1
    drift = ct.context_drift(initial, learner)
    assert drift["cos_to_init"].tolist() == pytest.approx([1, 1, -1, 1], abs=1e-6)
    assert drift["l2_to_init"].iloc[2] == pytest.approx(2 * float(initial[2].norm()), rel=1e-5)


def test_drift_tracker_follows_training(clip32):
    features = ct.FeatureSet(torch.nn.functional.normalize(torch.randn(1, 10, clip32.embed_dim), dim=-1),
                             torch.arange(5).repeat(2), list(CLASSNAMES))
    tracker = ct.DriftTracker(clip32, keep_snapshots=True)
    config = ct.CoOpConfig(ctx_init="a photo of a", epochs=2, batch_size=5, optimizer="adam", lr=0.05,
                           warmup_epochs=0, progress=False)
    result = ct.train_coop(clip32, features, config=config, callbacks=[tracker])
    frame = tracker.frame()
    assert sorted(frame["epoch"].unique()) == [0, 1, 2]
    start = frame[frame["epoch"] == 0]
    assert start["l2_to_init"].max() == 0 and list(start["word"]) == ["a", "photo", "of", "a"]
    assert frame[frame["epoch"] == 2]["l2_to_init"].min() > 0
    assert torch.equal(tracker.snapshots[-1], result.learner.ctx.detach())
