# The commands of the README: `make demo`, `make test` and `make bench`. Each makes .venv if missing.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-torch lint bench bench-scale bench-spark mutants gpu-check fakegpu-check clean

$(PYTHON):
	python3 -m venv $(VENV)

# Reinstall whenever the project's requirements change.
$(STAMP): pyproject.toml constraints.txt | $(PYTHON)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)

# The main job on embedded data: diabetes, into a new runs/<time> directory.
demo: install
	$(VENV)/bin/handgrad train --dataset diabetes

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# First the device tests on fakegpu (tests/fakegpu.py), a second device that computes on
# the CPU, so that a tensor left on the wrong device fails here as it would on a GPU; it is
# built with the machine's C++ compiler, and without one a line says they did not run.
# Then the whole suite. One worker per core; --dist loadscope keeps each module (and its
# module-scoped fixtures, which run whole commands) on one worker, so no fixture runs twice.
test: lint
	@if missing=$$($(PYTHON) tests/fakegpu.py); then \
		echo "make test: the device tests on fakegpu"; \
		HANDGRAD_TEST_DEVICE=fakegpu $(PYTHON) -m pytest -q -n auto --dist loadscope --only-device-tests; \
	else \
		echo "make test: warning: the device tests did not run on fakegpu: $$missing"; \
	fi
	$(PYTHON) -m pytest -q -n auto --dist loadscope

# make test on another PyTorch release (TORCH=2.14.1), in an environment of its own
# (.venv/torch-<release>): how a release earns its place in pyproject.toml's torch range.
test-torch:
	tools/test_torch.sh $(TORCH)

# BENCH_ARGS=--quick for a fast smoke run; results go to benchmarks/results/latest.{json,png}.
BENCH_ARGS ?=
bench: install
	$(PYTHON) -m benchmarks.run $(BENCH_ARGS)

# Training on 0.5, 2 and 8 GB files (written to a temporary folder, removed after):
# peak memory and rates against one raw read. SCALE_SIZES=0.5,2 for fewer sizes.
SCALE_SIZES ?= 0.5,2,8
bench-scale: install
	$(PYTHON) -m benchmarks.scale --sizes $(SCALE_SIZES)

# Issue 12's anchor: Spark ML's LinearRegression (normal equations, local[2], 4 GB driver)
# and handgrad train on the same 2M x 50 Parquet file, in the same run. Only this target
# installs pyspark (the 'spark' extra: 455 MB, needs Java 17 or later on the PATH).
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,spark]'
	touch $@

bench-spark: $(SPARK_STAMP)
	$(PYTHON) -m benchmarks.spark

# On a machine with a GPU: the whole suite with the device tests on CUDA, then the GPU
# figures (benchmarks/gpu.py). Where there is no network, run it from the source tree
# with the machine's own torch: make gpu-check GPU_PYTHON="env PYTHONPATH=src python3"
GPU_PYTHON ?= $(PYTHON)
# The figures run even when a test fails (a GPU session is too short to lose them); the
# target fails if either did.
gpu-check: $(if $(filter $(PYTHON),$(GPU_PYTHON)),install)
	status=0; \
	HANDGRAD_TEST_DEVICE=cuda $(GPU_PYTHON) -m pytest -q -p no:cacheprovider || status=1; \
	$(GPU_PYTHON) -m benchmarks.gpu || status=1; \
	exit $$status

# Where there is no GPU: the whole suite as on a machine with one, the GPU being fakegpu
# (tests/fakegpu.py). --device auto picks it as it would pick CUDA, so a tensor that the
# code or a test leaves on the wrong device fails here. About 3.5 minutes on 2 cores.
fakegpu-check: install
	HANDGRAD_TEST_DEVICE=fakegpu $(PYTHON) -m pytest -q -n auto --dist loadscope

# Break each documented promise in a temporary copy of the tree; every mutant must be caught.
mutants: install
	$(PYTHON) tools/mutants.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
