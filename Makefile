# Deep Learning by Experiment. `make book` builds the site, `make test` runs every test.
# Each target does its own set-up: a virtual environment in .venv with course_lib installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# A CPU build of PyTorch. Override, e.g. `make test TORCH=torch`, to take another build.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed
# The build that .venv holds: the stamp depends on it, so `make test TORCH=...` on an existing
# .venv installs the requested build (the file changes only when TORCH does).
TORCH_SPEC := $(VENV)/.torch
NOTEBOOKS := $(sort $(wildcard chapters/*.ipynb exercises/*.ipynb))

.PHONY: FORCE help venv book pdf test test-portable test-matrix lab execute bench selftest mutate clean

help:
	@echo "make book     build the website into _build/html"
	@echo "make pdf      the book as one PDF, printed from the site with Chromium (into _build/html)"
	@echo "make test     run every test: library, exercises, grader, notebooks, book build, browser"
	@echo "make test-portable  the library tests and notebooks again, as on a baseline x86-64 CPU"
	@echo "make test-matrix    the library tests and notebooks with the oldest and newest versions"
	@echo "make lab      open JupyterLab on the chapter list (exercises/ beside it)"
	@echo "make execute  re-execute every notebook and store its outputs (the regression baseline)"
	@echo "make bench    measure notebook times and peak memory, the training loop and the grader; rewrite the performance page"
	@echo "make mutate   inject faults into course_lib (mutmut) and report those the fast tests miss"
	@echo "make clean    remove the build and the virtual environment"

venv: $(STAMP)

$(TORCH_SPEC): FORCE
	@mkdir -p $(VENV)
	@echo '$(TORCH)' | cmp -s - $@ || echo '$(TORCH)' > $@

$(STAMP): pyproject.toml $(TORCH_SPEC)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --upgrade "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[book,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "Open _build/html/index.html"

# The site printed by the system's Chromium (apt-get install -y chromium), offline; the intro
# page links to the file, so it sits beside the pages.
PDF := _build/html/deep-learning-by-experiment.pdf

pdf: book
	$(BIN)/python tools/book_pdf.py _build/html $(PDF)

# Every core (pytest-xdist); each test file, so each notebook, stays whole on one worker;
# the site tests share one book build (tests/site_fixtures.py). TEST_JOBS=0: serially.
TEST_JOBS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

# CPU profiles (issue 23): environment variables that make PyTorch (ATen), MKL, oneDNN and NumPy
# dispatch the code paths of another x86-64 CPU. Baseline: no AVX at all (SSE4 at most), the
# slowest x86-64 a learner may have; AVX2: most laptops. tests/test_cpu_profiles.py checks that
# each variable reaches its library. NumPy's list is comma-separated (make passes it unquoted).
BASELINE_CPU := ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 DNNL_MAX_CPU_ISA=SSE41 \
	NPY_DISABLE_CPU_FEATURES=X86_V3,X86_V4,AVX512_ICL,AVX512_SPR
AVX2_CPU := ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 DNNL_MAX_CPU_ISA=AVX2 \
	NPY_DISABLE_CPU_FEATURES=X86_V4,AVX512_ICL,AVX512_SPR
# The library tests and every notebook (nbval, with each cell's declared tolerance), the tests
# whose outcome a CPU's float maths can change. Left out: the site, the browser and the static
# checks, the PDF, and the tests of processes rather than numbers (the grader's sandbox, inputs,
# gradebook, isolation and class runs, the optimization workers and their database faults, the
# comparator's, the Makefile's and the tools' own tests, the profiles' own check), which
# `make test` has just run: the PDF and the class runs alone took 4 of this run's 10 min
# (CI, 2026-12-07). noxfile.py runs these and the process tests.
PORTABLE_SELECTION := tests chapters exercises --ignore=tests/test_browser.py \
	--ignore=tests/test_site.py --ignore=tests/test_lint.py --ignore=tests/test_line_length.py \
	--ignore=tests/test_docstrings.py --ignore=tests/test_notebooks.py \
	--ignore=tests/test_solutions.py --ignore=tests/test_grade_faults.py \
	--ignore=tests/test_grade_gradebook.py --ignore=tests/test_grade_hostile.py \
	--ignore=tests/test_grade_inputs.py --ignore=tests/test_grade_isolation.py \
	--ignore=tests/test_grade_parity.py --ignore=tests/test_hpo.py --ignore=tests/test_hpo_faults.py \
	--ignore=tests/test_nbval_tolerance.py --ignore=tests/test_margins.py \
	--ignore=tests/test_cpu_profiles.py --ignore=tests/test_pdf.py --ignore=tests/test_accessibility.py \
	--ignore=tests/test_grade_class.py --ignore=tests/test_grade_class_cli.py \
	--ignore=tests/test_makefile.py

test-portable: $(STAMP)
	env $(BASELINE_CPU) $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile $(PORTABLE_SELECTION)

# The oldest and newest supported versions (noxfile.py): two environments under .nox, a PyTorch
# each (several GB where no wheel is cached); not run by CI. E.g. on pyenv:
# make test-matrix COURSE_PYTHON_LOWEST=~/.pyenv/versions/3.10.13/bin/python
COURSE_PYTHON_LOWEST ?= 3.10
COURSE_PYTHON_NEWEST ?= 3.11

test-matrix: $(STAMP)
	COURSE_PYTHON_LOWEST=$(COURSE_PYTHON_LOWEST) COURSE_PYTHON_NEWEST=$(COURSE_PYTHON_NEWEST) \
		TEST_JOBS=$(TEST_JOBS) $(BIN)/nox -f noxfile.py

# JupyterLab at the repository root, so that chapters/ and exercises/ and the links between them
# all work; it opens on the chapter list.
LAB_ARGS := --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/chapters

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ARGS)

execute: $(STAMP)
	$(BIN)/python tools/notebooks.py execute $(NOTEBOOKS)

bench: $(STAMP)
	$(BIN)/python tools/notebooks.py bench --json artifacts/bench.json $(NOTEBOOKS)
	$(BIN)/python tools/bench_page.py artifacts/bench.json benchmarks/notebooks.md
	$(BIN)/python benchmarks/training_loop.py --repeats 5
	$(BIN)/python benchmarks/grader_throughput.py --json artifacts/grader_bench.json

selftest: $(STAMP)
	$(BIN)/python -m course_lib.grading --self-test

# Fault injection (issue 16, benchmarks/mutation.md): mutmut over the modules in pyproject.toml's
# [tool.mutmut], scoped by tools/mutate.py; fails if a module catches < 90% of its real faults.
MUTATE_JOBS ?= 2

mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/python tools/mutate.py run --max-children $(MUTATE_JOBS)
	$(BIN)/python tools/mutate.py report --markdown artifacts/mutation.md

clean:
	rm -rf _build $(VENV) mutants
