"""Bad input gets a ValueError that says what is wrong and what to do."""
from __future__ import annotations

import pytest
import torch

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def test_unknown_class_token_position(clip32):
    with pytest.raises(ValueError, match="Unknown class_token_position 'start'.*'end', 'middle', 'front'"):
        ct.PromptLearner(clip32, CLASSNAMES, class_token_position="start")
    with pytest.raises(ValueError, match="CoOpConfig.class_token_position"):
        ct.CoOpConfig(class_token_position="start")


@pytest.mark.parametrize("n_ctx", [0, -3, 2.5, True, "16"])
def test_n_ctx_must_be_a_positive_integer(clip32, n_ctx):
    with pytest.raises(ValueError, match="n_ctx must be an integer >= 1"):
        ct.PromptLearner(clip32, CLASSNAMES, n_ctx=n_ctx)
    with pytest.raises(ValueError, match="CoOpConfig.n_ctx"):
        ct.CoOpConfig(n_ctx=n_ctx)


def test_prompts_longer_than_the_context(clip32):
    long_name = "very " * 12 + "long class"
    with pytest.raises(ValueError, match=r"do not fit the text encoder's context length 32.*needs \d+ tokens.*fewer "
                                         r"context vectors"):
        ct.PromptLearner(clip32, CLASSNAMES + [long_name], n_ctx=16)
    ct.PromptLearner(clip32, CLASSNAMES + [long_name], n_ctx=4)  # fits with fewer vectors
    with pytest.raises(ValueError, match="context length 32.*Shorten the template"):
        ct.zero_shot_weights(clip32, CLASSNAMES, "a photo of " + "a big " * 14 + "{}.")


@pytest.mark.parametrize("classnames, message", [
    ([], "classnames is empty"),
    ("cat", "must be a list of strings"),
    (["cat", ""], r"classnames\[1\] = '' is not a non-empty string"),
    (["cat", None], r"classnames\[1\] = None"),
    (["cat", "dog", "cat"], "Duplicate class name"),
    (["golden_retriever", "golden retriever"], "Duplicate class name.*same prompt"),
])
def test_empty_or_duplicate_class_names(clip32, classnames, message):
    with pytest.raises(ValueError, match=message):
        ct.PromptLearner(clip32, classnames)
    with pytest.raises(ValueError, match=message):
        ct.zero_shot_weights(clip32, classnames)


@pytest.mark.parametrize("ctx_init, message", [
    ("", "ctx_init must be a non-empty string"),
    ("   ", "ctx_init must be a non-empty string"),
    ("a photo of " * 10, "has room for at most 28 context tokens"),
])
def test_ctx_init_that_does_not_fit(clip32, ctx_init, message):
    with pytest.raises(ValueError, match=message):
        ct.PromptLearner(clip32, CLASSNAMES, ctx_init=ctx_init)


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (3, 32, 32), (2, 1, 32, 32)])
def test_images_of_the_wrong_size(clip32, shape):
    clf = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4))
    with pytest.raises(ValueError, match=r"Expected preprocessed images of shape \(B, 3, 32, 32\).*clip.preprocess"):
        clf(torch.zeros(shape))
    with pytest.raises(ValueError, match="Expected preprocessed images"):
        ct.zero_shot_classifier(clip32, CLASSNAMES)(torch.zeros(shape))


def test_labels_out_of_range(clip32, make_dataset):
    data = make_dataset(per_class=2)
    with pytest.raises(ValueError, match="Labels out of range.*valid labels 0..2"):
        ct.train_coop(clip32, data, config=ct.CoOpConfig(n_ctx=2, epochs=1, warmup_epochs=0, progress=False),
                      classnames=CLASSNAMES[:3])
    with pytest.raises(ValueError, match="Labels out of range"):
        ct.few_shot_split(data, 1, classnames=CLASSNAMES[:3])
    features = ct.encode_dataset(clip32, data, progress=False)
    clf = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES[:3], n_ctx=2))
    with pytest.raises(ValueError, match="Class names disagree: 3 classes for the classifier, 5 for the data"):
        ct.evaluate(clf, features)
    with pytest.raises(ValueError, match="Labels out of range"):
        ct.evaluate(clf, (features.view(0), features.labels))
    with pytest.raises(ValueError, match="Labels out of range"):
        ct.template_accuracies(clip32, features, ["a photo of a {}."], classnames=CLASSNAMES[:3])


def test_more_shots_than_exist(make_dataset):
    data = make_dataset(per_class=[3, 3, 3, 3, 0])
    with pytest.raises(ValueError, match="1 class\\(es\\) have no images.*Golden retriever"):
        ct.few_shot_split(data, 2)
    short = make_dataset(per_class=3)
    with pytest.raises(ValueError, match="fewer than 16 images.*Ask for fewer shots"):
        ct.few_shot_split(short, 16, strict=True)
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        ct.few_shot_split(short, 0)


@pytest.mark.parametrize("field, value, message", [
    ("lr", "0.01", "CoOpConfig.lr must be a finite number > 0.*'0.01' \\(str\\)"),
    ("lr", 0.0, "CoOpConfig.lr must be a finite number > 0"),
    ("lr", float("nan"), "CoOpConfig.lr"),
    ("epochs", 2.5, "CoOpConfig.epochs must be an integer >= 1"),
    ("batch_size", 0, "CoOpConfig.batch_size"),
    ("n_views", True, "CoOpConfig.n_views must be an integer"),
    ("seed", -1, "CoOpConfig.seed"),
    ("csc", "yes", "CoOpConfig.csc must be True or False"),
    ("cached", 1, "CoOpConfig.cached must be True or False"),
    ("optimizer", "rmsprop", "CoOpConfig.optimizer must be one of 'sgd', 'adam'"),
    ("schedule", "linear", "CoOpConfig.schedule"),
    ("momentum", 1.0, "CoOpConfig.momentum must be a number in \\[0, 1\\)"),
    ("weight_decay", -1e-4, "CoOpConfig.weight_decay"),
    ("ctx_init", "", "CoOpConfig.ctx_init"),
    ("ctx_init", 4, "CoOpConfig.ctx_init"),
    ("warmup_epochs", 50, "CoOpConfig.warmup_epochs must be smaller than epochs"),
    ("device", 0, "CoOpConfig.device"),
])
def test_config_fields_of_the_wrong_type_or_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        ct.CoOpConfig(**{field: value})


def test_train_coop_input_checks(clip32, make_dataset):
    data = make_dataset(per_class=1)
    with pytest.raises(ValueError, match="config must be a CoOpConfig"):
        ct.train_coop(clip32, data, config={"lr": 0.1})
    with pytest.raises(ValueError, match="CoOpConfig.device is 'meta'"):
        ct.train_coop(clip32, data, config=ct.CoOpConfig(device="meta", progress=False))
    with pytest.raises(ValueError, match="shots must be an integer >= 1"):
        ct.CoOpConfig.paper(0)


def test_template_without_placeholder(clip32):
    with pytest.raises(ValueError, match="exactly one '\\{\\}'"):
        ct.zero_shot_weights(clip32, CLASSNAMES, "a photo of a thing.")
