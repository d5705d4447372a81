# vtr: build the executed reproducibility book and run the tests.
#   make book        executed book  -> book/_build/html/index.html
#   make test        unit tests, smoke book (VTR_SMOKE=1), browser tests on it
#   make book-smoke  quick book     -> book/_build_smoke/_build/html/index.html
#   make book-tiny   the whole book on the tiny profile (random-init checkpoints, official formats)
#                                   -> book/_build_tiny/_build/html/index.html
#   VTR_PROFILE=paper VTR_PROFILE_FILE=my.yaml make book   the book on real checkpoints -> book/_build_paper/...
#   make chapter N=04  re-execute one chapter (notebooks/04-*.md) and rebuild the book around it
#   make testbed     retrain the shipped testbed model (make testbed-deep: the 16-layer one)
#   make clean       remove the book builds (book/_build*); the execution caches stay
#   make test-lmms   the lmms-eval model `vtr` through lmms-eval's own entry point, in .venv-lmms
# Every target creates .venv from requirements.lock first when it is missing or out of date.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.stamp

# Warnings are errors; -n reports every broken reference; --keep-going lists them all.
BOOK_FLAGS := -W -n --keep-going
# The profile (vtr/experiments/profiles.py): the testbed's book builds into book/_build, another
# profile's into book/_build_<profile>, each with its own execution cache.
PROFILE    := $(or $(VTR_PROFILE),testbed)
export VTR_PROFILE := $(PROFILE)
SUFFIX     := $(if $(filter testbed,$(PROFILE)),,_$(PROFILE))
BOOK_OUT   := $(if $(SUFFIX),book/_build$(SUFFIX),book)
BOOK_HTML  := $(BOOK_OUT)/_build/html
SMOKE_OUT  := book/_build_smoke
SMOKE_HTML := $(SMOKE_OUT)/_build/html
TINY_HTML  := book/_build_tiny/_build/html
# The cache folders must match what book/_ext/vtr_book.py picks (book/.jupyter_cache[_<profile>][_smoke]).
CACHE       := book/.jupyter_cache$(SUFFIX)
SMOKE_CACHE := book/.jupyter_cache_smoke

# Imports write their bytecode caches (the venv is installed with --no-compile). With
# PYTHONDONTWRITEBYTECODE set, every Python process (each notebook kernel, each test subprocess)
# compiles torch and transformers from source again: about 10 s each, minutes over a build.
unexport PYTHONDONTWRITEBYTECODE

# Notebook kernels: take the "python3" kernelspec of the venv, never a user-wide one.
export JUPYTER_PREFER_ENV_PATH := 1
# Silence debugpy's "frozen modules" warning printed by every kernel start.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help venv book book-smoke book-tiny chapter test test-unit test-unit-slow test-unit-fast test-books test-smoke test-tiny test-browser lint chromium testbed testbed-deep clean test-lmms

help:
	@sed -n '2,9s/^# //p' Makefile

