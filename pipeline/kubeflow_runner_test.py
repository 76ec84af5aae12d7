"""The Kubeflow runner compiles the same graph into a KFP v2 pipeline spec."""
import json
import re

from tfx.utils import import_utils

from pipeline import configs, kubeflow_runner


def _compile(tmp_path, *extra_args):
    out = str(tmp_path / "fer.json")
    kubeflow_runner.main(["--image", "registry.example/fer:1", "--data-root", "gs://b/fer",
                          "--pipeline-root", "gs://b/root", "--output-file", out,
                          "--serving-dir", "gs://b/serving", *extra_args])
    with open(out) as f:
        return json.load(f)


def test_compiles_pipeline_spec_with_every_component(tmp_path):
    spec = _compile(tmp_path, "--profile", "gpu", "--tuning")
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert set(tasks) == {"ImageFolderExampleGen", "ImportSchemaGen", "StatisticsGen",
                          "ExampleValidator", "SchemaValidationGate", "Transform",
                          "DistributionValidator", "DriftGate", "LatestStatistics",
                          # KFP v2 compiles the resolver into one task per channel.
                          "LatestBlessedModel-model-resolver",
                          "LatestBlessedModel-model-blessing-resolver",
                          "Tuner_vgg16", "Trainer_vgg16", "Evaluator_vgg16",
                          "Tuner_resnet50", "Trainer_resnet50", "Evaluator_resnet50",
                          "Ensemble", "Evaluator_ensemble",
                          "ModelSelector", "Pusher", "RunReport"}
    # Transform waits for both gates even though it reads no output of them.
    assert {"SchemaValidationGate", "DriftGate"} <= set(tasks["Transform"]["dependentTasks"])
    # The drift baseline is resolved before this run's statistics exist.
    assert "LatestStatistics" in tasks["ImageFolderExampleGen"]["dependentTasks"]
    # No warm start on KFP v2: it needs the lineage-reading resolver.
    assert "base_model" not in tasks["Trainer_vgg16"]["inputs"].get("artifacts", {})
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    containers = [e["container"] for e in executors.values() if "container" in e]
    assert len(containers) == len(tasks) - 3  # all but the three resolver tasks
    assert all(c["image"] == "registry.example/fer:1" for c in containers)
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"
    # No fingerprint on KFP: ExampleGen always reads the files again; the rest may be cached.
    caching = {name: t["cachingOptions"]["enableCache"] for name, t in tasks.items()
               if "cachingOptions" in t}
    assert caching.pop("ImageFolderExampleGen") is False and all(caching.values())
    # The container entry point imports each custom artifact type by its schema title.
    titles = set(re.findall(r"title: ([\w.]+)", json.dumps(spec)))
    custom = {t for t in titles if not t.startswith(("tfx.", "system."))}
    assert custom == {"components.ImageIngestReport", "components.RunReport"}
    for title in custom:
        assert import_utils.import_class_by_path(title).TYPE_NAME == title
    assert "gs://b/fer" in json.dumps(spec) and "gs://b/serving/fer" in json.dumps(spec)


def test_the_kfp_client_reads_the_pipeline_spec_as_the_readme_writes_it(tmp_path):
    import yaml
    from kfp.client import client as kfp_client

    job = _compile(tmp_path, "--profile", "cpu")
    package = str(tmp_path / "fer-pipeline.yaml")
    with open(package, "w") as f:
        yaml.safe_dump(job["pipelineSpec"], f)
    # What kfp.Client.create_recurring_run(pipeline_package_path=...) parses before sending.
    doc = kfp_client._extract_pipeline_yaml(package)
    assert "Trainer_vgg16" in doc.pipeline_spec.root.dag.tasks
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root"


def test_cpu_profile_trains_untuned_with_per_architecture_budgets(tmp_path):
    spec = _compile(tmp_path, "--profile", "cpu")
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    assert {"Trainer_vgg16", "Trainer_resnet50"} <= set(tasks)
    assert not [t for t in tasks if t.startswith("Tuner_")]
    cpu = configs.get_profile("cpu")
    for arch in ("vgg16", "resnet50"):
        custom_config = json.loads(tasks[f"Trainer_{arch}"]["inputs"]["parameters"][
            "custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
        assert custom_config["architecture"] == arch
        # The profile's settings for this architecture, and its share of the run's time
        # budget, as the local runner would use them.
        local = configs.pipeline_arguments(configs.RunOptions(data_root="gs://b/fer",
                                                              profile="cpu"))["training"][arch]
        for key, value in local.items():
            assert custom_config[key] == value, key
        assert custom_config["time_budget_s"] == configs.time_budget(configs.RunOptions(
            data_root="gs://b/fer", profile="cpu")).trainers[arch] > 0
    vgg16, resnet50 = (cpu.training_config(a) for a in ("vgg16", "resnet50"))
    assert vgg16["warm_start_epochs"] != resnet50["warm_start_epochs"]


def test_bad_options_are_reported_without_a_traceback(tmp_path, capsys):
    rc = kubeflow_runner.main(["--image", "i:1", "--data-root", "gs://b/fer", "--pipeline-root",
                               "gs://b/root", "--output-file", str(tmp_path / "f.json"),
                               "--min-accuracy", "2"])
    assert rc == 2
    assert "ERROR (PipelineArgumentError)" in capsys.readouterr().err
    assert not (tmp_path / "f.json").exists()
