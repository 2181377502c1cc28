"""The reproduce grid: validation, resumable atomic runs, recorded failures, the report, and Dask (a real
2-worker LocalCluster, and a scheduler that does not answer)."""
from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from coop_tutorial import reproduce as rp
from coop_tutorial.reproduce import RunSpec, make_grid, run_grid

pytestmark = pytest.mark.usefixtures("single_thread")


def small_grid(**options):
    """The embedded grid, cut down: 2 tasks, 1 shot, seeds 1-2, 2 epochs (smoke numbers, not the recipe's)."""
    return make_grid(["few_shot"], ["shapes", "counts"], shots=[1], seeds=[1, 2], epochs=2, **options)


def test_grid_spec_is_validated_before_anything_runs():
    with pytest.raises(ValueError, match=r"Unknown protocol\(s\) \['few-shot'\].*'few_shot'"):
        make_grid(["few-shot"])
    with pytest.raises(ValueError, match="base_to_new protocol is not part of this grid yet.*coop_tutorial.base_to_new"):
        make_grid(["base_to_new"])
    with pytest.raises(ValueError, match="Unknown dataset 'imagenet' for the embedded world.*shapes"):
        make_grid(["few_shot"], ["imagenet"])
    with pytest.raises(ValueError, match="Unknown backbone 'RN50' for the embedded world"):
        make_grid(["few_shot"], backbones=["RN50"])
    with pytest.raises(ValueError, match="Unknown backbone 'RN51'.*RN50"):
        make_grid(["few_shot"], world="real", backbones=["RN51"])
    with pytest.raises(ValueError, match="shots must be"):
        make_grid(["few_shot"], shots=[0])
    full = make_grid()  # the default embedded grid: 7 tasks x 5 shots x 3 seeds + domain generalisation x 3 seeds
    assert len(full) == 7 * 5 * 3 + 3
    real = make_grid(world="real", backbones=["RN50", "ViT-B/16"], datasets=["Flowers102", "dtd"])
    assert {s.dataset for s in real} == {"oxford_flowers", "dtd", "imagenet"} and len(real) == 2 * (2 * 15 + 3)


def test_grid_runs_writes_atomic_results_and_resumes(tmp_path):
    specs = small_grid()
    outcome = run_grid(specs, tmp_path, progress=False)
    assert (outcome.ran, outcome.skipped, outcome.failed) == (4, 0, [])
    record = json.loads((tmp_path / specs[0].key).read_text())
    assert record["status"] == "ok" and record["spec"] == specs[0].settings()
    assert 0 <= record["accuracy"]["shapes"] <= 100 and (tmp_path / specs[0].key).with_suffix(".safetensors").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    again = run_grid(specs, tmp_path, progress=False)
    assert (again.ran, again.skipped) == (0, 4)  # nothing to do
    (tmp_path / specs[1].key).unlink()  # an interrupted grid: one run never finished
    resumed = run_grid(specs, tmp_path, progress=False)
    assert (resumed.ran, resumed.skipped) == (1, 3)
    with pytest.raises(ValueError, match="other settings.*precision"):
        run_grid(small_grid(precision="bf16"), tmp_path, progress=False)


def test_a_failed_run_is_recorded_and_does_not_stop_the_others(tmp_path):
    good = small_grid()[:1]
    bad = [RunSpec("few_shot", "counts", "tiny", 1, 1, precision="fp16", epochs=2)]  # fp16 does not run on CPU
    outcome = run_grid(bad + good, tmp_path, progress=False)
    assert outcome.ran == 2 and len(outcome.failed) == 1
    failed = json.loads((tmp_path / bad[0].key).read_text())
    assert failed["status"] == "failed" and "fp16' needs a GPU" in failed["error"] and failed["traceback"]
    assert json.loads((tmp_path / good[0].key).read_text())["status"] == "ok"
    assert "Failed runs (1" in rp.report(tmp_path, figure=False)
    assert run_grid(bad + good, tmp_path, progress=False, retry_failed=False).ran == 0


def fake_record(tmp_path, spec, accuracy, zero_shot=None):
    rp.write_result(tmp_path, spec, {"status": "ok", "format": rp.RESULT_FORMAT, "spec": spec.settings(),
                                     "accuracy": accuracy, "zero_shot": zero_shot or {}})


