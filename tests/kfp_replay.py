"""Replays a compiled KFP v2 pipeline spec on this machine: a test harness, not a runner for users.

  python -m tests.kfp_replay SPEC.json [--image IMAGE | --venv] [--state-dir DIR] [--run-id ID]

It reads the JSON `pipeline.kubeflow_runner` writes and runs its DAG in dependency order, as KFP's
driver and launcher would:
- a container task runs its own `command` + `args` from the spec, unchanged but for the `{{$}}`
  placeholder, which becomes the executor input KFP's launcher builds (input artifacts from the
  upstream tasks' outputs, with the metadata their executor output recorded; parameters; output
  artifact URIs under the pipeline root; the output metadata file). It runs inside the image
  (podman; the pipeline root, the data and the serving folder are mounted at the same paths) or,
  with no container runtime, with this venv's `python` and the image's environment;
- a resolver task runs its artifact queries (`schema_title=... AND state=LIVE AND ...`) over the
  artifacts earlier tasks and earlier replays produced, newest first; an importer makes its
  artifact from the spec's URI.

What it cannot stand in for (docs/kubeflow.md): KFP's own driver and launcher, the cluster's ML
Metadata (artifacts live in `<state-dir>/artifacts.json`), object storage (the pipeline root is a
local folder) and KFP's caching (every task runs).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

from pipeline.configs import PROJECT_ROOT

# The environment the images set for every task (docker/Dockerfile.debootstrap, Dockerfile); the
# venv mode sets it too, so both modes run the entry point as the image does.
IMAGE_ENV = {"PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "0"}
EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"
EXECUTOR_OUTPUT_FILE = "executor_output.json"
ARTIFACTS_FILE = "artifacts.json"
SUMMARY_FILE = "summary.json"  # per replay, beside its task logs: status and time per task
ARTIFACT_NAME_PREFIX = "replay/artifacts/"
LIVE = "LIVE"
TASK_TIMEOUT_S = 3600  # a hung task fails the replay instead of hanging it
CONTAINER_RUNTIME = "podman"
# The KFP importer's output key (kfp.dsl.importer).
IMPORTER_OUTPUT_KEY = "artifact"

_INPUT_METADATA = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")
_METADATA_KEY = re.compile(r"metadata\.(\w+)\.(number_value|string_value)")
_CLAUSE = re.compile(r'^\s*([\w.]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s"]+)\s*$')


class ReplayError(Exception):
    """The spec uses something the replay does not implement, or a task broke the contract."""


@dataclasses.dataclass
class Artifact:
    id: int
    schema_title: str
    instance_schema: str
    uri: str
    metadata: Dict[str, Any]
    run_id: str
    task: str
    output_key: str
    state: str = "PENDING"  # LIVE once its task succeeded

    @property
    def name(self) -> str:
        return f"{ARTIFACT_NAME_PREFIX}{self.id}"

    def runtime_artifact(self) -> Dict[str, Any]:
        """The ExecutorInput RuntimeArtifact KFP's launcher passes."""
        return {"name": self.name, "uri": self.uri, "metadata": self.metadata,
                "type": {"instanceSchema": self.instance_schema}}


class ArtifactStore:
    """The replay's stand-in for the cluster's ML Metadata: every artifact of every replay under
    one state folder, in a JSON file."""

    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, ARTIFACTS_FILE)
        self.artifacts: List[Artifact] = []
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.artifacts = [Artifact(**a) for a in json.load(f)]

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump([dataclasses.asdict(a) for a in self.artifacts], f, indent=1)
        os.replace(tmp, self.path)

    def create(self, **fields: Any) -> Artifact:
        artifact = Artifact(id=len(self.artifacts) + 1, **fields)
        self.artifacts.append(artifact)
        return artifact

    def query(self, filter_text: str) -> List[Artifact]:
        """Artifacts matching a resolver's filter, newest first."""
        clauses = parse_filter(filter_text)
        return [a for a in reversed(self.artifacts)
                if all(_matches(a, key, value) for key, value in clauses)]


