"""The registry across worlds (``list_tasks``/``load_task``), the world switch and what a notebook sets up from a world
(task roles, recipe, cache folder, task overview), and torchvision downloads."""
from __future__ import annotations

import inspect
import types
import urllib.error
from pathlib import Path

import pandas as pd
import pytest
from types import SimpleNamespace
import torch
import torchvision

import coop_tutorial.tasks as tasks
import coop_tutorial.worlds as worlds
from coop_tutorial import CoOpConfig
from coop_tutorial.datasets import REAL_DATASETS, DatasetNotFoundError, RelabeledSubset
from coop_tutorial.datasets.metadata import METADATA_DIR, flowers102_classnames, imagenet_wnids
from coop_tutorial.datasets.registry import READERS
from coop_tutorial.templates import DATASET_TEMPLATES
from coop_tutorial.worlds import use_world
from _network_guard import expect_network_attempt, no_network  # noqa: F401 (fixtures: no test touches the network)
from conftest import FakeImages
from fake_datasets import make_dtd, make_eurosat

pytestmark = pytest.mark.filterwarnings("ignore::coop_tutorial.datasets.IncompleteDatasetWarning",
                                        "ignore::coop_tutorial.datasets.GeneratedSplitWarning")

PAPER_NAMES = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
               "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101", "imagenet_v2", "imagenet_sketch",
               "imagenet_a", "imagenet_r"]
DOCS = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"


@pytest.fixture
def fake_world(monkeypatch):
    """An embedded world of two tasks standing in for ``coop_tutorial.embedded.suite``; records the calls."""
    calls = []

    def load_embedded_task(name, split, transform=None, root=None):
        calls.append((name, split, transform, root))
        return FakeImages(["circle", "square", "star", "heart"], per_class=2)

    module = types.SimpleNamespace(TASKS={"shapes": object(), "patterns": object()},
                                   load_embedded_task=load_embedded_task)
    monkeypatch.setattr(tasks, "_embedded_module", lambda: module)
    return calls


def test_list_tasks_separates_the_worlds(fake_world):
    assert tasks.list_tasks() == {"embedded": ["shapes", "patterns"], "real": PAPER_NAMES}
    assert tasks.list_tasks("real") == {"real": PAPER_NAMES}
    assert tasks.list_tasks("embedded") == {"embedded": ["shapes", "patterns"]}
    with pytest.raises(ValueError, match="Unknown world 'virtual'"):
        tasks.list_tasks("virtual")


def test_load_task_dispatches_to_the_embedded_world(fake_world):
    dataset = tasks.load_task("shapes", "train", transform=str, root="/cache")
    assert fake_world == [("shapes", "train", str, "/cache")] and len(dataset) == 8
    new = tasks.load_task("Shapes", "test", subsample="new")  # spelling is forgiven as for real names
    assert isinstance(new, RelabeledSubset) and new.classnames == ["star", "heart"]
    assert new.targets == [0, 0, 1, 1] and [new[i][1] for i in range(len(new))] == new.targets
    with pytest.raises(ValueError, match="split_file applies to real datasets only"):
        tasks.load_task("shapes", "train", split_file="x.json")


def test_load_task_dispatches_to_real_datasets(fake_world, tmp_path):
    fake = make_eurosat(tmp_path)
    dataset = tasks.load_task("EuroSAT", "test", root=tmp_path)
    assert dataset.classnames == fake.classnames and len(dataset) == fake.sizes["test"] and fake_world == []


def test_unknown_task_names_suggest_the_closest(fake_world):
    with pytest.raises(ValueError, match=r"Unknown task 'shapess'\. Did you mean 'shapes'") as info:
        tasks.load_task("shapess", "test")
    assert "embedded: shapes, patterns" in str(info.value) and "real: imagenet" in str(info.value)
    with pytest.raises(ValueError, match="Did you mean 'imagenet_r'"):
        tasks.load_task("imagenet_rr", "test")
    with pytest.raises(ValueError, match="Unknown task 'dtd'"):
        tasks.load_task("dtd", "test", world="embedded")  # each world only serves its own tasks


# ---- the world switch -------------------------------------------------------------------------------------------

