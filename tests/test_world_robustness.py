"""The world report's robustness targets read the paper's claim by its meaning."""
import pandas as pd

from coop_tutorial.embedded.report import robustness_checks, world_checks

SETS = ["shapes", "shapes_v2", "shapes_sketch", "shapes_hard", "shapes_painting"]


def _shift(zero, probe, coop):
    return pd.DataFrame([zero, probe, coop], index=["zero_shot", "linear_probe", "coop"], columns=SETS, dtype=float)


def _summary(best):
    return pd.DataFrame({"best_prompt": [best]}, index=["shapes"])


def test_a_world_with_the_papers_pattern_passes_every_robustness_target():
    world = _shift([60, 52, 40, 30, 50], [58, 45, 20, 15, 30], [66, 57, 41, 31, 52])
    checks = robustness_checks(_summary(62), world)
    assert len(checks) == 6 and all(ok for _, ok, _ in checks), checks


def test_the_papers_rn50_table_misses_two_margins_by_a_hair():
    # RN50's domain-generalisation table (ImageNet, -V2, -Sketch, -A, -R; REFERENCE.md): -R is only 2.2 points
    # harder than ImageNet for zero-shot, and on -Sketch the probe loses 1.48x (36.8 vs 24.9 points), not 1.5x
    paper = _shift([58.2, 51.3, 33.3, 21.7, 56.0], [55.9, 46.0, 19.1, 12.7, 34.9], [63.3, 55.4, 34.7, 23.1, 56.6])
    checks = {name: ok for name, ok, _ in robustness_checks(_summary(58.2), paper)}
    failed = [name for name, ok in checks.items() if not ok]
    assert [name.split(" ")[0] for name in failed] == ["every", "the"], failed


def test_the_previous_world_fails_by_meaning_where_it_passed_by_letter():
    # the shipped checkpoint before the shifted sets were redrawn (revision 1): CoOp under zero-shot on the source, zero-shot gaining on sketches
    old = _shift([52.6, 52.1, 62.3, 11.7, 37.0], [46.7, 44.1, 44.0, 11.9, 32.8], [49.9, 49.9, 60.5, 12.7, 34.5])
    checks = {name: (ok, detail) for name, ok, detail in robustness_checks(_summary(53.5), old)}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    assert len(failed) == 5, failed  # only "the probe is no more than 3 points above zero-shot" holds
    harder = next(v for k, v in checks.items() if k.startswith("every shifted set"))
    assert "shapes_sketch +9.7" in harder[1]  # a zero-shot gain prints signed, as a gain
    kept = next(v for k, v in checks.items() if "half its source gain" in k)
    assert not kept[0] and "gain on shapes -2.7" in kept[1]  # no gain on the source: nothing to keep


def test_a_probe_ratio_needs_zero_shot_to_lose():
    # the probe "loses 1.5x" a zero-shot change that is a gain: not the paper's finding
    gains = _shift([50, 45, 60, 40, 40], [50, 35, 45, 20, 20], [55, 52, 62, 42, 44])
    checks = {name: ok for name, ok, _ in robustness_checks(_summary(50), gains)}
    assert not checks["the probe loses >= 1.5x the points zero-shot loses (zero-shot losing) on >= 2 shifted sets, "
                      "the sketch set among them"]


def test_world_checks_include_the_robustness_targets_when_the_source_is_reported():
    summary = pd.DataFrame({"best_prompt": [60.3], "worst_prompt": [50.0], "spread": [10.3], "mean_prompt": [55.0],
                            "probe_16": [55.9], "probe_minus_best": [-4.4], "coop_1": [58.0], "coop_2": [59.0],
                            "coop_16": [63.3], "coop16_minus_best": [3.0]}, index=["shapes"])
    paper = _shift([58.2, 51.3, 33.3, 21.7, 56.0], [55.9, 46.0, 19.1, 12.7, 34.9], [63.3, 55.4, 34.7, 23.1, 56.6])
    names = [name for name, _, _ in world_checks(summary, paper, coop=True)]
    assert any("half its source gain" in name for name in names)
    assert not any("half its source gain" in name for name, _, _ in world_checks(summary, paper, coop=False))


def test_hand_drawn_sketches_are_deterministic_and_not_the_corpus_drawings():
    import numpy as np

    from coop_tutorial.embedded.corpus import sample_scene
    from coop_tutorial.embedded.render import Scene, render

    scene = Scene("star", "red", "large", 1, "plain", "white", "sketch", rough=True)
    first, again = render(scene, np.random.default_rng(3)), render(scene, np.random.default_rng(3))
    clean = render(Scene("star", "red", "large", 1, "plain", "white", "sketch"), np.random.default_rng(3))
    assert np.array_equal(first, again) and not np.array_equal(first, clean)
    rng = np.random.default_rng(0)
    assert not any(sample_scene(rng).rough for _ in range(200))  # the corpus never draws them


