"""The reliability table: bad inputs and faults a new user meets, each with the error it must get.

Every row is (what is tried, the exception type expected, a phrase the message must contain). A row whose
exception is ``None`` must work (the right behaviour is to accept the input). Crafted weight files also
check that the payload did not run. The count of rows is quoted in the README; add a row for every bad
input a user reports.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import coop_tutorial as ct
from coop_tutorial import clip_loader, pretrain, quickstart, safe_load
from coop_tutorial.datasets import registry
from coop_tutorial.datasets.base import DatasetLayoutError
from coop_tutorial.validation import UnnormalisedImagesWarning
from coop_tutorial.embedded import judge, report, weights
from _network_guard import no_network  # noqa: F401 (autouse fixture)
from conftest import CLASSNAMES, FakeImages, make_clip
from fake_datasets import make_dtd, write_image

TINY = weights.EMBEDDED_MODELS["tiny"]


@dataclass
class Env:
    """What a trial may use: a small random CLIP, a scratch folder, small datasets."""

    clip: clip_loader.ClipBundle
    tmp: Path

    def data(self, classnames=CLASSNAMES, per_class: int = 2, seed: int = 0) -> FakeImages:
        return FakeImages(classnames, per_class, seed)

    def features(self, classnames=CLASSNAMES, width: Optional[int] = None) -> ct.FeatureSet:
        width = width or self.clip.embed_dim
        labels = torch.arange(len(classnames)).repeat_interleave(2)
        x = torch.nn.functional.normalize(torch.randn(1, len(labels), width, generator=torch.Generator()
                                                      .manual_seed(0)), dim=-1)
        return ct.FeatureSet(x, labels, list(classnames))

    def context(self, csc: bool = False, classnames=CLASSNAMES, clip=None) -> Path:
        learner = ct.PromptLearner(clip or self.clip, classnames, n_ctx=2, csc=csc)
        return ct.save_context(self.tmp / f"ctx_{csc}_{len(classnames)}.safetensors", learner)

    def tiny_copy(self, edit: Callable[[dict, dict, dict], None]) -> Path:
        """A copy of the shipped tiny checkpoint with ``edit(config, state, metadata)`` applied."""
        config, state, meta = weights.read_embedded_checkpoint(TINY)
        edit(config, state, meta)
        path = self.tmp / "tiny_edited.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path),
                  metadata={"config": json.dumps(config), "metadata": json.dumps(meta)})
        return path


def quick(**changes: Any) -> ct.CoOpConfig:
    return ct.CoOpConfig(**{**dict(n_ctx=2, epochs=1, warmup_epochs=0, batch_size=4, n_views=0, progress=False),
                            **changes})


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(env: Env, kind: str) -> Path:
    path = env.tmp / "weights.pt"
    payload = {"weight": torch.zeros(2), "evil": _Payload(env.tmp / "pwned")}
    if kind == "legacy":
        with open(path, "wb") as handle:
            pickle.dump(payload, handle)
        return path
    torch.save(payload, path)
    if kind == "posing":
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(f"{archive.namelist()[0].split('/')[0]}/constants.pkl", pickle.dumps({}))
    return path


def _torchscript_payload(env: Env) -> Path:
    path = env.tmp / "RN50.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("RN50/data.pkl", pickle.dumps(_Payload(env.tmp / "pwned"), protocol=2))
        archive.writestr("RN50/constants.pkl", pickle.dumps(()))
    return path


def _flip_token_ids(config, state, meta):
    state["trained_token_ids"] = state["trained_token_ids"] + 10**6


def _nan_tensor(config, state, meta):
    key = next(k for k, v in state.items() if v.is_floating_point() and k != "token_embedding.compact")
    state[key] = state[key].clone().fill_(float("nan"))


def _truncated_tiny(env: Env) -> Path:
    path = env.tmp / "truncated.safetensors"
    path.write_bytes(TINY.read_bytes()[: 5000])
    return path


def _bad_json_tiny(env: Env) -> Path:
    config, state, meta = weights.read_embedded_checkpoint(TINY)
    path = env.tmp / "badjson.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata={"config": "{not json"})
    return path


def _context_with(env: Env, change: Callable[[torch.Tensor, dict], tuple]) -> Path:
    path = env.context()
    ctx, meta = ct.read_context(path)
    ctx, header = change(ctx, meta)
    save_file({"ctx": ctx.contiguous()}, str(path), metadata={"coop_tutorial": header})
    return path


def _uncsc(ctx, meta):
    meta = dict(meta)
    meta.pop("csc")
    return ctx, json.dumps(meta)


def _edit_then_train(env: Env):
    config = quick()
    config.epochs = 0
    return ct.train_coop(env.clip, env.features(), config=config)


class _ArrayData(FakeImages):
    def __init__(self, dtype):
        super().__init__(CLASSNAMES[:2], 2)
        self.dtype = dtype

    def __getitem__(self, index):
        return self._arrays[index].astype(self.dtype), self.targets[index]


class _NoneData(FakeImages):
    def __getitem__(self, index):
        return None, self.targets[index]


class _Poison:
    def on_train_start(self, learner):
        with torch.no_grad():
            learner.ctx.fill_(float("nan"))


def _stale_split(env: Env):
    make_dtd(env.tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        registry.load_real_dataset("dtd", "train", root=env.tmp)  # generates and saves a split
        for i in range(5):
            write_image(env.tmp / "dtd" / "images" / "bubbly" / f"b{i}.jpg", seed=i)
        return registry.load_real_dataset("dtd", "train", root=env.tmp)


def _cli(main: Callable, *argv: str) -> None:
    """Run a command line; its usage error (SystemExit) carries what it printed to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            raise SystemExit(f"{exc.code}: {err.getvalue()}") from None


