"""Encode a dataset's images once and keep the features.

CLIP's image encoder is frozen in CoOp, so the feature of a given image (or of a given *augmented* image)
never changes during training. The official loop still re-encodes every image at every step; we encode
once. To keep the paper's augmentation (random resized crop + flip) we encode ``n_views`` augmented views of
each image up front and let training pick a view per image per epoch.

Augmentations are seeded per image (from ``seed`` and the image index), so features do not depend on batch
size, worker count or anything run before; the global RNG is left untouched.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ._io import atomic_path
from .validation import check_images
from .clip_loader import ClipBundle, weights_fingerprint


@dataclass
class FeatureSet:
    """L2-normalised image features of a dataset, with labels.

    Attributes:
        features: ``(n_views, n_images, embed_dim)`` float32; ``n_views == 1`` for the eval transform.
        labels: ``(n_images,)`` int64 class indices.
        classnames: the dataset's class names (label order), or None if it had none.
        meta: how the features were made (model, transform, views, seed).
    """

    features: torch.Tensor
    labels: torch.Tensor
    classnames: Optional[list[str]] = None
    meta: dict = field(default_factory=dict)

    @property
    def n_views(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_images(self) -> int:
        return int(self.features.shape[1])

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def __len__(self) -> int:
        return self.n_images

    def view(self, index: int = 0) -> torch.Tensor:
        """Features ``(n_images, embed_dim)`` of one view."""
        return self.features[index]

    def subset(self, indices: Sequence[int]) -> "FeatureSet":
        """The features of some images (e.g. a few-shot split's ``.indices``), all views kept."""
        index = torch.as_tensor(list(indices), dtype=torch.long)
        return FeatureSet(self.features[:, index], self.labels[index], self.classnames,
                          {**self.meta, "subset": len(index)})

    def flat(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All views stacked: features ``(n_views * n_images, embed_dim)`` and matching labels."""
        return self.features.reshape(-1, self.features.shape[-1]), self.labels.repeat(self.n_views)


def encode_dataset(clip: ClipBundle, dataset: Dataset, augment: bool = False, n_views: int = 1, seed: int = 0,
                   batch_size: int = 64, cache_dir: Optional[Union[str, Path]] = None, name: Optional[str] = None,
                   num_workers: int = 0, progress: bool = True) -> FeatureSet:
    """Image features of every item of ``dataset``.

    Args:
        clip: the frozen CLIP.
        dataset: yields ``(PIL image, label)`` (or ``(preprocessed tensor, label)`` when ``augment=False``).
        augment: ``False``: one view with the eval transform. ``True``: ``n_views`` views with the train
            transform (random resized crop + flip), seeded per image.
        n_views: number of augmented views per image (must be 1 without ``augment``).
        seed: seeds the augmentations.
        batch_size: images per encoder call.
        cache_dir: if given, features are stored there as safetensors and reused when the model, dataset
            ``name``, transform, views and seed match (and the labels are the same).
        name: identifies the dataset in the cache key (required with ``cache_dir``), e.g. ``"shapes/train"``.
        num_workers: DataLoader workers for loading and transforming images.
        progress: show a tqdm progress bar.
    """
    if isinstance(n_views, bool) or not isinstance(n_views, int) or n_views < 1:
        raise ValueError(f"n_views must be an integer >= 1, got {n_views!r}.")
    if len(dataset) == 0:
        raise ValueError("The dataset is empty: nothing to encode. Check the split and the data folder (or the "
                         "few-shot split's shots).")
    if not augment and n_views != 1:
        raise ValueError(f"n_views={n_views} needs augment=True: the eval transform is deterministic, so extra "
                         f"views would be identical.")
    meta = {"model": clip.name, "pretrained": str(clip.pretrained), "transform": "train" if augment else "eval",
            "n_views": n_views, "seed": seed if augment else None, "image_size": clip.image_size}
    path = None
    if cache_dir is not None:
        if not name:
            raise ValueError("encode_dataset(cache_dir=...) needs name=... to tell datasets apart in the cache, "
                             "e.g. name='shapes/train'.")
        path = Path(cache_dir) / _cache_name(clip, name, meta)
        cached = _read_cache(path, dataset)
        if cached is not None:
            cached.classnames = getattr(dataset, "classnames", None)
            return cached

    views = AugmentedViews(dataset, clip.train_preprocess if augment else clip.preprocess, n_views,
                           (seed,) if augment else None)
    features, labels = _encode_views(clip, views, batch_size, num_workers,
                                     f"encoding {name or 'images'} ({meta['transform']})", progress)
    result = FeatureSet(features, labels, _classnames(dataset), meta)
    check_labels(result.labels, result.classnames)
    if path is not None:
        _write_cache(path, result)
    return result


def _encode_views(clip: ClipBundle, views: "AugmentedViews", batch_size: int, num_workers: int, desc: str,
                  progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n_views, n_images, embed_dim)`` normalised features and ``(n_images,)`` labels of every item of ``views``."""
    # A private generator: otherwise the DataLoader draws its worker base seed from the global RNG.
    loader = DataLoader(views, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        generator=torch.Generator())
    model = clip.model
    device = model.logit_scale.device
    chunks, labels = [], []
    with torch.no_grad():
        for images, batch_labels in tqdm(loader, desc=desc, disable=not progress, leave=False):
            b, n_views = images.shape[:2]
            images = images.reshape(b * n_views, *images.shape[2:])  # (B * V, 3, S, S)
            check_images(images, clip.image_size)
            feats = model.encode_image(_pad_rows(images, batch_size * n_views).to(device=device, dtype=clip.dtype))
            feats = feats[:b * n_views]
            chunks.append(F.normalize(feats.float(), dim=-1).reshape(b, n_views, -1).cpu())
            labels.append(torch.as_tensor(batch_labels, dtype=torch.long))
    if not chunks:
        return torch.zeros(views.n_views, 0, clip.embed_dim), torch.zeros(0, dtype=torch.long)
    return torch.cat(chunks).transpose(0, 1).contiguous(), torch.cat(labels)  # (V, N, D), (N,)


def _images_meta(clip: ClipBundle, indices: Sequence[int], augment: bool, n_views: int, seed: int) -> dict:
    return {"model": clip.name, "pretrained": str(clip.pretrained), "transform": "train" if augment else "eval",
            "n_views": n_views, "seed": seed if augment else None, "image_size": clip.image_size,
            "images": hashlib.sha1(json.dumps([int(i) for i in indices]).encode()).hexdigest()[:16],
            "subset": len(indices)}


def images_cache_path(clip: ClipBundle, indices: Sequence[int], cache_dir: Union[str, Path], name: str,
                      augment: bool = False, n_views: int = 1, seed: int = 0) -> Path:
    """The file ``encode_images`` keeps these images' features in: one per (model weights, ``name``, transform,
    views, seed, images)."""
    return Path(cache_dir) / _cache_name(clip, name, _images_meta(clip, indices, augment, n_views, seed))


def read_images_cache(path: Path, dataset: Dataset, indices: Sequence[int]) -> Optional[FeatureSet]:
    """The cached features of ``indices``, or None when absent or written for other labels (another dataset)."""
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {}).get("meta", "{}"))
        features, labels = handle.get_tensor("features"), handle.get_tensor("labels")
    targets = getattr(dataset, "targets", None)
    if labels.numel() != len(indices) or (targets is not None and labels.tolist() != [int(targets[i]) for i in indices]):
        return None
    return FeatureSet(features, labels, _classnames(dataset), meta)


