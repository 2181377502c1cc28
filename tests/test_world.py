"""The synthetic world: deterministic drawing, alt-text captions, tasks and their caches."""
import numpy as np
import open_clip
import pytest

from coop_tutorial.embedded.captions import caption, plural, with_article
from coop_tutorial.embedded.corpus import CaptionStream, sample_scene
from coop_tutorial.embedded.render import Scene, render, shape_field
from coop_tutorial.embedded.suite import TASKS, draw_task, load_embedded_task
from coop_tutorial.embedded.vocabulary import PATTERNS, SHAPES, STYLES


def test_render_is_deterministic_and_seed_dependent():
    scene = Scene("star", "red", "large", 2, "checks", "blue")
    first = render(scene, np.random.default_rng(7))
    again = render(scene, np.random.default_rng(7))
    other = render(scene, np.random.default_rng(8))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("style", list(STYLES))
def test_every_style_draws_every_shape_visibly(style):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        image = render(Scene(shape, "yellow", "large", 1, "plain", "navy", style), rng).astype(float)
        assert image.std() > 8, f"{shape} in {style} is a flat image"


def test_shapes_cover_a_sensible_area():
    coords = np.linspace(-1.2, 1.2, 121)
    px, py = np.meshgrid(coords, coords)
    areas = {s: (shape_field(s, px, py) > 0).mean() for s in SHAPES}
    assert all(0.08 < a < 0.75 for a in areas.values()), areas


def test_captions_are_deterministic_and_varied():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    caps_a = [caption(sample_scene(rng_a), rng_a) for _ in range(300)]
    caps_b = [caption(sample_scene(rng_b), rng_b) for _ in range(300)]
    assert caps_a == caps_b
    assert len(set(caps_a)) > 200  # alt-text, not a handful of fixed sentences


def test_caption_vocabulary_is_rich():
    rng = np.random.default_rng(0)
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    tokens = tokenizer([caption(sample_scene(rng), rng) for _ in range(5000)])
    assert len(set(tokens.flatten().tolist())) >= 150
    assert int((tokens > 0).sum(1).max()) < 32  # every caption fits the context


def test_grammar_helpers():
    assert plural("box") == "boxes" and plural("plus sign") == "plus signs" and plural("red star") == "red stars"
    assert with_article("orange disc") == "an orange disc" and with_article("red disc") == "a red disc"


def test_caption_stream_batches_are_reproducible():
    tokenizer = open_clip.SimpleTokenizer(context_length=32)
    stream = CaptionStream(tokenizer, batch_size=8, steps=3, seed=5)
    batches = list(stream)
    assert len(batches) == 3
    assert batches[1].images.shape == (8, 3, 32, 32)
    again = stream.batch(1)
    assert again.captions == batches[1].captions and (again.images == batches[1].images).all()


def test_task_splits_are_balanced_and_cached(tmp_path):
    spec = TASKS["counts"]
    train = load_embedded_task("counts", "train", root=tmp_path)
    assert train.classnames == list(spec.classnames)
    assert np.bincount(train.targets).tolist() == [spec.per_class["train"]] * len(spec.classes)
    assert (tmp_path / "embedded").is_dir() and any((tmp_path / "embedded").iterdir())
    cached = load_embedded_task("counts", "train", root=tmp_path)
    assert np.array_equal(cached.images, train.images)
    image, label = train[0]
    assert image.size == (32, 32) and 0 <= label < 4


def test_splits_differ_and_drawing_is_deterministic():
    spec = TASKS["patterns"]
    images_a, labels_a = draw_task(spec, "val")
    images_b, labels_b = draw_task(spec, "val")
    assert np.array_equal(images_a, images_b) and np.array_equal(labels_a, labels_b)
    test_images, _ = draw_task(spec, "test")
    assert not np.array_equal(images_a[:10], test_images[:10])


def test_shifted_sets_have_a_test_split_and_a_design_draw_and_share_classes():
    from coop_tutorial.embedded.suite import DESIGN_SPLIT

    for name, spec in TASKS.items():
        if spec.source:
            assert spec.splits == ("test", DESIGN_SPLIT)
            assert spec.classnames == TASKS[spec.source].classnames
    with pytest.raises(ValueError, match="shifted test set: 'test', and 'design'"):
        load_embedded_task("shapes_sketch", "train")
    spec = TASKS["shapes_sketch"]
    design, _ = draw_task(spec, DESIGN_SPLIT)
    test, _ = draw_task(spec, "test")
    assert len(design) == 40 * len(spec.classes) and len(test) == 80 * len(spec.classes)
    assert not any(np.array_equal(d, t) for d in design[:20] for t in test[:200])  # another draw, not test images


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown embedded task"):
        load_embedded_task("shapez", "train")


def test_patterns_task_names_every_pattern():
    assert len(TASKS["patterns"].classes) == len(PATTERNS)


def test_embedded_tasks_have_default_templates():
    from coop_tutorial.templates import dataset_template

    assert dataset_template("shapes") == TASKS["shapes"].templates[0]
    assert dataset_template("eurosat") == "a centered satellite photo of {}."
    with pytest.raises(ValueError, match="No default template"):
        dataset_template("not_a_task")


def test_every_main_task_has_at_least_six_prompts():
    for spec in TASKS.values():
        assert len(spec.templates) >= 6 and all("{}" in t for t in spec.templates), spec.name
