"""Zero-shot weights equal CLIP's own text features; ensembles average; templates data is complete."""
from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def reference_features(clip, template):
    texts = [template.format(c.replace("_", " ")) for c in CLASSNAMES]
    with torch.no_grad():
        return F.normalize(clip.model.encode_text(clip.tokenizer(texts)), dim=-1)


def test_single_template_weights_are_clip_text_features(any_clip):
    weights = ct.zero_shot_weights(any_clip, CLASSNAMES, "a photo of a {}.")
    torch.testing.assert_close(weights, reference_features(any_clip, "a photo of a {}."), atol=1e-5, rtol=0)


def test_ensemble_is_the_renormalised_mean(clip77):
    templates = ["a photo of a {}.", "a sketch of a {}.", "{} texture."]
    expected = F.normalize(torch.stack([reference_features(clip77, t) for t in templates]).mean(0), dim=-1)
    torch.testing.assert_close(ct.zero_shot_weights(clip77, CLASSNAMES, templates), expected, atol=1e-5, rtol=0)
    # open_clip's lambdas are accepted too
    lambdas = [lambda c: f"a photo of a {c}.", lambda c: f"a sketch of a {c}.", lambda c: f"{c} texture."]
    torch.testing.assert_close(ct.zero_shot_weights(clip77, CLASSNAMES, lambdas), expected, atol=1e-6, rtol=0)


def test_dataset_default_template(clip77):
    clf = ct.zero_shot_classifier(clip77, CLASSNAMES, dataset="eurosat")
    assert clf.templates == ["a centered satellite photo of {}."]
    torch.testing.assert_close(clf.text_features(), reference_features(clip77, "a centered satellite photo of {}."),
                               atol=1e-5, rtol=0)
    assert ct.zero_shot_classifier(clip77, CLASSNAMES).templates == ["a photo of a {}."]


def test_template_data():
    assert len(ct.CLIP_IMAGENET_TEMPLATES) == 80
    assert all(t.count("{}") == 1 for t in ct.CLIP_IMAGENET_TEMPLATES)
    assert ct.CLIP_IMAGENET_TEMPLATES[0] == open_clip.OPENAI_IMAGENET_TEMPLATES[0]("{}") == "a bad photo of a {}."
    assert len(ct.IMAGENET_CLASSNAMES) == 1000
    paper = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
             "sun397", "dtd", "eurosat", "ucf101", "imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
    assert set(paper) <= set(ct.DATASET_TEMPLATES)
    assert ct.dataset_template("DTD") == "{} texture."
    with pytest.raises(ValueError, match="No default template.*Known"):
        ct.dataset_template("mnist")


def test_zero_shot_classifier_logits(clip32, make_dataset):
    clf = ct.zero_shot_classifier(clip32, CLASSNAMES)
    data = make_dataset(per_class=1)
    images = torch.stack([clip32.preprocess(data[i][0]) for i in range(len(data))])
    with torch.no_grad():
        image = F.normalize(clip32.model.encode_image(images), dim=-1)
        expected = clip32.model.logit_scale.exp() * image @ clf.weights.t()
        torch.testing.assert_close(clf(images), expected, atol=1e-4, rtol=0)


def test_template_accuracies_equal_one_classifier_per_template(clip32, make_dataset):
    features = ct.encode_dataset(clip32, make_dataset(per_class=3), progress=False)
    templates = ["a photo of a {}.", "{} texture.", "a drawing of the {}, big."]
    table = ct.template_accuracies(clip32, features, templates)
    assert list(table["template"]) == templates
    for template, acc in zip(templates, table["accuracy"]):
        clf = ct.zero_shot_classifier(clip32, CLASSNAMES, template)
        assert acc == pytest.approx(ct.evaluate(clf, features).accuracy)
