"""The few-shot protocol: K per class by seed, min(K, 4) for validation, short classes kept with a warning."""
from __future__ import annotations

import warnings
from collections import Counter

import pytest

import coop_tutorial as ct
from conftest import CLASSNAMES


def test_k_per_class_deterministic_by_seed(make_dataset):
    data = make_dataset(per_class=10)
    split = ct.few_shot_split(data, shots=4, seed=1)
    assert Counter(split.targets) == {c: 4 for c in range(len(CLASSNAMES))}
    assert split.classnames == CLASSNAMES
    assert [data.targets[i] for i in split.indices] == split.targets
    assert [split[i][1] for i in range(len(split))] == split.targets  # items come from the dataset
    assert ct.few_shot_split(data, shots=4, seed=1).indices == split.indices
    assert ct.few_shot_split(data, shots=4, seed=2).indices != split.indices


def test_a_class_draw_does_not_depend_on_other_classes(make_dataset):
    data = make_dataset(per_class=10)
    fewer = make_dataset(per_class=[10, 10, 10, 10, 3])  # the last class changed
    a, b = ct.few_shot_split(data, 2, seed=3), ct.few_shot_split(fewer, 2, seed=3)
    assert a.indices[:8] == b.indices[:8]


def test_short_classes_keep_all_their_images_with_a_warning(make_dataset):
    data = make_dataset(per_class=[5, 2, 5, 1, 5])
    with pytest.warns(UserWarning, match="2 class.*fewer than 4 images.*green circle.*Keeping all"):
        split = ct.few_shot_split(data, shots=4, seed=1)
    assert Counter(split.targets) == {0: 4, 1: 2, 2: 4, 3: 1, 4: 4}
    with pytest.raises(ValueError, match="fewer than 4 images"):
        ct.few_shot_split(data, shots=4, seed=1, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough images: no warning
        ct.few_shot_split(data, shots=1, seed=1, strict=True)


def test_validation_split_takes_min_k_4(make_dataset):
    data = make_dataset(per_class=6)
    assert Counter(ct.few_shot_val_split(data, shots=16, seed=1).targets) == {c: 4 for c in range(5)}
    assert Counter(ct.few_shot_val_split(data, shots=2, seed=1).targets) == {c: 2 for c in range(5)}


def test_dataset_without_targets_is_read_item_by_item(make_dataset):
    data = make_dataset(per_class=3)

    class NoTargets:
        classnames = data.classnames

        def __len__(self):
            return len(data)

        def __getitem__(self, i):
            return data[i]

    assert ct.few_shot_split(NoTargets(), 2, seed=1).indices == ct.few_shot_split(data, 2, seed=1).indices
