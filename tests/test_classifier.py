"""CoOpClassifier: logits = logit_scale.exp() * cosine, frozen encoders stay frozen."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def test_logits_are_scaled_cosine(clip32, make_dataset):
    clf = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4))
    images = torch.stack([clip32.preprocess(make_dataset(1)[i][0]) for i in range(3)])
    with torch.no_grad():
        logits = clf(images)
        image = F.normalize(clip32.model.encode_image(images), dim=-1)
        text = clf.text_features()
    assert logits.shape == (3, len(CLASSNAMES))
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(len(CLASSNAMES)))
    torch.testing.assert_close(logits, clip32.model.logit_scale.exp() * image @ text.t(), atol=1e-4, rtol=0)
    torch.testing.assert_close(clf.logits_from_features(image * 7.0), logits, atol=1e-4, rtol=0)  # any scale


def test_train_mode_keeps_the_frozen_encoders_in_eval(clip32):
    clf = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4))
    clf.train()
    assert clf.prompt_learner.training
    assert not any(m.training for m in clf.image_encoder.modules())  # BatchNorm statistics untouched
    assert not any(m.training for m in clf.text_encoder.modules())


def test_learner_and_classifier_must_share_the_model(clip32, clip77):
    learner = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4)
    with pytest.raises(ValueError, match="build both from one CLIP"):
        ct.CoOpClassifier(clip77, learner)
