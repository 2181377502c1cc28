"""The interpretation lab: corpus, ablation, paths, discrete prompts, waywardness, function vs parameters.

On the small random CLIPs of conftest (their token table is real CLIP's size, 49,408 rows, with no
``trained_token_ids``, so every vocabulary search here runs over the full table) and fake image tasks.
"""
from __future__ import annotations

import pytest
import torch

import coop_tutorial as ct
from coop_tutorial import interpret_lab as lab
from coop_tutorial.sweeps import fit_coop
from coop_tutorial.task_features import encode_task
from conftest import FakeImages, make_clip

pytestmark = pytest.mark.usefixtures("single_thread")

NAMES = ["circle", "square", "star"]


class FakeTask(FakeImages):
    templates = ["a photo of a {}.", "a {}."]


def fake_loader(name: str, split: str) -> FakeTask:
    per_class = {"train": 4, "val": 3, "test": 5}[split]
    return FakeTask(NAMES, per_class, seed={"train": 1, "val": 2, "test": 3}[split])


@pytest.fixture(scope="module")
def task(clip32):
    return encode_task(clip32, "three", n_views=2, load_task=fake_loader)


def quick(**changes) -> ct.CoOpConfig:
    return ct.CoOpConfig.embedded(2, **{**dict(epochs=2, n_views=2, n_ctx=4, progress=False), **changes})


@pytest.fixture(scope="module")
def learned(clip32, task):
    return ct.train_coop(clip32, task.train_views, task.val, quick(), classnames=task.classnames).learner


# --------------------------------------------------------------------------------------------- vocabulary


