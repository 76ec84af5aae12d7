"""`fer-deploy`: writes what production serving needs for a pushed model (TF Serving config files,
KServe or Kubernetes manifests) and prints how to use them. Parses arguments and prints; the
content comes from serving/deploy.py."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from components import contract
from serving import deploy


def build_parser() -> argparse.ArgumentParser:
    """fer-deploy's command line: the subcommands tf-serving, kserve and kubernetes."""
    p = argparse.ArgumentParser(prog="fer-deploy", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    tfs = sub.add_parser("tf-serving", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                         help="models.config + batching + monitoring files for the "
                              "tensorflow/serving container, written into the serving dir")
    tfs.add_argument("--serving-dir", required=True,
                     help="the Pusher's directory (holds <model-name>/<version>/), e.g. "
                          "outputs/serving after make run")
    for name, help_text in (("kserve", "a KServe InferenceService (TensorFlow predictor)"),
                            ("kubernetes", "Deployment + Service + HPA of tensorflow/serving")):
        k = sub.add_parser(name, help=help_text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        k.add_argument("--storage-uri", required=True,
                       help="the model's base path the cluster can read (gs://, s3://, pvc://), "
                            "holding the numbered versions")
        k.add_argument("--name", default="fer", help="resource name")
        k.add_argument("--namespace", default="default")
        k.add_argument("--min-replicas", type=int, default=2)
        k.add_argument("--max-replicas", type=int, default=10)
        k.add_argument("--service-account", help="one with read access to --storage-uri")
        k.add_argument("--out", help="file to write (default: standard output)")
    for parser in sub.choices.values():
        parser.add_argument("--model-name", default=contract.MODEL_NAME)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs fer-deploy on `argv` (None: sys.argv[1:]): tf-serving writes TF Serving's config
    files into --serving-dir and prints the `docker run` that serves it; kserve and kubernetes
    print the manifests as YAML, or write them to --out (kserve serves under --name: its
    --model-name is not used). Returns 0, or 2 when the model directory does not exist."""
    args = build_parser().parse_args(argv)
    if args.command == "tf-serving":
        model_dir = os.path.join(args.serving_dir, args.model_name)
        if not os.path.isdir(model_dir):
            print(f"fer-deploy: {model_dir} does not exist: run the pipeline first "
                  "(make run pushes to outputs/serving/fer)", file=sys.stderr)
            return 2
        for path in deploy.write_tf_serving(args.serving_dir, args.model_name).values():
            print(f"wrote {path}")
        print("start TF Serving on it (gRPC 8500, REST 8501):")
        print("  " + deploy.docker_command(os.path.abspath(args.serving_dir), args.model_name))
        return 0
    options = deploy.ClusterOptions(name=args.name, namespace=args.namespace,
                                    min_replicas=args.min_replicas,
                                    replicas=args.min_replicas, max_replicas=args.max_replicas,
                                    service_account=args.service_account)
    documents = ([deploy.kserve_inference_service(args.storage_uri, options)]
                 if args.command == "kserve"
                 else deploy.kubernetes_manifests(args.storage_uri, args.model_name, options))
    text = deploy.to_yaml(documents)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}: apply with  kubectl apply -f {args.out}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
