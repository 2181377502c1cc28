"""Wall time of a 16-shot CoOp run on the embedded model, and of the notebook sequence.

The CoOp run is what a user's first cell does: load the embedded CLIP, load the task, draw 16 shots, train
with ``CoOpConfig.embedded(16)`` (which encodes the training images' augmented views, then trains), encode the
test split and report accuracy. Each stage is timed; the total is the median over repeats. The task's images
are drawn and cached on disk before timing (a first-ever run also draws them; that time is printed apart), and
the Python start-up plus ``import coop_tutorial`` is measured once in a fresh process.

The notebook sequence runs copies of ``notebooks/*.ipynb`` with ``jupyter nbconvert --execute`` in a temporary
folder outside the checkout (nothing in the checkout changes), with ``OMP_NUM_THREADS`` set to ``--threads`` and,
by default, an empty ``COOP_DATA`` folder: a cold start, as for a new user. When there are no notebooks it says
so and skips.

    python benchmarks/bench_end_to_end.py                  # task patterns, 3 repeats, then the notebooks
    python benchmarks/bench_end_to_end.py --no-notebooks
    python benchmarks/bench_end_to_end.py --smoke          # 1 shot, 1 epoch, random weights, no notebooks
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import _common as C  # noqa: E402  (puts the repository on sys.path)

import coop_tutorial as ct
from coop_tutorial.evaluation import score

NOTEBOOK_TARGET_S = 600  # the whole notebook sequence in <= 10 minutes
RUN_TARGET_S = 30  # a 16-shot run in <= 30 s


def coop_run(task: str, shots: int, seed: int, pretrained: Optional[str], epochs: Optional[int]) -> dict:
    """Seconds of each stage of one CoOp run, and its test accuracy (%)."""
    stages: dict[str, float] = {}
    start = time.perf_counter()
    clip = ct.load_clip("tiny", pretrained=pretrained)
    stages["load model"] = time.perf_counter() - start
    tick = time.perf_counter()
    train, test = ct.load_task(task, "train"), ct.load_task(task, "test")
    subset = ct.few_shot_split(train, shots, seed=seed)
    stages["load task + few-shot draw"] = time.perf_counter() - tick
    config = ct.CoOpConfig.embedded(shots, seed=seed, progress=False, **({} if epochs is None else {"epochs": epochs}))
    tick = time.perf_counter()
    result = ct.train_coop(clip, subset, config=config)
    train_total = time.perf_counter() - tick
    stages[f"encode train views (x{config.n_views})"] = result.encode_seconds
    stages[f"train ({config.epochs} epochs)"] = train_total - result.encode_seconds
    tick = time.perf_counter()
    accuracy = 100 * score(result.classifier, ct.encode_dataset(clip, test, progress=False))
    stages["encode test + evaluate"] = time.perf_counter() - tick
    stages["total"] = time.perf_counter() - start
    return {"stages": stages, "accuracy": accuracy, "epochs": config.epochs, "n_train": len(subset),
            "n_test": len(test)}


def import_seconds() -> float:
    """Wall time of a fresh ``python -c "import coop_tutorial"`` (interpreter start-up included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import coop_tutorial"], check=True, cwd=C.REPO,
                   capture_output=True)
    return time.perf_counter() - start


def run_notebooks(folder: Path, threads: int, timeout: int,
                  data_root: Optional[Path] = None) -> Optional[list[dict]]:
    """Execute copies of the notebooks of ``folder`` in order; None if there are none.

    The copies run in a temporary folder outside the checkout, so nothing in the checkout changes (executed
    inside a checkout the notebooks refresh ``docs/figures``). ``COOP_DATA`` points at ``data_root``, or by
    default at an empty folder: a cold start, where every task is drawn and every CoOp run trained, as for a
    new user (the notebooks share a cache of trained runs, so a second run is much faster).
    """
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        return None
    rows = []
    with tempfile.TemporaryDirectory() as work:
        data = Path(data_root).resolve() if data_root is not None else Path(work) / "data"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "COOP_DATA": str(data)}
        for notebook in notebooks:
            copy = Path(work) / notebook.name
            shutil.copyfile(notebook, copy)
            command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                       f"--ExecutePreprocessor.timeout={timeout}", str(copy)]
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
            seconds = time.perf_counter() - start
            status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            rows.append({"notebook": notebook.name, "wall time": C.fmt_seconds(seconds), "status": status,
                         "_s": seconds, "_ok": done.returncode == 0,
                         "_error": "" if done.returncode == 0 else _cell_error(done.stderr)})
    return rows


