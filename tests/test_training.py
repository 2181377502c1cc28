"""train_coop: the recipe, determinism, what gets trained, callbacks, failure modes."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from conftest import CLASSNAMES

pytestmark = pytest.mark.usefixtures("single_thread")


def separable_features(n_per_class: int = 8, noise: float = 0.3, seed: int = 0, dim: int = 64) -> ct.FeatureSet:
    """Image features with one direction per class: learnable, unlike a random CLIP's image features."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(len(CLASSNAMES), dim, generator=torch.Generator().manual_seed(99))
    labels = torch.arange(len(CLASSNAMES)).repeat_interleave(n_per_class)
    x = F.normalize(means[labels] + noise * torch.randn(len(labels), dim, generator=g), dim=-1)
    return ct.FeatureSet(x.unsqueeze(0), labels, list(CLASSNAMES))


def quick(**changes) -> ct.CoOpConfig:
    base = dict(n_ctx=4, epochs=3, batch_size=8, n_views=2, progress=False, optimizer="adam", lr=0.05,
                warmup_epochs=0)
    return ct.CoOpConfig(**{**base, **changes})


def test_paper_preset_is_the_official_recipe():
    config = ct.CoOpConfig.paper(16)
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == ("sgd", 0.002, 0.9, 5e-4)
    assert (config.schedule, config.warmup_epochs, config.warmup_lr, config.batch_size) == ("cosine", 1, 1e-5, 32)
    assert [ct.CoOpConfig.paper(k).epochs for k in (1, 2, 4, 8, 16)] == [50, 100, 100, 200, 200]
    assert ct.CoOpConfig.paper(16, dataset="imagenet").epochs == 50
    assert ct.CoOpConfig.paper(16, lr=0.01).lr == 0.01  # overrides


def test_embedded_preset_uses_adam_with_the_paper_epochs():
    from coop_tutorial.training import EMBEDDED_RECIPE, PAPER_EPOCHS

    config = ct.CoOpConfig.embedded(16)
    assert config.optimizer == "adam" and config.lr == EMBEDDED_RECIPE["lr"] and config.warmup_epochs == 0
    assert [ct.CoOpConfig.embedded(k).epochs for k in PAPER_EPOCHS] == list(PAPER_EPOCHS.values())
    assert ct.CoOpConfig.embedded(1, epochs=3).epochs == 3


@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_learning_rate_matches_dassl_schedulers(warmup):
    """Reference: Dassl's ConstantWarmupScheduler wrapped around torch's CosineAnnealingLR, stepped per epoch."""
    epochs, base, cons = 10, 0.002, 1e-5
    config = ct.CoOpConfig(epochs=epochs, lr=base, warmup_epochs=warmup, warmup_lr=cons)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    successor = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, float(epochs))

    class ConstantWarmup(torch.optim.lr_scheduler.LRScheduler):  # Dassl's logic, re-implemented
        def __init__(self, optimizer):
            super().__init__(optimizer)

        def get_lr(self):
            if self.last_epoch >= warmup:
                return successor.get_last_lr()
            return [cons for _ in self.base_lrs]

        def step(self, epoch=None):
            if self.last_epoch >= warmup:
                successor.step(epoch)
                self._last_lr = successor.get_last_lr()
            else:
                super().step(epoch)

    scheduler = ConstantWarmup(optimizer) if warmup else successor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for epoch in range(epochs):
            assert ct.learning_rate(epoch, config) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
            scheduler.step()


def test_training_learns_and_records_history(clip32):
    features = separable_features()
    result = ct.train_coop(clip32, features, features, quick(epochs=30))
    frame = result.history_frame()
    assert list(frame.index) == list(range(1, 31))
    assert {"loss", "train_acc", "val_acc", "lr", "seconds"} <= set(frame.columns)
    assert frame["loss"].iloc[-1] < 0.5 * frame["loss"].iloc[0]
    assert frame["val_acc"].iloc[-1] == 1.0
    assert ct.evaluate(result.classifier, features).accuracy == 1.0
    assert frame["lr"].iloc[0] == pytest.approx(0.05) and frame["lr"].is_monotonic_decreasing


def test_same_seed_gives_a_bit_identical_context(clip32, make_dataset):
    data = make_dataset(per_class=3)
    runs = [ct.train_coop(clip32, data, config=quick(seed=seed)).learner.ctx for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_only_the_context_is_trained(clip32):
    before = {k: v.clone() for k, v in clip32.model.state_dict().items()}
    result = ct.train_coop(clip32, separable_features(), config=quick(epochs=2))
    after = clip32.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm buffers included
    trainable = [name for name, p in result.classifier.named_parameters() if p.requires_grad]
    assert trainable == ["prompt_learner.ctx"]
    initial = ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(initial.ctx, result.learner.ctx)  # and the context did move


def test_callbacks_and_drop_last(clip32):
    epochs_seen, steps = [], []

    class Hooks:
        def on_train_start(self, learner):
            steps.append("start")

        def on_step_end(self, record, learner):
            steps.append(record["step"])

        def on_epoch_end(self, record, learner):
            steps.append(("epoch", record["epoch"]))

        def on_train_end(self, result):
            steps.append("end")

    features = separable_features(n_per_class=4)  # 20 images, batch 8: 2 full batches, the last 4 dropped
    ct.train_coop(clip32, features, config=quick(epochs=2, log_every=1), callbacks=[epochs_seen.append, Hooks()])
    assert [r["epoch"] for r in epochs_seen] == [1, 2]
    assert steps == ["start", 1, 2, ("epoch", 1), 1, 2, ("epoch", 2), "end"]


def test_uncached_official_loop_runs_full_length_and_is_deterministic(clip32, make_dataset):
    data = make_dataset(per_class=2)
    config = quick(cached=False, epochs=2)
    first, second = ct.train_coop(clip32, data, config=config), ct.train_coop(clip32, data, config=config)
    assert first.train_features is None
    assert not first.classifier.text_encoder.truncate
    assert torch.equal(first.learner.ctx, second.learner.ctx)


def test_augmented_views_are_cached_once(clip32, make_dataset):
    result = ct.train_coop(clip32, make_dataset(per_class=2), config=quick(n_views=3, epochs=1))
    assert result.train_features.features.shape == (3, 10, clip32.embed_dim)
    assert result.train_features.meta["transform"] == "train"
    assert ct.train_coop(clip32, make_dataset(per_class=2), config=quick(n_views=0, epochs=1)) \
        .train_features.meta["transform"] == "eval"


def test_nan_features_are_refused_before_training(clip32):
    features = separable_features()
    features.features[0, 3] = float("nan")
    with pytest.raises(ValueError, match="1 row.* NaN or infinite values"):
        ct.train_coop(clip32, features, config=quick(batch_size=64))


class _PoisonContext:
    """Callback: makes the context NaN before the first step (what a diverged optimiser leaves)."""

    def on_train_start(self, learner) -> None:
        with torch.no_grad():
            learner.ctx.fill_(float("nan"))


def test_nan_loss_stops_with_advice(clip32):
    with pytest.raises(RuntimeError, match="lower learning rate"):
        ct.train_coop(clip32, separable_features(), config=quick(batch_size=64), callbacks=[_PoisonContext()])


def test_csc_middle_and_word_init_configurations_train(clip32):
    features = separable_features(n_per_class=2)
    result = ct.train_coop(clip32, features, config=quick(csc=True, class_token_position="middle",
                                                            ctx_init="a photo of a", epochs=1))
    assert result.learner.ctx.shape == (len(CLASSNAMES), 4, clip32.width)
    assert math.isfinite(result.history[-1]["loss"])