# ------------------------------------------------------------------ environment (internal)
venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Exact pins (torch==2.13.0+cpu comes from this machine's wheel folder); nothing is upgraded.
	# --no-compile: modules are byte-compiled when first imported, not all of torch/transformers up front.
	$(PY) -m pip install --no-compile -r requirements.lock
	$(PY) -m pip install --no-compile --no-deps -e .
	# `jupyter lab` opens the MyST chapters (notebooks/*.md) as notebooks (jupytext), not as text.
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@

# ------------------------------------------------------------------ book
book: export VTR_SMOKE := 0
# A page shows results, not transformers' "Loading weights" bars (vtr's own bars are off in the chapters).
book: export HF_HUB_DISABLE_PROGRESS_BARS := 1
book: venv
	@# another profile's checkpoints: say what the build will cost before it starts
	@if [ "$(PROFILE)" != testbed ]; then \
	  $(PY) -c "from vtr.chapters.pages.introduction import gpu_hours_md; print(gpu_hours_md())"; fi
	$(PY) .ci/cache_fingerprint.py pre --cache $(CACHE) --build $(BOOK_OUT)/_build
	rc=0; $(JB) build book/ --path-output $(BOOK_OUT) $(BOOK_FLAGS) || rc=$$?; \
	$(PY) .ci/cache_fingerprint.py post --build $(BOOK_OUT)/_build --rc $$rc; \
	if [ $$rc -ne 0 ]; then echo "book build FAILED (exit $$rc)" >&2; exit $$rc; fi
	@echo "Book: $(CURDIR)/$(BOOK_HTML)/index.html   (serve: python3 -m http.server -d $(BOOK_HTML))"

book-smoke: export VTR_SMOKE := 1
book-smoke: export VTR_PROFILE := testbed
book-smoke: export HF_HUB_DISABLE_PROGRESS_BARS := 1
book-smoke: venv
	$(PY) .ci/cache_fingerprint.py pre --cache $(SMOKE_CACHE) --build $(SMOKE_OUT)
	rc=0; $(JB) build book/ --path-output $(SMOKE_OUT) $(BOOK_FLAGS) || rc=$$?; \
	$(PY) .ci/cache_fingerprint.py post --build $(SMOKE_OUT) --rc $$rc; \
	if [ $$rc -ne 0 ]; then echo "smoke book build FAILED (exit $$rc)" >&2; exit $$rc; fi
	@echo "Smoke book: $(CURDIR)/$(SMOKE_HTML)/index.html"

# The whole book on the tiny profile: every chapter on HuggingFace checkpoint folders and official
# benchmark files (written offline on first use), so the paper path is built by every `make test`.
book-tiny:
	$(MAKE) book VTR_PROFILE=tiny

# One chapter: forget its executed copy in the full build's cache, then build as usual (only that
# chapter executes; the others come from the cache).
chapter: venv
	@test -n "$(N)" || { echo "usage: make chapter N=04" >&2; exit 2; }
	$(PY) .ci/forget_chapter.py --cache $(CACHE) --chapter $(N)
	$(MAKE) book

# ------------------------------------------------------------------ tests
# pytest exits 5 when it collects nothing: make fails on any nonzero exit, so that fails too.
# Four jobs, two at a time on the two cores, one BLAS thread per process: the smoke book with its
# browser tests (the longest job) and the unit tests marked slow start; the tiny-profile book with its
# browser tests follows the slow tests, and the other unit tests (the shortest job) take whichever core
# frees first, so neither idles for long. (Three jobs at once were slower: they contend for the cores'
# caches. The small models gain little from a second thread; two processes do.) --output-sync=line
# keeps each line whole; any job failing fails the target.
test: venv
	$(MAKE) lint
	OMP_NUM_THREADS=1 $(MAKE) -j2 --output-sync=line test-smoke test-unit-slow test-tiny test-unit-fast

test-books: test-smoke test-tiny

test-smoke: venv
	$(MAKE) book-smoke
	$(MAKE) test-browser

test-tiny: venv
	$(MAKE) book-tiny
	$(MAKE) test-browser VTR_BOOK_HTML=$(TINY_HTML)

# --durations: the slowest tests in every log, where a cut of the unit-test stream starts
test-unit: venv
	$(PY) -m pytest -m "not browser" --durations=25

# The unit tests in two jobs for `make test`: those marked slow (published architectures at their
# width, kill and resume) and the rest.
test-unit-slow: venv
	$(PY) -m pytest -m "slow and not browser" --durations=10

test-unit-fast: venv
	$(PY) -m pytest -m "not slow and not browser" --durations=10

# The publishing workflow, validated offline against GitHub's workflow schema (vendored in check-jsonschema);
# the Python sources against ruff's rules in pyproject.toml.
lint: venv
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/ruff check --no-cache vtr tests .ci book/_ext

test-browser: venv chromium
	VTR_BOOK_HTML="$${VTR_BOOK_HTML:-$(SMOKE_HTML)}" $(PY) -m pytest -m browser tests/browser

# Debian's Chromium drives the browser tests (Playwright's own browser download is not used).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; \
	fi
	@/usr/bin/chromium --version

# ------------------------------------------------------------------ testbed, cleaning
testbed: venv
	$(VENV)/bin/vtr testbed train

# The 16-layer testbed: its decoder starts from the 8-layer one by block expansion (Recipe.expand_from),
# then trains 1400 steps; data/testbed/deep/COMMAND records the same command.
testbed-deep: venv
	$(VENV)/bin/vtr testbed train --out data/testbed/deep --spec text_layers=16 --set expand_from=testbed \
	  --set caption_steps=0 --set lm_steps=800 --set tune_steps=600 --set lr=0.0005 --set warmup=50 \
	  --set curriculum=0 --set main_start=1 --set eval_every=250

clean:
	rm -rf book/_build book/_build_*

# ------------------------------------------------------------------ lmms-eval plugin (its own venv)
# lmms-eval and its closure are pinned in requirements-lmms.lock (same torch/transformers as
# requirements.lock), installed --no-deps: the lock leaves out the torchvision lmms-eval declares
# (PyPI's is a CUDA build, unusable beside torch+cpu; see the lock's header). A venv of its own, so
# the book's environment stays as it is.
LMMS_VENV  := .venv-lmms
LMMS_PY    := $(LMMS_VENV)/bin/python
LMMS_STAMP := $(LMMS_VENV)/.stamp

$(LMMS_STAMP): requirements-lmms.lock pyproject.toml
	test -x $(LMMS_PY) || $(PYTHON) -m venv $(LMMS_VENV)
	echo '*' > $(LMMS_VENV)/.gitignore
	$(LMMS_PY) -m pip install --no-compile --no-deps -r requirements-lmms.lock
	$(LMMS_PY) -m pip install --no-compile --no-deps -e .
	touch $@

# lmms-eval's entry point runs the testbed task with `--model vtr` (unpruned and FastV at 0.25) and
# the accuracies must equal `vtr eval`'s on the same questions.
test-lmms: $(LMMS_STAMP)
	$(LMMS_PY) -m pytest -p no:cacheprovider tests/lmms
