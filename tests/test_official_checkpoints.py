"""The official code's prompt checkpoints (prompt_learner/model.pth.tar-N): read safely, checked, written back."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

import coop_tutorial as ct
from coop_tutorial.checkpoint import read_official_context
from conftest import CLASSNAMES, make_clip

pytestmark = pytest.mark.usefixtures("single_thread")


def learned(clip, csc=False, n_ctx=4):
    learner = ct.PromptLearner(clip, CLASSNAMES, n_ctx=n_ctx, csc=csc, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        learner.ctx.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    return learner


def dassl_checkpoint(learner, path, dtype=torch.float32):
    """A file shaped as Dassl's save_checkpoint writes it: the prompt learner's state dict (ctx, token_prefix,
    token_suffix), the epoch, the optimiser's state dict and the warm-up scheduler's, whose 'successor' is a
    whole CosineAnnealingLR object (pickled with its SGD), as the official runs save it."""
    ctx = torch.nn.Parameter(learner.ctx.detach().clone())
    optimizer = torch.optim.SGD([ctx], lr=0.002, momentum=0.9)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 50.0)
    state = {k: v.detach().clone().to(dtype) for k, v in
             {"ctx": learner.ctx, "token_prefix": learner.token_prefix, "token_suffix": learner.token_suffix}.items()}
    scheduler = {"successor": successor, "warmup_epoch": 1, "cons_lr": 1e-5, "last_epoch": 50, "base_lrs": [0.002]}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 50, "optimizer": optimizer.state_dict(), "scheduler": scheduler,
                "val_result": None}, path)
    return path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_official_checkpoint_loads_with_its_scheduler_objects(clip32, tmp_path, dtype):
    learner = learned(clip32)
    path = dassl_checkpoint(learner, tmp_path / "run" / "prompt_learner" / "model.pth.tar-50", dtype)
    loaded = ct.load_context(path, clip32, classnames=CLASSNAMES)
    torch.testing.assert_close(loaded.ctx, learner.ctx.to(dtype).float(), atol=0, rtol=0)
    assert (loaded.n_ctx, loaded.csc, loaded.class_token_position) == (4, False, "end")
    assert ct.load_context(tmp_path / "run", clip32, classnames=CLASSNAMES).n_ctx == 4  # the run folder works too
    ctx, info = read_official_context(path)
    assert (info["epoch"], info["n_classes"], info["width"], info["context_length"]) == (50, 5, clip32.width, 32)
    assert info["dtype"] == str(dtype).replace("torch.", "")


def test_unified_official_context_loads_for_other_classes(clip32, tmp_path):
    path = dassl_checkpoint(learned(clip32), tmp_path / "model.pth.tar-50")
    assert ct.load_context(path, clip32, classnames=["cat", "dog"]).n_cls == 2  # as the official strict=False load


def test_official_checkpoint_mismatches_say_which(clip32, clip77, tmp_path):
    path = dassl_checkpoint(learned(clip32), tmp_path / "model.pth.tar-50")
    with pytest.raises(ValueError, match="records no class names"):
        ct.load_context(path, clip32)
    with pytest.raises(ValueError, match="n_ctx: the checkpoint has 4 context vectors, you expected 16"):
        ct.load_context(path, clip32, classnames=CLASSNAMES, n_ctx=16)
    narrow = make_clip(32, width=32, name=clip32.name)
    with pytest.raises(ValueError, match=f"width: the context vectors have {clip32.width} dimensions"):
        ct.load_context(path, narrow, classnames=CLASSNAMES)
    with pytest.raises(ValueError, match="context length: the checkpoint's prompts are 32 tokens long"):
        ct.load_context(path, clip77, classnames=CLASSNAMES)
    csc = dassl_checkpoint(learned(clip32, csc=True), tmp_path / "csc" / "model.pth.tar-50")
    with pytest.raises(ValueError, match="classes: a class-specific context for 5 classes, 2 class names given"):
        ct.load_context(csc, clip32, classnames=["cat", "dog"])
    assert ct.load_context(csc, clip32, classnames=CLASSNAMES).csc


class Payload:
    """Unpickling this would run a shell command creating a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_crafted_pickle_is_refused_not_executed(clip32, tmp_path):
    marker = tmp_path / "pwned"
    as_torch = tmp_path / "torch" / "model.pth.tar-50"
    as_torch.parent.mkdir()
    torch.save({"state_dict": {"ctx": torch.zeros(4, clip32.width)}, "epoch": 1, "note": Payload(marker)}, as_torch)
    raw = tmp_path / "raw" / "model.pth.tar-50"
    raw.parent.mkdir()
    raw.write_bytes(pickle.dumps({"state_dict": {"ctx": Payload(marker)}}))
    for path in (as_torch, raw):
        with pytest.raises(ValueError, match="nor a plain tensor checkpoint: it was not loaded"):
            ct.load_context(path, clip32, classnames=CLASSNAMES)
    assert not marker.exists()


def test_save_official_writes_what_the_official_loader_reads(clip32, tmp_path):
    learner = learned(clip32)
    result = ct.TrainResult(learner, ct.CoOpClassifier(clip32, learner), [], ct.CoOpConfig.paper(1))
    file = ct.save_context(tmp_path / "out", result, format="official")
    assert file == tmp_path / "out" / "prompt_learner" / "model.pth.tar-50"  # the config's 50 epochs
    checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 50 and set(checkpoint["state_dict"]) == {"ctx", "token_prefix", "token_suffix"}
    # The official load_model: drop the fixed tokens, load the rest non-strictly into a fresh prompt learner.
    state = dict(checkpoint["state_dict"])
    del state["token_prefix"], state["token_suffix"]
    fresh = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4, generator=torch.Generator().manual_seed(5))
    fresh.load_state_dict(state, strict=False)
    assert torch.equal(fresh.ctx, learner.ctx)
    back = ct.load_context(file, clip32, classnames=CLASSNAMES)
    assert torch.equal(back.ctx, learner.ctx)
    named = ct.save_context(tmp_path / "x" / "model.pth.tar-7", learner, format="official")
    assert named.name == "model.pth.tar-7" and read_official_context(named)[1]["epoch"] == 7
    with pytest.raises(ValueError, match="Unknown checkpoint format 'pth'"):
        ct.save_context(tmp_path / "y", learner, format="pth")


def test_a_run_folder_with_several_checkpoints_asks_for_the_file(clip32, tmp_path):
    for epoch in (10, 50):
        dassl_checkpoint(learned(clip32), tmp_path / "run" / "prompt_learner" / f"model.pth.tar-{epoch}")
    with pytest.raises(ValueError, match="holds 2 official prompt checkpoints.*model.pth.tar-10, model.pth.tar-50"):
        ct.load_context(tmp_path / "run", clip32, classnames=CLASSNAMES)
    with pytest.raises(FileNotFoundError, match="No context checkpoint"):
        ct.load_context(tmp_path / "missing", clip32, classnames=CLASSNAMES)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_random_bytes_are_refused_with_the_same_message(clip32, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for i in range(60):  # unpicklers fail on random bytes with many exception types; all must read the same
        path = tmp_path / f"model.pth.tar-{i + 1}"
        path.write_bytes(rng.integers(0, 256, size=int(rng.integers(1, 200)), dtype=np.uint8).tobytes())
        with pytest.raises(ValueError, match="nor a plain tensor checkpoint"):
            ct.load_context(path, clip32, classnames=CLASSNAMES)