def test_use_world_defaults():
    embedded = use_world()
    assert (embedded.kind, embedded.backbone, embedded.device) == ("embedded", "tiny", worlds.default_device())
    real = use_world("real", pretrained="openai", data_root="/content/data")
    assert (real.backbone, real.pretrained, real.data_root) == ("RN50", "openai", "/content/data")
    assert str(real) == f"real world: backbone=RN50, pretrained=openai on {real.device}, data_root=/content/data"
    assert real.with_options(backbone="ViT-B/16").backbone == "ViT-B/16" and real.backbone == "RN50"


def test_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert use_world().device == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert use_world().device == "cpu"
    assert use_world(device="cuda:1").device == "cuda:1"


def test_world_rejects_what_cannot_work():
    with pytest.raises(ValueError, match="Unknown world 'reel'"):
        use_world("reel")
    with pytest.raises(ValueError, match="only knows the synthetic world"):
        use_world("real", backbone="tiny")
    with pytest.raises(ValueError, match="Invalid device 'gpu'"):
        use_world(device="gpu")


def test_world_passes_its_settings_on(monkeypatch, fake_world, tmp_path):
    seen = {}
    bundle = SimpleNamespace(untrained=False)
    monkeypatch.setattr(worlds, "load_clip", lambda name, pretrained, device: seen.update(
        name=name, pretrained=pretrained, device=device) or bundle)
    world = use_world("real", backbone="ViT-B/16", pretrained="/weights/vit.pt", data_root=tmp_path, device="cpu")
    assert world.load_clip() is bundle
    assert seen == {"name": "ViT-B/16", "pretrained": "/weights/vit.pt", "device": "cpu"}
    assert world.tasks == PAPER_NAMES
    fake = make_dtd(tmp_path)
    assert world.load_task("dtd", "val", subsample="base").classnames == fake.classnames[:2]
    with pytest.raises(ValueError, match="Unknown task 'shapes'"):
        world.load_task("shapes", "test")
    embedded = use_world("embedded", data_root="/cache")
    embedded.load_task("patterns", "val")
    assert fake_world[-1] == ("patterns", "val", None, "/cache")
    assert embedded.tasks == ["shapes", "patterns"]


def test_embedded_world_builds_the_tiny_clip_offline():
    clip = use_world("embedded", pretrained="random", device="cpu").load_clip()
    assert clip.name == "tiny" and clip.device == torch.device("cpu")


# ---- torchvision downloads (faked: the real one cannot run here) -------------------------------------------------

def test_download_uses_torchvision_and_reads_its_layout(monkeypatch, tmp_path):
    calls = []

    class FakeDTD:
        def __init__(self, root, split="train", download=False):
            calls.append((root, split, download))
            make_dtd(Path(root), layout="torchvision")  # what torchvision leaves behind: root/dtd/dtd/...

    monkeypatch.setattr(torchvision.datasets, "DTD", FakeDTD)
    root = tmp_path / "fresh"  # does not exist yet: created for the download
    dataset = tasks.load_task("dtd", "test", root=root, download=True)
    assert calls == [(str(root), "train", True)] and dataset.classnames == ["banded", "blotchy", "braided"]
    assert Path(dataset.paths[0]).is_relative_to(root / "dtd" / "dtd" / "images")
    tasks.load_task("dtd", "train", root=root, download=True)
    assert len(calls) == 1  # present: not downloaded again


def test_failed_download_says_how_to_fetch_by_hand(monkeypatch, tmp_path):
    class Offline:
        def __init__(self, root, download=False, **kwargs):
            raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.datasets, "EuroSAT", Offline)
    with pytest.raises(DatasetNotFoundError) as info:
        tasks.load_task("eurosat", "test", root=tmp_path, download=True)
    message = str(info.value)
    assert "torchvision could not download EuroSAT" in message and "no route to host" in message
    assert "https://github.com/phelber/EuroSAT" in message and str(tmp_path / "eurosat") in message


def test_real_download_attempt_is_blocked_and_reported(expect_network_attempt, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="torchvision could not download EuroSAT.*by hand"):
        tasks.load_task("eurosat", "test", root=tmp_path, download=True)
    assert expect_network_attempt.attempts  # the guard, not a lucky timeout, stopped it


def test_datasets_torchvision_cannot_fetch_say_so(tmp_path):
    for name in ("stanford_cars", "imagenet", "sun397", "ucf101"):
        with pytest.raises(DatasetNotFoundError, match="cannot be downloaded automatically"):
            tasks.load_task(name, "test", root=tmp_path, download=True)


