"""The real-world code paths, on a small random CLIP and fake tasks: shifted sets with a subset of the
source's classes, encoding only the drawn shots (cached on disk), the recipe per dataset with no hidden default,
the official ImageNet ensemble, notebook parameters, claims that know their world, and self-describing random
checkpoints."""
from __future__ import annotations

from typing import Optional

import pandas as pd
import pytest
import torch

import coop_tutorial as ct
from coop_tutorial import CoOpConfig, clip_loader, features, sweeps, task_features
from coop_tutorial.claims import Claims, paired_difference
from coop_tutorial.sweeps import design_sweep, fit_coop, shift_table, shot_sweep
from coop_tutorial.task_features import encode_task
from conftest import FakeImages

NAMES = ["circle", "square", "star", "moon"]


class FakeTask(FakeImages):
    templates = ["a photo of a {}.", "a {}."]


def loader(name: str, split: str) -> FakeTask:
    per_class = {"train": 5, "val": 3, "test": 2}[split]
    return FakeTask(NAMES, per_class, seed={"train": 1, "val": 2, "test": 3}[split])


def quick(shots: int, dataset: Optional[str] = None) -> CoOpConfig:
    return CoOpConfig.embedded(shots, epochs=1, n_views=2, n_ctx=2, progress=False)


def test_only_the_drawn_shots_are_encoded_and_match_the_whole_split(clip32, monkeypatch):
    task = encode_task(clip32, "four", n_views=2, load_task=loader)
    assert task._rows == {}  # nothing but the test split encoded up front
    train, views, val = task.few_shot(2, seed=1)
    assert train.n_images == views.n_images == 2 * len(NAMES) and views.n_views == 2
    assert len(task._rows[("train", False)]) == 2 * len(NAMES) < len(task.datasets["train"])
    # an image's features do not depend on which other images were encoded with it (views seeded by its index),
    # to the last bit: every batch is padded to the same size, so the kernels' batch-size rounding is the same
    index = ct.few_shot_split(task.datasets["train"], 2, seed=1).indices
    whole = ct.encode_dataset(clip32, task.datasets["train"], augment=True, n_views=2, seed=0, progress=False)
    assert torch.equal(views.features, whole.features[:, index])
    plain = ct.encode_dataset(clip32, task.datasets["train"], progress=False)
    assert torch.equal(train.features, plain.features[:, index])
    assert views.labels.tolist() == [task.datasets["train"].targets[i] for i in index]


def test_drawn_features_are_cached_on_disk_per_draw(clip32, tmp_path, monkeypatch):
    first = encode_task(clip32, "four", n_views=2, load_task=loader, cache_dir=tmp_path)
    expected = first.few_shot(2, seed=1)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1 + 3  # test split, then train, train views, val draws

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded again instead of reading the cache")

    monkeypatch.setattr(task_features, "encode_images", no_encoding)
    monkeypatch.setattr(features, "_encode_views", no_encoding)
    again = encode_task(clip32, "four", n_views=2, load_task=loader, cache_dir=tmp_path).few_shot(2, seed=1)
    for a, b in zip(expected, again):
        assert torch.equal(a.features, b.features) and torch.equal(a.labels, b.labels)


def test_no_hidden_default_recipe(clip32):
    task = encode_task(clip32, "four", n_views=2, load_task=loader)
    with pytest.raises(TypeError, match="no default recipe"):
        fit_coop(clip32, task, 1, 1, None)
    with pytest.raises(ValueError, match=r"world\.recipe\(\)"):
        shot_sweep(clip32, [task], shots=(1,), seeds=(1,), progress=False)
    with pytest.raises(ValueError, match=r"world\.recipe\(\)"):
        design_sweep(clip32, [task], {"default": {}}, shots=1, seeds=(1,), progress=False)
    assert shot_sweep(clip32, [task], shots=(1,), seeds=(1,), methods=("linear_probe",), progress=False).shape[0] == 2


def test_sweeps_ask_the_recipe_per_dataset(clip32):
    tasks = [encode_task(clip32, name, n_views=2, load_task=loader) for name in ("four", "imagenet_like")]
    asked = []

    def recipe(shots, dataset=None):
        asked.append((shots, dataset))
        return quick(shots)

    shot_sweep(clip32, tasks, shots=(1,), seeds=(1,), methods=("coop",), config=recipe, progress=False)
    assert asked == [(1, "four"), (1, "imagenet_like")]
    real = ct.use_world("real", device="cpu").recipe()
    assert real(16, dataset="imagenet").epochs == 50 and real(16, dataset="dtd").epochs == 200
    assert real(1, dataset="imagenet").epochs == 50
    short = ct.use_world("real", device="cpu").recipe(epochs=1)
    assert short(16, dataset="dtd").epochs == 1 and short(16, dataset="dtd").warmup_epochs == 0
    with pytest.raises(ValueError, match="EPOCHS"):
        ct.use_world("real", device="cpu").recipe(epochs="3")


