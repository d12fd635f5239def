# ganforge: the two commands of the README.
#   make demo   set up .venv, train DEMO_RECIPE (dcgan-mnist-quick: the book's DCGAN at a quarter of its width,
#               which reaches recognisable digits on a CPU in 10 minutes) on the bundled MNIST digits for
#               DEMO_SECONDS, evaluate it, then print where the samples, metrics and report are
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganforge-installed
# On a machine without an NVIDIA GPU we install the CPU build of torch before ganforge, so that ganforge's
# plain `torch>=2.1` requirement is already satisfied and pip never pulls a multi-GB CUDA build. On this
# project's machines the CPU wheel of torch 2.13.0 lies on disk; elsewhere use e.g.
#   make test TORCH_CPU="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH_CPU ?= torch==2.13.0
TORCH_GPU ?= torch
DEMO_SECONDS ?= 600
DEMO_RECIPE ?= dcgan-mnist-quick
DEMO_OUT ?= runs/demo

.PHONY: demo test venv bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install -q $(TORCH_GPU); else $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ganforge train $(DEMO_RECIPE) --time-limit $(DEMO_SECONDS) --out $(DEMO_OUT) --force
	$(VENV)/bin/ganforge eval $(DEMO_OUT) --metrics classes,fid,kid,is

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/dcgan_mnist.py

clean:
	rm -rf $(VENV) runs .pytest_cache
