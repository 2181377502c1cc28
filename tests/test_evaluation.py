"""Feature caching and evaluation: seeded views, disk cache, metrics, seed summaries."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def test_eval_features_equal_encode_image(clip32, make_dataset):
    data = make_dataset(per_class=2)
    features = ct.encode_dataset(clip32, data, batch_size=3, progress=False)
    images = torch.stack([clip32.preprocess(data[i][0]) for i in range(len(data))])
    with torch.no_grad():
        expected = F.normalize(clip32.model.encode_image(images), dim=-1)
    assert features.features.shape == (1, len(data), clip32.embed_dim)
    torch.testing.assert_close(features.view(0), expected, atol=1e-5, rtol=0)
    assert features.labels.tolist() == data.targets and features.classnames == CLASSNAMES


def test_augmented_views_are_seeded_per_image(clip32, make_dataset):
    data = make_dataset(per_class=2)
    state = torch.random.get_rng_state()
    a = ct.encode_dataset(clip32, data, augment=True, n_views=3, seed=7, batch_size=4, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    b = ct.encode_dataset(clip32, data, augment=True, n_views=3, seed=7, batch_size=7, progress=False)
    c = ct.encode_dataset(clip32, data, augment=True, n_views=3, seed=8, progress=False)
    torch.testing.assert_close(a.features, b.features, atol=1e-5, rtol=0)  # same views whatever the batching
    assert not torch.equal(a.features, c.features)
    assert not torch.allclose(a.features[0], a.features[1])  # views differ
    flat, labels = a.flat()
    assert flat.shape == (3 * len(data), clip32.embed_dim) and labels.tolist() == data.targets * 3
    split = ct.few_shot_split(data, 1, seed=1)
    part = a.subset(split.indices)
    assert torch.equal(part.features, a.features[:, split.indices]) and part.targets == split.targets


def test_disk_cache_is_reused_and_keyed(clip32, make_dataset, tmp_path, monkeypatch):
    data = make_dataset(per_class=2)
    first = ct.encode_dataset(clip32, data, augment=True, n_views=2, seed=1, cache_dir=tmp_path, name="fake/train",
                              progress=False)
    assert len(list(tmp_path.iterdir())) == 1
    monkeypatch.setattr(clip32.model, "encode_image", lambda *a, **k: pytest.fail("re-encoded a cached dataset"))
    again = ct.encode_dataset(clip32, data, augment=True, n_views=2, seed=1, cache_dir=tmp_path, name="fake/train",
                              progress=False)
    assert torch.equal(first.features, again.features) and again.classnames == CLASSNAMES
    monkeypatch.undo()
    ct.encode_dataset(clip32, data, augment=True, n_views=2, seed=2, cache_dir=tmp_path, name="fake/train",
                      progress=False)
    assert len(list(tmp_path.iterdir())) == 2  # another seed is another entry
    with pytest.raises(ValueError, match="name="):
        ct.encode_dataset(clip32, data, cache_dir=tmp_path)


def test_metrics_on_a_known_example():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2])
    assert ct.accuracy(predictions, labels) == pytest.approx(4 / 6)
    assert ct.confusion_matrix(predictions, labels, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert ct.per_class_accuracy(predictions, labels, 3).tolist() == pytest.approx([0.5, 1.0, 0.5])
    logits = F.one_hot(predictions, 3).float()
    assert ct.accuracy(logits, labels) == pytest.approx(4 / 6)


def test_evaluate_coop_on_images_and_features(clip32, make_dataset):
    data = make_dataset(per_class=2)
    clf = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4))
    on_images = ct.evaluate(clf, data)
    images = torch.stack([clip32.preprocess(data[i][0]) for i in range(len(data))])
    with torch.no_grad():
        predictions = clf(images).argmax(1)
    assert torch.equal(on_images.predictions, predictions)
    assert on_images.accuracy == pytest.approx(float((predictions == torch.tensor(data.targets)).float().mean()))
    assert on_images.confusion.sum() == len(data) and list(on_images.per_class_accuracy.index) == CLASSNAMES
    assert on_images.confusion_frame().shape == (5, 5)
    on_features = ct.evaluate(clf, ct.encode_dataset(clip32, data, progress=False))
    assert torch.equal(on_features.predictions, on_images.predictions)


def test_summarize_seeds_reports_mean_and_population_std():
    rows = [dict(method=m, shots=k, seed=s, accuracy=a)
            for m, k, accs in [("coop", 16, [0.70, 0.74, 0.75]), ("zero-shot", 0, [0.6, 0.6, 0.6])]
            for s, a in zip((1, 2, 3), accs)]
    table = ct.summarize_seeds(rows)
    coop = table[table["method"] == "coop"].iloc[0]
    assert coop["accuracy_mean"] == pytest.approx(np.mean([0.70, 0.74, 0.75]))
    assert coop["accuracy_std"] == pytest.approx(np.std([0.70, 0.74, 0.75]))  # as CoOp's parse_test_res.py
    assert coop["n_seeds"] == 3 and coop["shots"] == 16
    assert list(table.columns) == ["method", "shots", "accuracy_mean", "accuracy_std", "n_seeds"]
    single = ct.summarize_seeds(pd.DataFrame({"seed": [1, 2], "acc": [0.5, 0.7]}))
    assert single["acc_mean"].iloc[0] == pytest.approx(0.6) and single["acc_std"].iloc[0] == pytest.approx(0.1)


def test_accuracy_is_the_exact_fraction():
    # 504 of 800 is 0.63 exactly as a Python float; a float32 mean gives 0.6299999952 and rounded tables drift
    labels = torch.zeros(800, dtype=torch.long)
    predictions = torch.cat([torch.zeros(504, dtype=torch.long), torch.ones(296, dtype=torch.long)])
    assert ct.accuracy(predictions, labels) == 504 / 800