def write_images_cache(path: Path, features: FeatureSet) -> None:
    _write_cache(path, features)


def _pad_rows(images: torch.Tensor, rows: int) -> torch.Tensor:
    """``images`` padded to ``rows`` with copies of its last image. The encoders' kernels give an image results that
    depend on the batch *size* (by about 1e-5 on CPU), never on the other images in it: padding every batch to the
    same size makes an image's features the same however many images a call encodes (a few-shot draw, a whole
    split), which the linear probe's regularisation search is sensitive enough to need."""
    if images.shape[0] >= rows:
        return images
    return torch.cat([images, images[-1:].expand(rows - images.shape[0], *images.shape[1:])])


def encode_images(clip: ClipBundle, dataset: Dataset, indices: Sequence[int], augment: bool = False,
                  n_views: int = 1, seed: int = 0, batch_size: int = 64,
                  cache_dir: Optional[Union[str, Path]] = None, name: Optional[str] = None,
                  progress: bool = False) -> FeatureSet:
    """Features of the items ``indices`` of ``dataset`` only (e.g. a few-shot draw), in that order.

    A view of item ``i`` is seeded by ``(seed, i)`` with ``i`` the index in ``dataset``, so an image's features
    are the same whether it is encoded here, with other images, or by ``encode_dataset`` with the whole split.
    With ``cache_dir`` (and ``name``, e.g. ``"imagenet-train"``) the features are kept in one file per
    (model weights, ``name``, transform, views, seed, ``indices``), so another notebook drawing the same images
    reads them instead of encoding them again.
    """
    indices = [int(i) for i in indices]
    if not augment and n_views != 1:
        raise ValueError(f"n_views={n_views} needs augment=True: the eval transform is deterministic.")
    path = None
    if cache_dir is not None:
        if not name:
            raise ValueError("encode_images(cache_dir=...) needs name=... to tell datasets apart in the cache.")
        path = images_cache_path(clip, indices, cache_dir, name, augment, n_views, seed)
        cached = read_images_cache(path, dataset, indices)
        if cached is not None:
            return cached
    views = AugmentedViews(dataset, clip.train_preprocess if augment else clip.preprocess, n_views,
                           (seed,) if augment else None, indices=indices)
    features, labels = _encode_views(clip, views, batch_size, 0,
                                     f"encoding {name or 'images'} ({'train' if augment else 'eval'})", progress)
    result = FeatureSet(features, labels, _classnames(dataset), _images_meta(clip, indices, augment, n_views, seed))
    check_labels(result.labels, result.classnames)
    if path is not None:
        _write_cache(path, result)
    return result


