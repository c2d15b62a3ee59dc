# Transformers, lab by lab — the two commands:
#   make        set up .venv, regenerate labs/ from solutions/, build the book into _build/html
#   make test   run the project's test suite (labsupport, graders, book, grading)
#   make test-fast  the same without the slow tests (book build, whole-notebook runs, corpora, servers)
# Both are idempotent: a second run reuses the environment and the book's execution cache.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: all install labs book test test-fast test-hub lint clean

all: book
	@echo "The course is built. Open $(abspath _build/html/index.html)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned in constraints.txt (2.13.0). On machines whose pip offers the CPU wheel this stays
# light; users with a GPU install a CUDA build of the same release first (see README), which the
# constraint accepts (2.13.0+cuXXX).
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[course]"
	$(BIN)/python -c "import matplotlib.font_manager"  # its font cache, built once, not by parallel notebooks
	touch $(STAMP)

install: $(STAMP)

labs: $(STAMP)
	$(BIN)/python -m autograder release

book: labs
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The course loop on a real JupyterHub (tests/test_hub.py): needs root, configurable-http-proxy (npm) and
# Debian's chromium (.ci/run installs them). Builds or refreshes the students' course environment first.
HUB_TEST_PREFIX ?= /opt/transformers-course-test
test-hub: $(STAMP)
	$(PYTHON) deploy/setup.py --prefix $(HUB_TEST_PREFIX) env
	HUB_TEST=1 HUB_TEST_ENV=$(HUB_TEST_PREFIX)/env $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_hub.py

lint: $(STAMP)
	$(BIN)/ruff check labsupport autograder tests benchmarks

clean:
	rm -rf _build grades
