"""The KFP spec replay harness on small hand-written specs: the executor input a task gets, the
order, resolver queries across replays, importers, failures, and what it refuses to guess."""
import json
import os
import sys

import pytest

from tests import kfp_replay

# A task's program: writes its output artifact's file and the executor output, with metadata
# counting how many input artifacts it got and echoing its parameter.
_TASK = r"""
import json, os, sys
ex = json.loads(sys.argv[1])
inputs = ex["inputs"]["artifacts"]
out = ex["outputs"]["artifacts"]["out"]["artifacts"][0]
os.makedirs(out["uri"])
with open(os.path.join(out["uri"], "inputs.json"), "w") as f:
    json.dump({k: [a["name"] for a in v["artifacts"]] for k, v in inputs.items()}, f)
meta = {"blessed": 1.0, "n_inputs": float(sum(len(v["artifacts"]) for v in inputs.values())),
        "param": ex["inputs"]["parameters"]["p"]["stringValue"],
        "seen": [a["metadata"] for v in inputs.values() for a in v["artifacts"]]}
if ex["inputs"]["parameterValues"]["p"] == "fail":
    sys.exit(3)
with open(ex["outputs"]["outputFile"], "w") as f:
    json.dump({"artifacts": {"out": {"artifacts": [{"name": out["name"], "metadata": meta}]}}}, f)
"""
_THING = "title: test.Thing\ntype: object\n"


def _container(image="img:1"):
    return {"container": {"image": image, "command": ["python", "-c", _TASK],
                          "args": [kfp_replay.EXECUTOR_INPUT_PLACEHOLDER]}}


def _spec(tmp_path, param="x", filter_text='schema_title="test.Thing" AND state=LIVE AND '
                                            'metadata.blessed.number_value=1'):
    out = {"artifacts": {"out": {"artifactType": {"instanceSchema": _THING}}}}
    tasks = {
        "first": {"taskInfo": {"name": "first"}, "componentRef": {"name": "first"},
                  "dependentTasks": ["latest"],
                  "inputs": {"parameters": {"p": {"runtimeValue": {
                      "constantValue": {"stringValue": param}}}},
                      "artifacts": {"previous": {"taskOutputArtifact": {
                          "producerTask": "latest", "outputArtifactKey": "out"}}}}},
        # Named to sort before "first": only its input orders it after.
        "a_second": {"taskInfo": {"name": "a_second"}, "componentRef": {"name": "second"},
                     "inputs": {"parameters": {"p": {"runtimeValue": {"constant": "y"}}},
                                "artifacts": {"upstream": {"taskOutputArtifact": {
                                    "producerTask": "first", "outputArtifactKey": "out"}}}}},
        "latest": {"taskInfo": {"name": "latest"}, "componentRef": {"name": "latest"}},
        "imported": {"taskInfo": {"name": "imported"}, "componentRef": {"name": "imported"}},
    }
    spec = {
        "pipelineSpec": {
            "pipelineInfo": {"name": "p"},
            "root": {"dag": {"tasks": tasks}},
            "components": {
                "first": {"executorLabel": "e_first", "outputDefinitions": out},
                "second": {"executorLabel": "e_second", "outputDefinitions": out},
                "latest": {"executorLabel": "e_latest", "outputDefinitions": out},
                "imported": {"executorLabel": "e_imported", "outputDefinitions": {
                    "artifacts": {"artifact": {"artifactType": {"instanceSchema": _THING}}}}},
            },
            "deploymentSpec": {"executors": {
                "e_first": _container(), "e_second": _container(),
                "e_latest": {"resolver": {"outputArtifactQueries": {
                    "out": {"filter": filter_text}}}},
                "e_imported": {"importer": {
                    "artifactUri": {"constantValue": {"stringValue": str(tmp_path / "given")}},
                    "typeSchema": {"instanceSchema": _THING}}},
            }},
        },
        "runtimeConfig": {"gcsOutputDirectory": str(tmp_path / "root")},
    }
    path = tmp_path / f"spec-{param}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def _replay(spec, tmp_path):
    return kfp_replay.Replay(spec, str(tmp_path / "state"),
                             venv_bin=os.path.dirname(sys.executable))


def _inputs_seen(result, task):
    with open(result.output(task, "out").uri + "/inputs.json") as f:
        return json.load(f)


