"""The official few-shot draws, checked against our own transcription of the official code's loop.

``dassl_fewshot`` below is written from reading Dassl's ``DatasetBase.generate_fewshot_dataset`` and
``dassl.utils.set_random_seed`` (KaiyangZhou/Dassl.pytorch): items grouped by label in a dict (insertion order),
``random.sample`` when a class has enough items, ``random.choices`` (repeat) otherwise; the global generators are
seeded once, then train is drawn, then val with ``min(K, 4)``.
"""
from __future__ import annotations

import random
import warnings
from collections import Counter, defaultdict, namedtuple

import numpy as np
import pytest
import torch

import coop_tutorial as ct
from coop_tutorial.datasets.base import ImageListDataset
from coop_tutorial.few_shot import draw_method, official_few_shot_splits

Datum = namedtuple("Datum", "impath label classname")
NAMES = ["abbey", "bakery", "canyon", "dock", "elevator", "field"]


def set_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def dassl_fewshot(data_source: list, num_shots: int) -> list:
    tracker = defaultdict(list)
    for item in data_source:
        tracker[item.label].append(item)
    dataset = []
    for label, items in tracker.items():
        if len(items) >= num_shots:
            dataset.extend(random.sample(items, num_shots))
        else:
            dataset.extend(random.choices(items, k=num_shots))
    return dataset


def fake_split(split: str, per_class: list[int], seed: int) -> list:
    """A split json's items: shuffled across classes, as split_zhou files list them (not sorted by label)."""
    items = [Datum(f"{NAMES[c]}/{split}_{i:03d}.jpg", c, NAMES[c]) for c, n in enumerate(per_class) for i in range(n)]
    random.Random(seed).shuffle(items)
    return items


def as_dataset(items: list, split: str) -> ImageListDataset:
    return ImageListDataset([(d.impath, d.label) for d in items], NAMES, name="fake", split=split)


@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_official_draw_matches_the_transcribed_loop(shots, seed):
    train_items = fake_split("train", [30, 25, 40, 18, 22, 35], seed=7)
    val_items = fake_split("val", [9, 6, 12, 5, 8, 10], seed=8)
    state = random.getstate()
    set_random_seed(seed)
    expected_train = dassl_fewshot(train_items, shots)
    expected_val = dassl_fewshot(val_items, min(shots, 4))
    random.setstate(state)

    train, val = as_dataset(train_items, "train"), as_dataset(val_items, "val")
    got_train = ct.few_shot_split(train, shots, seed=seed, method="official")
    got_val = ct.few_shot_val_split(val, shots, seed=seed, method="official", train=train)
    assert [train.paths[i] for i in got_train.indices] == [d.impath for d in expected_train]  # same images, same order
    assert got_train.targets == [d.label for d in expected_train]
    assert [val.paths[i] for i in got_val.indices] == [d.impath for d in expected_val]
    pair = official_few_shot_splits(train, val, shots, seed)
    assert pair[0].indices == got_train.indices and pair[1].indices == got_val.indices


def test_official_draw_repeats_images_of_short_classes_as_the_official_code():
    train_items = fake_split("train", [10, 3, 10, 2, 10, 10], seed=1)
    set_random_seed(2)
    expected = dassl_fewshot(train_items, 4)
    train = as_dataset(train_items, "train")
    with pytest.warns(UserWarning, match="2 class.*fewer than 4.*with replacement"):
        got = ct.few_shot_split(train, 4, seed=2, method="official")
    assert [train.paths[i] for i in got.indices] == [d.impath for d in expected]
    assert Counter(got.targets) == {c: 4 for c in range(6)}  # every class gets K, some images twice
    with pytest.raises(ValueError, match="fewer than 4 images"):
        ct.few_shot_split(train, 4, seed=2, method="official", strict=True)


def test_official_draw_uses_no_global_random_state():
    train = as_dataset(fake_split("train", [8] * 6, seed=3), "train")
    random.seed(123)
    before = random.random()
    random.seed(123)
    ct.few_shot_split(train, 4, seed=1, method="official")
    assert random.random() == before


def test_auto_is_official_for_the_papers_datasets_and_seeded_elsewhere(make_dataset):
    train = as_dataset(fake_split("train", [8] * 6, seed=3), "train")
    assert draw_method(train) == "official"
    assert ct.few_shot_split(train, 2, seed=1).indices == ct.few_shot_split(train, 2, seed=1, method="official").indices
    fake = make_dataset(per_class=6)
    assert draw_method(fake) == "seeded"
    assert ct.few_shot_split(fake, 2, seed=1).indices == ct.few_shot_split(fake, 2, seed=1, method="seeded").indices


def test_official_val_draw_needs_the_train_split():
    val = as_dataset(fake_split("val", [5] * 6, seed=4), "val")
    with pytest.raises(ValueError, match="continues the random generator.*train="):
        ct.few_shot_val_split(val, 4, seed=1, method="official")
    with pytest.raises(ValueError, match="Unknown few-shot draw method 'dassl'.*official"):
        ct.few_shot_split(val, 1, seed=1, method="dassl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ct.few_shot_val_split(val, 16, seed=1, method="seeded")  # min(K, 4) = 4 <= 5: no warning