def test_with_epochs_squeezes_either_config_and_keeps_the_rest():
    from coop_tutorial.cocoop import CoCoOpConfig
    from coop_tutorial.training import with_epochs

    paper = CoOpConfig.paper(16)
    assert with_epochs(paper, None) is paper
    short = with_epochs(paper, 1)
    assert (short.epochs, short.warmup_epochs, short.lr) == (1, 0, paper.lr)  # no room left for the warm-up
    assert with_epochs(paper, 5).warmup_epochs == paper.warmup_epochs == 1
    assert with_epochs(CoCoOpConfig.paper(), 3).epochs == 3
    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match="LENGTH must be a positive integer"):
            with_epochs(paper, bad, name="LENGTH")


def test_shift_table_rebuilds_prompts_for_a_subset_of_classes(clip32):
    source = encode_task(clip32, "four", n_views=2, load_task=loader)
    subset = FakeTask(["star", "circle"], 3, seed=9)  # two of the source's classes, in another order
    target = ct.encode_dataset(clip32, subset, progress=False)
    table = shift_table(clip32, source, {"subset": target}, shots=2, seeds=(1,), config=quick)
    # CoOp on the subset: the learned context, prompts rebuilt for the subset's names (what the official code does)
    coop = fit_coop(clip32, source, 2, 1, quick(2))
    rebuilt = ct.CoOpClassifier(clip32, coop.learner.with_classnames(clip32, ["star", "circle"]))

    assert table.loc["coop", "subset"] == pytest.approx(100 * ct.score(rebuilt, target))
    zero = ct.zero_shot_classifier(clip32, ["star", "circle"], source.templates[0])
    assert table.loc["zero_shot", "subset"] == pytest.approx(100 * ct.evaluate(zero, target).accuracy)
    probe = sweeps.fit_probe(source, 2, 1)
    logits = probe.logits_from_features(target.view(0))[:, [2, 0]]
    assert table.loc["linear_probe", "subset"] == pytest.approx(
        100 * float((logits.argmax(1) == target.labels).float().mean()))
    outsider = ct.encode_dataset(clip32, FakeTask(["star", "comet"], 1), progress=False)
    with pytest.raises(ValueError, match="does not have"):
        shift_table(clip32, source, {"outsider": outsider}, shots=1, seeds=(1,), config=quick)


def test_imagenet_ensemble_is_the_official_seven():
    assert ct.templates.task_ensemble("imagenet", ["a photo of a {}."] + list(ct.templates.CLIP_IMAGENET_TEMPLATES_SMALL)) \
        == list(ct.templates.CLIP_IMAGENET_TEMPLATES_SMALL)
    assert len(ct.templates.CLIP_IMAGENET_TEMPLATES_SMALL) == 7
    assert ct.templates.task_ensemble("dtd", ["{} texture.", "a {}."]) == ["{} texture.", "a {}."]


def test_roles_take_tasks_and_source():
    world = ct.use_world("real", device="cpu")
    roles = world.roles(tasks=["DTD", "eurosat"], only_available=False)
    assert roles.main == ["dtd", "eurosat"] and roles.source == "imagenet" and roles.showcase == "dtd"
    assert world.roles(source="dtd", only_available=False).shifts == []
    with pytest.raises(ValueError, match="Unknown task"):
        world.roles(tasks=["dtdd"], only_available=False)
    with pytest.raises(ValueError, match="TASKS"):
        world.roles(tasks="dtd", only_available=False)
    embedded = ct.use_world("embedded", device="cpu").roles(tasks=["shapes", "counts"])
    assert embedded.main == ["shapes", "counts"] and embedded.showcase == "shapes"


def test_notebook_parameters_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="DOWNLOAD"):
        ct.use_world("real", download="yes")
    with pytest.raises(TypeError, match="DATA_ROOT"):
        ct.use_world("real", data_root=3)


def test_missing_real_dataset_names_folder_and_download(tmp_path):
    world = ct.use_world("real", data_root=tmp_path / "nowhere", device="cpu")
    with pytest.raises(FileNotFoundError, match=r"dtd.*download=True"):
        world.require("dtd")


def test_random_clip_file_says_it_is_untrained(tmp_path):
    path = clip_loader.save_random_clip(tmp_path / "random.safetensors")
    clip = ct.load_clip("dry-run", pretrained=path)
    assert clip.untrained and clip.context_length == 77 and clip.image_size == 32
    again = ct.load_clip("dry-run", pretrained=path)
    assert torch.equal(clip.model.token_embedding.weight, again.model.token_embedding.weight)
    with pytest.warns(UserWarning, match="random weights"):
        ct.use_world("real", backbone="dry-run", pretrained=str(path), device="cpu").load_clip()
    assert not ct.load_clip("tiny").untrained


