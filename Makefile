# Entry points. Every target bootstraps .venv from requirements.lock first (no-op when current).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: bootstrap run serve lint test test-retraining test-slow bench bench-train bench-serving lock clean

bootstrap:
	@VENV=$(VENV) scripts/bootstrap.sh

## Run the pipeline locally on generated demo data (pass options with ARGS="...").
run: bootstrap
	$(VENV)/bin/fer-pipeline run $(ARGS)

## Serve what `make run` pushed over TF Serving's gRPC (8500) and REST (8501) APIs; Ctrl-C stops.
serve: bootstrap
	$(VENV)/bin/fer-serve --model-base-path outputs/serving/fer $(ARGS)

## Lint with ruff (settings in ruff.toml); `make test` runs it first.
lint: bootstrap
	$(VENV)/bin/ruff check .

## Lint, then unit tests + one end-to-end run of the data half on tiny generated data.
test: bootstrap lint
	$(PY) -m pytest $(ARGS)

## The scheduled-retraining sequence end to end on generated spans (about 10 minutes).
test-retraining: bootstrap
	$(PY) -m pytest -m retraining $(ARGS)

## Long runs on the full FER2013 archives in ../shared (skipped when absent).
test-slow: bootstrap
	$(PY) -m pytest -m slow $(ARGS)

## Data-half benchmark on FER2013; figures go to BENCHMARKS.md.
bench: bootstrap
	$(PY) -m bench.data_half_bench $(ARGS)

## Training throughput per architecture and precision; figures go to BENCHMARKS.md.
bench-train: bootstrap
	$(PY) -m bench.train_throughput $(ARGS)

## Serving latency/throughput of both trained models (after make run); figures go to BENCHMARKS.md.
bench-serving: bootstrap
	$(PY) -m bench.serving_bench $(ARGS)

## Re-resolve requirements.in into requirements.lock (needs network to PyPI; ~20 s with uv).
lock: bootstrap
	$(VENV)/bin/uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 \
	  requirements.in -o requirements.lock

clean:
	rm -rf outputs .pytest_cache
