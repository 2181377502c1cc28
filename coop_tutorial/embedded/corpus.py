"""The pretraining corpus: an endless, seeded stream of (image, caption) pairs.

Batch ``b`` of seed ``s`` is drawn from its own generator ``default_rng([s, b])``, so the stream is identical
whatever the number of workers or where a run resumes, and no corpus needs to be stored: the corpus size of
a run is simply ``steps * batch_size`` fresh pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from .captions import caption
from .render import Scene, render
from .vocabulary import COLOURS, PATTERNS, SHAPES, STYLES

COUNT_WEIGHTS = {1: 0.55, 2: 0.2, 3: 0.15, 4: 0.1}


def sample_scene(rng: np.random.Generator, **fixed) -> Scene:
    """A random scene of the corpus distribution; keyword arguments pin attributes (``shape="star"``)."""
    styles = list(STYLES)
    shares = np.asarray([STYLES[s][0] for s in styles])
    colours = list(COLOURS)
    colour = fixed.pop("colour", None) or str(rng.choice(colours))
    bg_choices = [c for c in colours if c != colour]
    values = dict(
        shape=str(rng.choice(list(SHAPES))),
        colour=colour,
        size=str(rng.choice(["small", "large"])),
        count=int(rng.choice(list(COUNT_WEIGHTS), p=list(COUNT_WEIGHTS.values()))),
        pattern=str(rng.choice(list(PATTERNS))),
        bg_colour=str(rng.choice(bg_choices)),
        style=str(rng.choice(styles, p=shares / shares.sum())),
    )
    values.update(fixed)
    if values["bg_colour"] == values["colour"]:
        values["bg_colour"] = str(rng.choice(bg_choices))
    return Scene(**values)


@dataclass
class CorpusBatch:
    images: torch.Tensor  # (B, 3, S, S) uint8
    tokens: torch.Tensor  # (B, context_length) int64
    captions: list[str]


class CaptionStream(torch.utils.data.IterableDataset):
    """Yields ready batches; run it in one DataLoader worker so drawing overlaps training."""

    def __init__(self, tokenizer: Callable, batch_size: int, steps: int, seed: int, image_size: int = 32,
                 start: int = 0):
        super().__init__()
        self.tokenizer, self.batch_size, self.steps, self.seed = tokenizer, batch_size, steps, seed
        self.image_size, self.start = image_size, start

    def batch(self, index: int) -> CorpusBatch:
        rng = np.random.default_rng([self.seed, index])
        scenes = [sample_scene(rng) for _ in range(self.batch_size)]
        images = np.stack([render(scene, rng, self.image_size) for scene in scenes])
        captions = [caption(scene, rng) for scene in scenes]
        return CorpusBatch(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                           self.tokenizer(captions), captions)

    def __iter__(self) -> Iterator[CorpusBatch]:
        info: Optional[torch.utils.data.get_worker_info] = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        for index in range(self.start + worker, self.steps, workers):
            yield self.batch(index)
