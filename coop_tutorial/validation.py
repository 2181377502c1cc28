"""Checks at the package's boundaries: wrong data stops with a sentence instead of becoming a number.

Every place where images, features, class names or seeds enter the package calls one of these, once, so that a
uint8 image, a NaN feature row or a classifier evaluated on another task's data is named where it happens
(and what to do about it) rather than turned silently into an accuracy.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from ._text import classname_key

MAX_SEED = 2**32 - 1  # what NumPy's legacy seeding and most tools accept; torch takes it too


class UnnormalisedImagesWarning(UserWarning):
    """Images look like raw [0, 1] pixels: CLIP expects them normalised with its mean and std."""


def check_images(images: torch.Tensor, image_size: int) -> None:
    """Raise a ValueError unless ``images`` is a finite float ``(B, 3, image_size, image_size)`` tensor that looks
    normalised; warn when it looks like raw [0, 1] pixels (``ToTensor`` without ``Normalize``)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3 \
            or tuple(images.shape[-2:]) != (image_size, image_size):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"Expected preprocessed images of shape (B, 3, {image_size}, {image_size}), got {shape}. "
                         f"Pass raw images through clip.preprocess (or the dataset's transform=clip.preprocess) "
                         f"first.")
    if not torch.is_floating_point(images):
        raise ValueError(f"Images are {images.dtype} tensors (raw pixel values?); CLIP needs float images scaled "
                         f"and normalised by clip.preprocess. Give the dataset transform=clip.preprocess, or return "
                         f"PIL images and let the package preprocess them.")
    if images.numel() == 0:
        return
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(1).nonzero()[0])
        raise ValueError(f"Image {bad} of the batch holds NaN or infinite values; check the dataset's transform "
                         f"and the image files.")
    low, high = float(images.min()), float(images.max())
    if high > 20 or low < -20:
        raise ValueError(f"Image values run from {low:g} to {high:g}: these look like 0-255 pixel values, not "
                         f"normalised images (a few units around 0). Preprocess with clip.preprocess (ToTensor "
                         f"then Normalize with CLIP's mean and std).")
    if low >= 0.0 and high <= 1.0 and high - low > 0.5:
        warnings.warn(f"Images lie in [{low:.2f}, {high:.2f}], like raw [0, 1] pixels: CLIP expects them normalised "
                      f"with its mean and std (clip.preprocess does both); accuracy will be far off otherwise.",
                      UnnormalisedImagesWarning, stacklevel=3)


def check_features(features: torch.Tensor, width: Optional[int] = None, what: str = "features") -> None:
    """Raise unless ``features`` is a finite float ``(N, width)`` tensor, naming the first bad row."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{what} must be an (N, D) tensor of image features, got {shape}.")
    if width is not None and features.shape[1] != width:
        raise ValueError(f"{what} are {features.shape[1]}-dimensional but the model's embedding is {width}-"
                         f"dimensional: they were encoded by another model. Encode the data with this CLIP.")
    if features.numel() and not torch.isfinite(features).all():
        rows = (~torch.isfinite(features)).any(dim=1).nonzero().flatten()
        raise ValueError(f"{what}: {len(rows)} row(s) hold NaN or infinite values (first: row {int(rows[0])}); "
                         f"such rows would be counted as class 0. Re-encode them, or drop those images.")


def check_same_classes(expected: Optional[Sequence[str]], given: Optional[Sequence[str]], expected_what: str,
                       given_what: str, remedy: str) -> None:
    """Raise when two class lists (e.g. a classifier's and a test set's) both exist and differ, saying how."""
    if expected is None or given is None:
        return
    expected, given = [str(c) for c in expected], [str(c) for c in given]
    if [classname_key(c) for c in expected] == [classname_key(c) for c in given]:
        return  # "golden_retriever" and "Golden retriever" make the same prompt
    if sorted(expected) == sorted(given):
        first = next(i for i, (a, b) in enumerate(zip(expected, given)) if a != b)
        detail = (f"the same {len(given)} classes in another order (label {first} is {expected[first]!r} for "
                  f"{expected_what}, {given[first]!r} for {given_what})")
    else:
        missing = [c for c in given if c not in set(expected)]
        extra = [c for c in expected if c not in set(given)]
        detail = (f"{len(expected)} classes for {expected_what}, {len(given)} for {given_what}"
                  + (f"; {given_what} has {missing[:3]} that {expected_what} lacks" if missing else "")
                  + (f"; {expected_what} has {extra[:3]} that {given_what} lacks" if extra else ""))
    raise ValueError(f"Class names disagree: {detail}. {remedy}")


def check_seed(seed: Any, what: str = "seed") -> int:
    """An integer seed in [0, 2**32 - 1], or a ValueError (larger seeds overflow NumPy's and torch's generators)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} must be an integer in [0, {MAX_SEED}], got {seed!r}.")
    return int(seed)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """For command-line and function arguments: an integer >= ``minimum`` or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_finite(state: dict, path: Union[str, Path]) -> None:
    """Refuse weights holding NaN or infinity, naming the tensors: such a model predicts one class everywhere."""
    bad = [k for k, v in state.items() if torch.is_floating_point(v) and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: {len(bad)} tensor(s) hold NaN or infinite values ({', '.join(bad[:3])}); the "
                         f"file is damaged. Download or recreate it.")
