"""Course assignments from one source: otter-grader master notebooks -> student and autograder versions.

The masters live in ``notebooks/assignments/`` (otter-grader's master-notebook format: each question holds the
solution and test cells that call the self-checks of ``coop_tutorial.exercises``). This module runs
``otter assign`` on them and, for hand-outs on Colab, writes into each student notebook the address from which
its setup cell downloads the assignment's tests (Colab opens a single notebook, without the ``tests/`` folder
that ``grader.check`` reads). How an instructor uses it: ``docs/teaching.md``.

    python -m coop_tutorial.teaching build                       # notebooks/assignments -> dist/assignments
    python -m coop_tutorial.teaching build --tests-url https://raw.githubusercontent.com/ORG/COURSE/main/hw
    python -m coop_tutorial.teaching grade dist/assignments/a_prompt/autograder/a_prompt-autograder_*.zip sub.ipynb

Needs the ``[teaching]`` extra (``pip install "coop-tutorial[teaching]"``: otter-grader).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Optional, Sequence, Union

# The line of each master's setup cell that `build --tests-url` rewrites in the student version.
TESTS_URL_LINE = re.compile(r"^TESTS_URL = None\b.*$", flags=re.MULTILINE)


def _otter() -> list[str]:
    try:
        import otter  # noqa: F401 - only to say how to install it when it is missing
    except ImportError:
        raise ImportError("otter-grader is not installed: pip install \"coop-tutorial[teaching]\" (or pip install "
                          "otter-grader).") from None
    return [sys.executable, "-m", "otter"]


def masters(masters_dir: Union[str, Path] = "notebooks/assignments") -> list[Path]:
    """The master notebooks, in name order (``a_prompt.ipynb``, ``b_text.ipynb``, ...)."""
    paths = sorted(Path(masters_dir).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No master notebooks in {masters_dir}; run from the repository root or pass "
                                f"--masters notebooks/assignments.")
    return paths


def build(masters_dir: Union[str, Path] = "notebooks/assignments", out: Union[str, Path] = "dist/assignments",
          tests_url: Optional[str] = None, only: Optional[Sequence[str]] = None) -> dict[str, Path]:
    """Run ``otter assign`` on every master: ``out/<name>/student/`` (the hand-out: notebook + ``tests/``) and
    ``out/<name>/autograder/`` (solutions, all tests, ``<name>-autograder_*.zip`` for ``otter run``).

    Args:
        tests_url: where you will publish the student folders (``<tests_url>/<name>/tests/q1.py`` must be
            downloadable); written into each student notebook so that its setup cell fetches the tests on
            Colab. Without it the notebooks grade themselves in Jupyter only (the tests folder sits beside them).
        only: names (stems) of the masters to build; default all.

    Returns ``{name: out/<name>}``.
    """
    _otter()
    from otter.assign import main as assign  # in-process: one import of otter for all masters

    built = {}
    for master in masters(masters_dir):
        if only and master.stem not in only:
            continue
        result = Path(out) / master.stem
        # no_run_tests: otter would execute every solution notebook once more; the test suite does that.
        assign(str(master), str(result), no_pdfs=True, no_run_tests=True)
        if tests_url:
            _write_tests_url(result / "student" / master.name, f"{tests_url.rstrip('/')}/{master.stem}/tests")
        built[master.stem] = result
    return built


def _write_tests_url(notebook: Path, url: str) -> None:
    nb = json.loads(notebook.read_text())
    found = False
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "code" and TESTS_URL_LINE.search(source):
            cell["source"] = TESTS_URL_LINE.sub(f"TESTS_URL = {url!r}", source, count=1)
            found = True
    if not found:
        raise ValueError(f"{notebook} has no line 'TESTS_URL = None' in a code cell; every master's setup cell "
                         f"needs one (see docs/teaching.md).")
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def fetch_tests(tests_url: Optional[str], questions: Sequence[str], tests_dir: Union[str, Path] = "tests") -> Path:
    """Download ``<tests_url>/<q>.py`` for each question into ``tests_dir`` (what a student notebook's setup cell
    does on Colab, where the notebook arrives without its ``tests/`` folder)."""
    if not tests_url:
        raise ValueError("This notebook does not say where its tests are published (TESTS_URL is None), so "
                         "grader.check cannot run on Colab. Ask your instructor for the published version, or run "
                         "the self-checks directly, e.g. `from coop_tutorial.exercises import check_prompt_layout; "
                         "check_prompt_layout(build_prompts)`.")
    folder = Path(tests_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for question in questions:
        url = f"{tests_url.rstrip('/')}/{question}.py"
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - an https URL the instructor chose
            (folder / f"{question}.py").write_bytes(response.read())
    return folder


def grade(autograder_zip: Union[str, Path], submission: Union[str, Path], output_dir: Union[str, Path] = ".") -> dict:
    """Grade one submission locally (``otter run``: no Docker; executes the notebook in this environment).

    Returns otter's results (``output_dir/results.json``): per question, score and the test output with hints.
    """
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    run = subprocess.run(_otter() + ["run", "-a", str(autograder_zip), "-o", str(output_dir), str(submission)],
                         capture_output=True, text=True)
    results = Path(output_dir) / "results.json"
    if run.returncode != 0 or not results.exists():
        raise RuntimeError(f"otter run failed on {submission}:\n{run.stdout}\n{run.stderr}")
    return json.loads(results.read_text())


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="student and autograder versions of every master")
    b.add_argument("--masters", default="notebooks/assignments")
    b.add_argument("--out", default="dist/assignments")
    b.add_argument("--tests-url", default=None, help="where the student folders will be published (for Colab)")
    b.add_argument("--only", nargs="*", default=None, help="names of masters to build (default: all)")
    g = sub.add_parser("grade", help="grade one submission with an autograder zip (otter run, no Docker)")
    g.add_argument("autograder")
    g.add_argument("submission")
    g.add_argument("--out", default=".")
    args = parser.parse_args(argv)
    if args.command == "build":
        for name, path in build(args.masters, args.out, args.tests_url, args.only).items():
            print(f"{name}: {path / 'student'} (hand out), {path / 'autograder'} (grade)")
    else:
        results = grade(args.autograder, args.submission, args.out)
        tests = [t for t in results["tests"] if t.get("max_score") is not None]
        for test in tests:
            print(f"{test['name']}: {test['score']:g} / {test['max_score']:g}")
            if test["score"] < test["max_score"]:
                print("    " + test.get("output", "").strip().replace("\n", "\n    "))
        print(f"total: {sum(t['score'] for t in tests):g} / {sum(t['max_score'] for t in tests):g} "
              f"(written questions are graded by hand)")


if __name__ == "__main__":
    main()