def test_chunked_nearest_rows_match_the_full_distance_matrix():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(49408, 16, generator=generator)  # a real-size vocabulary
    rows = torch.cat([table[[7, 49407, 20000]] + 1e-4, torch.randn(37, 16, generator=generator)])
    distance, index = lab.nearest_rows(rows, table, row_chunk=8, token_chunk=5000)
    full = torch.cdist(rows, table, compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.equal(index, full.argmin(1))
    torch.testing.assert_close(distance, full.min(1).values)
    assert index[:3].tolist() == [7, 49407, 20000]


def test_projection_of_words_is_the_words_over_the_full_vocabulary(clip32):
    learner = ct.PromptLearner(clip32, NAMES, ctx_init="a photo of a")
    projected, ids = lab.nearest_word_projection(clip32, learner)
    torch.testing.assert_close(projected, learner.ctx.detach())
    assert ids.tolist() == clip32.tokenizer.encode("a photo of a")
    assert len(lab.token_table(clip32)[0]) > 20000  # whole words of the 49,408-token table


def test_mean_token_embedding_and_initial_context(clip32, task):
    torch.testing.assert_close(lab.mean_token_embedding(clip32, chunk=1000),
                               clip32.model.token_embedding.weight.detach().mean(0), rtol=1e-5, atol=1e-6)
    tracker = ct.DriftTracker(keep_snapshots=True)
    result = ct.train_coop(clip32, task.train_views, None, quick(seed=5, epochs=1), callbacks=[tracker],
                           classnames=task.classnames)
    assert torch.equal(lab.initial_context(clip32, result.learner, seed=5), tracker.snapshots[0])
    with pytest.raises(ValueError, match="seed"):
        lab.initial_context(clip32, result.learner)
    words = ct.PromptLearner(clip32, NAMES, ctx_init="a photo")
    assert torch.equal(lab.initial_context(clip32, words), words.ctx.detach())


# ---------------------------------------------------------------------------------------------- scoring


def test_scorer_matches_the_classifier_and_leaves_the_learner_alone(clip32, task, learned):
    before = learned.ctx.detach().clone()
    scorer = lab.ContextScorer(clip32, learned, task.test)
    expected = 100 * ct.score(ct.CoOpClassifier(clip32, learned), task.test)
    assert scorer.accuracy(learned) == pytest.approx(expected)
    scorer.accuracy(torch.zeros_like(before))
    assert torch.equal(learned.ctx.detach(), before)
    with pytest.raises(ValueError, match="does not fit"):
        scorer.accuracy(torch.zeros(5, clip32.width))


def test_contexts_of_another_model_are_refused(clip32, task, learned):
    other = make_clip(32, width=32, embed_dim=32, name="narrow")
    with pytest.raises(ValueError, match="width"):
        lab.interpolation_path(clip32, learned, torch.zeros(4, 32), task.test)
    with pytest.raises(ValueError, match="model"):
        lab.ContextScorer(other, learned)
    with pytest.raises(ValueError, match="cannot be compared"):
        lab.interpolation_path(clip32, learned, torch.zeros(5, clip32.width), task.test)


def test_bootstrap_interval():
    values = torch.tensor([0.0, 1.0] * 200)
    low, high = lab.bootstrap_interval(values, n_boot=500)
    assert low < 0.5 < high and high - low < 0.15
    assert lab.bootstrap_interval(torch.ones(50)) == (1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        lab.bootstrap_interval(values, level=95)


# ---------------------------------------------------------------------------------------------- ablation


def test_position_ablation_table(clip32, task, learned):
    table = lab.position_ablation(clip32, learned, task.test, initial=lab.initial_context(clip32, learned, seed=1),
                                  n_boot=200)
    assert len(table) == 4 * len(lab.ABLATIONS)
    assert list(table.columns) == ["position", "replacement", "accuracy", "change", "low", "high"]
    assert ((table["low"] <= table["change"] + 1e-9) & (table["change"] <= table["high"] + 1e-9)).all()
    intact = table.attrs["accuracy"]
    assert (table["accuracy"] - table["change"]).round(6).eq(round(intact, 6)).all()
    zero = torch.zeros_like(learned.ctx.detach())
    zero[1:] = learned.ctx.detach()[1:]
    row = table[(table["position"] == 1) & (table["replacement"] == "zero")].iloc[0]
    assert row["accuracy"] == pytest.approx(lab.ContextScorer(clip32, learned, task.test).accuracy(zero))
    assert lab.ablation_figure(table, "mean") is not None


def test_ablating_a_word_by_its_initial_word_changes_nothing(clip32, task):
    words = ct.PromptLearner(clip32, NAMES, ctx_init="a photo of a")
    table = lab.position_ablation(clip32, words, task.test, replacements=("initial",), n_boot=50)
    assert (table["change"] == 0).all() and (table["low"] == 0).all() and (table["high"] == 0).all()


def test_ablation_refuses_unknown_replacements_and_missing_initial(clip32, task, learned):
    with pytest.raises(ValueError, match="Unknown replacement"):
        lab.position_ablation(clip32, learned, task.test, replacements=("noise",))
    with pytest.raises(ValueError, match="seed"):
        lab.position_ablation(clip32, learned, task.test, replacements=("initial",))


# ------------------------------------------------------------------------------------------------- paths


def test_interpolation_path_ends_and_barrier(clip32, task, learned):
    start = lab.initial_context(clip32, learned, seed=1)
    path = lab.interpolation_path(clip32, learned, start, task.test, steps=5)
    scorer = lab.ContextScorer(clip32, learned, task.test)
    assert path["alpha"].tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert path["accuracy"].iloc[0] == pytest.approx(scorer.accuracy(learned))
    assert path["accuracy"].iloc[-1] == pytest.approx(scorer.accuracy(start))
    flat = lab.interpolation_path(clip32, learned, learned, task.test, steps=3)
    assert lab.path_barrier(flat) == 0.0
    assert lab.path_barrier(path) >= 0.0
    with pytest.raises(ValueError, match="steps"):
        lab.interpolation_path(clip32, learned, start, task.test, steps=1)
    with pytest.raises(ValueError, match="layout"):
        lab.interpolation_path(clip32, start, start, task.test)
    explorer = lab.path_explorer(clip32, {"to init": path}, {"to init": (learned, start)}, static=True)
    assert explorer.last.numbers["accuracy"] == pytest.approx(path["accuracy"].iloc[2])


# ------------------------------------------------------------------------------------ discrete prompts


def test_recovering_a_word_context_gives_back_its_words(clip32, task):
    words = ct.PromptLearner(clip32, NAMES, ctx_init="a photo of a")
    result = lab.recover_discrete_prompt(clip32, words, task, steps=2, init="context")
    assert result.template == "a photo of a {}." and result.retokenizes
    zero_shot = 100 * ct.evaluate(ct.zero_shot_classifier(clip32, NAMES, "a photo of a {}."), task.test).accuracy
    assert result.accuracy == pytest.approx(zero_shot)
    assert result.history["loss"].iloc[0] == pytest.approx(0.0, abs=1e-5)


def test_recovered_prompt_is_scored_as_an_ordinary_template(clip32, task, learned):
    result = lab.recover_discrete_prompt(clip32, learned, task, steps=4, eval_every=2, seed=3)
    assert result.template.count("{}") == 1 and len(result.words) == learned.n_ctx
    assert result.retokenizes
    template_scores = lab.template_choice(clip32, [result.template], NAMES, task.val, task.test)
    # the optimisation path (prompt learner) and the zero-shot path (text) agree on the chosen prompt
    assert template_scores["val_accuracy"].iloc[0] == pytest.approx(result.val_accuracy)
    assert template_scores["accuracy"].iloc[0] == pytest.approx(result.accuracy)
    assert result.val_accuracy == result.history["val_accuracy"].max()
    again = lab.recover_discrete_prompt(clip32, learned, task, steps=4, eval_every=2, seed=3)
    assert again.template == result.template


def test_recovery_refuses_bad_input(clip32, task):
    csc = ct.PromptLearner(clip32, NAMES, n_ctx=2, csc=True)
    with pytest.raises(ValueError, match="csc"):
        lab.recover_discrete_prompt(clip32, csc, task, steps=1)
    words = ct.PromptLearner(clip32, NAMES, ctx_init="a photo")
    with pytest.raises(ValueError, match="val="):
        lab.recover_discrete_prompt(clip32, words, task.test, steps=1)
    with pytest.raises(ValueError, match="init"):
        lab.recover_discrete_prompt(clip32, words, task, init="words")


def test_recovered_words_never_hold_a_brace(clip32, task):
    learner = ct.PromptLearner(clip32, NAMES, ctx_init="a photo")
    brace = clip32.tokenizer.encoder["{}</w>"]  # CLIP's vocabulary has a "{}" word
    with torch.no_grad():
        learner.ctx[0] = clip32.model.token_embedding.weight[brace]
    result = lab.recover_discrete_prompt(clip32, learner, task, steps=0, init="context")
    assert result.template.count("{") == 1 and result.words[1] == "photo"


def test_template_layouts():
    assert lab._template(["a", "b", "c", "d"], "middle") == "a b {} c d."
    assert lab._template(["a", "b"], "front") == "{} a b."


# ----------------------------------------------------------------------------------------- waywardness


def test_a_full_pull_spells_the_phrase_and_no_pull_is_coop(clip32, task):
    config = quick()
    table = lab.waywardness_test(clip32, task.train_views, task.val, task.test, "red dog", pulls=(0.0, 1.0),
                                 config=config)
    plain = ct.train_coop(clip32, task.train_views, task.val, config, classnames=task.classnames)
    assert table.loc[0, "accuracy"] == pytest.approx(100 * ct.evaluate(plain.classifier, task.test).accuracy)
    assert table.loc[1, "phrase_match"] == 1.0 and table.loc[1, "distance"] == pytest.approx(0.0, abs=1e-5)
    assert table.loc[1, "words"].startswith("red dog")
    assert lab.waywardness_reach(table, tolerance=200.0) == 1.0
    found = lab.waywardness_findings(table, tolerance=200.0)
    assert (found["spelled_pull"], found["unpulled"]) == (1.0, table.loc[0, "accuracy"])


def test_waywardness_findings_read_the_table_and_say_nan_when_no_pull_spells_the_phrase():
    import math

    import pandas as pd

    table = pd.DataFrame({"pull": [0.0, 0.01, 0.1, 0.3], "accuracy": [80.0, 78.0, 60.0, 40.0],
                          "phrase_match": [0.0, 0.95, 1.0, 1.0]})
    table.attrs["phrase_accuracy"] = 45.0
    found = lab.waywardness_findings(table, tolerance=5.0)
    assert found == dict(unpulled=80.0, phrase=45.0, spelled_pull=0.1, spelled_accuracy=60.0, nearly=[78.0],
                         reach=0.01)
    # too weak a pull to spell the phrase (e.g. a dry run's single epoch): NaN, so claims about it are false
    table["phrase_match"] = [0.0, 0.1, 0.2, 0.5]
    found = lab.waywardness_findings(table, tolerance=5.0)
    assert math.isnan(found["spelled_pull"]) and math.isnan(found["spelled_accuracy"]) and found["nearly"] == []
    assert not found["reach"] < found["spelled_pull"]


def test_waywardness_refuses_a_phrase_longer_than_the_context(clip32, task):
    with pytest.raises(ValueError, match="only 4 vectors"):
        lab.waywardness_test(clip32, task.train_views, task.val, task.test, "a photo of a red dog", config=quick())
    with pytest.raises(ValueError, match="pull"):
        lab.PhrasePull(torch.zeros(1, 4), 1.5)


# ----------------------------------------------------------------------------- function vs parameters


def test_linear_cka_invariances():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 8, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    assert lab.linear_cka(x, 3 * x @ rotation + 1) == pytest.approx(1.0)
    assert lab.linear_cka(x, torch.randn(30, 8, generator=generator)) < 0.7
    with pytest.raises(ValueError, match="same items"):
        lab.linear_cka(x, x[:10])


def test_matched_cosine_finds_the_permutation():
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
    order = [3, 0, 5, 1, 4, 2]
    cosine, matched = lab.matched_cosine(x, x[order])
    assert cosine == pytest.approx(1.0)
    assert [order[j] for j in matched] == list(range(6))


def test_compare_contexts_with_the_untrained_null(clip32, task, learned):
    null = lab.untrained_contexts(clip32, learned, seeds=(1, 2))
    assert torch.equal(null["untrained seed 1"], lab.initial_context(clip32, learned, seed=1))
    table = lab.compare_contexts(clip32, {"learned": learned, "copy": learned.ctx.detach().clone()}, task.test,
                                 cka_classnames=NAMES + ["dog", "cat"], null=null)
    assert len(table) == 6
    assert table["kind"].value_counts().to_dict() == {"learned-null": 4, "learned-learned": 1, "null-null": 1}
    same = table[(table["a"] == "learned") & (table["b"] == "copy")].iloc[0]
    assert same["agreement"] == 100 and same["cka"] == pytest.approx(1.0)
    assert same["matched_cosine"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot be compared"):
        lab.compare_contexts(clip32, {"a": learned, "b": torch.zeros(3, clip32.width)}, task.test)
    with pytest.raises(ValueError, match="both"):
        lab.compare_contexts(clip32, {"learned": learned}, task.test, null={"learned": learned})


# -------------------------------------------------------------------------------------------------- corpus


def test_corpus_reads_the_run_cache(clip32, task, tmp_path):
    with pytest.raises(ValueError, match="notebook 04"):
        lab.load_corpus(tmp_path)
    for seed in (1, 2):
        fit_coop(clip32, task, 2, seed, quick(), cache_dir=tmp_path)
    corpus = lab.load_corpus(tmp_path, clip32)
    assert list(corpus[["task", "shots", "seed", "method", "n_ctx"]].itertuples(index=False, name=None)) == \
        [("three", 2, 1, "coop", 4), ("three", 2, 2, "coop", 4)]
    assert corpus["vectors"].iloc[0].shape == (4, clip32.width)
    assert corpus["accuracy"].between(0, 100).all()
    rebuilt = ct.load_context(corpus["path"].iloc[1], clip32)
    assert torch.equal(rebuilt.ctx.detach(), corpus["vectors"].iloc[1])
    with pytest.raises(ValueError, match="none of 'other'"):
        lab.load_corpus(tmp_path, make_clip(32, name="other"))
    # another pretraining of the same model (same name and width, other weights) shares nothing with this corpus
    retrained = make_clip(32, seed=5)
    assert retrained.name == clip32.name
    fit_coop(retrained, task, 2, 1, quick(), cache_dir=tmp_path)
    assert len(lab.load_corpus(tmp_path, clip32)) == 2 and len(lab.load_corpus(tmp_path, retrained)) == 1
    # a run cached again under a new name (the training code changed) counts once, as its newest file
    for path in sorted(tmp_path.glob("**/*.safetensors")):
        if path.name.startswith("coop_2shots_seed1_"):
            copy = path.with_name(path.name.replace("seed1_", "seed1_newer"))
            copy.write_bytes(path.read_bytes())
    corpus = lab.load_corpus(tmp_path, clip32)
    assert len(corpus) == 2 and corpus.loc[corpus["seed"] == 1, "path"].str.contains("newer").all()
    world = ct.use_world("embedded", data_root=tmp_path / "nothing", device="cpu")
    with pytest.raises(ValueError, match="No cached contexts"):
        lab.load_corpus(world)


def test_benchmark_smoke(capsys):
    import importlib
    import sys
    from pathlib import Path

    benchmarks = Path(__file__).resolve().parents[1] / "benchmarks"
    if str(benchmarks) not in sys.path:
        sys.path.insert(0, str(benchmarks))
    importlib.import_module("bench_interpret_lab").main(["--smoke"])
    out = capsys.readouterr().out
    assert "torch threads: 1" in out and "|---" in out
    assert sum(line.startswith("SUMMARY: ") for line in out.splitlines()) == 1
