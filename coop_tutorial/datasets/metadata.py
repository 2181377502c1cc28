"""The paper's datasets as data: where each lives, how CoOp names its classes, what torchvision can fetch.

Nothing here runs; the readers in this package look their facts up here, so a layout, a rename or a size is
changed in one place (as open_clip keeps ``zero_shot_metadata`` apart from ``zero_shot_classifier``).
Large tables (ImageNet class ids, Flowers102 names) are JSON files under ``coop_tutorial/metadata/``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

METADATA_DIR = Path(__file__).resolve().parent.parent / "metadata"

# Where users are sent when a folder is missing or malformed (the README links the same page).
DOCS_PAGE = "docs/datasets.md"
COOP_DATASETS_PAGE = "https://github.com/KaiyangZhou/CoOp/blob/main/DATASETS.md"

# A split built here (no split_zhou json) is drawn with this seed: CoOp's first seed, and fixed, because the
# split is a property of the dataset; few-shot seeds vary separately (few_shot.py).
SPLIT_SEED = 1
# CoOp's rules for a missing split json: per class 50% train, 20% val, the rest test (DTD, Food101, Caltech101,
# EuroSAT, Flowers102) or, where the dataset has an official train(val)/test split, 20% of trainval as val.
PER_CLASS_FRACTIONS = (0.5, 0.2)
TRAINVAL_VAL_FRACTION = 0.2

# Files counted as images when a class folder is listed (CoOp takes every non-hidden file; a stray README in a
# class folder would then crash it, so we skip non-images instead).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"})

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Layout:
    """One folder layout a dataset may be found in, relative to the data root.

    ``image_dir`` is the folder the split json paths start from (``""``: the dataset folder itself);
    ``required`` lists further entries that must exist for the layout to count as present.
    """

    kind: str  # "CoOp" (the official instructions) or "torchvision" (what ``download=True`` produces)
    folder: str
    image_dir: str
    required: tuple[str, ...] = ()

    @property
    def expected(self) -> tuple[str, ...]:
        return tuple(e for e in (self.image_dir, *self.required) if e)


@dataclass(frozen=True)
class TorchvisionDownload:
    """How to ask torchvision to fetch a dataset: the class and the arguments its constructor needs."""

    cls: str
    kwargs: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset of the paper."""

    name: str  # registry name, e.g. "oxford_flowers"
    title: str  # CoOp's name for it; split files are split_zhou_<title>.json
    n_classes: int
    layouts: tuple[Layout, ...]  # searched in order; the first is CoOp's
    has_split_json: bool = True  # False: ImageNet (val is the test set), FGVCAircraft (official txt files)
    splits: tuple[str, ...] = SPLITS
    torchvision: Optional[TorchvisionDownload] = None
    aliases: tuple[str, ...] = ()
    download_size: str = ""  # approximate size of what the user downloads
    source: str = ""  # where to fetch it by hand
    paper_split_sizes: Optional[tuple[int, int, int]] = None  # CoOp's train/val/test sizes (unverified)

    @property
    def split_json(self) -> Optional[str]:
        return f"split_zhou_{self.title}.json" if self.has_split_json else None

    @property
    def generated_split_json(self) -> str:
        return f"split_generated_{self.title}.json"

    @property
    def coop_folder(self) -> str:
        return self.layouts[0].folder


def _coop(folder: str, image_dir: str, *required: str) -> Layout:
    return Layout("CoOp", folder, image_dir, tuple(required))


def _tv(folder: str, image_dir: str, *required: str) -> Layout:
    return Layout("torchvision", folder, image_dir, tuple(required))


