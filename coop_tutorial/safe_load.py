"""One loading policy for every weight file the package reads: no file may run code.

A pickle can call any Python function while it is read, so a weight file handed to a user is a program unless
it is read by a reader that cannot call anything. Three formats are accepted, each read without executing code:

- **safetensors**: raw tensors and a JSON header.
- **PyTorch pickles** (``torch.save`` state dicts, official CoOp ``model.pth.tar-N``): ``torch.load`` with
  ``weights_only=True``, whose unpickler only rebuilds tensors and plain containers.
- **TorchScript archives** (how OpenAI ships CLIP, e.g. ``~/.cache/clip/RN50.pt``): ``torch.jit.load`` and
  ``torch.load(weights_only=False)`` would unpickle them fully, so their ``data.pkl`` is read here by a
  restricted unpickler that knows tensors, storages, ``OrderedDict`` and TorchScript module records, and
  refuses every other global. The archive's code is never compiled or run.

Anything else is refused with the way to convert it, as a step the user takes knowingly.
"""
from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Union

import torch

PathLike = Union[str, Path]

# storage class names in TorchScript/legacy pickles -> dtype
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}

CONVERT_HINT = (
    "If you trust where the file comes from, convert it once to safetensors yourself, knowing that reading a pickle "
    "runs whatever code it holds:\n"
    "    python -c \"import torch, safetensors.torch as st; sd = torch.load('IN', weights_only=False); "
    "sd = sd.state_dict() if hasattr(sd, 'state_dict') else sd; "
    "st.save_file({k: v.contiguous() for k, v in sd.items()}, 'OUT.safetensors')\"\n"
    "then pass the .safetensors file instead.")


class UnsafeFileError(ValueError):
    """A file could only be read by running code it contains; it was refused, nothing of it was executed."""


def is_safetensors(path: PathLike) -> bool:
    """True when the file starts like a safetensors file (an 8-byte header length, then a JSON object)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    return int.from_bytes(head[:8], "little") > 0 and head[8:9] == b"{"


def is_torchscript_archive(path: PathLike) -> bool:
    """True for a zip holding a TorchScript ``data.pkl`` beside a ``constants.pkl`` (OpenAI's CLIP format).

    Only tells which reader to try: that reader is as safe as the others, so a file that merely looks like an
    archive gains nothing.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names)


def load_state_dict(path: PathLike) -> "OrderedDict[str, torch.Tensor]":
    """Every tensor of a weight file under its dotted name, read without executing anything in the file.

    A ``torch.save``d dict that wraps its weights (``{"state_dict": ...}``, ``{"model": ...}``) is unwrapped.
    Raises :class:`UnsafeFileError` for a file that could only be read by unpickling arbitrary objects.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; pass the weight file inside it.")
    if not path.exists():
        raise FileNotFoundError(f"No weight file at {path}.")
    if is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return OrderedDict(load_file(str(path)))
        except SafetensorError as exc:
            raise ValueError(f"{path} is a damaged safetensors file ({exc}); download or copy it again.") from exc
    if is_torchscript_archive(path):
        return read_torchscript_tensors(path)
    try:
        loaded = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_like_pickle(path):
            raise ValueError(f"{path} is not a readable weight file; expected safetensors, a torch.save'd state "
                             f"dict or an OpenAI TorchScript archive.") from exc
        raise UnsafeFileError(
            f"{path} is a pickle that holds more than tensors ({_why_refused(exc)}); it was refused and nothing "
            f"in it ran. {CONVERT_HINT}") from exc
    except Exception as exc:  # noqa: BLE001 - the weights-only unpickler runs no code; random bytes fail in many ways
        raise ValueError(f"{path} is not a readable weight file ({type(exc).__name__}: {str(exc)[:200]}); "
                         f"expected safetensors, a torch.save'd state dict or an OpenAI TorchScript archive.") from exc
    return _tensor_dict(loaded, path)


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(2)
    return zipfile.is_zipfile(path) or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _why_refused(exc: Exception) -> str:
    """The one useful line of torch's weights-only refusal (which global the file wanted to call)."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        return text.split(marker, 1)[1].strip().splitlines()[0][:200]
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _tensor_dict(loaded: Any, path: Path) -> "OrderedDict[str, torch.Tensor]":
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{path} holds {type(loaded).__name__}, not a dict of tensors (a state dict).")
    tensors = OrderedDict((str(k), v) for k, v in loaded.items() if isinstance(v, torch.Tensor))
    if not tensors:
        raise ValueError(f"{path} holds a dict without tensors; it is not a state dict.")
    return tensors


class _ScriptObject:
    """Stands in for a TorchScript module record (``__torch__.*``): keeps its attributes, has no behaviour."""

    def __init__(self, *args: Any) -> None:
        self.state: dict = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *_ignored) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _rebuild_parameter(data: torch.Tensor, *_ignored) -> torch.Tensor:
    return data


class _RestrictedUnpickler(pickle.Unpickler):
    """Reads a TorchScript ``data.pkl``: tensors from the archive's ``data/`` entries, module records as dicts."""

    _ALLOWED = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): OrderedDict,
    }

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix = archive, prefix
        self._storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a weight file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 4 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        dtype, key = pid[1], str(pid[2])
        if not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unknown storage type {dtype!r:.80}")
        if key not in self._storages:
            raw = bytearray(self._archive.read(f"{self._prefix}data/{key}"))
            flat = torch.frombuffer(raw, dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
            self._storages[key] = flat.view(dtype) if len(raw) else torch.empty(0, dtype=dtype)
        return self._storages[key]


def read_torchscript_tensors(path: PathLike) -> "OrderedDict[str, torch.Tensor]":
    """The tensors of a TorchScript archive's module tree, by dotted attribute name, without running its code."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        data_name = next((n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")), None)
        if data_name is None:
            raise ValueError(f"{path} looks like a TorchScript archive but has no data.pkl.")
        prefix = data_name[: -len("data.pkl")]
        with archive.open(data_name) as handle:
            try:
                root = _RestrictedUnpickler(handle, archive, prefix).load()
            except (pickle.UnpicklingError, KeyError, ValueError, TypeError, AttributeError, EOFError) as exc:
                raise UnsafeFileError(
                    f"{path} is not a plain TorchScript weight archive ({exc}); it was refused and nothing in it "
                    f"ran. {CONVERT_HINT}") from exc
    tensors: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    _collect(root, "", tensors)
    if not tensors:
        raise ValueError(f"{path} is a TorchScript archive without weights.")
    return OrderedDict((k, v.clone()) for k, v in tensors.items())


def _collect(node: Any, prefix: str, out: dict) -> None:
    items = node.state.items() if isinstance(node, _ScriptObject) else node.items() if isinstance(node, dict) else ()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, (_ScriptObject, dict)):
            _collect(value, name + ".", out)
