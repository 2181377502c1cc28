"""CoCoOp: the official layout and names, equality with the official forward, training, checkpoints, protocols."""
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import coop_tutorial as ct
from coop_tutorial.base_to_new import (base_to_new_summary, base_to_new_sweep, class_half, cross_dataset_sweep,
                                       cross_dataset_table, harmonic_mean)
from coop_tutorial.meta_shift import meta_shift_table, shift_effect, shift_explorer, shift_summary
from coop_tutorial.cocoop import (CoCoOpClassifier, CoCoOpConfig, CoCoOpPromptLearner, load_cocoop,
                                  save_cocoop, train_cocoop)
from coop_tutorial.features import FeatureSet, encode_dataset
from coop_tutorial.task_features import TaskFeatures

from conftest import CLASSNAMES, make_clip


def official_logits(learner: CoCoOpPromptLearner, clip, image_features: torch.Tensor) -> torch.Tensor:
    """The official CustomCLIP.forward from image features, re-implemented independently: for each image, the
    full-length text tower over all classes' prompts, EOS by argmax, then logit_scale * cosine."""
    model = clip.model
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    prompts = learner(image_features)  # (B, n_cls, L, width)
    logits = []
    for prompts_i, feature_i in zip(prompts, image_features):
        x = prompts_i + model.positional_embedding
        x = model.transformer(x, attn_mask=model.attn_mask)
        x = model.ln_final(x)
        x = x[torch.arange(x.shape[0]), learner.tokenized_prompts.argmax(dim=-1)] @ model.text_projection
        x = x / x.norm(dim=-1, keepdim=True)
        logits.append(model.logit_scale.exp() * feature_i @ x.t())
    return torch.stack(logits)


