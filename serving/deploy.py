"""Production serving configuration, generated for a pushed model: TF Serving's models.config and
batching parameters, a KServe InferenceService, and a Kubernetes Deployment + Service +
HorizontalPodAutoscaler running the `tensorflow/serving` image.

The pushed SavedModel depends on no code of this project, so every engine here loads it as is.

Readiness: every generated readiness probe asks `GET /v1/models/<name>/metadata`, which TF Serving
(and fer-serve) answer 200 only with a version AVAILABLE (loaded and warmed up) and 404 otherwise.
The model status endpoint `/v1/models/<name>` is no readiness signal: it answers 200 with the
state list while a version is still LOADING and after a load failed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import yaml

from components import contract

TF_SERVING_IMAGE = "tensorflow/serving:2.16.1"  # the TF Serving release matching TF 2.16
CONFIG_MOUNT = "/etc/tf-serving"
MODELS_CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
MONITORING_FILE = "monitoring.config"
# KServe's TensorFlow runtime (kserve-tensorflow-serving) runs TF Serving with
# --rest_api_port=8080 and --model_name set to the InferenceService's name.
KSERVE_REST_PORT = 8080


def readiness_path(model_name: str) -> str:
    """The REST path that succeeds only while a version of the model is AVAILABLE: model
    metadata needs a loaded servable (TF Serving: 404 "Servable not found for request:
    Latest(<name>)" until then; fer-serve's metadata endpoint also needs a loaded version)."""
    return f"/v1/models/{model_name}/metadata"


def readiness_probe(model_name: str, port: int) -> Dict[str, Any]:
    """A Kubernetes readiness probe: GET `readiness_path(model_name)` on container port `port`,
    every 5 s from 5 s after the start."""
    return {"httpGet": {"path": readiness_path(model_name), "port": port},
            "initialDelaySeconds": 5, "periodSeconds": 5}


@dataclass
class BatchingParameters:
    """TF Serving's --batching_parameters_file. Defaults sized for small CPU nodes."""
    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    max_enqueued_batches: int = 64


def models_config(base_path: str, model_name: str = contract.MODEL_NAME,
                  num_latest: int = 1, pinned_versions=(), version_labels=None) -> str:
    """ModelServerConfig text proto for --model_config_file."""
    if pinned_versions:
        versions = "".join(f" versions: {v}" for v in sorted(pinned_versions))
        policy = f"specific {{{versions} }}"
    else:
        policy = f"latest {{ num_versions: {num_latest} }}"
    labels = "".join(f'\n    version_labels {{ key: "{k}" value: {v} }}'
                     for k, v in sorted((version_labels or {}).items()))
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{model_name}"\n'
        f'    base_path: "{base_path}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {policy} }}{labels}\n"
        "  }\n"
        "}\n")


def batching_parameters(params: Optional[BatchingParameters] = None) -> str:
    """The text of TF Serving's --batching_parameters_file for `params` (None: the
    BatchingParameters defaults)."""
    params = params or BatchingParameters()
    return (f"max_batch_size {{ value: {params.max_batch_size} }}\n"
            f"batch_timeout_micros {{ value: {params.batch_timeout_micros} }}\n"
            f"num_batch_threads {{ value: {params.num_batch_threads} }}\n"
            f"max_enqueued_batches {{ value: {params.max_enqueued_batches} }}\n")


def monitoring_config() -> str:
    """--monitoring_config_file: Prometheus metrics at the path fer-serve uses too."""
    return ('prometheus_config {\n  enable: true,\n'
            '  path: "/monitoring/prometheus/metrics"\n}\n')


def tf_serving_args(config_dir: str, enable_batching: bool = True) -> List[str]:
    """tensorflow_model_server's arguments for the files write_tf_serving writes, read from
    `config_dir` (the path the container sees): TF Serving's default ports, models.config
    re-read every 60 s, new versions looked for every 30 s, Prometheus metrics, warm-up
    replay; with `enable_batching`, server-side batching as BATCHING_FILE says."""
    args = [f"--port={contract.GRPC_PORT}", f"--rest_api_port={contract.REST_PORT}",
            f"--model_config_file={config_dir}/{MODELS_CONFIG_FILE}",
            "--model_config_file_poll_wait_seconds=60",
            "--file_system_poll_wait_seconds=30",
            f"--monitoring_config_file={config_dir}/{MONITORING_FILE}",
            "--enable_model_warmup=true"]
    if enable_batching:
        args += ["--enable_batching=true",
                 f"--batching_parameters_file={config_dir}/{BATCHING_FILE}"]
    return args


def docker_command(serving_dir: str, model_name: str = contract.MODEL_NAME) -> str:
    """`docker run` of TF Serving on the directory the Pusher writes (after write_tf_serving
    wrote the configuration into it)."""
    return (f"docker run --rm -p {contract.GRPC_PORT}:{contract.GRPC_PORT} "
            f"-p {contract.REST_PORT}:{contract.REST_PORT} "
            f"-v {serving_dir}:/models {TF_SERVING_IMAGE} "
            + " ".join(tf_serving_args("/models")))


def write_tf_serving(serving_dir: str, model_name: str = contract.MODEL_NAME,
                     container_models_dir: str = "/models") -> Dict[str, str]:
    """Writes models.config (base path as the container sees it), the batching parameters and
    the monitoring config into `serving_dir`; returns {file name: path}."""
    files = {
        MODELS_CONFIG_FILE: models_config(f"{container_models_dir}/{model_name}", model_name),
        BATCHING_FILE: batching_parameters(),
        MONITORING_FILE: monitoring_config(),
    }
    os.makedirs(serving_dir, exist_ok=True)
    written = {}
    for name, text in files.items():
        path = os.path.join(serving_dir, name)
        with open(path, "w") as f:
            f.write(text)
        written[name] = path
    return written


