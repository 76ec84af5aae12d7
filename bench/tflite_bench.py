"""TFLite benchmark: the Pusher's TFLite twin (float16; dynamic-range int8 measured beside it)
against the pushed SavedModel on the eval images: accuracy, per-image probability differences,
file size and single-image latency.

  python -m bench.tflite_bench --saved-model SERVING_DIR/fer/VERSION --images DATA/PublicTest \
      [--rebuild-from TRAINER_MODEL/Format-Serving ... --transform-graph TRANSFORM_GRAPH] \
      [--threads 2] [--out bench.json]

The SavedModel is the pushed one, measured through `serving_default` on the files' bytes, as TF
Serving answers. The TFLite models are converted by components/pusher/tflite.py and run by
serving/tflite_predict.py (what `fer-client predict --tflite` runs). A model pushed before the
export kept its float-image function (contract.IMAGES_FUNCTION) cannot be converted as it is:
`--rebuild-from` re-exports it from its Trainers' kept classifiers (one directory: that
Trainer's network; several: their ensemble) over `--transform-graph`, and the figures say how
far the rebuilt model's probabilities are from the pushed one's (0: the same model).

Latency: one image per call, `--threads` threads for TFLite and for TensorFlow's ops, the median
and 90th percentile of `--repeats` calls after 10 warm-up calls; "end to end" starts from the
encoded file (decoding and resizing included), "model" from Transform's images.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from typing import Dict, List

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine() -> Dict[str, str]:
    """The CPU's model name as lscpu gives it, its core count, and whether it has AVX-512."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model_name": fields.get("Model name", "?").strip(),
            "cpus": fields.get("CPU(s)", "?").strip(),
            "avx512": ", ".join(f for f in flags if f.startswith("avx512")) or "none",
            "python": platform.python_version()}


def eval_images(root: str, classes: List[str]):
    """(encoded bytes, label ids, paths) of `root`/<class>/* for the model's classes."""
    images, labels, paths = [], [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            path = os.path.join(folder, file)
            with open(path, "rb") as f:
                images.append(f.read())
            labels.append(label)
            paths.append(path)
    return images, np.array(labels), paths


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names)


def rebuild(member_dirs: List[str], transform_graph: str, export_dir: str) -> str:
    """The pushed model re-exported by today's export code from its Trainers' classifiers."""
    import tensorflow_transform as tft

    from components.ensemble import ensemble
    from components.models import export, warm_start

    if len(member_dirs) >= ensemble.MIN_MEMBERS:
        ensemble.export({str(i): d for i, d in enumerate(member_dirs)}, transform_graph,
                        export_dir)
        return export_dir
    network, spec = warm_start.load_classifier(member_dirs[0])
    export.export_model(network, tft.TFTransformOutput(transform_graph), spec["label_names"],
                        export_dir, spec["test_time_augmentation"], spec["tta_shift"])
    return export_dir


def timed(call, repeats: int) -> Dict[str, float]:
    for _ in range(10):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_ms": 1000 * statistics.median(times),
            "p90_ms": 1000 * times[int(0.9 * (len(times) - 1))]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--saved-model", required=True, help="the pushed version directory")
    p.add_argument("--images", required=True, help="eval folder: <class>/<image>")
    p.add_argument("--rebuild-from", nargs="*", default=[],
                   help="Trainer Format-Serving dirs of the pushed model (see above)")
    p.add_argument("--transform-graph", help="with --rebuild-from")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", help="write the figures as JSON here too")
    args = p.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from components import contract
    from components.pusher import tflite
    from serving import tflite_predict

    work = tempfile.mkdtemp(prefix="tflite_bench_")
    pushed = tf.saved_model.load(args.saved_model)
    serve = pushed.signatures[contract.SERVING_SIGNATURE]
    source = args.saved_model
    if not hasattr(pushed, contract.IMAGES_FUNCTION):
        if not args.rebuild_from:
            raise SystemExit(f"{args.saved_model} has no {contract.IMAGES_FUNCTION}: give "
                             f"--rebuild-from and --transform-graph")
        source = rebuild(args.rebuild_from, args.transform_graph, os.path.join(work, "rebuilt"))

    figures: Dict[str, object] = {"machine": machine(), "saved_model": args.saved_model,
                                  "threads": args.threads}
    classifiers, sizes = {}, {"saved_model": dir_bytes(args.saved_model)}
    for quantization in tflite.QUANTIZATIONS:
        path = os.path.join(work, f"model_{quantization}.tflite")
        start = time.perf_counter()
        with open(path, "wb") as f:
            f.write(tflite.convert(source, quantization))
        figures[f"convert_{quantization}_s"] = time.perf_counter() - start
        sizes[quantization] = os.path.getsize(path)
        classifiers[quantization] = tflite_predict.TFLiteClassifier(path, args.threads)
    figures["bytes"] = sizes
    classes = classifiers[tflite.FLOAT16].classes
    images, labels, _ = eval_images(args.images, classes)
    figures["images"] = len(images)

    def served(model_signature, batch):
        return model_signature(**{contract.SERVING_INPUT_KEY: tf.constant(batch)})[
            contract.PROBABILITIES_KEY].numpy()

    probabilities = {}
    start = time.perf_counter()
    probabilities["saved_model"] = np.concatenate([
        served(serve, images[i:i + args.batch_size])
        for i in range(0, len(images), args.batch_size)])
    figures["eval_saved_model_s"] = time.perf_counter() - start
    if source != args.saved_model:
        rebuilt = tf.saved_model.load(source).signatures[contract.SERVING_SIGNATURE]
        again = np.concatenate([served(rebuilt, images[i:i + args.batch_size])
                                for i in range(0, len(images), args.batch_size)])
        figures["rebuilt_max_abs_difference"] = float(
            np.abs(again - probabilities["saved_model"]).max())
    for quantization, classifier in classifiers.items():
        start = time.perf_counter()
        probabilities[quantization] = np.array(
            [q.probabilities for q in classifier.predict(images, args.batch_size)])
        figures[f"eval_{quantization}_s"] = time.perf_counter() - start

    reference = probabilities["saved_model"]
    accuracy = {name: float(np.mean(p.argmax(axis=1) == labels))
                for name, p in probabilities.items()}
    figures["accuracy"] = accuracy
    for quantization in tflite.QUANTIZATIONS:
        difference = np.abs(probabilities[quantization] - reference)
        figures[f"{quantization}_vs_saved_model"] = {
            "max_abs": float(difference.max()),
            "p99_9_abs": float(np.quantile(difference.max(axis=1), 0.999)),
            "mean_abs": float(difference.mean()),
            "argmax_agreement": float(np.mean(
                probabilities[quantization].argmax(axis=1) == reference.argmax(axis=1))),
            "accuracy_points": 100 * (accuracy[quantization] - accuracy["saved_model"])}

    one = images[:1]
    float_model = tf.saved_model.load(source)
    pixels = classifiers[tflite.FLOAT16].preprocess(one)
    images_function = getattr(float_model, contract.IMAGES_FUNCTION)
    latency = {"saved_model_end_to_end": timed(lambda: served(serve, one), args.repeats),
               "saved_model_model": timed(lambda: images_function(pixels).numpy(),
                                          args.repeats)}
    for quantization, classifier in classifiers.items():
        latency[f"{quantization}_end_to_end"] = timed(lambda c=classifier: c.predict(one),
                                                      args.repeats)
        latency[f"{quantization}_model"] = timed(lambda c=classifier: c.probabilities(pixels),
                                                 args.repeats)
    figures["latency"] = latency
    text = json.dumps(figures, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