def parse_filter(text: str) -> List[tuple]:
    """`schema_title="tfx.Model" AND state=LIVE AND metadata.blessed.number_value=1` ->
    [(key, value)]. Only the conjunctions of equalities TFX's compiler writes; anything else is a
    ReplayError rather than a guess."""
    clauses = []
    for part in re.split(r"\s+AND\s+", text.strip()):
        m = _CLAUSE.match(part)
        if not m:
            raise ReplayError(f"resolver filter clause {part!r} (in {text!r}) is not KEY=VALUE")
        key, value = m.groups()
        if key not in ("schema_title", "state", "name") and not _METADATA_KEY.fullmatch(key):
            raise ReplayError(f"resolver filter key {key!r} is not one the replay knows")
        if value.startswith('"'):
            value = json.loads(value)
        clauses.append((key, value))
    return clauses


def _matches(artifact: Artifact, key: str, value: str) -> bool:
    if key == "schema_title":
        return artifact.schema_title == value
    if key == "state":
        return artifact.state == value
    if key == "name":
        return artifact.name == value
    field, kind = _METADATA_KEY.fullmatch(key).groups()
    got = artifact.metadata.get(field)
    if kind == "number_value":
        return isinstance(got, (int, float)) and got == float(value)
    return got == value


def schema_title(instance_schema: str) -> str:
    m = re.search(r"^title:\s*(\S+)", instance_schema, re.M)
    if not m:
        raise ReplayError(f"artifact type without a title: {instance_schema!r}")
    return m.group(1)


@dataclasses.dataclass
class TaskResult:
    name: str
    kind: str  # container, resolver, importer
    status: str  # succeeded, failed, not run
    seconds: float = 0.0
    log: Optional[str] = None
    inputs: Dict[str, List[Artifact]] = dataclasses.field(default_factory=dict)
    outputs: Dict[str, List[Artifact]] = dataclasses.field(default_factory=dict)

    def unwritten_outputs(self) -> List[str]:
        """Output keys whose URI the task left without a file or folder (KFP records them all
        the same; a reader downstream finds nothing there)."""
        return sorted(k for k, v in self.outputs.items()
                      if self.kind == "container" and any(not os.path.exists(a.uri) for a in v))


@dataclasses.dataclass
class ReplayResult:
    run_id: str
    tasks: Dict[str, TaskResult]

    @property
    def succeeded(self) -> bool:
        return all(t.status == "succeeded" for t in self.tasks.values())

    def failed(self) -> List[TaskResult]:
        return [t for t in self.tasks.values() if t.status == "failed"]

    def output(self, task: str, key: str) -> Optional[Artifact]:
        artifacts = self.tasks[task].outputs.get(key) or []
        return artifacts[0] if artifacts else None


def task_order(tasks: Mapping[str, Any]) -> List[str]:
    """The tasks, each after every task it depends on (dependentTasks and the producers of its
    input artifacts); ties in name order, so a replay is repeatable."""
    deps = {}
    for name, task in tasks.items():
        needs = set(task.get("dependentTasks", []))
        for spec in task.get("inputs", {}).get("artifacts", {}).values():
            if "taskOutputArtifact" in spec:
                needs.add(spec["taskOutputArtifact"]["producerTask"])
        unknown = needs - set(tasks)
        if unknown:
            raise ReplayError(f"task {name} depends on unknown tasks {sorted(unknown)}")
        deps[name] = needs
    order: List[str] = []
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in order and deps[n] <= set(order))
        if not ready:
            raise ReplayError(f"cycle among {sorted(set(tasks) - set(order))}")
        order.append(ready[0])
    return order


