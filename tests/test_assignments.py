"""The course assignments, from one source: `otter assign` turns each master in notebooks/assignments/ into a
student version and an autograder; every student version runs top to bottom with each autograded check failing
with a hint (no cell crashes); every solution gets full marks from `otter run` (local grading, no Docker).

The fast tests check the masters' bookkeeping (points and question lists agree); the slow one builds and runs
everything (167 s of CPU time; two notebooks run at a time; docs/teaching.md has the wall times).
"""
from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from coop_tutorial import teaching

MASTERS = Path(__file__).resolve().parents[1] / "notebooks" / "assignments"
NAMES = [path.stem for path in teaching.masters(MASTERS)]


def _questions(name: str) -> dict[str, dict]:
    """The question configs of a master: {name: {points, manual}}."""
    nb = nbformat.read(MASTERS / f"{name}.ipynb", as_version=4)
    questions = {}
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("# BEGIN QUESTION"):
            config = yaml.safe_load(cell.source.split("\n", 1)[1])
            questions[config["name"]] = config
    return questions


def test_there_are_the_five_assignments_and_the_project():
    assert NAMES == ["a_prompt", "b_text", "c_training", "d_zero_shot", "e_context", "f_project"]


@pytest.mark.parametrize("name", NAMES)
def test_points_and_times_in_the_intro_table_match_the_questions(name):
    nb = nbformat.read(MASTERS / f"{name}.ipynb", as_version=4)
    intro = next(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    questions = _questions(name)
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(r"^\| (q\d) \| [^|]+ \| ([\d.]+)[^|]* \| ([^|]+) \|$",
                                                          intro, flags=re.MULTILINE)}
    assert set(rows) == set(questions), f"{name}: the intro table lists {sorted(rows)}, the notebook {sorted(questions)}"
    for q, (points, time) in rows.items():
        assert float(points) == questions[q]["points"], f"{name} {q}: table says {points} points"
        assert "min" in time or "h" in time, f"{name} {q}: expected time missing"


@pytest.mark.parametrize("name", NAMES)
def test_the_colab_setup_fetches_every_autograded_question(name):
    nb = nbformat.read(MASTERS / f"{name}.ipynb", as_version=4)
    setup = next(cell.source for cell in nb.cells if cell.cell_type == "code")
    assert teaching.TESTS_URL_LINE.search(setup), f"{name}: the setup cell needs the line 'TESTS_URL = None'"
    fetched = re.search(r"fetch_tests\(TESTS_URL, \[([^\]]*)\]\)", setup).group(1)
    autograded = [q for q, config in _questions(name).items() if not config.get("manual")]
    assert re.findall(r'"(q\d+)"', fetched) == autograded


def test_build_writes_the_tests_url_into_the_setup_cell(tmp_path):
    notebook = tmp_path / "a_prompt.ipynb"
    notebook.write_text((MASTERS / "a_prompt.ipynb").read_text())
    teaching._write_tests_url(notebook, "https://example.org/course/a_prompt/tests")
    setup = next(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    assert "TESTS_URL = 'https://example.org/course/a_prompt/tests'" in setup and "TESTS_URL = None" not in setup


def test_fetch_tests_downloads_each_question(tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    for q in ("q1", "q2"):
        (published / f"{q}.py").write_text(f"name = {q!r}\n")
    folder = teaching.fetch_tests(published.as_uri(), ["q1", "q2"], tmp_path / "tests")  # file:// (no network)
    assert sorted(p.name for p in folder.iterdir()) == ["q1.py", "q2.py"]
    assert (folder / "q2.py").read_text() == "name = 'q2'\n"


def test_fetch_tests_without_a_url_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="self-checks directly"):
        teaching.fetch_tests(None, ["q1"], tmp_path / "tests")


def _execute(notebook: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in its own folder; fails on the first cell that raises."""
    out = notebook.with_name(notebook.stem + ".executed.ipynb")
    run = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                          "--ExecutePreprocessor.timeout=300", "--output", out.name, notebook.name],
                         cwd=notebook.parent, capture_output=True, text=True)
    assert run.returncode == 0, f"{notebook.name} crashed:\n{run.stderr[-3000:]}"
    return nbformat.read(out, as_version=4)


def _check_outputs(nb: nbformat.NotebookNode) -> dict[str, str]:
    """{question: text shown by its grader.check cell}."""
    shown = {}
    for cell in nb.cells:
        match = re.match(r'grader\.check\("(q\d+)"\)', cell.source) if cell.cell_type == "code" else None
        if match:
            shown[match.group(1)] = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
    return shown


@pytest.mark.slow
def test_student_versions_fail_with_hints_and_solutions_get_full_marks(tmp_path):
    built = teaching.build(MASTERS, tmp_path / "dist")
    assert sorted(built) == NAMES

    def student(name):
        return _execute(built[name] / "student" / f"{name}.ipynb")

    def solution(name):
        autograder = built[name] / "autograder"
        zip_path = next(autograder.glob(f"{name}-autograder_*.zip"))
        return teaching.grade(zip_path, autograder / f"{name}.ipynb", tmp_path / f"results-{name}")

    with ThreadPoolExecutor(max_workers=2) as pool:  # two notebooks at a time: one per core
        students = dict(zip(NAMES, pool.map(student, NAMES)))
        solutions = dict(zip(NAMES, pool.map(solution, NAMES)))

    for name in NAMES:
        autograded = [q for q, config in _questions(name).items() if not config.get("manual")]
        shown = _check_outputs(students[name])
        assert sorted(shown) == sorted(autograded), f"{name}: check cells {sorted(shown)}"
        for q, text in shown.items():
            assert "❌ Test case failed" in text and "passed" not in text, f"{name} {q}:\n{text}"
            hint = text.split("Error:", 1)[-1].strip()  # "AssertionError: <hint>"
            assert len(hint) > 30 and "Traceback" not in text, f"{name} {q} shows no hint:\n{text}"
        scores = {t["name"]: (t["score"], t["max_score"]) for t in solutions[name]["tests"] if t["name"] in autograded}
        assert sorted(scores) == sorted(autograded), f"{name}: graded {sorted(scores)}"
        for q, (score, max_score) in scores.items():
            output = next(t.get("output", "") for t in solutions[name]["tests"] if t["name"] == q)
            assert score == max_score == _questions(name)[q]["points"], f"{name} {q}: {score}/{max_score}\n{output}"
