# Entry points. Every target bootstraps the stack's venv from its lock first (no-op when current).
#
# STACK=legacy|current picks the dependency stack (default: what this machine runs, as
# scripts/stack.sh decides); its venv is .venv, or .venv-$(STACK) for the other stack. Where this
# machine's glibc cannot load the current stack, its commands run in a Debian 13 root
# (scripts/stack_root.sh; STACK_ROOT=1 forces that). GPU=1 installs TensorFlow's CUDA libraries.
MACHINE_STACK := $(shell STACK= scripts/stack.sh choose)
ifeq ($(origin STACK),undefined)
STACK := $(MACHINE_STACK)
else
export STACK   # the bootstrap then says the stack was asked for
endif
VENV ?= $(if $(filter $(STACK),$(MACHINE_STACK)),.venv,.venv-$(STACK))
export VENV
IN_STACK := $(shell scripts/stack.sh needs-root $(STACK) && echo scripts/stack_root.sh run)
PY := $(IN_STACK) $(VENV)/bin/python
ARGS ?=

.PHONY: bootstrap py run serve lint test test-retraining test-beam test-kfp-replay test-kfp-replay-image test-slow bench bench-train bench-serving lock clean

bootstrap:
	@$(IN_STACK) scripts/bootstrap.sh

## The stack's Python, in the Debian 13 root where needed: make py ARGS="-m bench.run_report ...".
py: bootstrap
	$(PY) $(ARGS)

## Run the pipeline locally on generated demo data (pass options with ARGS="...").
run: bootstrap
	$(IN_STACK) $(VENV)/bin/fer-pipeline run $(ARGS)

## Serve what `make run` pushed over TF Serving's gRPC (8500) and REST (8501) APIs; Ctrl-C stops.
serve: bootstrap
	$(IN_STACK) $(VENV)/bin/fer-serve --model-base-path outputs/serving/fer $(ARGS)

## Lint with ruff (settings in ruff.toml); `make test` runs it first.
lint: bootstrap
	$(IN_STACK) $(VENV)/bin/ruff check .

## Lint, then unit tests + end-to-end runs of the pipeline on tiny generated data.
test: bootstrap lint
	$(PY) -m pytest $(ARGS)

## The scheduled-retraining sequence end to end on generated spans (about 10 minutes).
test-retraining: bootstrap
	$(PY) -m pytest -m retraining $(ARGS)

## The whole pipeline with its Beam components on Beam's PortableRunner, against Beam's local job
## service on loopback (tests/e2e_beam_portable_test.py; docs/beam.md).
test-beam: bootstrap
	$(PY) -m pytest -m beam $(ARGS)

## The Kubeflow spec of the demo pipeline replayed task by task with this stack's venv, twice
## (tests/kfp_replay.py; about 25 minutes).
test-kfp-replay: bootstrap
	$(PY) -m pytest -m kfp_replay $(ARGS)

## The same in the stack's image (podman): the image is built first (docker/build-debootstrap.sh),
## then compiler, tasks and fer-serve run in it; this machine's venv only orchestrates.
test-kfp-replay-image:
	@STACK=$(MACHINE_STACK) VENV=.venv scripts/bootstrap.sh
	STACK=$(STACK) docker/build-debootstrap.sh
	KFP_REPLAY_IMAGE=localhost/fer-pipeline:$(STACK) .venv/bin/python -m pytest -m kfp_replay $(ARGS)

## Long runs on the full FER2013 archives in ../shared (skipped when absent).
test-slow: bootstrap
	$(PY) -m pytest -m slow $(ARGS)

## Data-half benchmark on FER2013; figures go to BENCHMARKS.md#data-half-fer2013.
bench: bootstrap
	$(PY) -m bench.data_half_bench $(ARGS)

## Training throughput per architecture and precision; figures go to
## BENCHMARKS.md#training-throughput.
bench-train: bootstrap
	$(PY) -m bench.train_throughput $(ARGS)

## Serving latency/throughput of both trained models (after make run); figures go to
## BENCHMARKS.md#serving.
bench-serving: bootstrap
	$(PY) -m bench.serving_bench $(ARGS)

## Re-resolve requirements/*.in into their locks, both stacks (needs PyPI; about a minute with uv).
lock: bootstrap
	UV=$(VENV)/bin/uv scripts/stack.sh lock

clean:
	rm -rf outputs .pytest_cache