def _cell_error(stderr: str, limit: int = 1200) -> str:
    """The failing cell and its error from nbconvert's stderr, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    start = text.find("An error occurred while executing the following cell")
    return (text[start:] if start >= 0 else text)[-limit:].strip()


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="patterns")
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="seeds 1..N (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="override CoOpConfig.embedded(shots).epochs")
    C.add_embedded_weights_argument(parser)
    parser.add_argument("--notebooks", type=Path, default=C.REPO / "notebooks", help="folder of *.ipynb")
    parser.add_argument("--no-notebooks", action="store_true", help="skip the notebook sequence")
    parser.add_argument("--notebook-timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--notebook-data", type=Path, default=None,
                        help="COOP_DATA for the notebooks (default: an empty folder, a cold start); e.g. "
                             "notebooks/data to reuse the runs a previous execution cached")
    C.add_common_arguments(parser, "1 shot, 1 epoch, 1 repeat, random weights")
    args = parser.parse_args(argv)
    if args.smoke:
        args.shots, args.epochs, args.repeats, args.embedded_pretrained, args.no_notebooks = 1, 1, 1, "random", True
    threads = C.set_threads(args.threads)
    print(C.machine_header(threads, "bench_end_to_end: a 16-shot CoOp run and the notebook sequence"))
    pretrained, note = C.embedded_weights(args.embedded_pretrained)

    first_draw, _ = C.timed(lambda: (ct.load_task(args.task, "train"), ct.load_task(args.task, "test")))
    start_up = import_seconds()
    runs = [coop_run(args.task, args.shots, seed, pretrained, args.epochs) for seed in range(1, args.repeats + 1)]
    print(f"\n## CoOp run: task {args.task!r}, {args.shots} shots ({runs[0]['n_train']} training images, "
          f"{runs[0]['n_test']} test images), CoOpConfig.embedded({args.shots}), {args.repeats} repeats (seeds)\n"
          f"{note}\n")
    rows = [{"stage": stage, "wall time (median)": C.fmt_seconds(C.median(r["stages"][stage] for r in runs)),
             "min - max": f"{C.fmt_seconds(min(r['stages'][stage] for r in runs))} - "
                          f"{C.fmt_seconds(max(r['stages'][stage] for r in runs))}"}
            for stage in runs[0]["stages"]]
    print(C.markdown_table(rows))
    total = C.median(r["stages"]["total"] for r in runs)
    accs = [r["accuracy"] for r in runs]
    print(f"\ntest accuracy per seed: {', '.join(f'{a:.1f}%' for a in accs)}"
          + (" (random weights: meaningless)" if pretrained == "random" else ""))
    print(f"not in the total: python start-up + import coop_tutorial {C.fmt_seconds(start_up)} (fresh process); "
          f"loading the task's cached images {C.fmt_seconds(first_draw)} before timing (drawn on a first-ever run)")
    summary = (f"{args.shots}-shot CoOp run on the embedded model {C.fmt_seconds(total)} (median of {args.repeats}; "
               f"{C.fmt_seconds(total + start_up)} with Python start-up and import); target <= {RUN_TARGET_S} s "
               f"{C.holds(total <= RUN_TARGET_S)} (with start-up: {C.holds(total + start_up <= RUN_TARGET_S)})")

    if args.no_notebooks:
        print("\n## Notebook sequence: skipped (--no-notebooks / --smoke)")
        summary += "; notebooks not run"
    else:
        notebook_rows = run_notebooks(args.notebooks, threads, args.notebook_timeout, args.notebook_data)
        if notebook_rows is None:
            print(f"\n## Notebook sequence: skipped, no notebooks in {args.notebooks}")
            summary += "; notebooks: none to run yet"
        else:
            nb_total = sum(r["_s"] for r in notebook_rows)
            all_ok = all(r["_ok"] for r in notebook_rows)
            cache = (f"COOP_DATA={args.notebook_data} (its cached runs reused)" if args.notebook_data
                     else "an empty COOP_DATA folder (cold start: tasks drawn, every CoOp run trained)")
            print(f"\n## Notebook sequence: jupyter nbconvert --execute on copies outside the checkout, "
                  f"OMP_NUM_THREADS={threads}, {cache}\n")
            print(C.markdown_table([{k: v for k, v in r.items() if not k.startswith("_")} for r in notebook_rows]))
            for r in notebook_rows:
                if not r["_ok"]:
                    print(f"\n{r['notebook']} failed:\n{r['_error']}")
            print(f"\ntotal: {C.fmt_seconds(nb_total)}" + ("" if all_ok else " (failed notebooks: up to the failing cell)"))
            failed = [r["notebook"] for r in notebook_rows if not r["_ok"]]
            if failed:  # a failed notebook stops at the failing cell: its time is partial
                verdict = (f"NOT ASSESSABLE ({len(failed)} failed: {', '.join(failed)}; their times stop at the "
                           f"failing cell, so the total is a lower bound)")
            else:
                verdict = C.holds(nb_total <= NOTEBOOK_TARGET_S)
            summary += (f"; {len(notebook_rows)} notebooks {C.fmt_seconds(nb_total)}, target <= "
                        f"{NOTEBOOK_TARGET_S // 60} min {verdict}")
    print(f"\nSUMMARY: {summary}.")


if __name__ == "__main__":
    main()
