"""Every benchmark runs in its tiny configuration (``--smoke``), so the scripts keep working.

No timing is asserted: speed is reported by the benchmarks, never tested. Each script's ``main`` runs in this
process (its measurement workers, where it has any, in fresh processes as in a real run).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

pytestmark = pytest.mark.usefixtures("single_thread")  # the scripts set torch's threads; the fixture restores them


def _script(name: str) -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


def _check_report(text: str) -> str:
    """The header, at least one Markdown table and one SUMMARY line; returns the summary."""
    assert "torch threads: 1" in text
    assert "|---" in text
    summaries = [line for line in text.splitlines() if line.startswith("SUMMARY: ")]
    assert len(summaries) == 1, text
    return summaries[0]


def test_bench_training_smoke(capsys):
    _script("bench_training").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "per-epoch speed-up" in summary and "target >=20x" in summary


def test_bench_training_falls_back_to_chunks_when_ram_is_short(monkeypatch):
    # When a plain text pass would not fit in RAM, the loop runs with text_chunk_size and its row says so.
    common = _script("_common")
    monkeypatch.setattr(common, "too_big_for_ram", lambda points, n, share=0.7: 123 * 2**30)
    rows, ratios, _ = _script("bench_training").large_benchmark(
        "tiny", "random", [4], steps=1, shots=16, threads=1, batch_size=32, n_views=2, chunk=2)
    assert [row["loop"] for row in rows] == ["ours + chunks of 2", "official-style + chunks of 2"]
    assert all("123.00 GiB" in row["how"] and row["how"].startswith("1 step") for row in rows)
    assert ratios[0]["compared"] == "official-style + chunks of 2 / ours + chunks of 2"


def test_bench_text_pass_smoke(capsys):
    _script("bench_text_pass").main(["--smoke"])
    out = capsys.readouterr().out
    summary = _check_report(out)
    assert "target >=3x" in summary
    # the truncated pass is exact up to float rounding: the reported difference is tiny
    difference = float(summary.split("max abs diff ")[1].split(")")[0])
    assert difference < 1e-3


@pytest.mark.slow  # four fresh measurement processes, ~25 s on a loaded 2-core machine
def test_bench_memory_smoke(capsys):
    _script("bench_memory").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "no saving" in summary and "chunks of 4" in summary and "classes on 16 GB (est.)" in summary


def test_bench_end_to_end_smoke(capsys):
    _script("bench_end_to_end").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "CoOp run on the embedded model" in summary and "target <= 30 s" in summary


def test_notebook_runner_skips_an_empty_folder_and_times_a_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    run_notebooks = _script("bench_end_to_end").run_notebooks
    assert run_notebooks(tmp_path, threads=1, timeout=60) is None
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("answer = 6 * 7\nassert answer == 42")])
    nbformat.write(notebook, tmp_path / "01_tiny.ipynb")
    before = (tmp_path / "01_tiny.ipynb").read_bytes()
    rows = run_notebooks(tmp_path, threads=1, timeout=60)
    assert [(r["notebook"], r["status"]) for r in rows] == [("01_tiny.ipynb", "ok")]
    assert (tmp_path / "01_tiny.ipynb").read_bytes() == before  # executed copies go elsewhere


def test_run_all_smoke(capsys, tmp_path):
    code = _script("run_all").main(["--smoke", "--only", "text_pass", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "bench_text_pass.py: ok" in out and "SUMMARY:" in out
    assert "SUMMARY:" in (tmp_path / "text_pass.txt").read_text()


def test_bench_real_costs_smoke(capsys):
    _script("bench_real_costs").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "smoke run" in summary


def test_bench_precision_smoke(capsys):
    _script("bench_precision").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "bf16 - fp32 over 1 runs" in summary and "amp - fp32" in summary


def test_bench_augmentation_smoke(capsys):
    _script("bench_augmentation").main(["--smoke"])
    summary = _check_report(capsys.readouterr().out)
    assert "8 cached views vs the official loop" in summary
