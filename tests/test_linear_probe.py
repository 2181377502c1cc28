"""Linear probe: C chosen on validation by CoOp's search, predictions usable like any classifier."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct


def blobs(n_per_class: int, seed: int, n_classes: int = 4, dim: int = 16, noise: float = 0.6):
    means = torch.randn(n_classes, dim, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(n_per_class)
    return F.normalize(means[labels] + noise * torch.randn(len(labels), dim, generator=g), dim=-1), labels


def test_search_follows_coop_and_generalises():
    train, val, test = blobs(8, 1), blobs(4, 2), blobs(50, 3)
    probe = ct.fit_linear_probe(train, val, n_steps=3)
    tried = [c for c, _ in probe.search]
    assert tried[:7] == [1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6]  # the coarse grid
    # then 2 ends per round, but an end the search has already fitted (the kept end, or the grid's best C
    # coming back as a midpoint) is not fitted again: 7 + 2 + 0 + 1
    assert len(set(tried)) == len(tried) == 10
    assert probe.C in tried and probe.val_accuracy == max(a for c, a in probe.search if c == probe.C)
    assert ct.score(probe, test) > 0.9
    again = ct.fit_linear_probe(train, val, n_steps=3)
    assert again.C == probe.C and torch.equal(again.predict(test[0]), probe.predict(test[0]))


def test_explicit_c_and_missing_validation():
    train = blobs(8, 1)
    probe = ct.fit_linear_probe(train, C=0.5)
    assert probe.C == 0.5 and probe.search == []
    with pytest.raises(ValueError, match="validation split"):
        ct.fit_linear_probe(train)


def test_logits_cover_classes_absent_from_training():
    x, y = blobs(5, 1)
    keep = y != 2
    probe = ct.fit_linear_probe((x[keep], y[keep]), C=1.0, n_classes=4)
    logits = probe.logits_from_features(x)
    assert logits.shape == (len(x), 4) and torch.isinf(logits[:, 2]).all()
    assert not (probe.predict(x) == 2).any()


def test_on_encoded_features_and_evaluate(clip32, make_dataset):
    train = ct.encode_dataset(clip32, make_dataset(per_class=3), progress=False)
    probe = ct.fit_linear_probe(train, train, n_steps=1)
    result = ct.evaluate(probe, train)
    assert result.accuracy == pytest.approx(ct.score(probe, train))
    assert probe.classnames == train.classnames