def test_report_mean_std_as_parse_test_res_beside_the_papers_numbers(tmp_path):
    targets = ["imagenet", "imagenet_v2"]
    for seed, values in zip((1, 2, 3), ([62.0, 55.0], [64.0, 56.0], [69.0, 54.0])):
        spec = RunSpec("domain_generalization", "imagenet", "RN50", 16, seed, world="real")
        fake_record(tmp_path, spec, dict(zip(targets, values)), {"imagenet": 58.0, "imagenet_v2": 51.0})
    table = rp.summarize(rp.load_results(tmp_path))
    row = table[(table["target"] == "imagenet") & (table["method"] == "coop")].iloc[0]
    assert row["mean"] == pytest.approx(65.0) and row["std"] == pytest.approx(np.std([62.0, 64.0, 69.0]))
    assert row["ours"] == "65.00 +- 2.94" and row["seeds"] == 3  # ddof=0: 2.94, not ddof=1's 3.61
    assert row["paper"] == 63.3 and "domain generalisation table" in row["source"]
    assert row["ours_minus_paper"] == pytest.approx(1.7)
    zero = table[(table["target"] == "imagenet_v2") & (table["method"] == "zero_shot")].iloc[0]
    assert (zero["paper"], zero["seeds"]) == (51.3, 1)
    text = rp.report(tmp_path)
    assert "| imagenet  | imagenet    | RN50       | coop      |      16 | 65.00 +- 2.94 |" in text
    assert (tmp_path / "report.md").read_text() == text


def test_report_figure_and_command(tmp_path, capsys):
    for shots in (1, 2):
        for seed in (1, 2):
            spec = RunSpec("few_shot", "shapes", "tiny", shots, seed, epochs=2)
            fake_record(tmp_path, spec, {"shapes": 40.0 + shots + seed}, {"shapes": 50.0})
    assert rp.main(["--report-only", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "42.50 +- 0.50" in printed and (tmp_path / "report.png").exists()
    assert "epochs 2 (smoke: not the paper's recipe)" in printed
    assert rp.main(["--protocols", "few-shot", "--out", str(tmp_path)]) == 2  # a clear error, no traceback
    assert "Unknown protocol" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_and_keeps_finished_results(tmp_path, allow_loopback):
    specs = small_grid()
    run_grid(specs[:1], tmp_path, progress=False)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(rp.SchedulerUnreachable, match=f"No Dask scheduler answers at {address}.*1 finished result"):
        run_grid(specs, tmp_path, scheduler=address, connect_timeout=2, progress=False)
    assert json.loads((tmp_path / specs[0].key).read_text())["status"] == "ok"


@pytest.mark.slow
def test_the_embedded_grid_on_a_two_worker_local_cluster(tmp_path, allow_loopback):
    specs = small_grid() + make_grid(["domain_generalization"], seeds=[1], epochs=2)
    outcome = run_grid(specs, tmp_path, workers=2, progress=False)
    assert (outcome.ran, outcome.failed) == (5, [])
    records = [json.loads((tmp_path / s.key).read_text()) for s in specs]
    assert all(r["status"] == "ok" for r in records)
    assert set(records[-1]["accuracy"]) == {"shapes", "shapes_v2", "shapes_sketch", "shapes_hard", "shapes_painting"}
    inline = run_grid(specs[:1], tmp_path / "inline", progress=False)  # the same run in-process: same numbers
    assert inline.failed == [] and json.loads((tmp_path / "inline" / specs[0].key).read_text())["accuracy"] == \
        records[0]["accuracy"]


def test_cli_reproduce_subcommand(tmp_path, capsys):
    from coop_tutorial import cli

    cli.main(["reproduce", "--report-only", "--out", str(tmp_path)])
    assert "No finished runs yet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        cli.main(["reproduce", "--report-only", "--out", str(tmp_path / "none")])
    assert exited.value.code == 2 and "no results folder" in capsys.readouterr().out


def test_sweeps_run_the_official_uncached_loop_when_asked():
    from coop_tutorial import CoOpConfig, load_clip
    from coop_tutorial.sweeps import fit_coop, shot_sweep
    from coop_tutorial.task_features import encode_task

    clip = load_clip("tiny")
    task = encode_task(clip, "counts", n_views=2)
    official = fit_coop(clip, task, 1, 1, CoOpConfig.embedded(1, epochs=2, cached=False))
    cached = fit_coop(clip, task, 1, 1, CoOpConfig.embedded(1, epochs=2))
    assert official.train_features is None and cached.train_features is not None  # fresh crops vs cached views
    assert not torch.equal(official.learner.ctx, cached.learner.ctx)
    sweep = shot_sweep(clip, [task], shots=(1,), seeds=(1,), methods=("coop",), progress=False,
                       config=lambda k, **_: CoOpConfig.embedded(k, epochs=2, cached=False))
    assert len(sweep) == 2 and sweep["accuracy"].between(0, 100).all()
