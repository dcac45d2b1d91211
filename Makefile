# cyclesem — `make train` and `make test` do all set-up (a .venv with the package and its dependencies).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.cyclesem-installed
ARGS   ?=
# pytest-xdist workers for make test: one per core of the 2-core CI machine; 0 runs the suite in-process
TEST_WORKERS ?= 2

.PHONY: install train test test-fast study sweep sweep-low report bench gpu-check lint format docs clean distclean

$(STAMP): pyproject.toml Makefile  # the install line below names the extras
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,cluster,export,docs]'
	@touch $(STAMP)

install: $(STAMP)

## train on the embedded synthetic pair with 10 % real data (any Hydra override via ARGS="...")
train: $(STAMP)
	$(PY) -m cyclesem.train data.real_frac=0.1 $(ARGS)

## the whole test suite (what CI runs)
test: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(ARGS)

## the suite without tests marked slow
test-fast: $(STAMP)
	WANDB_MODE=disabled $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(ARGS)

## the real-fraction study under the protocol (docs/study.md); resumes from experiments/real_frac_study/runs
study: $(STAMP)
	$(PY) -m cyclesem.train -m +experiment=real_frac_study resume_sweep=true $(ARGS)
	$(PY) -m cyclesem.report experiments/real_frac_study --compare oracle:cyclesem --compare cyclesem_unlabeled:baseline --efficiency-against target_only

## the one-seed pilot sweeps from before the protocol (see experiments/real_frac_sweep)
sweep: $(STAMP)
	$(PY) -m cyclesem.train -m +experiment=real_frac_sweep $(ARGS)

sweep-low: $(STAMP)
	$(PY) -m cyclesem.train -m +experiment=real_frac_sweep_low $(ARGS)

## collect a sweep or a study: make report SWEEP=multirun/<date>/<time> (or SWEEP=experiments/<study>)
report: $(STAMP)
	$(PY) -m cyclesem.report $(SWEEP)

## training-step benchmark (see experiments/throughput)
bench: $(STAMP)
	$(PY) -m cyclesem.bench $(ARGS)

## check a GPU machine in at most 8 minutes; writes experiments/gpu/<gpu>_<date>.json (docs/gpu.md)
gpu-check: $(STAMP)
	$(PY) -m cyclesem.gpu_check $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check cyclesem tests

format: $(STAMP)
	$(PY) -m ruff format cyclesem tests

## the docs pages (docs/, mkdocs.yml) as a site in site/; strict: a dead link or a missing page fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

## remove run outputs (keeps .venv and the generated data)
clean:
	rm -rf outputs multirun wandb lightning_logs site .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

## also remove the virtual environment and generated data
distclean: clean
	rm -rf $(VENV) data *.egg-info
