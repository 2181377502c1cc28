"""The paper's datasets read from tiny fakes in their real layouts: names, label order, splits, bad input."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import coop_tutorial as ct

from coop_tutorial.datasets import (REAL_DATASETS, DatasetLayoutError, DatasetNotFoundError, GeneratedSplitWarning,
                                    ImageListDataset, IncompleteDatasetWarning, UnreadableImageError,
                                    load_real_dataset)
from coop_tutorial.datasets.metadata import imagenet_default_classnames, imagenet_wnids
from coop_tutorial.few_shot import few_shot_split
from _network_guard import no_network  # noqa: F401 (autouse fixture: no test touches the network)
from fake_datasets import BUILDERS, IMAGENET_SAMPLE, Fake, write_image, write_imagenet_classnames

# Every fake has a handful of classes where the paper's dataset has dozens: expected, and tested once below.
pytestmark = pytest.mark.filterwarnings("ignore::coop_tutorial.datasets.IncompleteDatasetWarning")

WITH_SPLIT_JSON = [n for n, info in REAL_DATASETS.items() if info.split_json]
TORCHVISION_LAYOUTS = ["caltech101", "oxford_pets", "oxford_flowers", "fgvc_aircraft", "dtd"]


def load(fake: Fake, split: str, **kwargs) -> ImageListDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratedSplitWarning)
        return load_real_dataset(fake.name, split, root=fake.root, **kwargs)


def check_against(fake: Fake, split: str, dataset: ImageListDataset) -> None:
    """Class names in label order, every image under the label of its class, the split's size (and files)."""
    assert dataset.classnames == fake.classnames
    assert len(dataset) == fake.sizes[split]
    for path, label in zip(dataset.paths, dataset.targets):
        assert dataset.classnames[label] == fake.class_of[path], path
    if fake.split_paths:
        assert set(dataset.paths) == fake.split_paths[split]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_dataset_reads_its_coop_layout(tmp_path, name):
    fake = BUILDERS[name](tmp_path)
    splits = REAL_DATASETS[name].splits
    datasets = {split: load(fake, split) for split in splits}
    for split, dataset in datasets.items():
        check_against(fake, split, dataset)
    if len(splits) == 3 and name != "imagenet":  # the three splits are disjoint (ImageNet: val is the test set)
        paths = [set(d.paths) for d in datasets.values()]
        assert not (paths[0] & paths[1] or paths[0] & paths[2] or paths[1] & paths[2])
    image, label = datasets[splits[-1]][0]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (8, 8)
    assert isinstance(label, int)


@pytest.mark.parametrize("name", WITH_SPLIT_JSON)
def test_split_zhou_json_is_used_when_present(tmp_path, name):
    fake = BUILDERS[name](tmp_path, with_json=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GeneratedSplitWarning)  # an official split must not be announced as generated
        for split in ("train", "val", "test"):
            dataset = load_real_dataset(name, split, root=tmp_path)
            check_against(fake, split, dataset)
            assert str(fake.split_json) in dataset.source
    assert not list(fake.dataset_dir.glob("split_generated_*.json"))


@pytest.mark.parametrize("name", TORCHVISION_LAYOUTS)
def test_torchvision_layouts_are_read_too(tmp_path, name):
    fake = BUILDERS[name](tmp_path, layout="torchvision")
    assert REAL_DATASETS[name].layouts[1].folder in str(fake.dataset_dir)
    for split in ("train", "val", "test"):
        check_against(fake, split, load(fake, split))


def test_class_name_rules_of_coop(tmp_path):
    caltech = load(BUILDERS["caltech101"](tmp_path / "c"), "test")
    assert caltech.classnames == ["face", "leopard", "accordion", "airplane"]  # Python's case-sensitive sort
    assert load(BUILDERS["eurosat"](tmp_path / "e", with_json=True), "test").classnames == \
        ["Annual Crop Land", "Forest", "Sea or Lake"]  # renamed even when the json has folder names
    assert load(BUILDERS["stanford_cars"](tmp_path / "s"), "test").classnames[0] == "2000 AM General Hummer SUV"
    assert load(BUILDERS["sun397"](tmp_path / "u"), "test").classnames[1] == "outdoor apartment_building"
    assert load(BUILDERS["ucf101"](tmp_path / "v"), "test").classnames == ["Apply_Eye_Makeup", "Baby_Crawling", "Yo_Yo"]
    assert load(BUILDERS["oxford_flowers"](tmp_path / "f", layout="torchvision"), "test").classnames == \
        ["pink primrose", "hard-leaved pocket orchid", "canterbury bells"]  # package table without cat_to_name