# --- Kubernetes ---------------------------------------------------------------------------------

@dataclass
class ClusterOptions:
    """Names and sizes of the generated KServe and Kubernetes resources: `name` (also the model
    name KServe serves under) in `namespace`; `replicas` the Deployment's initial count,
    `min_replicas` to `max_replicas` the autoscaler's range at `target_cpu_percent` CPU use;
    each pod's CPU and memory requests and limits as Kubernetes quantities ("2", "2Gi");
    `image` TF Serving's image (Kubernetes only: KServe uses its runtime's); `service_account`
    (None: the namespace's default)."""

    name: str = "fer"
    namespace: str = "default"
    replicas: int = 2
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu_percent: int = 70
    cpu_request: str = "2"
    memory_request: str = "2Gi"
    cpu_limit: str = "4"
    memory_limit: str = "4Gi"
    image: str = TF_SERVING_IMAGE
    service_account: Optional[str] = None  # with read access to the storage URI


def kserve_inference_service(storage_uri: str, options: Optional[ClusterOptions] = None
                             ) -> Dict[str, Any]:
    """A KServe InferenceService with the TensorFlow predictor (TF Serving underneath).
    `storage_uri` is the model's base path (gs://..., s3://..., pvc://...): the numbered
    versions below it, as the Pusher writes them. The runtime serves the model under the
    InferenceService's name (`options.name`), so that is the name readiness asks for; a pod is
    ready only once a version is AVAILABLE (readiness_path)."""
    options = options or ClusterOptions()
    predictor: Dict[str, Any] = {
        "minReplicas": options.min_replicas,
        "maxReplicas": options.max_replicas,
        "scaleMetric": "cpu",
        "scaleTarget": options.target_cpu_percent,
        "model": {
            "modelFormat": {"name": "tensorflow"},
            "storageUri": storage_uri,
            "resources": _resources(options),
            "readinessProbe": readiness_probe(options.name, KSERVE_REST_PORT),
        },
    }
    if options.service_account:
        predictor["serviceAccountName"] = options.service_account
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": options.name, "namespace": options.namespace},
        "spec": {"predictor": predictor},
    }


def _resources(options: ClusterOptions) -> Dict[str, Any]:
    return {"requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"cpu": options.cpu_limit, "memory": options.memory_limit}}


def kubernetes_manifests(storage_uri: str, model_name: str = contract.MODEL_NAME,
                         options: Optional[ClusterOptions] = None) -> List[Dict[str, Any]]:
    """ConfigMap (models.config, batching, monitoring), Deployment of tensorflow/serving,
    Service (gRPC 8500, REST 8501) and HorizontalPodAutoscaler. TF Serving reads gs:// and s3://
    base paths itself; readiness asks the model metadata endpoint (readiness_path), so a pod takes
    traffic only once a version is AVAILABLE (loaded and warmed up), not while one is LOADING or
    after a failed load, when the status endpoint still answers 200."""
    options = options or ClusterOptions()
    labels = {"app": options.name}
    meta = {"name": options.name, "namespace": options.namespace, "labels": labels}
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {**meta, "name": f"{options.name}-config"},
        "data": {MODELS_CONFIG_FILE: models_config(storage_uri, model_name),
                 BATCHING_FILE: batching_parameters(),
                 MONITORING_FILE: monitoring_config()},
    }
    container = {
        "name": "tf-serving",
        "image": options.image,
        "args": tf_serving_args(CONFIG_MOUNT),
        "ports": [{"name": "grpc", "containerPort": contract.GRPC_PORT},
                  {"name": "http", "containerPort": contract.REST_PORT}],
        "readinessProbe": readiness_probe(model_name, contract.REST_PORT),
        "livenessProbe": {"tcpSocket": {"port": contract.GRPC_PORT},
                          "initialDelaySeconds": 30, "periodSeconds": 15},
        "resources": _resources(options),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
    }
    pod_spec: Dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": f"{options.name}-config"}}],
    }
    if options.service_account:
        pod_spec["serviceAccountName"] = options.service_account
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels,
                                      "annotations": {"prometheus.io/scrape": "true",
                                                      "prometheus.io/port": str(contract.REST_PORT),
                                                      "prometheus.io/path":
                                                          "/monitoring/prometheus/metrics"}},
                         "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": meta,
        "spec": {"selector": labels, "ports": [
            {"name": "grpc", "port": contract.GRPC_PORT, "targetPort": "grpc"},
            {"name": "http", "port": contract.REST_PORT, "targetPort": "http"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                               "name": options.name},
            "minReplicas": options.min_replicas, "maxReplicas": options.max_replicas,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization",
                                          "averageUtilization": options.target_cpu_percent}}}],
        },
    }
    return [config_map, deployment, service, autoscaler]


class _ManifestDumper(yaml.SafeDumper):
    """Multi-line strings (the config files) as literal blocks; no `&id001` anchors."""

    def ignore_aliases(self, data):
        return True


def _str(dumper, text):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_ManifestDumper.add_representer(str, _str)


def to_yaml(documents: List[Dict[str, Any]]) -> str:
    """`documents` as one YAML stream for `kubectl apply -f` (`---` between them), keys in
    their order, multi-line strings (the config files) as literal blocks."""
    return yaml.dump_all(documents, Dumper=_ManifestDumper, sort_keys=False)
