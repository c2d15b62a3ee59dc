# Transformers, lab by lab — the two commands:
#   make        set up .venv, regenerate labs/ from solutions/, build the book into _build/html
#   make test   run the project's test suite (labsupport, graders, book, grading)
# Both are idempotent: a second run reuses the environment and the book's execution cache.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: all install labs book test lint clean

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
	touch $(STAMP)

install: $(STAMP)

labs: $(STAMP)
	$(BIN)/python -m autograder release

book: labs
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check labsupport autograder tests benchmarks

clean:
	rm -rf _build grades
