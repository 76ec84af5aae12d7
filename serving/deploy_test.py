import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components import contract
from serving import deploy, deploy_cli

URI = "gs://bucket/fer-serving/fer"


def test_models_config_parses_as_tf_servings_model_server_config():
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(deploy.models_config("/models/fer"), config)
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("fer", "/models/fer",
                                                                   "tensorflow")
    assert model.model_version_policy.latest.num_versions == 1

    pinned = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(deploy.models_config(URI, pinned_versions=[3, 1],
                                           version_labels={"stable": 1, "canary": 3}), pinned)
    model = pinned.model_config_list.config[0]
    assert list(model.model_version_policy.specific.versions) == [1, 3]
    assert dict(model.version_labels) == {"stable": 1, "canary": 3}


def test_batching_and_monitoring_files_name_tf_servings_fields():
    batching = deploy.batching_parameters()
    for field in ("max_batch_size", "batch_timeout_micros", "num_batch_threads",
                  "max_enqueued_batches"):
        assert f"{field} {{ value: " in batching
    assert 'path: "/monitoring/prometheus/metrics"' in deploy.monitoring_config()


def test_tf_serving_files_and_docker_command(tmp_path, capsys):
    (tmp_path / "fer" / "1").mkdir(parents=True)
    assert deploy_cli.main(["tf-serving", "--serving-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in (deploy.MODELS_CONFIG_FILE, deploy.BATCHING_FILE, deploy.MONITORING_FILE):
        assert (tmp_path / name).exists() and f"wrote {tmp_path / name}" in out
    assert 'base_path: "/models/fer"' in (tmp_path / deploy.MODELS_CONFIG_FILE).read_text()
    assert f"-v {tmp_path}:/models {deploy.TF_SERVING_IMAGE}" in out
    assert "--model_config_file=/models/models.config" in out and "-p 8500:8500" in out
    assert deploy_cli.main(["tf-serving", "--serving-dir", str(tmp_path / "none")]) == 2


def test_kubernetes_manifests_carry_model_uri_ports_and_probes(tmp_path):
    out = tmp_path / "k8s.yaml"
    assert deploy_cli.main(["kubernetes", "--storage-uri", URI, "--out", str(out)]) == 0
    docs = {d["kind"]: d for d in yaml.safe_load_all(out.read_text())}
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(docs["ConfigMap"]["data"]["models.config"], config)
    assert config.model_config_list.config[0].base_path == URI
    assert config.model_config_list.config[0].name == contract.MODEL_NAME

    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == deploy.TF_SERVING_IMAGE
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    # Ready only with a version AVAILABLE: metadata needs a loaded servable, the status does not.
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/fer/metadata",
                                                      "port": 8501}
    assert container["resources"]["requests"]["cpu"]
    assert "--enable_model_warmup=true" in container["args"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert f"--model_config_file={mount}/models.config" in container["args"]
    assert {p["port"] for p in docs["Service"]["spec"]["ports"]} == {8500, 8501}
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert hpa["minReplicas"] <= hpa["maxReplicas"]


def test_kserve_inference_service_uses_the_tensorflow_predictor(capsys):
    assert deploy_cli.main(["kserve", "--storage-uri", URI, "--name", "fer-prod"]) == 0
    (service,) = list(yaml.safe_load_all(capsys.readouterr().out))
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService" and service["metadata"]["name"] == "fer-prod"
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "tensorflow"} and model["storageUri"] == URI
    # KServe's TensorFlow runtime serves the model under the InferenceService's name, REST 8080.
    assert model["readinessProbe"]["httpGet"] == {"path": "/v1/models/fer-prod/metadata",
                                                  "port": 8080}


def _probes(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "readinessProbe":
                yield value
            yield from _probes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _probes(value)


def test_every_generated_readiness_probe_needs_an_available_version():
    """TF Serving answers the status endpoint 200 while a version is LOADING or failed: every
    readiness probe asks for the metadata, which needs a loaded version."""
    options = deploy.ClusterOptions(name="fer-prod")
    for documents, served_name in (
            (deploy.kubernetes_manifests(URI, "fer", options), "fer"),
            ([deploy.kserve_inference_service(URI, options)], "fer-prod")):
        probes = list(_probes(documents))
        assert probes, documents
        for probe in probes:
            assert probe["httpGet"]["path"] == f"/v1/models/{served_name}/metadata"
    assert deploy.readiness_path("fer") == "/v1/models/fer/metadata"