def test_claims_know_their_world(capsys):
    embedded = Claims("embedded")
    embedded.check("one is more than zero", 1 > 0)
    with pytest.raises(AssertionError, match="embedded world: two is less than one"):
        embedded.check("two is less than one", 2 < 1)
    embedded.check("a paper-only claim", False, world="real")
    untrained = Claims("real", untrained=True)
    untrained.check("CoOp beats zero-shot", False)
    assert list(untrained.frame()["outcome"]) == ["not checkable: the model is untrained"]
    assert "not checkable: the model is untrained" in capsys.readouterr().out
    with pytest.raises(TypeError, match="boolean"):
        Claims("real").check("a number is not a claim", 3.0)
    assert list(embedded.frame()["outcome"]) == ["holds", "FAILED", "not asserted in the embedded world (a claim "
                                                                       "about the real world)"]


def test_paired_difference():
    index = pd.MultiIndex.from_product([["a", "b"], [1, 2, 3]], names=["task", "seed"])
    a = pd.Series([10.0, 11, 12, 20, 21, 22], index=index)
    b = a - pd.Series([1.0, 1.2, 0.8, 1.1, 0.9, 1.0], index=index)
    paired = paired_difference(a, b)
    assert paired.mean == pytest.approx(1.0) and paired.n == 6 and paired.above(0) and not paired.above(1)
    assert paired_difference(b, a).below(0)


@pytest.mark.parametrize("command", ["quickstart", "pretrain", "report"])
def test_console_script_subcommands_have_help(command, capsys):
    from coop_tutorial import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: coop-tutorial {command}" in capsys.readouterr().out


def test_console_script_lists_its_commands(capsys):
    from coop_tutorial import cli

    cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


def test_console_script_entry_point_exists():
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    module, function = re.search(r'^coop-tutorial = "([\w.]+):(\w+)"', text, re.M).groups()
    assert callable(getattr(importlib.import_module(module), function))


NOTEBOOK_DIR = __import__("pathlib").Path(__file__).parents[1] / "notebooks"
# the notebooks (the paper's story, base-to-new, the interpretation lab) take the parameters and run in both
# worlds (test_notebooks_real_world)
NOTEBOOKS = sorted(p for p in NOTEBOOK_DIR.glob("0[1-8]_*.ipynb"))
PARAMETERS = {"WORLD", "BACKBONE", "PRETRAINED", "DATA_ROOT", "DOWNLOAD", "TASKS", "SHOTS", "SEEDS", "EPOCHS"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_install_from_the_one_constant_and_take_parameters(path):
    import ast
    import json

    from coop_tutorial import colab

    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == colab.install_cell()  # the install cell comes first, from colab.py
    assert colab.badge_url(path.name) in "".join(cells[0]["source"])
    params = code[1]
    assert params["metadata"].get("tags") == ["parameters"]
    assigned = {t.id for node in ast.parse("".join(params["source"])).body if isinstance(node, ast.Assign)
                for t in node.targets}
    assert PARAMETERS <= assigned, PARAMETERS - assigned
    # no notebook hard-codes the world any more: the parameters choose it
    assert not any('use_world("embedded")' in "".join(c["source"]) for c in code)


def test_colab_sync_rewrites_install_cell_and_badge(tmp_path):
    import json
    import shutil

    from coop_tutorial import colab

    copy = tmp_path / NOTEBOOKS[0].name
    shutil.copy(NOTEBOOKS[0], copy)
    assert colab.sync_notebook(copy, "someone/fork", "v1.0")
    text = copy.read_text()
    assert "git+https://github.com/someone/fork@v1.0" in text and "github/someone/fork/blob/v1.0/notebooks" in text
    assert not colab.sync_notebook(copy, "someone/fork", "v1.0")  # idempotent
    assert json.loads(text)["cells"]


def test_without_imagenet_the_other_notebooks_still_have_their_tasks(tmp_path, clip32):
    import warnings

    from fake_datasets import make_dtd

    make_dtd(tmp_path)
    world = ct.use_world("real", data_root=tmp_path, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        roles = world.roles()
    assert roles.main == ["dtd"] and roles.showcase == "dtd" and roles.shifts == []
    with pytest.raises(FileNotFoundError, match=r"robustness study needs 'imagenet'.*imagenet"):
        world.encode_shift_study(clip32, roles)
    with pytest.raises(ValueError, match="only ImageNet has them"):
        world.encode_shift_study(clip32, world.roles(source="dtd", only_available=False))


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_installs_from_the_one_constant(path):
    import json

    from coop_tutorial import colab

    cells = json.loads(path.read_text())["cells"]
    installs = ["".join(c["source"]) for c in cells if colab.is_install_cell(c)]
    assert installs == [colab.install_cell()]
