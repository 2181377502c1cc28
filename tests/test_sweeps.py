"""Shared experiments (task encoding, prompt tables, sweeps), the world report's checks and the quickstart, on the
shipped tiny CLIP."""
from typing import Optional
import pandas as pd
import pytest
import torch

from coop_tutorial import CoOpConfig, load_clip
from coop_tutorial.evaluation import sweep_summary
from coop_tutorial.prompt_study import prompt_summary, prompt_table
from coop_tutorial.sweeps import shift_drops, shift_table, shot_sweep
from coop_tutorial.task_features import encode_task, encode_test_split, subset_features
from coop_tutorial.embedded.report import world_checks


@pytest.fixture(scope="module")
def clip():
    return load_clip("tiny")


@pytest.fixture(scope="module")
def counts(clip):
    return encode_task(clip, "counts", n_views=2)


def quick(shots: int, dataset: Optional[str] = None) -> CoOpConfig:
    return CoOpConfig.embedded(shots, epochs=2, progress=False)


def test_encode_task_shares_one_encoding(counts):
    assert counts.train_views.n_views == 2 and counts.train.n_views == 1
    assert counts.train.n_images == counts.train_views.n_images == len(counts.datasets["train"])
    train, views, val = counts.few_shot(4, seed=1)
    assert train.n_images == views.n_images == 4 * len(counts.classnames)
    assert val.n_images == 4 * len(counts.classnames)
    assert torch.equal(train.labels, views.labels)
    again, _, _ = counts.few_shot(4, seed=1)
    other, _, _ = counts.few_shot(4, seed=2)
    assert torch.equal(again.features, train.features) and not torch.equal(other.features, train.features)


def test_subset_features_keeps_views_and_labels(counts):
    part = subset_features(counts.train_views, [3, 0])
    assert part.features.shape[:2] == (2, 2)
    assert part.labels.tolist() == [counts.train_views.labels[3].item(), counts.train_views.labels[0].item()]


def test_prompt_table_and_summary(clip, counts):
    table = prompt_table(clip, [counts])
    assert list(table.columns) == ["task", "template", "accuracy"]
    assert len(table) == len(counts.templates) and table["accuracy"].between(0, 100).all()
    summary = prompt_summary(table)
    row = summary.loc["counts"]
    assert row["best_prompt"] == table["accuracy"].max() and row["worst_prompt"] == table["accuracy"].min()
    assert row["spread"] == pytest.approx(row["best_prompt"] - row["worst_prompt"])
    assert row["best_template"] in counts.templates


def test_shot_sweep_rows_and_summary(clip, counts):
    sweep = shot_sweep(clip, [counts], shots=(1, 2), seeds=(1, 2), config=quick, progress=False)
    assert set(sweep["method"]) == {"zero_shot", "linear_probe", "coop"}
    assert len(sweep) == 1 + 2 * 2 * 2
    summary = sweep_summary(sweep)
    assert summary.loc[("counts", "coop", 2), "mean"] == pytest.approx(
        sweep.query("method == 'coop' and shots == 2")["accuracy"].mean())
    with pytest.raises(ValueError, match="Unknown method"):
        shot_sweep(clip, [counts], methods=("prompt_magic",))


def test_shift_table_shape_and_drops(clip):
    shapes = encode_task(clip, "shapes", n_views=1)
    targets = {"shapes_sketch": encode_test_split(clip, "shapes_sketch").test}
    table = shift_table(clip, shapes, targets, shots=1, seeds=(1,), config=quick(1))
    assert list(table.index) == ["zero_shot", "linear_probe", "coop"]
    assert list(table.columns) == ["shapes", "shapes_sketch"]
    drops = shift_drops(table, "shapes")
    assert drops.loc["coop", "shapes_sketch"] == pytest.approx(table.loc["coop", "shapes"] - table.loc["coop", "shapes_sketch"])


def test_shift_table_refuses_other_classes(clip):
    shapes = encode_task(clip, "shapes", n_views=1)
    with pytest.raises(ValueError, match="classes that 'shapes' does not have"):
        shift_table(clip, shapes, {"counts": encode_test_split(clip, "counts").test}, shots=1, seeds=(1,), config=quick(1))


def _summary(best, worst, probe, coop16, coop1):
    frame = pd.DataFrame({"best_prompt": best, "worst_prompt": worst}, index=[f"t{i}" for i in range(len(best))])
    frame["mean_prompt"] = (frame["best_prompt"] + frame["worst_prompt"]) / 2
    frame["spread"] = frame["best_prompt"] - frame["worst_prompt"]
    frame["probe_16"] = probe
    frame["probe_minus_best"] = frame["probe_16"] - frame["best_prompt"]
    frame["coop_1"] = frame["coop_2"] = coop1
    frame["coop_16"] = coop16
    frame["coop16_minus_best"] = frame["coop_16"] - frame["best_prompt"]
    return frame