def test_tasks_run_in_dependency_order_with_the_executor_input_kfp_builds(tmp_path):
    result = _replay(_spec(tmp_path), tmp_path).run("r1", log=lambda _: None)
    assert result.succeeded, [(t.name, t.status) for t in result.tasks.values()]
    first, second = result.output("first", "out"), result.output("a_second", "out")
    assert first.uri == str(tmp_path / "root" / "p" / "r1" / "first" / "out")
    # Nothing blessed existed before this replay: the resolver found nothing.
    assert _inputs_seen(result, "first") == {"previous": []}
    assert _inputs_seen(result, "a_second") == {"upstream": [first.name]}
    # The executor output's metadata is recorded and travels with the artifact downstream.
    assert first.metadata["param"] == "x" and second.metadata["param"] == "y"
    assert second.metadata["seen"] == [first.metadata]
    assert result.output("imported", "artifact").uri == str(tmp_path / "given")


def test_a_resolver_finds_the_newest_matching_artifact_of_earlier_replays(tmp_path):
    spec = _spec(tmp_path)
    one = _replay(spec, tmp_path).run("r1", log=lambda _: None)
    two = _replay(spec, tmp_path).run("r2", log=lambda _: None)
    newest_of_r1 = one.output("a_second", "out")  # ran after "first"
    assert two.output("latest", "out").name == newest_of_r1.name
    assert _inputs_seen(two, "first") == {"previous": [newest_of_r1.name]}


def test_a_failed_task_stops_the_replay_and_is_not_a_resolver_match(tmp_path):
    result = _replay(_spec(tmp_path, param="fail"), tmp_path).run("r1", log=lambda _: None)
    statuses = {n: t.status for n, t in result.tasks.items()}
    assert statuses["first"] == "failed" and statuses["a_second"] == "not run"
    again = _replay(_spec(tmp_path), tmp_path).run("r2", log=lambda _: None)
    assert _inputs_seen(again, "first") == {"previous": []}  # the failed output is not LIVE


@pytest.mark.parametrize("filter_text", [
    'schema_title="test.Thing" OR state=LIVE',
    'schema_title="test.Thing" AND create_time>5',
    'metadata.blessed.int_value=1',
])
def test_filters_the_replay_does_not_implement_are_refused(tmp_path, filter_text):
    with pytest.raises(kfp_replay.ReplayError):
        _replay(_spec(tmp_path, filter_text=filter_text), tmp_path).run(
            "r1", log=lambda _: None)


def test_unknown_placeholders_are_refused_not_passed_on(tmp_path):
    spec_file = _spec(tmp_path)
    with open(spec_file) as f:
        spec = json.load(f)
    spec["pipelineSpec"]["deploymentSpec"]["executors"]["e_first"]["container"]["args"].append(
        "{{$.inputs.parameters['p']}}")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    with pytest.raises(kfp_replay.ReplayError, match="placeholder"):
        _replay(spec_file, tmp_path).run("r1", log=lambda _: None)


def test_the_images_set_the_environment_the_venv_mode_copies():
    from pipeline import configs

    for dockerfile in ("Dockerfile", "docker/Dockerfile.debootstrap"):
        with open(f"{configs.PROJECT_ROOT}/{dockerfile}") as f:
            text = f.read()
        for key, value in kfp_replay.IMAGE_ENV.items():
            assert f"{key}={value}" in text, (dockerfile, key)


def test_the_container_command_mounts_each_folder_at_its_path_and_bounds_the_task(tmp_path):
    argv = kfp_replay.container_command("img:1", [str(tmp_path / "b"), str(tmp_path / "a"),
                                                  str(tmp_path / "a")], ["python", "-m", "x"],
                                        timeout_s=60)
    assert argv[:2] == [kfp_replay.CONTAINER_RUNTIME, "run"]
    assert "--network=none" in argv and "--timeout=60" in argv
    volumes = [a for a in argv if a.startswith("--volume=")]
    assert volumes == [f"--volume={tmp_path}/a:{tmp_path}/a", f"--volume={tmp_path}/b:{tmp_path}/b"]
    assert argv[-4:] == ["img:1", "python", "-m", "x"]
    assert "--env=TF_USE_LEGACY_KERAS=0" in argv
