"""The Kubeflow runner compiles the same graph into a KFP v2 pipeline spec."""
import json

from pipeline import kubeflow_runner


def test_compiles_pipeline_spec_with_every_component(tmp_path):
    out = str(tmp_path / "fer.json")
    kubeflow_runner.main(["--image", "registry.example/fer:1", "--data-root", "gs://b/fer",
                          "--pipeline-root", "gs://b/root", "--output-file", out,
                          "--serving-dir", "gs://b/serving"])
    with open(out) as f:
        spec = json.load(f)
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks) == {"ImageFolderExampleGen", "ImportSchemaGen", "StatisticsGen",
                          "ExampleValidator", "SchemaValidationGate", "Transform",
                          # KFP v2 compiles the resolver into one task per channel.
                          "LatestBlessedModel-model-resolver",
                          "LatestBlessedModel-model-blessing-resolver", "Tuner_vgg16", "Trainer_vgg16", "Evaluator_vgg16",
                          "Tuner_resnet50", "Trainer_resnet50", "Evaluator_resnet50",
                          "ModelSelector", "Pusher"}
    # Transform waits for the validation gate even though it reads no output of it.
    assert "SchemaValidationGate" in tasks["Transform"].get("dependentTasks", [])
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = [e["container"] for e in executors.values() if "container" in e]
    assert len(containers) == len(tasks) - 2  # all but the two resolver tasks
    assert all(c["image"] == "registry.example/fer:1" for c in containers)
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"
    assert "gs://b/fer" in json.dumps(spec) and "gs://b/serving/fer" in json.dumps(spec)