def test_world_checks_pass_and_fail_on_the_numbers():
    good = _summary([50, 60, 70], [40, 50, 69], [65, 75, 71], [65, 72, 80], [60, 60, 75])
    shift = pd.DataFrame({"shapes": [60, 70, 65], "shapes_sketch": [55, 50, 61]},
                         index=["zero_shot", "linear_probe", "coop"])
    checks = {name: ok for name, ok, _ in world_checks(good, shift, coop=True)}
    assert all(checks.values()), checks
    bad = _summary([90, 60, 30], [89, 59, 29], [91, 61, 31], [90, 60, 30], [10, 10, 10])
    checks = {name: ok for name, ok, _ in world_checks(bad, shift.assign(shapes_sketch=[40, 69, 40]), coop=True)}
    assert not any(checks.values()), checks
    # changes print signed: a method that gains under the shift reads "+5.0", a loss "-20.0"
    gains = shift.assign(shapes_sketch=[65, 50, 61])
    details = {name: detail for name, _, detail in world_checks(good, gains, coop=True)}
    assert details["sketch shift: probe loses >= 2x the points zero-shot loses"] == "probe -20.0, zero-shot +5.0"


def test_quickstart_runs_and_plots(tmp_path):
    from coop_tutorial.quickstart import run

    result = run(task="counts", shots=1, out=tmp_path)
    assert 0 <= result["coop"] <= 100 and len(result["prompts"]) >= 6
    assert (tmp_path / "counts.png").exists()


def test_recipe_search_scores_candidates_on_validation_only(clip, counts):
    from coop_tutorial.embedded.recipe_search import candidate_config, recipe_search, search_summary

    assert candidate_config({"epochs_x": 2}, 16).epochs == 2 * CoOpConfig.embedded(16).epochs
    assert candidate_config({"n_ctx": 4}, 1).n_ctx == 4
    candidates = {"short": {"epochs_x": 0.01}, "short, 4 vectors": {"epochs_x": 0.01, "n_ctx": 4}}
    results = recipe_search(clip, [counts], candidates, shots=(1,), seeds=(1, 2), progress=False)
    assert len(results) == 2 * 2 and results["val_accuracy"].between(0, 100).all()
    # scored on the whole validation split: a scrambled test split changes nothing
    scrambled = type(counts)(**{**counts.__dict__, "test": subset_features(counts.test, [0])})
    again = recipe_search(clip, [scrambled], candidates, shots=(1,), seeds=(1, 2), progress=False)
    pd.testing.assert_frame_equal(results, again)
    summary = search_summary(results)
    assert list(summary.columns) == ["counts", "mean"] and summary["mean"].is_monotonic_decreasing


def test_training_length_study_trains_each_length_and_reuses_the_recipes_own(clip, tmp_path):
    from coop_tutorial import plots
    from coop_tutorial.shift_study import training_length_study, training_lengths

    assert training_lengths(200) == [5, 10, 20, 50, 200] and training_lengths(50) == [1, 2, 5, 12, 50]
    assert training_lengths(1) == [1]  # a quick run: one length, no repeats
    from coop_tutorial.shift_study import study_lengths
    assert study_lengths("embedded", 200) == [5, 10, 20, 50, 200] and study_lengths("real", 50) == []
    assert study_lengths("real", 50, [50, 5, 12, 5]) == [5, 12, 50] and study_lengths("embedded", 200, []) == []
    shapes = encode_task(clip, "shapes", n_views=1)
    targets = {"shapes_sketch": encode_test_split(clip, "shapes_sketch").test}
    recipe = CoOpConfig.embedded(1, epochs=3, progress=False)
    full = shift_table(clip, shapes, targets, shots=1, seeds=(1,), config=recipe, cache_dir=tmp_path)
    table = training_length_study(clip, shapes, targets, [1, 3], shots=1, seeds=(1,), config=recipe,
                                  cache_dir=tmp_path, progress=False)
    assert list(table.index) == [1, 3] and list(table.columns) == ["shapes", "shapes_sketch"]
    # the recipe's own length is the context the shift table trained (read from the cache: the same numbers)
    assert table.loc[3].to_dict() == pytest.approx(full.loc["coop"].to_dict())
    assert ((table >= 0) & (table <= 100)).all().all()
    figure = plots.training_length(table, full.loc["zero_shot"], recipe_epochs=3)
    assert len(figure.axes[0].lines) == 2 * 2 + 1  # a line and a dash per set, the recipe's marker
    with pytest.raises(ValueError, match="positive epoch counts"):
        training_length_study(clip, shapes, targets, [0], shots=1, seeds=(1,), config=recipe)
    with pytest.raises(ValueError, match="positive epoch counts"):  # a LENGTHS of 2.5 is refused, not cut to 2
        training_length_study(clip, shapes, targets, study_lengths("embedded", 200, [2.5]), shots=1, seeds=(1,),
                              config=recipe)
    with pytest.raises(ValueError, match="config=world.recipe"):
        training_length_study(clip, shapes, targets, [1], shots=1, seeds=(1,))