def test_imagenet_names_fall_back_to_open_clip(tmp_path):
    fake = BUILDERS["imagenet"](tmp_path, with_classnames=False)
    names = imagenet_default_classnames()
    dataset = load(fake, "test")
    assert dataset.classnames == [names[w] for w in IMAGENET_SAMPLE] == ["tench", "goldfish", "great white shark"]
    sketch = BUILDERS["imagenet_sketch"](tmp_path / "s", with_classnames=False, image_sub="sketch")
    check_against(sketch, "test", load(sketch, "test"))  # the official zip's sketch/ folder, no classnames.txt


def test_imagenet_a_and_r_use_their_200_class_subsets(tmp_path):
    names = imagenet_default_classnames()
    for name in ("imagenet_a", "imagenet_r"):
        fake = BUILDERS[name](tmp_path / name)  # 3 of the 200 classes, with ImageNet's 1000-line classnames.txt
        dataset = load(fake, "test")
        check_against(fake, "test", dataset)  # labels 0..2 in sorted-id order, prompts' names for those 3 only
        in_subset = [names[w] for w in imagenet_wnids(name)]
        assert set(dataset.targets) == {0, 1, 2} and all(n in in_subset for n in dataset.classnames)
    wrong = tmp_path / "wrong"
    write_image(wrong / "imagenet-adversarial" / "imagenet-a" / "n01440764" / "x.jpg")  # tench is not in ImageNet-A
    with pytest.raises(DatasetLayoutError, match="not among ImageNetA's 200 classes"):
        load_real_dataset("imagenet_a", "test", root=wrong)


def test_generated_split_is_announced_written_and_reused(tmp_path):
    fake = BUILDERS["dtd"](tmp_path)
    with pytest.warns(GeneratedSplitWarning, match="no split_zhou_DescribableTextures.json.*seed 1"):
        first = load_real_dataset("dtd", "train", root=tmp_path)
    written = fake.dataset_dir / "split_generated_DescribableTextures.json"
    stored = json.loads(written.read_text())
    assert {"train", "val", "test"} <= set(stored) and stored["train"][0][0].count("/") == 1  # relative paths
    with pytest.warns(GeneratedSplitWarning, match="generated earlier"):
        again = load_real_dataset("dtd", "train", root=tmp_path)
    assert again.paths == first.paths
    written.unlink()  # rebuilding gives the same split: seeded, files sorted before shuffling
    assert load(fake, "train").paths == first.paths


def test_generated_split_follows_coops_per_class_fractions(tmp_path):
    fake = BUILDERS["food101"](tmp_path)
    per_class = {split: [load(fake, split).targets.count(c) for c in range(3)] for split in ("train", "val", "test")}
    assert per_class == {"train": [2, 3, 2], "val": [1, 1, 1], "test": [1, 2, 1]}  # 4 -> 2/1/1, 6 -> 3/1/2


def test_few_shot_sampling_on_a_real_layout(tmp_path):
    train = load(BUILDERS["sun397"](tmp_path), "train")
    one = few_shot_split(train, shots=1, seed=1)
    assert sorted(one.targets) == [0, 1, 2] and one.classnames == train.classnames
    assert list(one.indices) == list(few_shot_split(train, shots=1, seed=1).indices)
    picked = [train.paths[i] for i in one.indices]
    assert all(Path(p).parent.name in ("abbey", "outdoor", "bedroom") for p in picked)
    with pytest.warns(UserWarning, match="fewer than 16 images"):
        assert len(few_shot_split(train, shots=16, seed=2, method="seeded")) == len(train)  # classes keep all
    with pytest.warns(UserWarning, match="fewer than 16 images.*with replacement"):
        assert len(few_shot_split(train, shots=16, seed=2)) == 16 * 3  # the official draw (real world's default)


def test_base_to_new_subsampling_relabels_the_halves(tmp_path):
    fake = BUILDERS["caltech101"](tmp_path)  # 4 classes: base = labels 0, 1; new = 2, 3
    full = load(fake, "test")
    base = load(fake, "test", subsample="base")
    new = load(fake, "test", subsample="new")
    assert base.classnames == ["face", "leopard"] and new.classnames == ["accordion", "airplane"]
    assert set(base.targets) == {0, 1} and set(new.targets) == {0, 1}
    assert len(base) + len(new) == len(full)
    for dataset in (base, new):
        for path, label in zip(dataset.paths, dataset.targets):
            assert dataset.classnames[label] == fake.class_of[path]
    odd = load(BUILDERS["dtd"](tmp_path / "dtd"), "train", subsample="base")
    assert odd.classnames == ["banded", "blotchy"]  # ceil(3 / 2) = 2 base classes, as CoCoOp
    assert (odd.name, odd.subsample) == ("dtd", "base") and "[base classes]" in repr(odd)
    with pytest.raises(ValueError, match="subsample must be one of"):
        load(fake, "test", subsample="half")


