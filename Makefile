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

pretrain:  ## reproduce the shipped tiny CLIP: the step-2000 snapshot of a 4000-step run (about 20 minutes to it on 2 CPU cores, 40 in all)
	$(PY) -m coop_tutorial.pretrain --steps 4000 --snapshot-every 2000 --out runs/tiny_clip.safetensors
	cp runs/tiny_clip.step2000.safetensors coop_tutorial/assets/tiny_clip.safetensors
	cp runs/tiny_clip.step2000.log.csv coop_tutorial/assets/tiny_clip.log.csv
	cp runs/tiny_clip.step2000.curve.png docs/figures/pretraining_curve.png

report:  ## the embedded world's zero-shot / linear-probe / CoOp table
	$(PY) -m coop_tutorial.embedded.report

colab-like:  ## install the package the way Colab has it (preinstalled torch, ipywidgets 7) and run notebooks 01-02
	.ci/colab_like

assignments:  ## student and autograder notebooks of every course assignment (docs/teaching.md)
	$(PY) -m coop_tutorial.teaching build
