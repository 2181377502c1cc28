"""Tiny fake copies of the paper's datasets, written in their real folder layouts (CoOp's or torchvision's).

Each builder writes a few 8x8 images plus the metadata files the layout has (``.mat`` annotations through
scipy, ``variants.txt``, ``trainval.txt``, ``classnames.txt``, split jsons...) and returns a ``Fake``: what a
correct reader must find (class names in label order, split sizes, the class of every image file).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from coop_tutorial.datasets.metadata import imagenet_default_classnames, imagenet_wnids


@dataclass
class Fake:
    """What was written: ``classnames`` in label order, ``sizes`` per split, ``class_of[path]`` per image."""

    name: str
    root: Path
    dataset_dir: Path
    classnames: list[str]
    sizes: dict[str, int]
    class_of: dict[str, str] = field(default_factory=dict)
    split_json: Optional[Path] = None
    split_paths: dict[str, set[str]] = field(default_factory=dict)  # per split, when a split json was written


def write_image(path: Path, seed: int = 0, size: int = 8) -> Path:
    """A small random RGB image; the format follows the suffix (.jpg, .png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _class_folders(image_dir: Path, folders: dict[str, int], suffix: str = ".jpg") -> dict[str, list[Path]]:
    return {folder: [write_image(image_dir / folder / f"{folder}_{i:03d}{suffix}", seed=i + 31 * j)
                     for i in range(n)] for j, (folder, n) in enumerate(folders.items())}


def _write_json(path: Path, splits: dict[str, list[tuple[str, int, str]]]) -> Path:
    path.write_text(json.dumps({split: [list(entry) for entry in entries] for split, entries in splits.items()}))
    return path


def _paths_of(image_dir: Path, splits: dict[str, list[tuple[str, int, str]]]) -> dict[str, set[str]]:
    return {split: {str(image_dir / rel) for rel, _, _ in entries} for split, entries in splits.items()}


def _json_from_folders(image_dir: Path, files: dict[str, list[Path]], names: dict[str, str],
                       folder_order: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    """A split json unlike CoOp's rule (last image = test, second last = val), to prove it is the one read."""
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for label, folder in enumerate(folder_order):
        paths = [p.relative_to(image_dir).as_posix() for p in files[folder]]
        for split, chunk in (("train", paths[:-2]), ("val", paths[-2:-1]), ("test", paths[-1:])):
            splits[split] += [(rel, label, names[folder]) for rel in chunk]
    return splits


def _class_of(image_dir: Path, files: dict[str, list[Path]], names: dict[str, str]) -> dict[str, str]:
    return {str(p): names[folder] for folder, paths in files.items() for p in paths}


# ---- one folder per class: DTD, Food101, Caltech101, EuroSAT ---------------------------------------------------

def _folder_dataset(name: str, root: Path, dataset_dir: Path, image_sub: str, folders: dict[str, int],
                    names: dict[str, str], json_name: Optional[str], ignored: tuple[str, ...] = (),
                    json_names: Optional[dict[str, str]] = None) -> Fake:
    image_dir = dataset_dir / image_sub
    files = _class_folders(image_dir, folders)
    kept = sorted(f for f in folders if f not in ignored)
    fake = Fake(name, root, dataset_dir, [names[f] for f in kept], {},
                _class_of(image_dir, {f: files[f] for f in kept}, names))
    if json_name:
        splits = _json_from_folders(image_dir, files, json_names or names, kept)
        fake.split_json = _write_json(dataset_dir / json_name, splits)
        fake.sizes = {s: len(v) for s, v in splits.items()}
        fake.split_paths = _paths_of(image_dir, splits)
    else:
        per_class = [folders[f] for f in kept]  # CoOp's 50/20/30 with Python's round
        train = [round(n * 0.5) for n in per_class]
        val = [round(n * 0.2) for n in per_class]
        fake.sizes = {"train": sum(train), "val": sum(val),
                      "test": sum(n - a - b for n, a, b in zip(per_class, train, val))}
    return fake


def make_dtd(root: Path, layout: str = "coop", with_json: bool = False, per_class: int = 5) -> Fake:
    dataset_dir = root / ("dtd" if layout == "coop" else "dtd/dtd")
    for sub in ("imdb", "labels"):
        (dataset_dir / sub).mkdir(parents=True, exist_ok=True)
    folders = {"banded": per_class, "blotchy": per_class, "braided": per_class + 2}
    return _folder_dataset("dtd", root, dataset_dir, "images", folders, {f: f for f in folders},
                           "split_zhou_DescribableTextures.json" if with_json else None)


def make_food101(root: Path, with_json: bool = False) -> Fake:
    dataset_dir = root / "food-101"
    (dataset_dir / "meta").mkdir(parents=True)
    folders = {"apple_pie": 4, "baby_back_ribs": 6, "baklava": 4}
    return _folder_dataset("food101", root, dataset_dir, "images", folders, {f: f for f in folders},
                           "split_zhou_Food101.json" if with_json else None)


CALTECH_FOLDERS = {"BACKGROUND_Google": 4, "Faces": 4, "Faces_easy": 4, "Leopards": 4, "accordion": 5,
                   "airplanes": 4}
CALTECH_NAMES = {"Faces": "face", "Leopards": "leopard", "accordion": "accordion", "airplanes": "airplane",
                 "BACKGROUND_Google": "BACKGROUND_Google", "Faces_easy": "Faces_easy"}


def make_caltech101(root: Path, layout: str = "coop", with_json: bool = False) -> Fake:
    dataset_dir = root / ("caltech-101" if layout == "coop" else "caltech101")
    return _folder_dataset("caltech101", root, dataset_dir, "101_ObjectCategories", CALTECH_FOLDERS, CALTECH_NAMES,
                           "split_zhou_Caltech101.json" if with_json else None,
                           ignored=("BACKGROUND_Google", "Faces_easy"))


EUROSAT_FOLDERS = {"AnnualCrop": 4, "Forest": 4, "SeaLake": 5}
EUROSAT_NAMES = {"AnnualCrop": "Annual Crop Land", "Forest": "Forest", "SeaLake": "Sea or Lake"}


def make_eurosat(root: Path, with_json: bool = False) -> Fake:
    # The json carries the raw folder names, as older split files do: the reader must still rename them.
    return _folder_dataset("eurosat", root, root / "eurosat", "2750", EUROSAT_FOLDERS, EUROSAT_NAMES,
                           "split_zhou_EuroSAT.json" if with_json else None,
                           json_names={f: f for f in EUROSAT_FOLDERS})


# ---- official lists + 80/20 trainval: OxfordPets, StanfordCars, SUN397, UCF101 ----------------------------------

def _trainval_sizes(trainval_per_class: list[int], test: int) -> dict[str, int]:
    val = sum(round(n * 0.2) for n in trainval_per_class)
    return {"train": sum(trainval_per_class) - val, "val": val, "test": test}


def _json_by_split(fake: Fake, image_dir: Path, name: str, split_of: dict[str, str], label_of: dict[str, int]) -> None:
    """Write ``name`` assigning each image to ``split_of[path]``; record it on ``fake``."""
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for path, split in split_of.items():
        splits[split].append((Path(path).relative_to(image_dir).as_posix(), label_of[path], fake.class_of[path]))
    fake.split_json = _write_json(fake.dataset_dir / name, splits)
    fake.sizes = {split: len(entries) for split, entries in splits.items()}
    fake.split_paths = _paths_of(image_dir, splits)


PET_BREEDS = ["Abyssinian", "american_bulldog", "yorkshire_terrier"]


def make_oxford_pets(root: Path, layout: str = "coop", with_json: bool = False) -> Fake:
    dataset_dir = root / ("oxford_pets" if layout == "coop" else "oxford-iiit-pet")
    image_dir, annotations = dataset_dir / "images", dataset_dir / "annotations"
    annotations.mkdir(parents=True)
    lines = {"trainval": [], "test": []}
    class_of, split_of, label_of = {}, {}, {}
    for label, breed in enumerate(PET_BREEDS, 1):
        for i in range(1, 8):
            stem = f"{breed}_{i}"
            path = str(write_image(image_dir / f"{stem}.jpg", seed=i + 10 * label))
            part = "trainval" if i <= 5 else "test"
            lines[part].append(f"{stem} {label} {1 if breed[0].isupper() else 2} {i}")
            class_of[path], label_of[path] = breed.lower(), label - 1
            split_of[path] = {1: "val"}.get(i, "train") if part == "trainval" else "test"
    (annotations / "trainval.txt").write_text("\n".join(lines["trainval"]) + "\n")
    (annotations / "test.txt").write_text("\n".join(lines["test"]) + "\n")
    fake = Fake("oxford_pets", root, dataset_dir, [b.lower() for b in PET_BREEDS], _trainval_sizes([5, 5, 5], 6),
                class_of)
    if with_json:
        _json_by_split(fake, image_dir, "split_zhou_OxfordPets.json", split_of, label_of)
    return fake


CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Tesla Model S Sedan 2012"]


def make_stanford_cars(root: Path, with_json: bool = False) -> Fake:
    from scipy.io import savemat

    dataset_dir = root / "stanford_cars"
    (dataset_dir / "devkit").mkdir(parents=True)
    coop_names = [" ".join([n.split()[-1], *n.split()[:-1]]) for n in CAR_NAMES]
    class_of, split_of, label_of = {}, {}, {}
    records = {"cars_train": [], "cars_test": []}
    number = 0
    for label in range(len(CAR_NAMES)):
        for i in range(7):
            number += 1
            folder = "cars_train" if i < 5 else "cars_test"
            fname = f"{number:05d}.jpg"
            path = str(write_image(dataset_dir / folder / fname, seed=number))
            records[folder].append((fname, label + 1))
            class_of[path], label_of[path] = coop_names[label], label
            split_of[path] = ("val" if i == 0 else "train") if folder == "cars_train" else "test"

    def annotations(rows):
        table = np.zeros((1, len(rows)), dtype=[("fname", "O"), ("class", "O")])
        for k, (fname, cls) in enumerate(rows):
            table[0, k] = (fname, np.array([[cls]], dtype=np.uint8))
        return {"annotations": table}

    savemat(str(dataset_dir / "devkit" / "cars_train_annos.mat"), annotations(records["cars_train"]))
    savemat(str(dataset_dir / "cars_test_annos_withlabels.mat"), annotations(records["cars_test"]))
    meta = np.empty((1, len(CAR_NAMES)), dtype=object)
    for k, name in enumerate(CAR_NAMES):
        meta[0, k] = name
    savemat(str(dataset_dir / "devkit" / "cars_meta.mat"), {"class_names": meta})
    fake = Fake("stanford_cars", root, dataset_dir, coop_names, _trainval_sizes([5, 5, 5], 6), class_of)
    if with_json:
        _json_by_split(fake, dataset_dir, "split_zhou_StanfordCars.json", split_of, label_of)
    return fake


SUN_CATEGORIES = ["a/abbey", "a/apartment_building/outdoor", "b/bedroom"]
SUN_NAMES = ["abbey", "outdoor apartment_building", "bedroom"]


def make_sun397(root: Path, with_json: bool = False, partitions: bool = True) -> Fake:
    dataset_dir = root / "sun397"
    image_dir = dataset_dir / "SUN397"
    class_of, split_of, label_of = {}, {}, {}
    training, testing = [], []
    for label, category in enumerate(SUN_CATEGORIES):
        for i in range(7):
            relative = f"{category}/sun_{label}{i:03d}.jpg"
            path = str(write_image(image_dir / relative, seed=label * 10 + i))
            (training if i < 5 else testing).append("/" + relative)
            class_of[path], label_of[path] = SUN_NAMES[label], label
            split_of[path] = ("val" if i == 0 else "train") if i < 5 else "test"
    if partitions:
        (dataset_dir / "ClassName.txt").write_text("".join(f"/{c}\n" for c in SUN_CATEGORIES))
        (dataset_dir / "Training_01.txt").write_text("\n".join(training) + "\n")
        (dataset_dir / "Testing_01.txt").write_text("\n".join(testing) + "\n")
        sizes = _trainval_sizes([5, 5, 5], 6)
    else:
        sizes = {"train": 3 * round(7 * 0.5), "val": 3 * round(7 * 0.2), "test": 3 * (7 - 4 - 1)}
    fake = Fake("sun397", root, dataset_dir, SUN_NAMES, sizes, class_of)
    if with_json:
        _json_by_split(fake, image_dir, "split_zhou_SUN397.json", split_of, label_of)
    return fake


UCF_ACTIONS = ["ApplyEyeMakeup", "BabyCrawling", "YoYo"]
UCF_NAMES = ["Apply_Eye_Makeup", "Baby_Crawling", "Yo_Yo"]


def make_ucf101(root: Path, with_json: bool = False) -> Fake:
    dataset_dir = root / "ucf101"
    image_dir = dataset_dir / "UCF-101-midframes"
    lists = dataset_dir / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {a}\n" for i, a in enumerate(UCF_ACTIONS, 1)))
    class_of, split_of, label_of = {}, {}, {}
    train_lines, test_lines = [], []
    for label, (action, renamed) in enumerate(zip(UCF_ACTIONS, UCF_NAMES)):
        for group in range(1, 8):
            video = f"v_{action}_g{group:02d}_c01"
            path = str(write_image(image_dir / renamed / f"{video}.jpg", seed=label * 10 + group))
            if group <= 5:
                train_lines.append(f"{action}/{video}.avi {label + 1}")
            else:
                test_lines.append(f"{action}/{video}.avi")
            class_of[path], label_of[path] = renamed, label
            split_of[path] = ("val" if group == 1 else "train") if group <= 5 else "test"
    (lists / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    fake = Fake("ucf101", root, dataset_dir, UCF_NAMES, _trainval_sizes([5, 5, 5], 6), class_of)
    if with_json:
        _json_by_split(fake, image_dir, "split_zhou_UCF101.json", split_of, label_of)
    return fake


# ---- Flowers102 (imagelabels.mat) and FGVCAircraft (official txt lists) ----------------------------------------

def make_oxford_flowers(root: Path, layout: str = "coop", with_json: bool = False) -> Fake:
    from scipy.io import savemat

    dataset_dir = root / ("oxford_flowers" if layout == "coop" else "flowers-102")
    labels = [2, 1, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 3]  # interleaved, as in the real file
    names = {1: "pink primrose", 2: "hard-leaved pocket orchid", 3: "canterbury bells"}
    if layout == "coop":  # CoOp's cat_to_name.json; torchvision's layout has none (the package table is used)
        names = {1: "primrose (from cat_to_name)", 2: "pocket orchid", 3: "canterbury bells"}
        (dataset_dir).mkdir(parents=True)
        (dataset_dir / "cat_to_name.json").write_text(json.dumps({str(k): v for k, v in names.items()}))
    class_of, split_of, label_of = {}, {}, {}
    seen: dict[int, int] = {}
    for index, label in enumerate(labels, 1):
        path = str(write_image(dataset_dir / "jpg" / f"image_{index:05d}.jpg", seed=index))
        class_of[path], label_of[path] = names[label], label - 1
        seen[label] = seen.get(label, 0) + 1
        split_of[path] = {1: "test", 2: "val"}.get(seen[label], "train")
    savemat(str(dataset_dir / "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    savemat(str(dataset_dir / "setid.mat"), {"trnid": np.array([[1]]), "valid": np.array([[2]]),
                                             "tstid": np.array([[3]])})
    counts = [labels.count(k) for k in (1, 2, 3)]
    sizes = {"train": sum(round(n * 0.5) for n in counts), "val": sum(round(n * 0.2) for n in counts)}
    sizes["test"] = len(labels) - sizes["train"] - sizes["val"]
    fake = Fake("oxford_flowers", root, dataset_dir, [names[k] for k in (1, 2, 3)], sizes, class_of)
    if with_json:
        _json_by_split(fake, dataset_dir / "jpg", "split_zhou_OxfordFlowers.json", split_of, label_of)
    return fake


AIRCRAFT_VARIANTS = ["707-320", "A300B4", "Cessna 172", "F-16A/B"]


def make_fgvc_aircraft(root: Path, layout: str = "coop") -> Fake:
    dataset_dir = root / ("fgvc_aircraft" if layout == "coop" else "fgvc-aircraft-2013b/data")
    dataset_dir.mkdir(parents=True)
    (dataset_dir / "variants.txt").write_text("".join(f"{v}\n" for v in AIRCRAFT_VARIANTS))
    class_of, lists = {}, {"train": [], "val": [], "test": []}
    number = 1000000
    for variant in AIRCRAFT_VARIANTS:
        for split, n in (("train", 3), ("val", 2), ("test", 2)):
            for _ in range(n):
                number += 1
                path = str(write_image(dataset_dir / "images" / f"{number}.jpg", seed=number))
                lists[split].append(f"{number} {variant}")
                class_of[path] = variant
    for split, lines in lists.items():
        (dataset_dir / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    return Fake("fgvc_aircraft", root, dataset_dir, list(AIRCRAFT_VARIANTS), {"train": 12, "val": 8, "test": 8},
                class_of)


# ---- ImageNet and its variants ---------------------------------------------------------------------------------

IMAGENET_SAMPLE = ["n01440764", "n01443537", "n01484850"]  # tench, goldfish, great white shark


def write_imagenet_classnames(path: Path, wnids: Optional[list[str]] = None, rename: Optional[dict] = None) -> None:
    """A CoOp ``classnames.txt`` (``wnid name`` lines); ``rename`` overrides names to prove the file is read."""
    names = imagenet_default_classnames()
    rename = rename or {}
    wnids = wnids if wnids is not None else list(imagenet_wnids("imagenet"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{w} {rename.get(w, names[w])}\n" for w in wnids))


def make_imagenet(root: Path, with_classnames: bool = True, wnids: Optional[list[str]] = None) -> Fake:
    """``wnids``: the classes given images (default ``IMAGENET_SAMPLE``; the dry run adds those of the -A and -R
    fakes, so that their classes are a subset of the source's, as in the real datasets)."""
    dataset_dir = root / "imagenet"
    names = imagenet_default_classnames()
    rename = {"n01443537": "goldfish (from classnames.txt)"} if with_classnames else {}
    if with_classnames:
        write_imagenet_classnames(dataset_dir / "classnames.txt", rename=rename)
    wnids = sorted(wnids) if wnids is not None else IMAGENET_SAMPLE
    class_of = {}
    for j, wnid in enumerate(wnids):
        for split, n in (("train", 3), ("val", 2)):
            for i in range(n):
                path = write_image(dataset_dir / "images" / split / wnid / f"{wnid}_{split}_{i}.JPEG", seed=j * 7 + i)
                class_of[str(path)] = rename.get(wnid, names[wnid])
    classnames = [rename.get(w, names[w]) for w in wnids]
    n = len(wnids)
    return Fake("imagenet", root, dataset_dir, classnames, {"train": 3 * n, "val": 2 * n, "test": 2 * n}, class_of)


def make_imagenet_v2(root: Path) -> Fake:
    dataset_dir = root / "imagenetv2"
    write_imagenet_classnames(dataset_dir / "classnames.txt", IMAGENET_SAMPLE)
    names = imagenet_default_classnames()
    class_of = {}
    for label, wnid in enumerate(IMAGENET_SAMPLE):
        for i in range(2):
            path = write_image(dataset_dir / "imagenetv2-matched-frequency-format-val" / str(label) / f"{i}.jpeg",
                               seed=label * 3 + i)
            class_of[str(path)] = names[wnid]
    return Fake("imagenet_v2", root, dataset_dir, [names[w] for w in IMAGENET_SAMPLE], {"test": 6}, class_of)


def _wnid_test_set(name: str, root: Path, folder: str, image_sub: str, wnids: list[str],
                   with_classnames: bool) -> Fake:
    dataset_dir = root / folder
    if with_classnames:
        write_imagenet_classnames(dataset_dir / "classnames.txt")
    names = imagenet_default_classnames()
    image_dir = dataset_dir / image_sub
    files = _class_folders(image_dir, {w: 2 for w in wnids})
    (image_dir / "README.txt").write_text("not a class")  # ImageNet-A/-R ship one; it must be ignored
    return Fake(name, root, dataset_dir, [names[w] for w in sorted(wnids)], {"test": 2 * len(wnids)},
                _class_of(image_dir, files, names))


def make_imagenet_sketch(root: Path, with_classnames: bool = True, image_sub: str = "images") -> Fake:
    return _wnid_test_set("imagenet_sketch", root, "imagenet-sketch", image_sub, IMAGENET_SAMPLE, with_classnames)


def imagenet_a_sample() -> list[str]:
    wnids = list(imagenet_wnids("imagenet_a"))
    return [wnids[5], wnids[0], wnids[199]]


def imagenet_r_sample() -> list[str]:
    wnids = list(imagenet_wnids("imagenet_r"))
    return [wnids[3], wnids[100], wnids[7]]


def make_imagenet_a(root: Path, with_classnames: bool = True) -> Fake:
    return _wnid_test_set("imagenet_a", root, "imagenet-adversarial", "imagenet-a", imagenet_a_sample(), with_classnames)


def make_imagenet_r(root: Path, with_classnames: bool = True) -> Fake:
    return _wnid_test_set("imagenet_r", root, "imagenet-rendition", "imagenet-r", imagenet_r_sample(), with_classnames)


BUILDERS: dict[str, Callable[..., Fake]] = {
    "imagenet": make_imagenet,
    "caltech101": make_caltech101,
    "oxford_pets": make_oxford_pets,
    "stanford_cars": make_stanford_cars,
    "oxford_flowers": make_oxford_flowers,
    "food101": make_food101,
    "fgvc_aircraft": make_fgvc_aircraft,
    "sun397": make_sun397,
    "dtd": make_dtd,
    "eurosat": make_eurosat,
    "ucf101": make_ucf101,
    "imagenet_v2": make_imagenet_v2,
    "imagenet_sketch": make_imagenet_sketch,
    "imagenet_a": make_imagenet_a,
    "imagenet_r": make_imagenet_r,
}


def make_paper_datasets(root: Path) -> dict[str, Fake]:
    """All eleven datasets and ImageNet's four variants under one data root, as the real world expects them: the
    notebooks' real-world dry run. ImageNet holds the classes of its -A and -R fakes too (those two have a subset
    of ImageNet's classes, as the real 200-class sets do)."""
    fakes = {}
    for name, builder in BUILDERS.items():
        if name == "imagenet":
            fakes[name] = make_imagenet(root, with_classnames=False,
                                        wnids=IMAGENET_SAMPLE + imagenet_a_sample() + imagenet_r_sample())
        else:
            fakes[name] = builder(root)
    return fakes
