"""Downstream tasks of the embedded world, each standing in for datasets of the CoOp paper.

A task is a recipe: which scene attribute is the label, which attributes are pinned (style, count), what
the classes are called, and which prompts a practitioner would write by hand. Its images are drawn
deterministically from the task name and split, and cached as ``.npz`` under ``<root>/embedded/``.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from PIL import Image

from .._io import atomic_path
from .corpus import sample_scene
from .render import Scene, render
from .vocabulary import COLOURS, PATTERNS, SHAPES

# Bump when drawing changes for every task, so stale caches are not reused (it seeds every draw: all images change);
# when one task's recipe changes, bump that TaskSpec's ``revision`` instead and the others keep their images.
WORLD_VERSION = 3
IMAGE_SIZE = 32
SPLITS = ("train", "val", "test")
# A second draw of each shifted set, for designing the world (judging pretraining checkpoints on the shifts without
# reading their test images). Not a validation split: the paper's shifted sets have none, and a method's recipe must
# never be chosen on it.
DESIGN_SPLIT = "design"


@dataclass(frozen=True)
class TaskSpec:
    """How to draw one task. ``per_class`` gives images per class for each split."""

    name: str
    label: str  # the Scene field that is the class
    classes: tuple  # values of that field, in label order
    classnames: tuple[str, ...]  # what the classes are called in prompts
    templates: tuple[str, ...]  # hand-written prompts; the first is the task's default (as in the paper)
    analogue: str  # which dataset of the paper it stands in for, and why
    fixed: dict = field(default_factory=dict)  # pinned scene attributes
    per_class: dict = field(default_factory=lambda: {"train": 32, "val": 16, "test": 80})
    splits: tuple[str, ...] = SPLITS
    source: Optional[str] = None  # for shifted test sets: the task they shift
    revision: int = 0  # bump when this task's drawing changes (its cache name changes; other tasks keep theirs)


_GENERIC = ("a photo of a {}.", "a {}.", "a picture of a {}.", "an image of a {}.", "a close-up photo of a {}.",
            "itap of a {}.", "a drawing of a {}.")
_SHAPE_TEMPLATES = _GENERIC[:1] + ("a photo of a {}, a type of shape.",) + _GENERIC[1:]
_SHAPES = tuple(SHAPES)
# pairs of complementary colours, so that reading a negative as a photo picks the wrong member of a pair
_NEGATIVE_COLOURS = ("red", "cyan", "orange", "blue", "yellow", "purple", "green", "pink")

TASKS: dict[str, TaskSpec] = {}


def _register(spec: TaskSpec) -> None:
    TASKS[spec.name] = spec


_register(TaskSpec(
    name="shapes", label="shape", classes=_SHAPES, classnames=_SHAPES, templates=_SHAPE_TEMPLATES,
    fixed={"style": "photo", "count": (1, 2)},
    analogue="ImageNet: everyday objects whose names the captions use all the time"))
_register(TaskSpec(
    name="patterns", label="pattern", classes=tuple(PATTERNS),
    # DTD's own category names where DTD has the texture (banded, chequered, polka-dotted, grid, zigzagged,
    # lined, sprinkled): an expert taxonomy the web captions rarely use, as in the real DTD
    classnames=("plain", "banded", "chequered", "polka-dotted", "grid", "zigzagged", "wavy", "lined", "starry",
                "sprinkled"),
    templates=("{} texture.", "a photo of a {} background.", "a {} pattern.", "a photo of a {}.",
               "a {} surface.", "a shape on a {} background.", "a close-up photo of a {} texture."),
    fixed={"style": "photo", "count": 1, "size": "small"},
    analogue="DTD: textures, which captions name rarely, in other words than the dataset's category names"))
_register(TaskSpec(
    name="shades", label="colour", classes=tuple(COLOURS), classnames=tuple(COLOURS),
    templates=("a photo of a {} object.", "a {} shape.", "a photo of a {}.", "the colour {}.", "something {}.",
               "a {} thing.", "a picture of a {} object."),
    fixed={"style": "photo"},
    analogue="Flowers102 / FGVCAircraft: fine-grained classes with precise, rarely used names"))
_register(TaskSpec(
    name="negatives", label="colour", classes=_NEGATIVE_COLOURS, classnames=_NEGATIVE_COLOURS,
    templates=("a negative photo of a {} object.", "a photo of a {} object.", "a {} object.",
               "an inverted photo of a {} shape.", "a film negative of a {} shape.", "a {} thing.",
               "a picture of a {} object."),
    fixed={"style": "negative"},
    analogue="EuroSAT: an imaging domain rare in the pretraining captions, where the class words mean "
             "something else than in ordinary photos (a negative shows the complementary colour)"))
_register(TaskSpec(
    name="counts", label="count", classes=(1, 2, 3, 4), classnames=("one", "two", "three", "four"),
    templates=("a photo of {} objects.", "{} shapes.", "a photo of {}.", "{} things.", "a picture of {} shapes.",
               "there are {} shapes.", "a {}."),
    fixed={"style": "photo", "size": "small"},
    analogue="UCF101 / SUN397: a scene-level property the class words describe only loosely"))
_COUNT_NAMES = ("one", "two", "three", "four")
_register(TaskSpec(
    name="thermal", label="count", classes=(1, 2, 3, 4), classnames=_COUNT_NAMES,
    templates=("a thermal image of {} objects.", "a photo of {} objects.", "an infrared photo of {} things.",
               "{} shapes.", "a thermal image of {} shapes.", "there are {} shapes.", "a photo of {}."),
    fixed={"style": "thermal", "size": "small"},
    analogue="EuroSAT: a sensor domain rare in the captions (thermal camera), where the question (how many "
             "hot objects?) is one captions answer only loosely"))
_register(TaskSpec(
    name="sketches", label="count", classes=(1, 2, 3, 4), classnames=_COUNT_NAMES,
    templates=("a sketch of {} shapes.", "a drawing of {} shapes.", "a photo of {} objects.", "{} shapes.",
               "line art of {} shapes.", "there are {} shapes.", "a photo of {}."),
    fixed={"style": "sketch", "size": "small"},
    analogue="UCF101 / SUN397: a property of the whole picture in a style (line drawings) unlike photos"))

# shifted test sets of `shapes`, standing in for ImageNet-V2 / -Sketch / -A / -R; each is harder than the source, as
# in the paper (revision 1 redrew -V2 and -Sketch: README, "The embedded world")
_SHIFT_TEST = {"test": 80, DESIGN_SPLIT: 40}
for _name, _fixed, _revision, _analogue in [
    ("shapes_v2", {"style": "photo", "count": (1, 2), "size": "small"}, 1,
     "ImageNet-V2: a fresh collection of the same classes, a little harder (the objects photographed smaller)"),
    ("shapes_sketch", {"style": "sketch", "count": (1, 2), "rough": True}, 1,
     "ImageNet-Sketch: hand-drawn sketches (wobbly, broken strokes, stray marks), no colour"),
    ("shapes_hard", {"style": "photo", "count": (1, 2), "hard": True}, 0,
     "ImageNet-A: hard images (low contrast, clutter, noise)"),
    ("shapes_painting", {"style": "painting", "count": (1, 2)}, 0, "ImageNet-R: renditions with other palettes"),
]:
    _register(TaskSpec(name=_name, label="shape", classes=_SHAPES, classnames=_SHAPES, templates=_SHAPE_TEMPLATES,
                       fixed=_fixed, per_class=_SHIFT_TEST, splits=("test", DESIGN_SPLIT), source="shapes", analogue=_analogue,
                       revision=_revision))

def shifted_sets(task: str) -> list[str]:
    """The shifted sets whose source is ``task`` (none for most tasks)."""
    return [name for name, spec in TASKS.items() if spec.source == task]


def _seed(name: str, split: str) -> list[int]:
    return [WORLD_VERSION, zlib.crc32(name.encode()), (*SPLITS, DESIGN_SPLIT).index(split)]


def cache_name(spec: TaskSpec, split: str) -> str:
    """File name of a drawn split: the world version and the task's own revision, so a stale drawing is not reused."""
    return f"{spec.name}-{split}-v{WORLD_VERSION}" + (f"r{spec.revision}" if spec.revision else "") + ".npz"