def _classnames(dataset) -> Optional[list[str]]:
    names = getattr(dataset, "classnames", None)
    return list(names) if names is not None else None


def check_labels(labels: torch.Tensor, classnames: Optional[Sequence[str]]) -> None:
    if classnames is None or labels.numel() == 0:
        return
    bad = (labels < 0) | (labels >= len(classnames))
    if bad.any():
        raise ValueError(f"Labels out of range: found label {int(labels[bad][0])} but the dataset has "
                         f"{len(classnames)} class names (valid labels 0..{len(classnames) - 1}). Check that "
                         f"classnames and labels come from the same dataset.")


class AugmentedViews(Dataset):
    """Item ``i`` -> (``(n_views, 3, S, S)`` transformed views, label).

    With ``seed_key`` (a tuple of ints) the transform is random but seeded by ``(*seed_key, i)``, so a view
    depends on nothing but the key and the index; without it the (deterministic) transform is applied once.
    """

    def __init__(self, dataset: Dataset, transform, n_views: int = 1, seed_key: Optional[tuple[int, ...]] = None,
                 indices: Optional[Sequence[int]] = None):
        self.dataset, self.transform, self.n_views, self.seed_key = dataset, transform, n_views, seed_key
        self.indices = list(indices) if indices is not None else None  # item i is dataset[indices[i]]

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.dataset)

    def __getitem__(self, position: int):
        index = self.indices[position] if self.indices is not None else position
        image, label = self.dataset[index]
        image = as_image(image, index)
        if isinstance(image, torch.Tensor):
            if self.seed_key is not None:
                raise ValueError("Augmented views need raw (PIL) images, but the dataset returns tensors; load it "
                                 "without a transform (transform=None) so the train transform can be applied.")
            return image.unsqueeze(0), int(label)
        if self.seed_key is None:
            return self.transform(image).unsqueeze(0), int(label)
        with torch.random.fork_rng(devices=[]):  # seed torchvision's random transforms, restore the global RNG
            torch.manual_seed(image_seed(*self.seed_key, index))
            views = [self.transform(image) for _ in range(self.n_views)]
        return torch.stack(views), int(label)


def as_image(image: Any, index: int) -> Any:
    """A dataset item's image as a PIL image or tensor: an ``(H, W, 3)`` uint8 array (what NumPy- and OpenCV-based
    datasets yield) becomes the PIL image it stands for; any other array is refused with what to return instead."""
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))):
            from PIL import Image

            return Image.fromarray(image.squeeze(2) if image.ndim == 3 and image.shape[2] == 1 else image)
        raise ValueError(f"Item {index} of the dataset is a NumPy array of shape {image.shape} and dtype "
                         f"{image.dtype}; return PIL images (Image.fromarray of an (H, W, 3) uint8 array) or tensors "
                         f"already made by clip.preprocess.")
    if image is None or not (isinstance(image, torch.Tensor) or hasattr(image, "convert")):
        raise ValueError(f"Item {index} of the dataset holds a {type(image).__name__}, not an image; the dataset must "
                         f"yield (PIL image, label) pairs (or (preprocessed tensor, label)).")
    return image


def image_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys, e.g. ``(run seed, image index)``."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def _cache_name(clip: ClipBundle, name: str, meta: dict[str, Any]) -> str:
    key = json.dumps({**meta, "name": name, "weights": weights_fingerprint(clip)}, sort_keys=True)
    readable = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{clip.name}_{name}_{meta['transform']}")
    return f"{readable}_{hashlib.sha1(key.encode()).hexdigest()[:12]}.safetensors"


def _read_cache(path: Path, dataset: Dataset) -> Optional[FeatureSet]:
    if not path.exists():
        return None
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads((handle.metadata() or {}).get("meta", "{}"))
        features, labels = handle.get_tensor("features"), handle.get_tensor("labels")
    # Same name but another dataset (size or labels differ): recompute rather than trust the file.
    if labels.numel() != len(dataset):
        return None
    targets = getattr(dataset, "targets", None)
    if targets is not None and labels.tolist() != [int(t) for t in targets]:
        return None
    return FeatureSet(features, labels, None, meta)


def _write_cache(path: Path, result: FeatureSet) -> None:
    with atomic_path(path) as tmp:
        save_file({"features": result.features, "labels": result.labels}, str(tmp),
                  metadata={"meta": json.dumps(result.meta)})
