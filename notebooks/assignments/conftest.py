"""The assignment masters are not run by nbval (`pytest tests notebooks --nbval-lax`).

A master is otter-grader's source for two notebooks: `otter assign` turns it into a student version (solutions
removed, checks that fail with hints until the student's code is right) and an autograder version. What must hold is
tested on those generated notebooks, not on the master: tests/test_assignments.py builds them, runs every student
version (each check fails with a hint, no cell crashes) and grades every solution with `otter run` (full marks).
Running the masters here as well would execute every solution twice. Generated folders (`dist/`) are ignored too,
should anyone build them inside this folder.
"""
collect_ignore_glob = ["*.ipynb", "dist/*"]
