"""Shared fixtures: small random CLIPs (fast on a CPU) and a fake image dataset factory.

The CLIPs are open_clip ``CLIP`` models with the embedded model's architecture family (ModifiedResNet image
tower at 32 px, small causal text transformer), randomly initialised under a fixed seed. One has context
length 32 like the embedded model, one 77 like real CLIP.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from coop_tutorial import clip_loader

# every test fails if it opens a network connection (see _network_guard.py)
pytest_plugins = ["_network_guard"]

CLASSNAMES = ["red_square", "green circle", "blue triangle", "yellow star", "Golden retriever"]


def make_clip(context_length: int = 32, width: int = 64, embed_dim: int = 64, name: Optional[str] = None,
              seed: int = 0, trained_token_ids: Optional[torch.Tensor] = None) -> clip_loader.ClipBundle:
    """A random small CLIP wrapped as the package's ClipBundle (frozen, eval)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(
            embed_dim=embed_dim,
            vision_cfg=open_clip.CLIPVisionCfg(layers=(1, 1, 1, 1), width=16, image_size=32),
            text_cfg=open_clip.CLIPTextCfg(context_length=context_length, vocab_size=49408, width=width, heads=2,
                                           layers=2))
        # open_clip initialises the text projection and token table at a scale where a random model's text
        # features are nearly identical; larger values make tests sensitive to every token.
        torch.nn.init.normal_(model.token_embedding.weight, std=0.5)
    eval_tf, train_tf = clip_loader.build_transforms(32)
    tokenizer = open_clip.SimpleTokenizer(context_length=context_length)
    return clip_loader._finish(model, eval_tf, train_tf, tokenizer, name or f"random-ctx{context_length}",
                               "random", torch.device("cpu"), trained_token_ids, {})


@pytest.fixture(scope="session")
def clip32() -> clip_loader.ClipBundle:
    """Random small CLIP with the embedded model's context length (32)."""
    return make_clip(32)


@pytest.fixture(scope="session")
def clip77() -> clip_loader.ClipBundle:
    """Random small CLIP with real CLIP's context length (77)."""
    return make_clip(77)


@pytest.fixture(params=["clip32", "clip77"])
def any_clip(request) -> clip_loader.ClipBundle:
    """Each small CLIP in turn (tests parametrised over models, as open_clip's are)."""
    return request.getfixturevalue(request.param)


class FakeImages(Dataset):
    """Random coloured 32x32 PIL images: each class has its own base colour plus per-image noise.

    Items are ``(PIL image, label)``; ``.classnames`` and ``.targets`` as the package's datasets.
    """

    def __init__(self, classnames: Sequence[str], per_class, seed: int = 0, size: int = 32):
        counts = [per_class] * len(classnames) if isinstance(per_class, int) else list(per_class)
        self.classnames = list(classnames)
        self.targets = [c for c, n in enumerate(counts) for _ in range(n)]
        rng = np.random.default_rng(seed)
        bases = np.random.default_rng(1234).integers(0, 256, size=(len(classnames), 3))
        self._arrays = []
        for label in self.targets:
            noise = rng.integers(-40, 41, size=(size, size, 3))
            self._arrays.append(np.clip(bases[label] + noise, 0, 255).astype(np.uint8))

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return Image.fromarray(self._arrays[index]), self.targets[index]


@pytest.fixture
def make_dataset() -> Callable[..., FakeImages]:
    """Factory: ``make_dataset(per_class=4, classnames=CLASSNAMES, seed=0)``."""
    def factory(per_class=4, classnames: Sequence[str] = CLASSNAMES, seed: int = 0) -> FakeImages:
        return FakeImages(classnames, per_class, seed)
    return factory



@pytest.fixture
def single_thread():
    """Run a test on one intra-op thread, then restore the previous setting.

    The models here are so small that thread synchronisation dominates: on a loaded 2-core machine a CoOp
    step took ~0.2 s with 2 threads and ~2 ms with 1.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
