# ganforge: the two commands of the README.
#   make demo   set up .venv, train DEMO_RECIPE (dcgan-mnist-quick: the book's DCGAN at a quarter of its width,
#               which reaches recognisable digits on a CPU in 10 minutes) on the bundled MNIST digits for
#               DEMO_SECONDS, evaluate it, then print where the samples, metrics and report are
#   make test   set up .venv, install the font packages where it can (make fonts) and run the test suite
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

.PHONY: demo test venv bench clean fonts

# Debian's font packages behind the glyphs: (four CJK styles for zi2zi-style font-to-font pairs) and emoji: sources.
# Installed with apt-get where it exists and we are root; elsewhere (or if apt fails) a line says what to install, and
# the build goes on: the tests that need these fonts skip with that reason, the rest use matplotlib's DejaVu fonts.
FONT_PACKAGES ?= fonts-arphic-ukai fonts-arphic-uming fonts-wqy-zenhei fonts-wqy-microhei fonts-noto-color-emoji

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(PY) -m pip install -q $(TORCH_GPU); else $(PY) -m pip install -q $(TORCH_CPU); fi
	$(PY) -m pip install -q -e '.[dev,text]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ganforge train $(DEMO_RECIPE) --time-limit $(DEMO_SECONDS) --out $(DEMO_OUT) --force
	$(VENV)/bin/ganforge eval $(DEMO_OUT) --metrics classes,fid,kid,is

test: $(STAMP) fonts
	$(PY) -m pytest -q

fonts:
	@if command -v dpkg >/dev/null 2>&1 && dpkg -s $(FONT_PACKAGES) >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "fonts: apt-get install $(FONT_PACKAGES)"; \
	  ( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(FONT_PACKAGES) ) >/dev/null 2>&1 || echo "fonts: apt-get failed; install $(FONT_PACKAGES) by hand" \
	    "for the glyphs: CJK fonts and emoji: (their tests are skipped until then)"; \
	else echo "fonts: no apt-get as root here; install $(FONT_PACKAGES) (or equivalent CJK and Noto Color Emoji" \
	  "fonts, passed by path) for the glyphs: CJK fonts and emoji: (their tests are skipped until then)"; fi

bench: $(STAMP)
	$(PY) bench/dcgan_mnist.py

clean:
	rm -rf $(VENV) runs .pytest_cache