@pytest.mark.parametrize("name", [n for n, info in REAL_DATASETS.items() if info.torchvision])
def test_torchvision_download_specs_match_torchvision(name):
    spec = REAL_DATASETS[name].torchvision
    signature = inspect.signature(getattr(torchvision.datasets, spec.cls))
    signature.bind(root="/data", download=True, **dict(spec.kwargs))  # raises if an argument is wrong


# ---- metadata stays consistent with the code and the docs -------------------------------------------------------

def test_metadata_tables_are_complete():
    assert list(REAL_DATASETS) == PAPER_NAMES == list(READERS)
    assert set(PAPER_NAMES) <= set(DATASET_TEMPLATES)  # every dataset has its hand-written zero-shot prompt
    wnids = imagenet_wnids("imagenet")
    assert len(wnids) == 1000 and list(wnids) == sorted(wnids)
    for subset in ("imagenet_a", "imagenet_r"):
        assert len(imagenet_wnids(subset)) == 200 and set(imagenet_wnids(subset)) <= set(wnids)
    assert len(flowers102_classnames()) == 102 and (METADATA_DIR / "flowers102_classnames.json").is_file()


def test_docs_page_covers_every_dataset():
    text = DOCS.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for name, info in REAL_DATASETS.items():
        assert f'<a id="{name}"></a>' in text, name  # the anchors error messages point at
        row = next(line for key, line in rows.items() if key.startswith(f"`{name}`"))
        assert f"`{info.coop_folder}/`" in row and f"| {info.n_classes} |" in row, name
        assert info.download_size.split(" (")[0] in row, name  # the docs table and the metadata agree
        if info.paper_split_sizes and name != "imagenet":
            assert " / ".join(f"{n:,}" for n in info.paper_split_sizes) in row, name


def test_switching_kind_switches_a_default_backbone():
    assert use_world("embedded").with_options(kind="real").backbone == "RN50"
    assert use_world("real", backbone="ViT-B/16").with_options(kind="real", device="cpu").backbone == "ViT-B/16"


@pytest.mark.parametrize("typo, meant", [("flowrs102", "oxford_flowers"), ("imagenet-sketc", "imagenet_sketch"),
                                         ("Eurosatt", "eurosat"), ("sun-379", "sun397")])
def test_typos_find_the_dataset_through_its_aliases(fake_world, typo, meant):
    with pytest.raises(ValueError, match=f"Did you mean '{meant}'"):
        tasks.load_task(typo, "test")


# ---- what the notebooks set up from a world: roles, recipe, cache folder, task overview


def test_task_roles_name_each_worlds_tasks():
    embedded = use_world("embedded", device="cpu").roles()
    assert embedded.source in embedded.main and embedded.showcase in embedded.main
    assert embedded.shifts and not set(embedded.shifts) & set(embedded.main)
    real = use_world("real", device="cpu").roles(only_available=False)
    assert real.source == "imagenet" and real.showcase == "dtd"
    assert set(real.shifts) == {"imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"}
    assert "eurosat" in real.main and "imagenet_a" not in real.main


def test_the_recipe_follows_the_world():
    assert use_world("embedded", device="cpu").recipe()(16) == CoOpConfig.embedded(16)
    real = use_world("real", device="cpu").recipe(dataset="imagenet")
    assert real(16) == CoOpConfig.paper(16, dataset="imagenet") and real(16).epochs == 50
    assert use_world("real", device="cpu").recipe()(16, seed=3) == CoOpConfig.paper(16, seed=3)


def test_task_overview_embedded():
    world = use_world("embedded", device="cpu")
    overview = world.task_overview(["counts", "shapes_sketch"])
    assert overview.loc["counts", "classes"] == 4 and overview.loc["counts", "n_train"] > 0
    assert pd.isna(overview.loc["shapes_sketch", "n_train"]) and overview.loc["shapes_sketch", "n_test"] > 0
    assert "Sketch" in overview.loc["shapes_sketch", "stands_for"]


def test_cache_dir_follows_the_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("COOP_DATA", raising=False)
    assert use_world("embedded", device="cpu").cache_dir == Path("data/cache/tiny")
    assert use_world("real", backbone="ViT-B/16", data_root=tmp_path, device="cpu").cache_dir == \
        tmp_path / "cache" / "ViT-B-16"


def test_task_roles_leave_out_missing_real_datasets(tmp_path):
    with pytest.warns(UserWarning, match="left out"):
        roles = use_world("real", data_root=tmp_path, device="cpu").roles()
    assert roles.main == [] and roles.shifts == [] and roles.source == "imagenet"