class Replay:
    """One replay of a compiled spec. `image`: run container tasks in it with podman; None: with
    `python` from `venv_bin` (default: this interpreter's folder)."""

    def __init__(self, spec_file: str, state_dir: str, image: Optional[str] = None,
                 venv_bin: Optional[str] = None, mounts: Sequence[str] = (),
                 task_timeout_s: int = TASK_TIMEOUT_S):
        with open(spec_file) as f:
            job = json.load(f)
        self.spec = job["pipelineSpec"]
        self.runtime_config = job.get("runtimeConfig", {})
        self.pipeline_root = self.runtime_config.get("gcsOutputDirectory")
        if not self.pipeline_root:
            raise ReplayError("the job has no runtimeConfig.gcsOutputDirectory (pipeline root)")
        self.pipeline_name = self.spec["pipelineInfo"]["name"]
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, exist_ok=True)
        self.store = ArtifactStore(self.state_dir)
        self.image = image
        self.venv_bin = venv_bin or os.path.dirname(sys.executable)
        self.mounts = [os.path.abspath(m) for m in mounts]
        self.task_timeout_s = task_timeout_s
        for spec in self.spec["root"]["dag"]["tasks"].values():
            unsupported = {"triggerPolicy", "iteratorPolicy", "parameterIterator",
                           "artifactIterator"} & set(spec)
            if unsupported:
                raise ReplayError(f"task {spec['taskInfo']['name']} uses {sorted(unsupported)}, "
                                  "which the replay does not implement")

    def run(self, run_id: Optional[str] = None, log=print) -> ReplayResult:
        """Runs every task in dependency order; after a failed task, the rest are not run (KFP
        fails the run)."""
        run_id = run_id or time.strftime("replay-%Y%m%d-%H%M%S")
        os.makedirs(os.path.join(self.state_dir, "logs", run_id), exist_ok=True)
        tasks = self.spec["root"]["dag"]["tasks"]
        results = {name: TaskResult(name, self._executor(name).get("kind", "container"),
                                    "not run") for name in tasks}
        for name in task_order(tasks):
            started = time.time()
            result = results[name]
            try:
                result.outputs = self._run_task(name, tasks[name], run_id, results, result)
                result.status = "succeeded"
            except subprocess.TimeoutExpired:
                result.status = "failed"
                log(f"[replay] {name}: no end after {self.task_timeout_s} s")
            except TaskFailed as e:
                result.status = "failed"
                log(f"[replay] {name}: {e}")
            finally:
                result.seconds = time.time() - started
                self.store.save()
            if result.status == "failed":
                break
            log(f"[replay] {name} ({result.kind}) done in {result.seconds:.0f} s")
        with open(os.path.join(self.state_dir, "logs", run_id, SUMMARY_FILE), "w") as f:
            json.dump({t.name: {"kind": t.kind, "status": t.status,
                                "seconds": round(t.seconds, 1)} for t in results.values()},
                      f, indent=1)
        return ReplayResult(run_id, results)

    def _executor(self, task_name: str) -> Dict[str, Any]:
        component = self.spec["components"][self._component_name(task_name)]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        kind, = executor.keys()
        return {"kind": kind, **executor[kind]}

    def _component_name(self, task_name: str) -> str:
        return self.spec["root"]["dag"]["tasks"][task_name]["componentRef"]["name"]

    def _inputs(self, task: Mapping[str, Any], results: Mapping[str, TaskResult]
                ) -> Dict[str, List[Artifact]]:
        artifacts = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in spec:
                raise ReplayError(f"input artifact {key}: only taskOutputArtifact is implemented")
            producer = spec["taskOutputArtifact"]
            artifacts[key] = results[producer["producerTask"]].outputs.get(
                producer["outputArtifactKey"], [])
        return artifacts

    def _parameters(self, task: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
        """name -> the pipeline spec 2.0 Value ({"stringValue": ...}, {"intValue": ...})."""
        params = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            runtime = spec.get("runtimeValue", {})
            if "constantValue" in runtime:
                params[key] = runtime["constantValue"]
            elif "constant" in runtime:  # pipeline spec 2.1: a protobuf Value
                params[key] = _v2_value(runtime["constant"])
            elif "componentInputParameter" in spec:
                params[key] = self._pipeline_parameter(spec["componentInputParameter"])
            else:
                raise ReplayError(f"parameter {key}: {spec} is not implemented")
        return params

    def _pipeline_parameter(self, name: str) -> Dict[str, Any]:
        given = self.runtime_config.get("parameters", {}).get(name)
        if given is not None:
            return given
        if name in self.runtime_config.get("parameterValues", {}):
            return _v2_value(self.runtime_config["parameterValues"][name])
        raise ReplayError(f"pipeline parameter {name} has no value in runtimeConfig")

    def _run_task(self, name: str, task: Mapping[str, Any], run_id: str,
                  results: Mapping[str, TaskResult], result: TaskResult
                  ) -> Dict[str, List[Artifact]]:
        executor = self._executor(name)
        inputs = result.inputs = self._inputs(task, results)
        component = self.spec["components"][self._component_name(name)]
        outputs_spec = component.get("outputDefinitions", {}).get("artifacts", {})
        if executor["kind"] == "resolver":
            return self._resolve(executor, inputs)
        task_root = os.path.join(self.pipeline_root, self.pipeline_name, run_id, name)
        if executor["kind"] == "importer":
            return self._import(executor, task, outputs_spec, run_id, name)
        if executor["kind"] != "container":
            raise ReplayError(f"task {name}: executor kind {executor['kind']} not implemented")
        outputs = {
            key: [self.store.create(
                schema_title=schema_title(spec["artifactType"]["instanceSchema"]),
                instance_schema=spec["artifactType"]["instanceSchema"],
                uri=os.path.join(task_root, key), metadata={}, run_id=run_id, task=name,
                output_key=key)]
            for key, spec in outputs_spec.items()}
        parameters = self._parameters(task)
        executor_input = {
            "inputs": {
                "artifacts": {k: {"artifacts": [a.runtime_artifact() for a in v]}
                              for k, v in inputs.items()},
                "parameters": parameters,
                "parameterValues": {k: _plain(v) for k, v in parameters.items()},
            },
            "outputs": {
                "artifacts": {k: {"artifacts": [a.runtime_artifact() for a in v]}
                              for k, v in outputs.items()},
                "outputFile": os.path.join(task_root, EXECUTOR_OUTPUT_FILE),
            },
        }
        argv = [*executor.get("command", []), *executor.get("args", [])]
        argv = [_substitute(a, json.dumps(executor_input)) for a in argv]
        os.makedirs(task_root, exist_ok=True)
        log_dir = os.path.join(self.state_dir, "logs", run_id)
        os.makedirs(log_dir, exist_ok=True)
        result.log = os.path.join(log_dir, f"{name}.log")
        with open(result.log, "w") as log_file:
            proc = subprocess.run(self._command(argv, executor["image"]), stdout=log_file,
                                  stderr=subprocess.STDOUT, env=self._env(),
                                  cwd=self.state_dir, timeout=self.task_timeout_s)
        if proc.returncode != 0:
            raise TaskFailed(f"exit {proc.returncode}; log: {result.log}\n" + _tail(result.log))
        self._record_outputs(name, outputs, executor_input["outputs"]["outputFile"])
        return outputs

    def _record_outputs(self, name: str, outputs: Dict[str, List[Artifact]],
                        output_file: str) -> None:
        """What KFP's launcher records: each output artifact with the metadata the executor
        output gives it; an output whose URI the task left empty breaks the contract."""
        written = {}
        if os.path.exists(output_file):
            with open(output_file) as f:
                written = json.load(f).get("artifacts", {})
        for key, artifacts in outputs.items():
            given = written.get(key, {}).get("artifacts", [])
            for artifact, out in zip(artifacts, given, strict=False):
                if out.get("name") and out["name"] != artifact.name:
                    raise TaskFailed(f"output {key} came back named {out['name']}, "
                                     f"not {artifact.name}")
                artifact.metadata = out.get("metadata", {})
            for artifact in artifacts:
                artifact.state = LIVE

    def _resolve(self, executor: Mapping[str, Any], inputs: Mapping[str, List[Artifact]]
                 ) -> Dict[str, List[Artifact]]:
        """Each output: the newest LIVE artifact matching its query (none: an empty list)."""
        outputs = {}
        for key, query in executor.get("outputArtifactQueries", {}).items():
            filter_text = _INPUT_METADATA.sub(
                lambda m: _input_metadata(inputs, m.group(1), m.group(2)), query["filter"])
            found = self.store.query(filter_text) if filter_text is not None else []
            outputs[key] = found[:max(1, int(query.get("limit", 1)))]
        return outputs

    def _import(self, executor: Mapping[str, Any], task: Mapping[str, Any],
                outputs_spec: Mapping[str, Any], run_id: str, name: str
                ) -> Dict[str, List[Artifact]]:
        uri_spec = executor["artifactUri"]
        if "constantValue" in uri_spec or "constant" in uri_spec:
            uri = _plain(uri_spec.get("constantValue") or _v2_value(uri_spec["constant"]))
        elif "runtimeParameter" in uri_spec:
            uri = _plain(self._parameters(task)[uri_spec["runtimeParameter"]])
        else:
            raise ReplayError(f"importer {name}: artifactUri {uri_spec} not implemented")
        schema = executor["typeSchema"].get("instanceSchema") or \
            f"title: {executor['typeSchema']['schemaTitle']}\n"
        artifact = self.store.create(
            schema_title=schema_title(schema), instance_schema=schema, uri=uri,
            metadata=dict(executor.get("metadata", {})), run_id=run_id, task=name,
            output_key=IMPORTER_OUTPUT_KEY, state=LIVE)
        key, = outputs_spec or [IMPORTER_OUTPUT_KEY]
        return {key: [artifact]}

    def _command(self, argv: List[str], image: str) -> List[str]:
        if self.image is None:
            if argv and argv[0] in ("python", "python3"):
                argv = [os.path.join(self.venv_bin, "python"), *argv[1:]]
            return argv
        # The spec names the image it was compiled for; the replay runs the one it was given.
        del image
        return container_command(self.image, [self.pipeline_root, self.state_dir, *self.mounts],
                                 argv, timeout_s=self.task_timeout_s)

    def _env(self) -> Dict[str, str]:
        if self.image is not None:
            return container_runtime_env()
        env = dict(os.environ, **IMAGE_ENV)
        env["PATH"] = self.venv_bin + os.pathsep + env.get("PATH", "")
        return env


class TaskFailed(Exception):
    pass


def _input_metadata(inputs: Mapping[str, List[Artifact]], key: str, field: str) -> str:
    artifacts = inputs.get(key) or []
    if not artifacts or field not in artifacts[0].metadata:
        # Nothing to name: a filter no artifact matches (the resolver finds nothing).
        return ""
    return str(artifacts[0].metadata[field])


def _substitute(arg: str, executor_input_json: str) -> str:
    if arg == EXECUTOR_INPUT_PLACEHOLDER:
        return executor_input_json
    if "{{$" in arg:
        raise ReplayError(f"placeholder in {arg!r} is not implemented")
    return arg


def _v2_value(value: Any) -> Dict[str, Any]:
    """A protobuf Value (spec 2.1) as the spec 2.0 Value the TFX entry point reads."""
    if isinstance(value, bool):
        return {"intValue": str(int(value))}
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return {"intValue": str(int(value))}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value if isinstance(value, str) else json.dumps(value)}


