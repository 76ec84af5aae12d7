"""`fer-client`: classify images with a served FER model (TF Serving or fer-serve), or ask for
its status and metadata. Parses arguments and prints; the calls live in serving/client.py.
`--help` and option errors answer without importing TensorFlow, whose start-up lines go to the
console only with `-v` (components/quiet_start.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional, Sequence

from components import contract, quiet_start
from serving import faces as faces_lib


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """fer-client's command line: the subcommands predict, status and metadata, each with the
    connection options (protocol, server, model, version or label, timeout, retries, TLS)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--protocol", choices=("grpc", "rest"), default="grpc")
    common.add_argument("--server", help=f"gRPC host:port (default "
                        f"{contract.DEFAULT_GRPC_TARGET}) or REST URL (default "
                        f"{contract.DEFAULT_REST_URL})")
    common.add_argument("--model-name", default=contract.MODEL_NAME)
    version = common.add_mutually_exclusive_group()
    version.add_argument("--model-version", type=int, help="a version number (default: newest)")
    version.add_argument("--version-label", help="a version label, e.g. stable")
    common.add_argument("--timeout", type=float, default=30.0, help="deadline per call, seconds")
    common.add_argument("--retries", type=int, default=3,
                        help="retries on UNAVAILABLE, with exponential backoff")
    common.add_argument("--ca-file", help="PEM CA certificate: use TLS")
    common.add_argument("--cert-file", help="PEM client certificate (mutual TLS)")
    common.add_argument("--key-file", help="PEM private key of --cert-file")
    common.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (CUDA, oneDNN) too")

    p = argparse.ArgumentParser(prog="fer-client", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    predict = sub.add_parser("predict", parents=[common], help="classify image files",
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    predict.add_argument("images", nargs="+",
                         help="face crops, or photos with --faces; '-' reads one from stdin")
    predict.add_argument("--signature", default=contract.SERVING_SIGNATURE)
    predict.add_argument("--batch-size", type=_positive_int, default=32)
    predict.add_argument("--top-k", type=_positive_int, default=3)
    predict.add_argument("--format", choices=("table", "jsonl"), default="table")
    predict.add_argument("--faces", action="store_true",
                         help="find faces in each photo (OpenCV Haar cascade) and classify each")
    predict.add_argument("--min-face", type=int, default=faces_lib.DEFAULT_MIN_FACE_PX,
                         help="smallest face to find, pixels")
    predict.add_argument("--tflite", metavar="PATH",
                         help="classify here with the Pusher's TFLite model instead of asking a "
                              "server: a .tflite file, its version directory, or "
                              "<serving_dir>/fer-tflite (the newest version); the connection "
                              "options are not used")
    sub.add_parser("status", parents=[common], help="versions and their states",
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub.add_parser("metadata", parents=[common], help="signatures of the served version",
                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    return p


def make_client(args):
    """The GrpcClient or RestClient parsed `args` ask for (client.connect), retrying
    UNAVAILABLE `--retries` times; REST with --ca-file or --cert-file and no --server goes to
    the default REST port over https; with `--tflite`, a serving.tflite_predict.TFLiteClassifier
    (no server). Raises what the client's constructor raises (ValueError for a bad URL or a
    TFLite file without class names, OSError for an unreadable PEM or TFLite file)."""
    if getattr(args, "tflite", None):
        from serving import tflite_predict
        with quiet_start.quiet_start(args.verbose):  # TFLite's INFO line on its CPU delegate
            return tflite_predict.TFLiteClassifier(args.tflite)
    from serving import client as client_lib

    options = dict(model_name=args.model_name, version=args.model_version,
                   version_label=args.version_label, timeout_s=args.timeout,
                   retry=client_lib.RetryPolicy(attempts=args.retries + 1),
                   ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
    if getattr(args, "signature", None):
        options["signature_name"] = args.signature
    server = args.server
    if args.protocol == "rest" and (args.ca_file or args.cert_file) and server is None:
        server = contract.DEFAULT_REST_URL.replace("http://", "https://")
    return client_lib.connect(args.protocol, server, **options)


def _rows(args, client) -> List[dict]:
    """One row per image (or per face with --faces); photos without a face get a row too."""
    inputs, rows = [], []
    for path in args.images:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        if not args.faces:
            inputs.append(data)
            rows.append({"file": path})
            continue
        try:
            found = faces_lib.find_faces(data, args.min_face)
        except ValueError as e:
            rows.append({"file": path, "error": str(e)})
            continue
        if not found:
            rows.append({"file": path, "error": "no face found"})
        for i, face in enumerate(found):
            inputs.append(face.png)
            rows.append({"file": path, "face": i, "box": list(face.box)})
    predictions = iter(client.predict(inputs, args.batch_size) if inputs else [])
    for row in rows:
        if "error" in row:
            continue
        p = next(predictions)
        row.update({"class": p.predicted_class, "probability": round(p.probability, 4),
                    "top_k": [[c, round(q, 4)] for c, q in p.top(args.top_k)],
                    "version": p.version})
    return rows


def _print_table(rows: List[dict], faces: bool) -> None:
    width = max(len(os.path.basename(r["file"])) for r in rows)
    width = max(width, len("file"))
    box_w = 22 if faces else 0
    header = f"{'file':<{width}}  " + (f"{'face box (x,y,w,h)':<{box_w}}  " if faces else "")
    print(header + f"{'class':<9} {'prob':>5}  top-k")
    for r in rows:
        line = f"{os.path.basename(r['file']):<{width}}  "
        if faces:
            line += f"{','.join(map(str, r.get('box', []))) or '-':<{box_w}}  "
        if "error" in r:
            print(line + r["error"])
            continue
        top = ", ".join(f"{c} {q:.2f}" for c, q in r["top_k"])
        print(line + f"{r['class']:<9} {r['probability']:>5.2f}  {top}")
    versions = sorted({r["version"] for r in rows if r.get("version")})
    if versions:
        print(f"({len([r for r in rows if 'class' in r])} classified by version "
              f"{', '.join(map(str, versions))})")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs fer-client on `argv` (None: sys.argv[1:]) and prints the predictions (a table or
    JSON lines), the versions' states or the metadata. Returns the exit status: 0; 1 when the
    server answered an error; 2 when the client could not be made or a file could not be
    read."""
    args = build_parser().parse_args(argv)
    with quiet_start.quiet_start(args.verbose):
        from serving import client as client_lib
    try:
        client = make_client(args)
    except (ValueError, OSError) as e:
        print(f"fer-client: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "status":
            for s in client.status():
                error = f"  {s['error_code']}: {s['error_message']}" if s["error_message"] else ""
                print(f"version {s['version']}: {s['state']}{error}")
        elif args.command == "metadata":
            print(json.dumps(client.metadata(), indent=2))
        else:
            rows = _rows(args, client)
            if args.format == "jsonl":
                for row in rows:
                    print(json.dumps(row))
            else:
                _print_table(rows, args.faces)
    except OSError as e:
        print(f"fer-client: {e}", file=sys.stderr)
        return 2
    except client_lib.ClientError as e:
        answered = "the TFLite model refused" if getattr(args, "tflite", None) else \
            "the server answered"
        print(f"fer-client: {answered} {e.code}: {e.message}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
