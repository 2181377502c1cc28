"""CoOpConfig.precision: fp32, fp16 (the official PREC, GPU only), bf16, amp."""
from __future__ import annotations

import pytest
import torch

import coop_tutorial as ct
from conftest import CLASSNAMES
from coop_tutorial.training import precision_clip

pytestmark = pytest.mark.usefixtures("single_thread")


def run(clip, data, **changes):
    config = ct.CoOpConfig(epochs=3, n_views=2, progress=False, seed=1, **changes)
    return ct.train_coop(clip, data, config=config)


def test_fp16_on_cpu_is_a_clear_error_naming_the_alternatives(clip32, make_dataset):
    with pytest.raises(ValueError, match="fp16' needs a GPU.*addmm_impl_cpu_.*'bf16'.*'amp'.*'fp32'"):
        run(clip32, make_dataset(), precision="fp16")
    with pytest.raises(ValueError, match="CoOpConfig.precision must be one of 'fp32', 'fp16', 'amp', 'bf16'"):
        ct.CoOpConfig(precision="half")


@pytest.mark.parametrize("cached", [True, False])
def test_bf16_trains_a_bfloat16_context_on_a_copy_of_the_clip(clip32, make_dataset, cached):
    data = make_dataset()
    reference = run(clip32, data, cached=cached)
    result = run(clip32, data, precision="bf16", cached=cached)
    assert result.learner.ctx.dtype == torch.bfloat16 and result.classifier.clip.dtype == torch.bfloat16
    assert clip32.dtype == torch.float32 and result.classifier.clip.model is not clip32.model  # caller's model kept
    assert abs(result.history[-1]["loss"] - reference.history[-1]["loss"]) < 0.05  # same run, coarser numbers
    assert result.history[-1]["loss"] != reference.history[-1]["loss"]  # it did run in bfloat16


def test_amp_keeps_fp32_weights_and_autocasts(clip32, make_dataset):
    result = run(clip32, make_dataset(), precision="amp")
    assert result.learner.ctx.dtype == torch.float32 and result.classifier.clip.model is clip32.model
    assert torch.isfinite(torch.tensor(result.history[-1]["loss"]))


def test_precision_clip_converts_only_when_needed(clip32):
    assert precision_clip(clip32, "fp32") is clip32 and precision_clip(clip32, "amp") is clip32
    bf16 = precision_clip(clip32, "bf16")
    assert bf16.dtype == torch.bfloat16 and precision_clip(bf16, "bf16") is bf16
    assert precision_clip(bf16, "fp32").dtype == torch.float32  # the official fp32 path: clip_model.float()


def test_paper_preset_uses_fp16_on_gpu_and_fp32_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ct.CoOpConfig.paper(16).precision == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert ct.CoOpConfig.paper(16).precision == "fp16"
    assert ct.CoOpConfig.paper(16, precision="amp").precision == "amp"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_half_precisions_train_on_gpu(make_dataset, precision):
    from conftest import make_clip

    clip = make_clip(32)
    clip.model.cuda()
    clip = type(clip)(**{**clip.__dict__, "device": torch.device("cuda")})
    result = run(clip, make_dataset(), precision=precision)
    expected = torch.float16 if precision == "fp16" else torch.float32
    assert result.learner.ctx.dtype == expected and torch.isfinite(torch.tensor(result.history[-1]["loss"]))
    assert len(result.learner.classnames) == len(CLASSNAMES)