def test_transform_is_applied(tmp_path):
    fake = BUILDERS["eurosat"](tmp_path)
    dataset = load(fake, "test", transform=lambda image: torch.tensor(image.size))
    image, _ = dataset[0]
    assert torch.equal(image, torch.tensor([8, 8]))


def test_incomplete_dataset_is_flagged(tmp_path):
    fake = BUILDERS["eurosat"](tmp_path)
    with pytest.warns(IncompleteDatasetWarning, match="found 3 classes where the paper's dataset has 10"):
        load(fake, "test")


# ---- bad input --------------------------------------------------------------------------------------------------

def test_missing_root_says_how_to_point_at_the_data(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist.*COOP_DATA.*docs/datasets.md"):
        load_real_dataset("dtd", "test", root=tmp_path / "nowhere")


def test_missing_dataset_folder_names_the_expected_layouts(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_real_dataset("dtd", "test", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "dtd") in message and "CoOp layout" in message and "torchvision layout" in message
    assert "download=True" in message and "docs/datasets.md#dtd" in message
    with pytest.raises(DatasetNotFoundError, match="cannot be downloaded automatically"):
        load_real_dataset("sun397", "test", root=tmp_path)


def test_incomplete_layout_says_which_entry_is_missing(tmp_path):
    (tmp_path / "fgvc_aircraft" / "images").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"fgvc_aircraft exists but has no variants\.txt"):
        load_real_dataset("fgvc_aircraft", "test", root=tmp_path)


def test_default_root_comes_from_coop_data(tmp_path, monkeypatch):
    fake = BUILDERS["eurosat"](tmp_path)
    monkeypatch.setenv("COOP_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratedSplitWarning)
        assert len(load_real_dataset("eurosat", "test")) == fake.sizes["test"]


def test_empty_class_folder_is_an_error(tmp_path):
    fake = BUILDERS["dtd"](tmp_path)
    empty = fake.dataset_dir / "images" / "bubbly"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetLayoutError, match=r"class folder .*bubbly holds no images"):
        load(fake, "test")


def test_corrupt_image_stops_naming_the_file(tmp_path):
    fake = BUILDERS["eurosat"](tmp_path)
    dataset = load(fake, "test")
    broken = Path(dataset.paths[1])
    broken.write_bytes(b"definitely not a jpeg")
    truncated = Path(dataset.paths[2])
    truncated.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(UnreadableImageError, match=f"Cannot read image {broken}.*find_unreadable"):
        dataset[1]
    with pytest.raises(UnreadableImageError, match=str(truncated)):
        dataset[2]
    assert [path for path, _ in dataset.find_unreadable()] == [str(broken), str(truncated)]
    image, _ = dataset[0]  # the others still read
    assert image.size == (8, 8)


def test_grey_and_rgba_images_come_back_rgb(tmp_path):
    fake = BUILDERS["eurosat"](tmp_path)
    dataset = load(fake, "test")
    Image.new("L", (8, 8), 128).save(dataset.paths[0], format="JPEG")
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(dataset.paths[1], format="PNG")
    assert dataset[0][0].mode == dataset[1][0].mode == "RGB"


def test_split_json_naming_missing_files_lists_some(tmp_path):
    fake = BUILDERS["oxford_pets"](tmp_path, with_json=True)
    for stem in ("Abyssinian_2", "american_bulldog_3"):
        (fake.dataset_dir / "images" / f"{stem}.jpg").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load(fake, "train")
    message = str(info.value)
    assert "2 image(s) named by" in message and "split_zhou_OxfordPets.json" in message
    assert "Abyssinian_2.jpg" in message and "american_bulldog_3.jpg" in message


def test_malformed_split_json_is_explained(tmp_path):
    fake = BUILDERS["dtd"](tmp_path, with_json=True)
    fake.split_json.write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="is not a valid split json"):
        load(fake, "test")
    fake.split_json.write_text(json.dumps({"train": [["banded/x.jpg", 0]], "val": [], "test": []}))
    with pytest.raises(DatasetLayoutError, match="malformed entry"):
        load(fake, "test")
    fake.split_json.write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(DatasetLayoutError, match="expected a JSON object with lists under 'train', 'val'"):
        load(fake, "test")


def test_split_file_elsewhere_is_accepted(tmp_path):
    fake = BUILDERS["dtd"](tmp_path / "data", with_json=True)
    elsewhere = tmp_path / "downloads" / "split_zhou_DescribableTextures.json"
    elsewhere.parent.mkdir()
    fake.split_json.rename(elsewhere)
    dataset = load(fake, "val", split_file=elsewhere)
    check_against(fake, "val", dataset)
    with pytest.raises(DatasetNotFoundError, match="split_file=.*does not exist"):
        load(fake, "val", split_file=tmp_path / "missing.json")


