# The few verbs people need. `make test` is the README's test command and what CI runs.
PY ?= python

.PHONY: install quickstart test test-fast notebooks bench pretrain report colab-like assignments

install:
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"

quickstart:  ## train CoOp on the embedded world and compare it with zero-shot CLIP
	$(PY) -m coop_tutorial.quickstart

test:  ## the whole suite: unit tests and every notebook under nbval
	$(PY) -m pytest tests notebooks --nbval-lax -q

test-fast:  ## unit tests without the slow ones
	$(PY) -m pytest tests -q -m "not slow"

notebooks:  ## execute every notebook in place (headless)
	$(PY) -m jupyter nbconvert --to notebook --execute --inplace notebooks/*.ipynb

bench:
	$(PY) benchmarks/run_all.py

pretrain:  ## reproduce the shipped tiny CLIP (about 20 minutes on 2 CPU cores)
	$(PY) -m coop_tutorial.pretrain --steps 2000 --out coop_tutorial/assets/tiny_clip.safetensors

report:  ## the embedded world's zero-shot / linear-probe / CoOp table
	$(PY) -m coop_tutorial.embedded.report

colab-like:  ## install the package the way Colab has it (preinstalled torch, ipywidgets 7) and run notebooks 01-02
	.ci/colab_like

assignments:  ## student and autograder notebooks of every course assignment (docs/teaching.md)
	$(PY) -m coop_tutorial.teaching build