# Paper order: ImageNet, then the 10 fine-grained/specialised datasets, then the 4 ImageNet variants.
REAL_DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("imagenet", "ImageNet", 1000, (_coop("imagenet", "images"),), has_split_json=False,
                aliases=("ilsvrc2012", "in1k"), download_size="~150 GB",
                source="https://image-net.org/download.php (ILSVRC2012 train and val; val sorted into n* folders); "
                       "classnames.txt from the CoOp instructions (optional: open_clip's names are the same)",
                paper_split_sizes=(1281167, 50000, 50000)),  # val is the test set, as in CoOp
    DatasetInfo("caltech101", "Caltech101", 100,
                (_coop("caltech-101", "101_ObjectCategories"), _tv("caltech101", "101_ObjectCategories")),
                torchvision=TorchvisionDownload("Caltech101"), aliases=("caltech",), download_size="~130 MB",
                source="https://data.caltech.edu/records/mzrjq-6wc02 (101_ObjectCategories.tar.gz)",
                paper_split_sizes=(4128, 1649, 2465)),
    DatasetInfo("oxford_pets", "OxfordPets", 37,
                (_coop("oxford_pets", "images"), _tv("oxford-iiit-pet", "images")),
                torchvision=TorchvisionDownload("OxfordIIITPet", (("split", "trainval"),)),
                aliases=("pets", "oxford_iiit_pet", "oxfordiiitpet"), download_size="~800 MB",
                source="https://www.robots.ox.ac.uk/~vgg/data/pets/ (images.tar.gz, annotations.tar.gz)",
                paper_split_sizes=(2944, 736, 3669)),
    DatasetInfo("stanford_cars", "StanfordCars", 196, (_coop("stanford_cars", "", "cars_train", "cars_test"),),
                aliases=("cars",), download_size="~1.9 GB",
                source="the Stanford host (ai.stanford.edu/~jkrause/cars) is offline: use a mirror of cars_train.tgz, "
                       "cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat",
                paper_split_sizes=(6509, 1635, 8041)),
    DatasetInfo("oxford_flowers", "OxfordFlowers", 102, (_coop("oxford_flowers", "jpg"), _tv("flowers-102", "jpg")),
                torchvision=TorchvisionDownload("Flowers102", (("split", "train"),)),
                aliases=("flowers", "flowers102", "flowers_102"), download_size="~330 MB",
                source="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz, imagelabels.mat)",
                paper_split_sizes=(4093, 1633, 2463)),
    DatasetInfo("food101", "Food101", 101, (_coop("food-101", "images"),),
                torchvision=TorchvisionDownload("Food101", (("split", "train"),)), aliases=("food",),
                download_size="~5 GB", source="https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/",
                paper_split_sizes=(50500, 20200, 30300)),
    DatasetInfo("fgvc_aircraft", "FGVCAircraft", 100,
                (_coop("fgvc_aircraft", "images", "variants.txt"),
                 _tv("fgvc-aircraft-2013b/data", "images", "variants.txt")),
                has_split_json=False,
                torchvision=TorchvisionDownload("FGVCAircraft", (("split", "train"), ("annotation_level", "variant"))),
                aliases=("aircraft", "fgvc"), download_size="~2.7 GB",
                source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ (fgvc-aircraft-2013b.tar.gz; keep data/ "
                       "and rename it fgvc_aircraft/)",
                paper_split_sizes=(3334, 3333, 3333)),
    DatasetInfo("sun397", "SUN397", 397, (_coop("sun397", "SUN397"),), aliases=("sun",), download_size="~37 GB",
                source="https://vision.princeton.edu/projects/2010/SUN/ (SUN397.tar.gz and Partitions.zip)",
                paper_split_sizes=(15880, 3970, 19850)),
    DatasetInfo("dtd", "DescribableTextures", 47, (_coop("dtd", "images"), _tv("dtd/dtd", "images")),
                torchvision=TorchvisionDownload("DTD", (("split", "train"),)), aliases=("textures",),
                download_size="~600 MB", source="https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd-r1.0.1.tar.gz)",
                paper_split_sizes=(2820, 1128, 1692)),
    DatasetInfo("eurosat", "EuroSAT", 10, (_coop("eurosat", "2750"),), torchvision=TorchvisionDownload("EuroSAT"),
                download_size="~90 MB", source="https://github.com/phelber/EuroSAT (EuroSAT.zip, the RGB version)",
                paper_split_sizes=(13500, 5400, 8100)),
    DatasetInfo("ucf101", "UCF101", 101, (_coop("ucf101", "UCF-101-midframes"),), aliases=("ucf",),
                download_size="~1.5 GB (the middle frames CoOp extracted; not the videos)",
                source="UCF-101-midframes.zip from the CoOp instructions (Google Drive)",
                paper_split_sizes=(7639, 1898, 3783)),
    DatasetInfo("imagenet_v2", "ImageNetV2", 1000,
                (_coop("imagenetv2", "imagenetv2-matched-frequency-format-val"),), has_split_json=False,
                splits=("test",), aliases=("imagenetv2",), download_size="~1.2 GB",
                source="https://github.com/modestyachts/ImageNetV2 (matched-frequency)"),
    DatasetInfo("imagenet_sketch", "ImageNetSketch", 1000,
                (_coop("imagenet-sketch", "images"), Layout("ImageNet-Sketch zip", "imagenet-sketch", "sketch")),
                has_split_json=False, splits=("test",), aliases=("imagenetsketch", "sketch"), download_size="~8.5 GB",
                source="https://github.com/HaohanWang/ImageNet-Sketch"),
    DatasetInfo("imagenet_a", "ImageNetA", 200, (_coop("imagenet-adversarial", "imagenet-a"),), has_split_json=False,
                splits=("test",), aliases=("imagenet_adversarial",), download_size="~0.7 GB",
                source="https://github.com/hendrycks/natural-adv-examples"),
    DatasetInfo("imagenet_r", "ImageNetR", 200, (_coop("imagenet-rendition", "imagenet-r"),), has_split_json=False,
                splits=("test",), aliases=("imagenet_rendition",), download_size="~2.1 GB",
                source="https://github.com/hendrycks/imagenet-r"),
)}

