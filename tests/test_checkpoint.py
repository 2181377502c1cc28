"""Saving and loading contexts: round trip, metadata, other classes, refusals, atomic writes, no pickle."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open

import coop_tutorial as ct
from coop_tutorial import checkpoint
from conftest import CLASSNAMES, make_clip

pytestmark = pytest.mark.usefixtures("single_thread")


def trained_learner(clip, csc=False, position="middle"):
    learner = ct.PromptLearner(clip, CLASSNAMES, n_ctx=5, csc=csc, class_token_position=position,
                               generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        learner.ctx.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    return learner


@pytest.mark.parametrize("csc", [False, True])
def test_round_trip_restores_context_and_features(clip32, tmp_path, csc):
    learner = trained_learner(clip32, csc)
    path = ct.save_context(tmp_path / "ctx.safetensors", learner, extra={"shots": 16})
    loaded = ct.load_context(path, clip32)
    assert torch.equal(loaded.ctx, learner.ctx)
    assert (loaded.csc, loaded.class_token_position, loaded.classnames) == (csc, "middle", CLASSNAMES)
    torch.testing.assert_close(ct.CoOpClassifier(clip32, loaded).text_features(),
                               ct.CoOpClassifier(clip32, learner).text_features(), atol=0, rtol=0)


def test_metadata_records_what_the_context_needs(clip32, tmp_path):
    learner = ct.PromptLearner(clip32, CLASSNAMES, ctx_init="a photo of a")
    result = ct.TrainResult(learner, ct.CoOpClassifier(clip32, learner), [], ct.CoOpConfig(ctx_init="a photo of a"))
    path = ct.save_context(tmp_path / "ctx.safetensors", result)
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["coop_tutorial"])
        assert list(handle.keys()) == ["ctx"]  # prefix/suffix are rebuilt from the class names, not stored
    assert meta["model_name"] == clip32.name and meta["width"] == clip32.width
    assert (meta["n_ctx"], meta["csc"], meta["class_token_position"]) == (4, False, "end")
    assert meta["classnames"] == CLASSNAMES and meta["ctx_init"] == "a photo of a"
    assert meta["config"]["ctx_init"] == "a photo of a" and meta["library_version"] == ct.__version__
    assert ct.load_context(path, clip32).ctx_init == "a photo of a"


def test_unified_context_loads_for_other_class_names(clip32, tmp_path):
    learner = trained_learner(clip32)
    path = ct.save_context(tmp_path / "ctx.safetensors", learner)
    other = ct.load_context(path, clip32, classnames=["cat", "dog", "hot_air balloon"])
    assert other.n_cls == 3 and torch.equal(other.ctx, learner.ctx)
    # The context is the same; the prompts are rebuilt for the new names.
    expected = ct.PromptLearner(clip32, ["cat", "dog", "hot_air balloon"], n_ctx=5, class_token_position="middle")
    with torch.no_grad():
        expected.ctx.copy_(learner.ctx)
    assert torch.equal(other(), expected())


def test_refusals_name_the_field_that_differs(clip32, clip77, tmp_path):
    csc_path = ct.save_context(tmp_path / "csc.safetensors", trained_learner(clip32, csc=True))
    with pytest.raises(ValueError, match="classnames"):
        ct.load_context(csc_path, clip32, classnames=["cat", "dog"])
    path = ct.save_context(tmp_path / "ctx.safetensors", trained_learner(clip32))
    with pytest.raises(ValueError, match="model_name"):
        ct.load_context(path, clip77)
    narrow = make_clip(32, width=32, name=clip32.name)  # same name, different width
    with pytest.raises(ValueError, match="width"):
        ct.load_context(path, narrow)


def test_pickle_files_are_read_with_weights_only(clip32, tmp_path, monkeypatch):
    bogus = tmp_path / "model.pth"
    torch.save({"ctx": torch.zeros(4, clip32.width)}, bogus)
    real_load = torch.load

    def guarded(*args, **kwargs):
        assert kwargs.get("weights_only") is True, "torch.load without weights_only=True"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    with pytest.raises(ValueError, match="records no class names"):
        ct.load_context(bogus, clip32)
    assert ct.load_context(bogus, clip32, classnames=CLASSNAMES).n_ctx == 4
    with pytest.raises(ValueError, match="never arbitrary pickled objects"):
        checkpoint.read_context(bogus)
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file
    save_file({"weight": torch.zeros(2)}, str(plain))
    with pytest.raises(ValueError, match="not a coop-tutorial context"):
        ct.load_context(plain, clip32)


def test_writes_are_atomic(clip32, tmp_path, monkeypatch):
    path = tmp_path / "ctx.safetensors"
    first = trained_learner(clip32)
    ct.save_context(path, first)
    original = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(OSError):
        ct.save_context(path, ct.PromptLearner(clip32, ["cat"], n_ctx=2))
    assert path.read_bytes() == original  # the old checkpoint survives
    assert os.listdir(tmp_path) == ["ctx.safetensors"]  # and no temporary file is left behind