def features(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def learner_with_strong_meta_net(clip, names=CLASSNAMES, seed: int = 0) -> CoCoOpPromptLearner:
    """A learner whose meta-network moves the context visibly (the default init's shift is small)."""
    learner = CoCoOpPromptLearner(clip, names, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        learner.meta_net.linear2.weight.mul_(20)
        learner.meta_net.linear2.bias.mul_(5)
    return learner


def test_official_attribute_names_and_shapes(clip32):
    learner = CoCoOpPromptLearner(clip32, CLASSNAMES, generator=torch.Generator().manual_seed(0))
    width, dim, n = clip32.width, clip32.embed_dim, len(CLASSNAMES)
    assert learner.n_ctx == 4 and learner.ctx.shape == (4, width)
    assert list(dict(learner.meta_net.named_children())) == ["linear1", "relu", "linear2"]
    assert (learner.meta_net.linear1.in_features, learner.meta_net.linear1.out_features) == (dim, dim // 16)
    assert (learner.meta_net.linear2.in_features, learner.meta_net.linear2.out_features) == (dim // 16, width)
    assert isinstance(learner.meta_net.relu, torch.nn.ReLU)
    assert learner.token_prefix.shape == (n, 1, width)
    assert learner.token_suffix.shape == (n, clip32.context_length - 5, width)
    assert {name for name, p in learner.named_parameters()} == {
        "ctx", "meta_net.linear1.weight", "meta_net.linear1.bias", "meta_net.linear2.weight", "meta_net.linear2.bias"}
    image = features(3, dim)
    prompts = learner(image)
    assert prompts.shape == (3, n, clip32.context_length, width)
    # The official concatenation: [prefix, ctx + meta_net(x), suffix] for every class of image b.
    shift = learner.meta_net(image)
    for b in range(3):
        for c in range(n):
            expected = torch.cat([learner.token_prefix[c], learner.ctx + shift[b], learner.token_suffix[c]])
            assert torch.equal(prompts[b, c], expected)


def test_context_words_match_the_official_init(clip32):
    """Initialised from 'a photo of a': ctx holds those words' token embeddings (as the official code copies them)."""
    learner = CoCoOpPromptLearner(clip32, CLASSNAMES)
    ids = clip32.tokenizer(["a photo of a"], context_length=clip32.context_length)
    with torch.no_grad():
        words = clip32.model.token_embedding(ids)[0, 1:5]
    assert torch.equal(learner.ctx.detach(), words)


@pytest.mark.parametrize("clip_name", ["clip32", "clip77"])
def test_fast_logits_and_gradients_equal_the_official_forward(clip_name, request):
    clip = request.getfixturevalue(clip_name)
    learner = learner_with_strong_meta_net(clip)
    image = features(4, clip.embed_dim, seed=1)
    reference = official_logits(learner, clip, image)
    fast = CoCoOpClassifier(clip, learner)
    assert fast.fast
    logits = fast.logits_from_features(image)
    assert (logits - reference).abs().max() <= 1e-5
    # The shift matters here (otherwise the test could not tell a per-image prompt from a shared one).
    text = fast.text_features(image)
    assert (text[0] - text[1]).abs().max() > 1e-3
    # Gradients of ctx and of the meta-network too.
    labels = torch.tensor([0, 1, 2, 3])
    grads = []
    for compute in (lambda: official_logits(learner, clip, image), lambda: fast.logits_from_features(image)):
        learner.zero_grad()
        F.cross_entropy(compute(), labels).backward()
        grads.append([p.grad.clone() for p in learner.parameters()])
    for reference_grad, fast_grad in zip(*grads):
        assert (reference_grad - fast_grad).abs().max() <= 1e-5 * max(1.0, float(reference_grad.abs().max()))
    # The classifier's own official structure (per-image, full-length) is the same computation.
    official = CoCoOpClassifier(clip, learner, truncate_text=False, share_prefix=False)
    assert not official.fast
    assert (official.logits_from_features(image) - reference).abs().max() <= 1e-5


def test_without_shift_it_is_zero_shot_with_the_init_words(clip77):
    """meta_net output 0 and ctx = 'a photo of a': CoCoOp's class embeddings are CLIP's for 'a photo of a {c}.'."""
    learner = CoCoOpPromptLearner(clip77, CLASSNAMES)
    with torch.no_grad():
        learner.meta_net.linear2.weight.zero_()
        learner.meta_net.linear2.bias.zero_()
    text = CoCoOpClassifier(clip77, learner).text_features(features(2, clip77.embed_dim))
    zero_shot = ct.zero_shot_weights(clip77, CLASSNAMES, "a photo of a {}.")
    assert (text[0] - zero_shot).abs().max() <= 1e-5 and (text[1] - zero_shot).abs().max() <= 1e-5


def test_bad_layouts_and_configs_are_reported(clip32):
    with pytest.raises(ValueError, match="csc"):
        CoCoOpPromptLearner(clip32, CLASSNAMES, csc=True)
    with pytest.raises(ValueError, match="class_token_position='end'"):
        CoCoOpPromptLearner(clip32, CLASSNAMES, class_token_position="middle")
    with pytest.raises(ValueError, match="csc"):
        CoCoOpConfig(csc=True)
    with pytest.raises(ValueError, match="front"):
        CoCoOpConfig(class_token_position="front")
    with pytest.raises(ValueError, match="CoCoOpConfig.lr"):
        CoCoOpConfig(lr=-1)
    with pytest.raises(ValueError, match="CoCoOpConfig"):
        train_cocoop(clip32, FeatureSet(torch.zeros(1, 2, clip32.embed_dim), torch.tensor([0, 1]), CLASSNAMES[:2]),
                     config=ct.CoOpConfig())
    with pytest.raises(ValueError, match="CoCoOpPromptLearner"):
        CoCoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES))
    with pytest.raises(ValueError, match="build both from one CLIP"):
        CoCoOpClassifier(make_clip(32, name="other"), CoCoOpPromptLearner(clip32, CLASSNAMES))
    with pytest.raises(ValueError, match=r"image features \(B, 64\)"):
        CoCoOpPromptLearner(clip32, CLASSNAMES).shifts(torch.zeros(2, 3))


def test_paper_recipe():
    config = CoCoOpConfig.paper()
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay) == ("sgd", 0.002, 0.9, 5e-4)
    assert (config.batch_size, config.epochs, config.warmup_epochs, config.warmup_lr) == (1, 10, 1, 1e-5)
    assert (config.n_ctx, config.ctx_init, config.schedule) == (4, "a photo of a", "cosine")
    assert CoCoOpConfig.embedded(seed=3).seed == 3


def test_train_cocoop_cached_and_official_loops(clip32, make_dataset, single_thread):
    train = make_dataset(per_class=4)
    config = CoCoOpConfig.paper(epochs=3, batch_size=4, lr=0.05, n_views=2, progress=False, seed=2)
    result = train_cocoop(clip32, train, train, config=config)
    assert len(result.history) == 3 and result.history[-1]["val_acc"] is not None
    assert result.history[0]["lr"] == 1e-5  # the warm-up epoch
    initial = CoCoOpPromptLearner(clip32, CLASSNAMES, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(initial.meta_net.linear1.weight, result.learner.meta_net.linear1.weight)
    again = train_cocoop(clip32, train, config=config)
    assert torch.equal(again.learner.ctx, result.learner.ctx)  # seeded
    official = train_cocoop(clip32, train, config=config.replace(cached=False, epochs=2))
    assert len(official.history) == 2 and not official.classifier.fast


def test_checkpoint_round_trip_and_errors(clip32, tmp_path):
    learner = learner_with_strong_meta_net(clip32)
    path = save_cocoop(tmp_path / "cocoop.safetensors", learner, extra={"task": "fake"})
    loaded = load_cocoop(path, clip32)
    image = features(3, clip32.embed_dim)
    assert torch.allclose(CoCoOpClassifier(clip32, loaded).logits_from_features(image),
                          CoCoOpClassifier(clip32, learner).logits_from_features(image), atol=1e-6)
    with pytest.raises(ValueError, match="model_name"):
        load_cocoop(path, make_clip(32, name="other"))
    other_weights = make_clip(32, seed=7, name=clip32.name)
    with pytest.raises(ValueError, match="allow_other_weights=True"):
        load_cocoop(path, other_weights)
    assert load_cocoop(path, other_weights, allow_other_weights=True).n_ctx == 4
    with pytest.raises(ValueError, match="new_classes=True"):
        load_cocoop(path, clip32, classnames=["cat", "dog"])
    moved = load_cocoop(path, clip32, classnames=["cat", "dog"], new_classes=True)
    assert moved.classnames == ["cat", "dog"] and torch.equal(moved.ctx, learner.ctx)
    coop_file = ct.save_context(tmp_path / "coop.safetensors", ct.PromptLearner(clip32, CLASSNAMES))
    with pytest.raises(ValueError, match="load_context"):
        load_cocoop(coop_file, clip32)
    with pytest.raises(ValueError, match="save_cocoop needs"):
        save_cocoop(tmp_path / "x.safetensors", ct.PromptLearner(clip32, CLASSNAMES))


def test_with_classnames_keeps_context_and_meta_net(clip32):
    learner = learner_with_strong_meta_net(clip32)
    other = learner.with_classnames(clip32, ["cat", "dog"])
    assert other.n_cls == 2 and torch.equal(other.ctx, learner.ctx)
    assert torch.equal(other.meta_net.linear2.weight, learner.meta_net.linear2.weight)


def fake_task(clip, make_dataset, names, per_class=6) -> TaskFeatures:
    data = {split: make_dataset(per_class=per_class, classnames=names, seed=i)
            for i, split in enumerate(("train", "val", "test"))}
    encoded = {split: encode_dataset(clip, d, progress=False) for split, d in data.items()}
    views = encode_dataset(clip, data["train"], augment=True, n_views=2, progress=False)
    return TaskFeatures.from_encoded("fake", list(names), ["a photo of a {}."], encoded["train"], views,
                                     encoded["val"], encoded["test"], data)


def test_class_half_and_its_errors(clip32, make_dataset):
    task = fake_task(clip32, make_dataset, CLASSNAMES)
    base, new = class_half(task, "base"), class_half(task, "new")
    assert base.classnames == CLASSNAMES[:3] and new.classnames == CLASSNAMES[3:]
    assert sorted(set(new.test.labels.tolist())) == [0, 1]
    assert torch.equal(new.test.features[0], task.test.features[0][task.test.labels >= 3])
    single = fake_task(clip32, make_dataset, CLASSNAMES[:1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_half(single, "base")


def test_harmonic_mean_is_taken_of_seed_averaged_accuracies():
    sweep = pd.DataFrame([dict(task="t", method="coop", seed=1, base=90.0, new=40.0),
                          dict(task="t", method="coop", seed=2, base=70.0, new=80.0),
                          dict(task="u", method="coop", seed=1, base=50.0, new=50.0)])
    summary = base_to_new_summary(sweep)
    row = summary.loc[("t", "coop")]
    assert (row["base"], row["new"]) == (80.0, 60.0)
    assert row["H"] == pytest.approx(2 * 80 * 60 / 140)  # not the mean of per-seed H's (56.4...)
    average = summary.loc[("average", "coop")]
    assert (average["base"], average["new"]) == (65.0, 55.0)
    assert average["H"] == pytest.approx(2 * 65 * 55 / 120)
    assert harmonic_mean(82.69, 63.22) == pytest.approx(71.66, abs=0.01)  # the paper's CoOp row


def test_protocol_sweeps_on_a_fake_task(clip32, make_dataset, single_thread):
    task = fake_task(clip32, make_dataset, CLASSNAMES)
    asked = []

    def coop(shots, dataset=None):  # a world's recipe is asked per dataset (ImageNet's differs)
        asked.append(dataset)
        return ct.CoOpConfig.embedded(shots, epochs=2, progress=False)
    cocoop = CoCoOpConfig.embedded(epochs=2, progress=False)
    kept = {}
    sweep = base_to_new_sweep(clip32, [task], shots=2, seeds=(1,), coop_config=coop, cocoop_config=cocoop,
                              progress=False, keep=kept)
    assert list(sweep["method"]) == ["zero_shot", "coop", "cocoop"]
    assert sweep[["base", "new"]].stack().between(0, 100).all()
    assert set(kept) == {("fake", "coop", 1), ("fake", "cocoop", 1)}
    assert asked == ["fake"]  # the task's own name, not its half's ("fake[base]")
    control = base_to_new_sweep(clip32, [task], shots=2, seeds=(1,), methods=("no_meta_net",), cocoop_config=cocoop,
                                progress=False, keep=kept)
    learner = kept[("fake", "no_meta_net", 1)].learner
    assert len(control) == 1 and learner.n_ctx == 4 and learner.ctx_init == "a photo of a"
    assert kept[("fake", "no_meta_net", 1)].config.lr == cocoop.lr
    other = fake_task(clip32, make_dataset, ["cat", "dog", "bird"])
    other.name = "other"
    cross = cross_dataset_sweep(clip32, task, [other], shots=2, seeds=(1,), coop_config=coop, cocoop_config=cocoop,
                                progress=False)
    assert asked == ["fake", "fake"]  # the source's recipe
    table = cross_dataset_table(cross)
    assert list(table.columns) == ["fake", "other", "target_mean"] and len(table) == 3
    with pytest.raises(ValueError, match="Unknown method"):
        base_to_new_sweep(clip32, [task], methods=("probe",))
    # no hidden default recipe: the tiny model's would silently train real CLIP with the wrong optimiser
    with pytest.raises(ValueError, match="coop_config is required"):
        base_to_new_sweep(clip32, [task], cocoop_config=cocoop)
    with pytest.raises(ValueError, match="cocoop_config is required"):
        cross_dataset_sweep(clip32, task, [other], coop_config=coop)


def test_meta_shift_analysis(clip32, make_dataset):
    task = fake_task(clip32, make_dataset, CLASSNAMES)
    learner = learner_with_strong_meta_net(clip32)
    table = meta_shift_table(learner, task.test)
    assert len(table) == task.test.n_images
    expected = learner.shifts(task.test.view(0)).norm(dim=-1).detach()
    assert torch.allclose(torch.tensor(table["shift_norm"].to_numpy()), expected, atol=1e-5)
    assert table["ratio"].iloc[0] == pytest.approx(table["shift_norm"].iloc[0] / table["ctx_norm"].iloc[0])
    shifts = learner.shifts(task.test.view(0)).detach()
    specific = (shifts - shifts.mean(0)).norm(dim=-1)
    assert torch.allclose(torch.tensor(table["specific_norm"].to_numpy()), specific, atol=1e-5)
    classifier = CoCoOpClassifier(clip32, learner).eval()
    meta_net = learner.meta_net
    effect = shift_effect(classifier, task.test)
    assert learner.meta_net is meta_net  # restored after the constant-shift passes
    assert effect["correct"].mean() == pytest.approx(ct.score(classifier, task.test))
    # The no-shift column is CoCoOp's ctx used as a plain CoOp context.
    coop = ct.CoOpClassifier(clip32, ct.PromptLearner(clip32, CLASSNAMES, n_ctx=4))
    with torch.no_grad():
        coop.prompt_learner.ctx.copy_(learner.ctx)
    assert effect["correct_no_shift"].mean() == pytest.approx(ct.score(coop, task.test))


def test_bench_cocoop_smoke(capsys, single_thread):
    """The benchmark script still runs in its tiny configuration (no timing is asserted)."""
    import importlib
    import sys
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[1] / "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    importlib.import_module("bench_cocoop").main(["--smoke"])
    out = capsys.readouterr().out
    assert "torch threads: 1" in out and "|---" in out
    assert sum(line.startswith("SUMMARY: ") for line in out.splitlines()) == 1


def test_shift_views(clip32, make_dataset):
    task = fake_task(clip32, make_dataset, CLASSNAMES)
    learner = learner_with_strong_meta_net(clip32)
    table = meta_shift_table(learner, task.test)
    effect = shift_effect(CoCoOpClassifier(clip32, learner).eval(), task.test)
    summary = shift_summary(table, effect)
    assert list(summary.index) == CLASSNAMES and summary[["acc", "acc_mean_shift", "acc_no_shift"]].stack().between(
        0, 100).all()
    explorer = shift_explorer(table, task.datasets["test"], k=3, static=True)
    top = explorer.last.numbers["top"]
    assert len(top) == 3 and top["specific_ratio"].iloc[0] == table["specific_ratio"].max()
    assert explorer.render(by="ratio").numbers["top"]["ratio"].iloc[0] == table["ratio"].max()
    one = explorer.render(classname=CLASSNAMES[1], k=2).numbers["top"]
    assert set(one["class"]) == {CLASSNAMES[1]}
    assert isinstance(explorer.render(classname="no such class").shown, str)


def test_evaluation_in_bounded_groups_gives_the_same_logits(clip32, monkeypatch):
    import coop_tutorial.cocoop as cocoop_module

    classifier = CoCoOpClassifier(clip32, learner_with_strong_meta_net(clip32)).eval()
    image = features(7, clip32.embed_dim, seed=3)
    with torch.no_grad():
        whole = classifier.logits_from_features(image)
        monkeypatch.setattr(cocoop_module, "EVAL_PAIRS", 2 * len(CLASSNAMES))  # two images per group
        grouped = classifier.logits_from_features(image)
        result = ct.evaluate(classifier, (image, torch.zeros(7, dtype=torch.long)), classnames=CLASSNAMES)
    assert torch.allclose(whole, grouped, atol=1e-6)
    assert result.predictions.tolist() == whole.argmax(1).tolist()


def test_the_base_to_new_notebook_defaults_to_the_cocoop_papers_backbone_in_the_real_world():
    from coop_tutorial.base_to_new import default_backbone

    assert default_backbone("real") == "ViT-B-16"  # the CoCoOp paper's base-to-new tables
    assert default_backbone("embedded") is None  # the world's own: the tiny CLIP
    assert default_backbone("real", "RN50") == "RN50" and default_backbone("embedded", "tiny") == "tiny"
    assert ct.use_world("real", backbone=default_backbone("real")).backbone == "ViT-B-16"
    assert ct.use_world("embedded", backbone=default_backbone("embedded")).backbone == "tiny"


def test_recipes_per_world_and_the_recipe_search(clip32, make_dataset, single_thread):
    from coop_tutorial.base_to_new import cocoop_recipe, coop_config_like, recipe_search, recipe_summary

    assert cocoop_recipe(ct.use_world("embedded")) == CoCoOpConfig.embedded()
    assert cocoop_recipe(ct.use_world("real", backbone="ViT-B-16", pretrained="openai")) == CoCoOpConfig.paper()
    # EPOCHS for a quick look, as world.recipe(epochs=...): a warm-up epoch is dropped if it would leave none
    real = ct.use_world("real", backbone="ViT-B-16", pretrained="openai")
    assert cocoop_recipe(real, epochs=3) == CoCoOpConfig.paper(epochs=3)
    assert cocoop_recipe(real, epochs=1) == CoCoOpConfig.paper(epochs=1, warmup_epochs=0)
    assert cocoop_recipe(ct.use_world("embedded"), epochs=2).lr == CoCoOpConfig.embedded().lr
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(ValueError, match="EPOCHS must be a positive integer"):
            cocoop_recipe(real, epochs=bad)
    like = coop_config_like(CoCoOpConfig.embedded(seed=4))
    assert isinstance(like, ct.CoOpConfig) and (like.n_ctx, like.ctx_init, like.lr, like.seed) == (
        4, "a photo of a", CoCoOpConfig.embedded().lr, 4)
    task = fake_task(clip32, make_dataset, CLASSNAMES)
    results = recipe_search(clip32, [task], {"a": dict(epochs=2, batch_size=4), "b": dict(epochs=3, batch_size=4)},
                            shots=2, seeds=(1,), progress=False)
    assert list(results.columns) == ["candidate", "task", "seed", "base_val", "new_val"] and len(results) == 2
    summary = recipe_summary(results)
    assert summary["H_val"].is_monotonic_decreasing
    assert summary["H_val"].iloc[0] == pytest.approx(harmonic_mean(summary["base_val"].iloc[0],
                                                                   summary["new_val"].iloc[0]))


def test_train_cocoop_rejects_bad_data(clip32, make_dataset):
    train = make_dataset(per_class=2)
    config = CoCoOpConfig.paper(epochs=2, progress=False)
    config.epochs = 0  # changed after construction: caught when training starts
    with pytest.raises(ValueError, match="CoCoOpConfig.epochs"):
        train_cocoop(clip32, train, config=config)
    with pytest.raises(ValueError, match="empty"):
        train_cocoop(clip32, FeatureSet(torch.zeros(1, 0, clip32.embed_dim), torch.zeros(0, dtype=torch.long),
                                        CLASSNAMES), config=CoCoOpConfig.paper(progress=False))
    with pytest.raises(ValueError, match="val_set"):
        train_cocoop(clip32, train, make_dataset(per_class=2, classnames=["cat", "dog"]),
                     config=CoCoOpConfig.paper(epochs=2, progress=False))