def draw_task(spec: TaskSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, S, S, 3), labels int64 (N,)) for one split, class-balanced and deterministic."""
    rng = np.random.default_rng(_seed(spec.name, split))
    images, labels = [], []
    for label, value in enumerate(spec.classes):
        for _ in range(spec.per_class[split]):
            fixed = {k: (int(rng.choice(v)) if isinstance(v, tuple) else v) for k, v in spec.fixed.items()}
            fixed[spec.label] = value
            scene: Scene = sample_scene(rng, **fixed)
            images.append(render(scene, rng, IMAGE_SIZE))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, dtype=np.int64)[order]


class EmbeddedTask(torch.utils.data.Dataset):
    """``(image, label)`` pairs of one split; images are PIL images unless a ``transform`` is given."""

    def __init__(self, spec: TaskSpec, split: str, images: np.ndarray, labels: np.ndarray,
                 transform: Optional[Callable] = None):
        self.spec, self.split, self.images, self.transform = spec, split, images, transform
        self.targets: list[int] = labels.tolist()
        self.classnames: list[str] = list(spec.classnames)
        self.templates: list[str] = list(spec.templates)
        self.name = spec.name

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        return (self.transform(image) if self.transform else image), self.targets[index]

    def __repr__(self) -> str:
        return f"EmbeddedTask({self.name!r}, split={self.split!r}, n={len(self)}, classes={len(self.classnames)})"


def default_root() -> Path:
    return Path(os.environ.get("COOP_DATA", "data"))


def load_embedded_task(name: str, split: str, transform: Optional[Callable] = None,
                       root: Optional[Union[str, Path]] = None) -> EmbeddedTask:
    """Load (drawing and caching on first use) one split of an embedded task."""
    if name not in TASKS:
        raise ValueError(f"Unknown embedded task {name!r}; known: {', '.join(TASKS)}.")
    spec = TASKS[name]
    if split not in spec.splits:
        raise ValueError(f"Task {name!r} has splits {spec.splits}, not {split!r}"
                         + (f" (it is a shifted test set: 'test', and {DESIGN_SPLIT!r}, a second draw for judging "
                            f"pretraining checkpoints)." if spec.source else "."))
    cache = Path(root if root is not None else default_root()) / "embedded" / cache_name(spec, split)
    if cache.exists():
        with np.load(cache) as stored:
            images, labels = stored["images"], stored["labels"]
    else:
        images, labels = draw_task(spec, split)
        try:
            with atomic_path(cache, suffix=".tmp.npz") as tmp:
                np.savez_compressed(tmp, images=images, labels=labels)
        except OSError:
            pass  # a read-only location only costs redrawing next time
    return EmbeddedTask(spec, split, images, labels, transform)