def test_too_small_classes_cannot_be_split_by_coops_rule(tmp_path):
    fake = BUILDERS["dtd"](tmp_path, per_class=3)
    with pytest.raises(DatasetLayoutError, match="Class 'banded' has only 3 image.*at least 4"):
        load(fake, "train")


def test_imagenet_layout_errors(tmp_path):
    fake = BUILDERS["imagenet"](tmp_path)
    val = fake.dataset_dir / "images" / "val"
    extra = val / "n01491361"
    write_image(extra / "a.JPEG")
    with pytest.raises(DatasetLayoutError, match="hold different class folders"):
        load(fake, "test")
    for folder in val.iterdir():
        for image in folder.iterdir():
            image.rename(val / image.name)
        folder.rmdir()
    with pytest.raises(DatasetLayoutError, match="holds .* images directly: sort them into one sub-folder per class"):
        load(fake, "test")
    (fake.dataset_dir / "images" / "train" / "not_a_wnid").mkdir()
    write_image(fake.dataset_dir / "images" / "train" / "not_a_wnid" / "x.jpg")
    with pytest.raises(DatasetLayoutError, match="not ImageNet class ids.*not_a_wnid"):
        load(fake, "train")


def test_imagenet_classnames_file_with_repeated_names_is_refused_at_loading(tmp_path):
    # a user's classnames.txt copied from a list that names two classes alike ("missile" twice in open_clip's)
    fake = BUILDERS["imagenet"](tmp_path)
    write_imagenet_classnames(fake.dataset_dir / "classnames.txt",
                              rename={"n01443537": "Tench", "n01484850": "great_white shark"})
    with pytest.raises(DatasetLayoutError, match=r"n01440764 and n01443537 are both 'Tench'.*distinct name"):
        load(fake, "train")
    write_imagenet_classnames(fake.dataset_dir / "classnames.txt", rename={"n01443537": "gold fish"})
    assert load(fake, "train").classnames[1] == "gold fish"


def test_imagenet_v2_needs_one_folder_per_label(tmp_path):
    fake = BUILDERS["imagenet_v2"](tmp_path)
    folder = fake.dataset_dir / "imagenetv2-matched-frequency-format-val" / "1"
    for image in folder.iterdir():
        image.unlink()
    folder.rmdir()
    with pytest.raises(DatasetLayoutError, match=r"one folder per label 0\.\.2.*missing: \[1\]"):
        load(fake, "test")


@pytest.mark.parametrize("name", ["imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"])
def test_variants_are_test_sets_only(tmp_path, name):
    with pytest.raises(ValueError, match="test set only.*split='test'"):
        load_real_dataset(name, "train", root=tmp_path)


def test_unknown_dataset_and_split_suggest_what_to_use(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'eurosatt'. Did you mean 'eurosat'"):
        load_real_dataset("eurosatt", "test", root=tmp_path)
    with pytest.raises(ValueError, match="Unknown split 'valid'.*'train', 'val', 'test'"):
        load_real_dataset("dtd", "valid", root=tmp_path)


@pytest.mark.parametrize("alias", ["flowers102", "Flowers102", "OxfordFlowers", "oxford-flowers", "flowers"])
def test_aliases_reach_the_same_dataset(tmp_path, alias):
    fake = BUILDERS["oxford_flowers"](tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GeneratedSplitWarning)
        dataset = load_real_dataset(alias, "test", root=tmp_path)
    assert dataset.classnames == fake.classnames and dataset.name == "oxford_flowers"


def test_split_file_for_a_dataset_without_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="FGVCAircraft has no split file"):
        load_real_dataset("fgvc_aircraft", "test", root=tmp_path, split_file=tmp_path / "x.json")


def test_sun397_without_partitions_splits_each_scene_folder(tmp_path):
    fake = BUILDERS["sun397"](tmp_path, partitions=False)
    with pytest.warns(GeneratedSplitWarning, match="no partition files, so per class 50% train"):
        train = load_real_dataset("sun397", "train", root=tmp_path)
    check_against(fake, "train", train)
    for split in ("val", "test"):
        check_against(fake, split, load(fake, split))


def test_default_imagenet_names_are_distinct_and_promptable(clip77):
    # open_clip's list repeats "missile" and "sunglasses": two classes with one prompt cannot be told apart.
    names = list(imagenet_default_classnames().values())
    assert len(names) == 1000 and len(set(names)) == 1000
    assert names[744] == "projectile" and names[836] == "sunglass"
    assert list(ct.IMAGENET_CLASSNAMES) == names
    learner = ct.PromptLearner(clip77, names, n_ctx=4)
    assert learner.n_cls == 1000