# Class-name rules of the official code (datasets/*.py in KaiyangZhou/CoOp).
CALTECH101_IGNORED = ("BACKGROUND_Google", "Faces_easy")
CALTECH101_RENAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}
EUROSAT_RENAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}

# The CoOp paper's RN50 results (accuracy %, zero-shot CLIP with the hand-written prompt, CoOp at 16 shots).
# Unverified: read from the paper's figures and tables; they average to 58.8 and 73.4, the averages in
# REFERENCE.md. Use them to sanity-check a setup (a zero-shot run far below these means a data problem).
PAPER_RN50_ACCURACY: dict[str, tuple[float, float]] = {
    "imagenet": (58.18, 62.95),
    "caltech101": (86.29, 91.83),
    "oxford_pets": (85.77, 87.01),
    "stanford_cars": (55.61, 73.36),
    "oxford_flowers": (66.14, 94.51),
    "food101": (77.31, 74.67),
    "fgvc_aircraft": (17.28, 31.26),
    "sun397": (58.52, 69.26),
    "dtd": (42.32, 63.58),
    "eurosat": (37.56, 83.53),
    "ucf101": (61.46, 75.71),
}
# Domain generalisation (RN50, CoOp trained on 16-shot ImageNet): zero-shot CLIP and CoOp (REFERENCE.md, unverified).
PAPER_RN50_DOMAIN_GENERALISATION: dict[str, tuple[float, float]] = {
    "imagenet": (58.2, 63.3),
    "imagenet_v2": (51.3, 55.4),
    "imagenet_sketch": (33.3, 34.7),
    "imagenet_a": (21.7, 23.1),
    "imagenet_r": (56.0, 56.6),
}


@lru_cache(maxsize=None)
def imagenet_wnids(subset: str = "imagenet") -> tuple[str, ...]:
    """ImageNet class ids in label order (``"imagenet"``) or the 200 of ``"imagenet_a"`` / ``"imagenet_r"``."""
    table = json.loads((METADATA_DIR / "imagenet_wnids.json").read_text())
    return tuple(table[subset])


@lru_cache(maxsize=None)
def imagenet_default_classnames() -> dict[str, str]:
    """wnid -> CLIP's cleaned class name (used when the dataset folder has no classnames.txt), with the two
    duplicated names of open_clip's copy made distinct (see ``templates.IMAGENET_CLASSNAMES``)."""
    from ..templates import IMAGENET_CLASSNAMES

    return dict(zip(imagenet_wnids("imagenet"), IMAGENET_CLASSNAMES, strict=True))


@lru_cache(maxsize=None)
def flowers102_classnames() -> tuple[str, ...]:
    """Flowers102 names by 0-based label (CoOp's cat_to_name.json), for folders that lack that file."""
    return tuple(json.loads((METADATA_DIR / "flowers102_classnames.json").read_text())["classnames"])