def test_a_revised_shifted_set_gets_its_own_cache_and_the_others_keep_theirs():
    from coop_tutorial.embedded.suite import TASKS, WORLD_VERSION, cache_name

    assert cache_name(TASKS["shapes_sketch"], "test") == f"shapes_sketch-test-v{WORLD_VERSION}r1.npz"
    assert cache_name(TASKS["shapes_v2"], "test") == f"shapes_v2-test-v{WORLD_VERSION}r1.npz"
    assert cache_name(TASKS["shapes"], "test") == f"shapes-test-v{WORLD_VERSION}.npz"
    assert TASKS["shapes_v2"].fixed["size"] == "small" and TASKS["shapes_sketch"].fixed["rough"]


def test_the_papers_table_and_a_worlds_side_by_side():
    import pytest

    from coop_tutorial.shift_study import paper_shift_table, shift_checks, shift_roles, side_by_side

    paper = paper_shift_table()
    assert paper.loc["linear_probe", "imagenet_sketch"] == 19.07 and paper.loc["coop", "imagenet_v2"] == 55.4
    assert shift_roles(list(paper.columns)) == {"imagenet": "source", "imagenet_v2": "-V2",
                                                "imagenet_sketch": "-Sketch", "imagenet_a": "-A", "imagenet_r": "-R"}
    world = _shift([60, 52, 40, 30, 50], [58, 45, 20, 15, 30], [66, 57, 41, 31, 52])
    both = side_by_side(world)
    assert both.loc["coop", ("-Sketch", "paper RN50")] == 34.7 and both.loc["coop", ("-Sketch", "this world")] == 41
    assert both.columns[0] == ("source", "paper RN50") and list(both.index) == ["zero_shot", "linear_probe", "coop"]
    assert len(shift_checks(world)) == 5  # no best prompt: the first claim is not checked
    with pytest.raises(ValueError, match="name it"):
        shift_roles(["shapes", "shapes_night"])


def test_drops_side_by_side_and_the_claims_table():
    from coop_tutorial.shift_study import PAPER_RN50_BEST_PROMPT, claims_table, paper_shift_table, side_by_side

    world = _shift([60, 52, 40, 30, 50], [58, 45, 20, 15, 30], [66, 57, 41, 31, 52])
    lost = side_by_side(world, drops=True)
    assert lost.loc["zero_shot", ("-V2", "this world")] == 8
    assert round(lost.loc["linear_probe", ("-Sketch", "paper RN50")], 2) == 36.8
    claims = claims_table({"paper RN50": (paper_shift_table(), PAPER_RN50_BEST_PROMPT), "world": (world, 62)})
    assert claims["world"].all() and claims["paper RN50"].sum() == 4 and len(claims) == 6


def test_the_papers_own_tables_judge_every_target():
    from coop_tutorial.shift_study import paper_best_prompt, paper_shift_table, paper_verdicts, sketch_checks

    vit = paper_shift_table("ViT-B/16")
    assert vit.loc["linear_probe", "imagenet_sketch"] == 34.8 and paper_best_prompt("ViT-B/16") == 66.7
    verdicts = paper_verdicts()
    # the two older sketch targets: the paper's CoOp loses more than zero-shot on -Sketch (RN50 28.6 vs 24.9)
    # and its probe loses about 1.5x, not 2x, in both tables
    for name in ("sketch shift: probe loses >= 2x the points zero-shot loses",
                 "sketch shift: CoOp loses no more than zero-shot, the probe more"):
        assert verdicts[name] == {"paper RN50": False, "paper ViT-B/16": False}
    ratio = next(v for k, v in verdicts.items() if k.startswith("the probe loses >= 1.5x"))
    assert ratio == {"paper RN50": False, "paper ViT-B/16": True}  # ViT-B/16: 31.1 vs 20.5 on -Sketch (1.52x)
    assert all(type(ok) is bool for per in verdicts.values() for ok in per.values())
    # a world with the pattern the older targets describe passes them; one without a sketch set has none
    world = _shift([60, 52, 40, 30, 50], [58, 45, 15, 15, 30], [66, 57, 47, 31, 52])
    assert all(ok for _, ok, _ in sketch_checks(world))
    assert sketch_checks(world.drop(columns="shapes_sketch")) == []
    import pytest
    with pytest.raises(ValueError, match="RN50"):
        paper_shift_table("RN101")


def test_the_report_prints_the_papers_verdict_beside_a_target():
    from coop_tutorial.embedded.report import WorldReport, format_report

    summary = pd.DataFrame({"best_prompt": [60.3], "best_template": ["a {}."]}, index=["shapes"])
    prompts = pd.DataFrame({"task": ["shapes"], "template": ["a {}."], "accuracy": [60.3]})
    checks = [("sketch shift: probe loses >= 2x the points zero-shot loses", False, "probe -1.0, zero-shot -2.0"),
              ("best hand-written prompt in [35, 85] % on every task", True, "shapes 60.3")]
    text = format_report(WorldReport(prompts, summary, None, checks))
    lines = [line for line in text.splitlines() if line.startswith(("  PASS", "  FAIL"))]
    assert lines[0].endswith("[paper RN50: FAIL, paper ViT-B/16: FAIL]") and lines[1].endswith("shapes 60.3")
