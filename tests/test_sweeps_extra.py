"""The notebooks' study helpers (one-word edits, ensembles, design ablations, transplants, word spacing, the run
cache, test-split encoding), on a small random CLIP and fake image tasks: fast, no shipped model needed."""
from __future__ import annotations

from typing import Optional

import pandas as pd
import pytest
import torch

import coop_tutorial as ct
from coop_tutorial import CoOpConfig, PromptLearner
from coop_tutorial.evaluation import sampling_error
from coop_tutorial.interpret import transplant_table, vocabulary_neighbour_distance
from coop_tutorial.prompt_study import _word_distance, ensemble_table, one_word_edits, prompt_table
from coop_tutorial.run_cache import coop_cache_path
from coop_tutorial.sweeps import DESIGN_VARIANTS, design_sweep, fit_coop, shot_sweep
from coop_tutorial.task_features import encode_task, encode_test_split
from conftest import FakeImages

TEMPLATES = ["a photo of a {}.", "a picture of a {}.", "a {}.", "a photo of the {}."]


class FakeTask(FakeImages):
    templates = TEMPLATES


def fake_loader(name: str, split: str) -> FakeTask:
    names = ["circle", "square", "star"] if name == "three" else ["red", "blue"]
    per_class = {"train": 4, "val": 2, "test": 3}[split]
    return FakeTask(names, per_class, seed=hash((name, split)) % 1000)


def quick(shots: int, dataset: Optional[str] = None) -> CoOpConfig:
    return CoOpConfig.embedded(shots, epochs=1, n_views=2, n_ctx=2, progress=False)


@pytest.fixture(scope="module")
def fake_tasks(clip32):
    return [encode_task(clip32, name, n_views=2, load_task=fake_loader) for name in ("three", "two")]


def test_sampling_error():
    assert sampling_error(50.0, 100) == pytest.approx(5.0)
    assert sampling_error(0.0, 10) == 0.0 and sampling_error(100.0, 10) == 0.0


def test_word_distance_counts_words():
    assert _word_distance("a photo of a {}.".split(), "a picture of a {}.".split()) == 1
    assert _word_distance("a {}.".split(), "a photo of a {}.".split()) == 3
    assert _word_distance([], ["x", "y"]) == 2


def test_one_word_edits_pairs_and_order():
    prompts = pd.DataFrame({"task": ["t"] * 4 + ["u"] * 2,
                            "template": TEMPLATES + ["a {}.", "the {}."],
                            "accuracy": [50.0, 40.0, 45.0, 60.0, 10.0, 30.0]})
    edits = one_word_edits(prompts)
    pairs = {(r.template_a, r.template_b) for r in edits.itertuples()}
    # photo->picture, photo of a->photo of the, and a->the in task u; "a {}." is 3 words from the photo templates
    assert pairs == {("a picture of a {}.", "a photo of a {}."), ("a photo of a {}.", "a photo of the {}."),
                     ("a {}.", "the {}.")}
    assert (edits["change"] >= 0).all()
    assert list(edits["change"]) == sorted(edits["change"], reverse=True)
    assert edits.iloc[0]["change"] == 20.0 and edits.iloc[0]["task"] == "u"


def test_ensemble_table_columns(clip32, fake_tasks):
    table = ensemble_table(clip32, fake_tasks, {"two_templates": TEMPLATES[:2]})
    assert list(table.index) == ["three", "two"]
    assert list(table.columns) == ["default_prompt", "mean_prompt", "best_prompt", "task_ensemble", "two_templates"]
    assert (table["best_prompt"] >= table["mean_prompt"]).all() and table.to_numpy().max() <= 100


def test_design_sweep_reuses_the_baseline(clip32, fake_tasks):
    sweep = shot_sweep(clip32, fake_tasks, shots=(2,), seeds=(1,), config=quick, progress=False)
    variants = {"default": {}, "csc": {"csc": True}}
    design = design_sweep(clip32, fake_tasks, variants, shots=2, seeds=(1,), config=quick, baseline=sweep,
                          progress=False)
    assert list(design.columns) == ["task", "variant", "shots", "seed", "accuracy"]
    assert list(design["variant"]) == ["default", "default", "csc", "csc"]
    reused = design[design["variant"] == "default"].set_index("task")["accuracy"]
    from_sweep = sweep[sweep["method"] == "coop"].set_index("task")["accuracy"]
    assert reused.to_dict() == from_sweep.to_dict()
    # without a baseline the default is trained again, with the same recipe and seed: the same numbers
    again = design_sweep(clip32, fake_tasks[:1], {"default": {}}, shots=2, seeds=(1,), config=quick, progress=False)
    assert again["accuracy"].iloc[0] == pytest.approx(reused["three"])
    assert set(DESIGN_VARIANTS["class-specific"]) == {"csc"}


def test_transplant_table_rebuilds_prompts_per_task(clip32, fake_tasks):
    contexts = {task.name: PromptLearner(clip32, task.classnames, n_ctx=2) for task in fake_tasks}
    table = transplant_table(clip32, contexts, fake_tasks)
    assert list(table.index) == ["three", "two", "zero-shot"] and list(table.columns) == ["three", "two"]
    assert table.to_numpy().min() >= 0 and table.to_numpy().max() <= 100


def test_vocabulary_neighbour_distance_is_positive(clip32):
    trained = torch.tensor([320, 321, 322, 1000, 2000])  # a few whole-word tokens of the CLIP vocabulary
    clip32.trained_token_ids = trained
    try:
        distances = vocabulary_neighbour_distance(clip32)
    finally:
        clip32.trained_token_ids = None
    assert distances.shape[0] <= len(trained) and (distances > 0).all() and torch.isfinite(distances).all()


def test_fit_coop_cache_reuses_the_run(clip32, fake_tasks, tmp_path):
    task = fake_tasks[0]
    config = quick(2)
    fresh = fit_coop(clip32, task, 2, 1, config, cache_dir=tmp_path)
    path = coop_cache_path(tmp_path, clip32, task, 2, config.replace(seed=1, progress=False))
    assert path.exists() and path.parent.name == task.name
    cached = fit_coop(clip32, task, 2, 1, config, cache_dir=tmp_path)
    assert torch.equal(cached.learner.ctx.detach(), fresh.learner.ctx.detach())
    assert cached.history == fresh.history
    assert ct.score(cached.classifier, task.test) == ct.score(fresh.classifier, task.test)
    # anything the run depends on changes the file: seed, shots, config
    others = {coop_cache_path(tmp_path, clip32, task, 2, config.replace(seed=2, progress=False)),
              coop_cache_path(tmp_path, clip32, task, 4, config.replace(seed=1, progress=False)),
              coop_cache_path(tmp_path, clip32, task, 2, config.replace(seed=1, lr=0.5, progress=False))}
    assert path not in others and len(others) == 3
    # progress is bookkeeping only
    assert coop_cache_path(tmp_path, clip32, task, 2, config.replace(seed=1, progress=True)) == path
    # how often validation is reported does not change what is learned: a sweep's run serves a notebook's call
    assert coop_cache_path(tmp_path, clip32, task, 2, config.replace(seed=1, eval_every=3, progress=False)) == path


def test_encode_test_split_feeds_the_prompt_tables(clip32):
    task = encode_test_split(clip32, "three", load_task=fake_loader)
    assert task.test.n_images == 9 and task.templates == TEMPLATES
    table = prompt_table(clip32, [task])
    assert len(table) == len(TEMPLATES) and set(table["task"]) == {"three"}