def _corrupt_file(env: Env) -> Path:
    path = env.tmp / "corrupt.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    return path


def _images(env: Env, kind: str) -> torch.Tensor:
    shape = (2, 3, env.clip.image_size, env.clip.image_size)
    if kind == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    if kind == "0-255":
        return torch.randint(0, 256, shape).float()
    if kind == "0-1":
        return torch.rand(shape)
    if kind == "nan":
        images = torch.randn(shape)
        images[1, 0, 0, 0] = float("nan")
        return images
    return torch.randn(2, 3, 8, 8)


def _classify(env: Env, kind: str):
    return ct.CoOpClassifier(env.clip, ct.PromptLearner(env.clip, CLASSNAMES, n_ctx=2))(_images(env, kind))


def _nan_rows(env: Env):
    features = env.features()
    features.features[0, 1] = float("nan")
    return ct.evaluate(ct.zero_shot_classifier(env.clip, CLASSNAMES), features)


TRIALS: list[tuple[str, Callable[[Env], Any], Optional[type], str]] = [
    # Loading models: no file runs code; damaged files say so.
    ("load_clip(None)", lambda e: ct.load_clip(None), TypeError, "model name as a string"),
    ("load_clip(50)", lambda e: ct.load_clip(50), TypeError, "model name as a string"),
    ("load_clip pretrained=123", lambda e: ct.load_clip("RN50", pretrained=123), TypeError, "pretrained must be"),
    ("misspelt model name", lambda e: ct.load_clip("RN5O"), ValueError, "Did you mean"),
    ("unknown pretrained tag", lambda e: ct.load_clip("RN50", pretrained="nosuchtag"), ValueError, "Known tags"),
    ("missing embedded checkpoint", lambda e: ct.load_clip("tiny", pretrained=e.tmp / "x.safetensors"),
     FileNotFoundError, "No checkpoint"),
    ("embedded checkpoint is a directory", lambda e: ct.load_clip("tiny", pretrained=e.tmp), IsADirectoryError,
     "is a directory"),
    ("truncated embedded checkpoint", lambda e: ct.load_clip("tiny", pretrained=_truncated_tiny(e)), ValueError,
     "not a readable safetensors file"),
    ("corrupt safetensors", lambda e: ct.load_clip("tiny", pretrained=_corrupt_file(e)), ValueError,
     "not a readable safetensors file"),
    ("embedded header not JSON", lambda e: ct.load_clip("tiny", pretrained=_bad_json_tiny(e)), ValueError,
     "not valid JSON"),
    ("bit-rotted token ids", lambda e: ct.load_clip("tiny", pretrained=e.tiny_copy(_flip_token_ids)), ValueError,
     "token table is damaged"),
    ("NaN tensor in embedded checkpoint", lambda e: ct.load_clip("tiny", pretrained=e.tiny_copy(_nan_tensor)),
     ValueError, "NaN or infinite"),
    ("pickle zip posing as an OpenAI archive", lambda e: ct.load_clip("RN50", pretrained=_crafted(e, "posing")),
     safe_load.UnsafeFileError, "nothing in it ran"),
    ("pickle zip with a payload", lambda e: ct.load_clip("RN50", pretrained=_crafted(e, "zip")),
     safe_load.UnsafeFileError, "nothing in it ran"),
    ("legacy pickle with a payload", lambda e: ct.load_clip("RN50", pretrained=_crafted(e, "legacy")),
     safe_load.UnsafeFileError, "nothing in it ran"),
    ("TorchScript archive with a payload", lambda e: ct.load_clip("RN50", pretrained=_torchscript_payload(e)),
     safe_load.UnsafeFileError, "nothing in it ran"),
    ("random bytes as weights", lambda e: safe_load.load_state_dict(_write(e.tmp / "w.bin", bytes(range(7, 106)))),
     ValueError, "not a readable weight file"),
    ("weights of another architecture", lambda e: ct.load_clip("RN50", pretrained=_save(e.tmp / "o.pt", {
        "visual.conv1.weight": torch.zeros(3)})), ValueError, "does not hold 'RN50' weights"),
    # Images.
    ("uint8 images", lambda e: _classify(e, "uint8"), ValueError, "raw pixel values"),
    ("0-255 float images", lambda e: _classify(e, "0-255"), ValueError, "0-255 pixel values"),
    ("[0, 1] images without Normalize", lambda e: _classify(e, "0-1"), UnnormalisedImagesWarning,
     "normalised"),
    ("NaN in an image", lambda e: _classify(e, "nan"), ValueError, "Image 1 of the batch holds NaN"),
    ("images of the wrong size", lambda e: _classify(e, "small"), ValueError, "Expected preprocessed images"),
    ("dataset yields uint8 NumPy arrays", lambda e: ct.encode_dataset(e.clip, _ArrayData(np.uint8),
                                                                      progress=False), None, ""),
    ("dataset yields float NumPy arrays", lambda e: ct.encode_dataset(e.clip, _ArrayData(np.float64),
                                                                      progress=False), ValueError, "NumPy array"),
    ("dataset yields None", lambda e: ct.encode_dataset(e.clip, _NoneData(CLASSNAMES, 1), progress=False),
     ValueError, "not an image"),
    ("encoding an empty dataset", lambda e: ct.encode_dataset(e.clip, e.data(per_class=0), progress=False),
     ValueError, "empty"),
    # Features and class names between classifier, data and checkpoint.
    ("NaN feature rows in evaluate", _nan_rows, ValueError, "1 row(s) hold NaN"),
    ("features of another width in evaluate", lambda e: ct.evaluate(
        ct.zero_shot_classifier(e.clip, CLASSNAMES), e.features(width=e.clip.embed_dim + 4)), ValueError,
     "encoded by another model"),
    ("classifier evaluated on another task", lambda e: ct.evaluate(
        ct.zero_shot_classifier(e.clip, CLASSNAMES), e.features(["cat", "dog"])), ValueError, "Class names disagree"),
    ("same classes, another order", lambda e: ct.evaluate(
        ct.zero_shot_classifier(e.clip, CLASSNAMES), e.features(CLASSNAMES[::-1])), ValueError, "another order"),
    ("class names differing by '_' and case are the same", lambda e: ct.evaluate(
        ct.zero_shot_classifier(e.clip, CLASSNAMES), e.features([c.replace(" ", "_").upper() for c in CLASSNAMES])),
     None, ""),
    ("train_coop with val_set of another task", lambda e: ct.train_coop(
        e.clip, e.features(), e.features(["cat", "dog"]), config=quick()), ValueError, "Class names disagree"),
    ("train_coop on features of another width", lambda e: ct.train_coop(
        e.clip, e.features(width=e.clip.embed_dim * 2), config=quick()), ValueError, "encoded by another model"),
    ("train_coop on an empty dataset", lambda e: ct.train_coop(e.clip, e.data(per_class=0), config=quick()),
     ValueError, "empty"),
    ("a NaN loss", lambda e: ct.train_coop(e.clip, e.features(), config=quick(), callbacks=[_Poison()]),
     RuntimeError, "lower learning rate"),
    ("duplicate names: composed and decomposed e-acute", lambda e: ct.PromptLearner(
        e.clip, ["caf\u00e9", "cafe\u0301"], n_ctx=2), ValueError, "Duplicate class name"),
    ("duplicate names: HTML entity", lambda e: ct.PromptLearner(e.clip, ["a&amp;b", "a&b"], n_ctx=2), ValueError,
     "Duplicate class name"),
    ("duplicate names: underscore and space", lambda e: ct.PromptLearner(e.clip, ["red_fox", "red fox"], n_ctx=2),
     ValueError, "Duplicate class name"),
    ("class names given as one string", lambda e: ct.PromptLearner(e.clip, "cat", n_ctx=2), ValueError,
     "list of strings"),
    ("no class names", lambda e: ct.PromptLearner(e.clip, [], n_ctx=2), ValueError, "empty"),
    # Configs, including one changed after construction.
    ("lr=1e300", lambda e: quick(lr=1e300), ValueError, "at most 100"),
    ("lr=NaN", lambda e: quick(lr=float("nan")), ValueError, "finite"),
    ("lr=0", lambda e: quick(lr=0.0), ValueError, "finite number >"),
    ("seed=2**70", lambda e: quick(seed=2**70), ValueError, "seed must be"),
    ("seed=-1", lambda e: quick(seed=-1), ValueError, "seed must be"),
    ("epochs=0", lambda e: quick(epochs=0), ValueError, "epochs must be"),
    ("epochs set to 0 after construction", _edit_then_train, ValueError, "epochs must be"),
    ("unknown optimizer", lambda e: quick(optimizer="adamw"), ValueError, "one of 'sgd', 'adam'"),
    ("warm-up as long as training", lambda e: quick(epochs=2, warmup_epochs=2), ValueError, "smaller than epochs"),
    ("n_ctx as a float", lambda e: quick(n_ctx=4.0), ValueError, "n_ctx must be an integer"),
    ("shots=0", lambda e: ct.few_shot_split(e.data(), 0), ValueError, "shots must be an integer >= 1"),
    ("more shots than images (strict)", lambda e: ct.few_shot_split(e.data(per_class=2), 5, strict=True),
     ValueError, "Ask for fewer shots"),
    # Saved contexts.
    ("context with NaN ctx", lambda e: ct.load_context(_context_with(
        e, lambda c, m: (c.fill_(float("nan")), json.dumps(m))), e.clip), ValueError, "NaN or infinite"),
    ("context metadata without csc", lambda e: ct.load_context(_context_with(e, _uncsc), e.clip), ValueError,
     "lacks ['csc']"),
    ("context metadata not JSON", lambda e: ct.load_context(_context_with(e, lambda c, m: (c, "{oops")), e.clip),
     ValueError, "not valid JSON"),
    ("directory as a context path", lambda e: ct.load_context(e.tmp, e.clip), IsADirectoryError, "is a directory"),
    ("missing context file", lambda e: ct.load_context(e.tmp / "none.safetensors", e.clip), FileNotFoundError,
     "No context"),
    ("pickle as a context", lambda e: ct.load_context(_crafted(e, "zip"), e.clip), ValueError,
     "not a readable safetensors file"),
    ("csc context, same classes in another order", lambda e: ct.load_context(
        e.context(csc=True), e.clip, CLASSNAMES[::-1]), ValueError, "another order"),
    ("csc context for other classes", lambda e: ct.load_context(e.context(csc=True), e.clip, ["cat", "dog"]),
     ValueError, "only loads for the classes"),
    ("context onto other weights of the same architecture", lambda e: ct.load_context(
        e.context(), make_clip(32, seed=7, name=e.clip.name)), ValueError, "allow_other_weights"),
    ("context onto a model of another width", lambda e: ct.load_context(
        e.context(), make_clip(32, width=32, name=e.clip.name)), ValueError, "width"),
    ("unified context for new classes", lambda e: ct.load_context(e.context(), e.clip, ["cat", "dog"]), None, ""),
    # Datasets.
    ("generated split kept after a class folder was added", _stale_split, DatasetLayoutError,
     "Delete"),
    # Command lines: arguments checked before any work.
    ("pretrain --steps 0", lambda e: _cli(pretrain.main, "--steps", "0"), SystemExit, "steps"),
    ("pretrain --steps -1", lambda e: _cli(pretrain.main, "--steps", "-1"), SystemExit, "steps"),
    ("pretrain --batch-size 0", lambda e: _cli(pretrain.main, "--batch-size", "0"), SystemExit, "batch-size"),
    ("pretrain --out a directory", lambda e: _cli(pretrain.main, "--out", str(e.tmp)), SystemExit,
     "is a directory"),
    ("pretrain --snapshot-every not under --steps", lambda e: _cli(pretrain.main, "--steps", "4", "--snapshot-every",
                                                                   "4"), SystemExit, "no snapshot would be written"),
    ("pretrain --out without .safetensors", lambda e: _cli(pretrain.main, "--out", str(e.tmp / "weights.pt")),
     SystemExit, "must end in .safetensors"),
    ("judge a shifted set as a source", lambda e: _cli(judge.main, "--tasks", "shapes_sketch"), SystemExit,
     "read with --shifts on its source"),
    ("pretrain --resave a corrupt file", lambda e: _cli(pretrain.main, "--resave", str(_corrupt_file(e)), "--out",
                                                       str(e.tmp / "o.safetensors")), SystemExit,
     "not a readable safetensors"),
    ("quickstart --shots 0", lambda e: _cli(quickstart.main, "--shots", "0"), SystemExit, "--shots must be"),
    ("quickstart --pretrained a corrupt file", lambda e: _cli(quickstart.main, "--pretrained",
                                                             str(_corrupt_file(e))), SystemExit,
     "not a readable safetensors"),
    ("report --seeds -1", lambda e: _cli(report.main, "--seeds", "-1"), SystemExit, "--seeds must be"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, obj: Any) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.filterwarnings("ignore::coop_tutorial.datasets.splits.GeneratedSplitWarning")
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("what, run, error, phrase", TRIALS, ids=[t[0] for t in TRIALS])
def test_bad_input_gets_a_clear_error(what, run, error, phrase, clip32, tmp_path):
    env = Env(clip32, tmp_path)
    if error is None:
        run(env)
    elif issubclass(error, Warning):
        with pytest.warns(error, match=phrase):
            run(env)
    else:
        with pytest.raises(error) as caught:
            run(env)
        assert phrase in str(caught.value), f"{what}: message lacks {phrase!r}: {caught.value}"
    assert not (tmp_path / "pwned").exists(), f"{what}: a payload in the file ran"


def test_the_table_is_as_large_as_the_readme_says():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"{len(TRIALS)} bad inputs" in readme
