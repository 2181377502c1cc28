"""No file the package reads may run code: crafted payloads in every format a loader accepts are refused unrun."""
from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict

import pytest
import torch

from coop_tutorial import load_clip, safe_load
from _network_guard import no_network  # noqa: F401 (autouse fixture)


class _Payload:
    """Unpickling this object creates a marker file: the proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_zip(path, marker, extra_entries=()) -> None:
    """A torch.save zip whose data.pkl runs a command, plus extra entries (e.g. a constants.pkl)."""
    torch.save({"weight": torch.zeros(2), "evil": _Payload(marker)}, path)
    with zipfile.ZipFile(path, "a") as archive:
        prefix = archive.namelist()[0].split("/")[0]
        for entry in extra_entries:
            archive.writestr(f"{prefix}/{entry}", pickle.dumps({}))


def _legacy_pickle(path, marker) -> None:
    with open(path, "wb") as handle:
        pickle.dump({"weight": torch.zeros(2), "evil": _Payload(marker)}, handle)


CRAFTED = {
    "pickle zip posing as a TorchScript archive": lambda p, m: _pickle_zip(p, m, ["constants.pkl"]),
    "pickle zip": lambda p, m: _pickle_zip(p, m),
    "legacy pickle": _legacy_pickle,
}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", list(CRAFTED))
def test_crafted_files_are_refused_and_never_run(kind, tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "weights.pt"
    CRAFTED[kind](path, marker)
    with pytest.raises(safe_load.UnsafeFileError, match="nothing in it ran"):
        safe_load.load_state_dict(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("kind", list(CRAFTED))
def test_load_clip_refuses_crafted_weight_files_unrun(kind, tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "RN50.pt"
    CRAFTED[kind](path, marker)
    with pytest.raises(ValueError, match="convert it once"):
        load_clip("RN50", pretrained=path)
    assert not marker.exists()


def test_torchscript_archive_with_a_payload_in_its_data_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "RN50.pt"
    payload = pickle.dumps(_Payload(marker), protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("RN50/data.pkl", payload)
        archive.writestr("RN50/constants.pkl", pickle.dumps(()))
        archive.writestr("RN50/version", "3")
    with pytest.raises(safe_load.UnsafeFileError, match="posix.system|os.system|not allowed"):
        safe_load.load_state_dict(path)
    assert not marker.exists()


class _Holder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Linear(3, 2)
        self.register_buffer("scale", torch.tensor([2.0], dtype=torch.float16))

    def forward(self, x):
        return self.inner(x) * self.scale.float()


@pytest.mark.filterwarnings("ignore:.*is deprecated")
def test_torchscript_archive_is_read_without_running_it(tmp_path):
    torch.manual_seed(0)
    module = _Holder()
    path = tmp_path / "holder.pt"
    torch.jit.trace(module, torch.randn(1, 3)).save(str(path))
    state = safe_load.load_state_dict(path)
    assert set(state) == {"inner.weight", "inner.bias", "scale"}
    for key, value in module.state_dict().items():
        assert state[key].dtype == value.dtype and torch.equal(state[key], value)


def test_state_dict_pickles_load_with_weights_only(tmp_path):
    path = tmp_path / "sd.pth.tar"
    weights = OrderedDict(ctx=torch.randn(4, 8))
    torch.save({"state_dict": weights, "epoch": 50}, path)
    assert torch.equal(safe_load.load_state_dict(path)["ctx"], weights["ctx"])


def test_damaged_and_wrong_files_get_sentences(tmp_path):
    (tmp_path / "noise.bin").write_bytes(bytes(range(7, 71)))
    with pytest.raises(ValueError, match="not a readable weight file"):
        safe_load.load_state_dict(tmp_path / "noise.bin")
    with pytest.raises(IsADirectoryError, match="directory"):
        safe_load.load_state_dict(tmp_path)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a dict of tensors"):
        safe_load.load_state_dict(tmp_path / "list.pt")


def test_load_clip_names_tensors_of_another_architecture(tmp_path):
    torch.save({"visual.conv1.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not hold 'RN50' weights"):
        load_clip("RN50", pretrained=tmp_path / "other.pt")