def _plain(value: Mapping[str, Any]) -> Any:
    """{"stringValue": "x"} -> "x"; {"intValue": "3"} -> 3."""
    (kind, v), = value.items()
    return int(v) if kind == "intValue" else v


def _tail(path: str, lines: int = 30) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def container_command(image: str, folders: Sequence[str], argv: Sequence[str],
                      network: str = "none", timeout_s: Optional[int] = None) -> List[str]:
    """`podman run` of `argv` in `image`, each folder mounted at its own path (a task sees the
    pipeline root, the data and the serving folder where the spec says they are). With
    `timeout_s`, podman kills the container then (killing the client alone would leave it
    running)."""
    volumes = [f"--volume={p}:{p}" for p in sorted({os.path.abspath(f) for f in folders})]
    limit = [f"--timeout={timeout_s}"] if timeout_s else []
    return [CONTAINER_RUNTIME, "run", "--rm", f"--network={network}", *limit, *volumes,
            *[f"--env={k}={v}" for k, v in IMAGE_ENV.items()], image, *argv]


def container_runtime_env() -> Dict[str, str]:
    """This environment, with podman set up as docker/build-debootstrap.sh sets it (runc, the
    rlimits this machine allows) unless CONTAINERS_CONF says otherwise."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", os.path.join(PROJECT_ROOT, "docker", "containers.conf"))
    return env


def container_runtime_available() -> bool:
    return shutil.which(CONTAINER_RUNTIME) is not None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kfp_replay",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="the JSON pipeline.kubeflow_runner wrote")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--image", help="run each task in this image with podman")
    where.add_argument("--venv", default=os.path.dirname(sys.executable),
                       help="run each task with this venv's bin/python (no container)")
    parser.add_argument("--state-dir", default="kfp-replay",
                        help="the replay's artifact records and task logs, kept across replays")
    parser.add_argument("--mount", action="append", default=[],
                        help="a host folder the tasks read or write (data root, serving dir); "
                             "mounted at the same path in the container")
    parser.add_argument("--run-id")
    args = parser.parse_args(argv)
    venv_bin = args.venv if os.path.basename(args.venv) == "bin" else \
        os.path.join(args.venv, "bin")
    replay = Replay(args.spec, args.state_dir, image=args.image, venv_bin=venv_bin,
                    mounts=args.mount)
    result = replay.run(args.run_id)
    for task in result.tasks.values():
        print(f"{task.name:45s} {task.kind:9s} {task.status:9s} {task.seconds:6.0f} s")
    return 0 if result.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
