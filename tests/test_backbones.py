"""Real CLIP backbones through ``load_clip``: local checkpoints, the paper's transforms, one CoOp step each.

The weights are random (nothing can be downloaded here); what is tested is that the architecture the paper uses
loads from a file the way a user's downloaded checkpoint would, feeds the recipe's transforms, and trains.
"""
from __future__ import annotations

from collections import OrderedDict

import open_clip
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from coop_tutorial import CoOpConfig, load_clip, train_coop
from coop_tutorial.clip_loader import build_transforms
from _network_guard import no_network  # noqa: F401 (autouse fixture: no test touches the network)
from conftest import FakeImages

BACKBONES = ["RN50", "RN101", "ViT-B-32", "ViT-B-16"]


def check_recipe_transforms(eval_tf: T.Compose, train_tf: T.Compose, size: int = 224) -> None:
    """Eval: Resize(short side, bicubic) + CenterCrop; train: RandomResizedCrop(0.08-1, bicubic) + flip."""
    resize, crop = [t for t in eval_tf.transforms if isinstance(t, (T.Resize, T.CenterCrop))]
    assert isinstance(resize, T.Resize) and resize.size == size  # an int: the short side, aspect kept
    assert resize.interpolation == T.InterpolationMode.BICUBIC
    assert isinstance(crop, T.CenterCrop) and tuple(crop.size) == (size, size)
    random_crop = next(t for t in train_tf.transforms if isinstance(t, T.RandomResizedCrop))
    assert random_crop.scale == (0.08, 1.0) and tuple(random_crop.size) == (size, size)
    assert random_crop.interpolation == T.InterpolationMode.BICUBIC
    assert any(isinstance(t, T.RandomHorizontalFlip) for t in train_tf.transforms)
    wide = Image.new("L", (300, 200), 90)  # greyscale and not square: converted, short side to 224, centre crop
    assert eval_tf(wide).shape == train_tf(wide).shape == (3, size, size)


@pytest.mark.parametrize("name", BACKBONES)
def test_paper_backbones_are_224_pixel_models(name):
    assert open_clip.get_model_config(name)["vision_cfg"]["image_size"] == 224
    assert "openai" in open_clip.list_pretrained_tags_by_model(name)


def test_recipe_transforms():
    check_recipe_transforms(*build_transforms(224))


class SnapshotContext:
    """Callback: keeps the context as it was before training."""

    def on_train_start(self, learner) -> None:
        self.initial = learner.ctx.detach().clone()


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_backbone_loads_from_a_local_checkpoint_and_trains_one_coop_step(name, tmp_path):
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    path = tmp_path / f"{name}.pt"
    torch.save(model.state_dict(), path)
    clip = load_clip(name, pretrained=path)
    saved = model.state_dict()
    assert all(torch.equal(value, saved[key]) for key, value in clip.model.state_dict().items())
    del model, saved
    path.unlink()  # hundreds of MB
    assert clip.image_size == 224 and clip.context_length == 77 and clip.pretrained == str(path)
    check_recipe_transforms(clip.preprocess, clip.train_preprocess)

    train_set = FakeImages(["red_square", "green circle", "blue triangle"], per_class=1)
    snapshot = SnapshotContext()
    config = CoOpConfig(n_ctx=4, epochs=1, warmup_epochs=0, batch_size=3, n_views=0, progress=False)
    result = train_coop(clip, train_set, config=config, callbacks=[snapshot])
    assert len(result.history) == 1 and torch.isfinite(torch.tensor(result.history[0]["loss"]))
    assert result.learner.ctx.shape == (4, clip.width)
    assert not torch.equal(result.learner.ctx.detach(), snapshot.initial)  # one SGD step moved the context


@pytest.fixture(scope="module")
def rn50_weights(tmp_path_factory):
    """Random RN50 weights saved as a plain state dict, shared by the QuickGELU tests."""
    torch.manual_seed(1)
    model = open_clip.create_model("RN50", pretrained=None)
    path = tmp_path_factory.mktemp("rn50") / "rn50.pt"
    torch.save(model.state_dict(), path)
    yield path, model.state_dict()
    path.unlink()


def uses_quick_gelu(clip) -> bool:
    return isinstance(clip.model.transformer.resblocks[0].mlp.gelu, open_clip.transformer.QuickGELU)


@pytest.mark.slow
def test_openai_tag_gets_the_quick_gelu_it_was_trained_with(rn50_weights, monkeypatch):
    path, _ = rn50_weights
    # Stand in for the hub: the tag resolves to the local file instead of a download.
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, cache_dir=None, **kw: str(path))
    assert uses_quick_gelu(load_clip("RN50", pretrained="openai"))
    assert not uses_quick_gelu(load_clip("RN50", pretrained=path))  # a plain state dict: architecture as named


class _Parameters(torch.nn.Module):
    """Holds tensors under dotted names, to be saved as a TorchScript archive (OpenAI's checkpoint format)."""

    def __init__(self, state: "OrderedDict[str, torch.Tensor]"):
        super().__init__()
        for key, value in state.items():
            *parents, leaf = key.split(".")
            module = self
            for part in parents:
                if not hasattr(module, part):
                    module.add_module(part, torch.nn.Module())
                module = getattr(module, part)
            module.register_buffer(leaf, value.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*TorchScript archive", "ignore:.*torch.jit.* is deprecated")
def test_openai_torchscript_checkpoint_loads_with_quick_gelu(rn50_weights, tmp_path):
    path, state = rn50_weights
    archive = tmp_path / "RN50.pt"  # as OpenAI ships it in ~/.cache/clip, extra entries included
    extras = {"input_resolution": torch.tensor(224), "context_length": torch.tensor(77),
              "vocab_size": torch.tensor(49408)}
    torch.jit.script(_Parameters(OrderedDict({**state, **extras}))).save(str(archive))
    clip = load_clip("RN50", pretrained=archive)
    assert uses_quick_gelu(clip)
    assert torch.equal(clip.model.visual.conv1.weight, state["visual.conv1.weight"])
    assert torch.equal(clip.model.token_embedding.weight, state["token_embedding.weight"])
