"""Benchmark: ExampleGen's ingest of FER2013 as image folders against its CSV form.

Builds FER2013's CSV form (`emotion,pixels,Usage`, one row per image) from the extracted image
folders (Training and PublicTest, every class; /tmp/ferdata by default, else the shared archives
extracted to a temp dir) into a temp dir, then runs ImageFolderExampleGen alone with
LocalDagRunner on each form as the pipeline runs it: the arguments `configs.pipeline_arguments`
gives the component for the profile (`cpu`: Beam in_memory, one worker; six classes, 10% valid),
the driver (span, fingerprint) included. Its time is ML Metadata's execution start -> finish;
the forms alternate, `--repeats` times each.

  python -m bench.csv_ingest_bench [--data-root /tmp/ferdata] [--profile cpu] [--repeats 2]

Not a test: it prints a Markdown table for BENCHMARKS.md#csv-ingest and writes the raw figures
as JSON. Nothing derived from FER2013 is written inside the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tfx import v1 as tfx  # noqa: E402

from components.image_example_gen import ingest_report  # noqa: E402
from components.image_example_gen.component import ImageFolderExampleGen  # noqa: E402
from components.image_example_gen.executor import INGEST_REPORT_KEY  # noqa: E402
from pipeline import configs, local_outputs, run_summary  # noqa: E402
from tests import fer2013, fer_csv  # noqa: E402

PIPELINE_NAME = "csv-ingest-bench"
CSV_NAME = "fer2013.csv"
DEFAULT_DATA_ROOT = "/tmp/ferdata"
# The component's arguments among create_pipeline's.
_EXAMPLE_GEN_ARGS = ("split_folders", "classes", "exclude_classes", "split_ratios",
                     "on_bad_image", "allow_missing_eval_classes", "validation_fraction", "span",
                     "data_csv", "csv_private_test")


def cpu_description() -> Dict[str, str]:
    """lscpu's model name, and whether the CPU has AVX-512 (its flags)."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model_name": fields.get("Model name", "?").strip(),
            "avx512": " ".join(sorted(f for f in flags if f.startswith("avx512"))) or "none",
            "cpus": fields.get("CPU(s)", "?").strip()}


def write_csv_from_folders(data_root: str, csv_path: str) -> int:
    """FER2013's CSV form of every image under data_root/{Training,PublicTest}/<class>/."""
    rows = 0
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write(fer_csv.HEADER + "\n")
        for emotion, pixels, usage in fer_csv.folder_rows(data_root):
            f.write(fer_csv.row_line(emotion, pixels, usage) + "\n")
            rows += 1
    return rows


def run_example_gen(data_root: str, work: str, profile: str,
                    data_csv: Optional[str] = None) -> Dict:
    """ImageFolderExampleGen alone, with LocalDagRunner: its seconds and its ingest report."""
    shutil.rmtree(work, ignore_errors=True)
    outputs = local_outputs.OutputLayout(work)
    arguments = configs.pipeline_arguments(configs.RunOptions(
        data_root=data_root, profile=profile, architectures=(), data_csv=data_csv))
    example_gen = ImageFolderExampleGen(input_base=data_root,
                                        **{k: arguments[k] for k in _EXAMPLE_GEN_ARGS})
    os.makedirs(os.path.dirname(outputs.metadata_path), exist_ok=True)
    pipeline = tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME, pipeline_root=outputs.pipeline_root,
        components=[example_gen], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata
        .sqlite_metadata_connection_config(outputs.metadata_path),
        beam_pipeline_args=arguments["beam_pipeline_args"])
    start = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    wall = time.perf_counter() - start
    store = run_summary.sqlite_store(outputs.metadata_path)
    [execution] = store.get_executions()
    node = run_summary.latest_run(store, PIPELINE_NAME)["ImageFolderExampleGen"]
    summary = ingest_report.read_summary(node.uri(INGEST_REPORT_KEY))
    return {"example_gen_s": (execution.last_update_time_since_epoch
                              - execution.create_time_since_epoch) / 1000.0,
            "runner_s": wall, "files_seen": summary["files_seen"],
            "examples_per_split": summary["examples_per_split"],
            "skipped": summary["skipped"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=DEFAULT_DATA_ROOT,
                        help="extracted FER2013 folders (Training/, PublicTest/); if missing, "
                             "the shared archives are extracted to a temp dir")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(local_outputs.DEFAULT_OUTPUT_DIR,
                                                      "bench_csv_ingest.json"))
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="fer_csv_bench_")
    try:
        data_root = args.data_root
        if not os.path.isdir(os.path.join(data_root, "Training")):
            if not fer2013.available():
                print(f"no {data_root} and no FER2013 archives in {fer2013.FER2013_DIR}",
                      file=sys.stderr)
                return 1
            data_root = os.path.join(work, "fer2013")
            fer2013.extract(data_root)
        csv_root = os.path.join(work, "csv")
        os.makedirs(csv_root)
        start = time.perf_counter()
        rows = write_csv_from_folders(data_root, os.path.join(csv_root, CSV_NAME))
        build_s = time.perf_counter() - start
        csv_mb = os.path.getsize(os.path.join(csv_root, CSV_NAME)) / 1e6
        print(f"{CSV_NAME}: {rows:,} rows, {csv_mb:.1f} MB, built in {build_s:.1f} s",
              flush=True)

        runs = {"folders": [], "csv": []}
        for _ in range(args.repeats):
            for form, root, data_csv in (("folders", data_root, None),
                                         ("csv", csv_root, CSV_NAME)):
                result = run_example_gen(root, os.path.join(work, "out"), args.profile,
                                         data_csv)
                runs[form].append(result)
                print(json.dumps({"form": form, **result}), flush=True)
        result = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
                  "cpu": cpu_description(), "profile": args.profile, "rows": rows,
                  "csv_mb": csv_mb, "csv_build_s": build_s, "runs": runs}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)

    cpu = result["cpu"]
    print(f"\nCPU: {cpu['model_name']} ({cpu['cpus']} CPUs; AVX-512: {cpu['avx512']})")
    print("\n| form | input | files/rows seen | examples (train / valid / eval) | ExampleGen "
          "(each run) | fastest, per 1,000 inputs |")
    print("|---|---|---|---|---|---|")
    for form, label in (("folders", "image folders"), ("csv", f"{CSV_NAME}, {csv_mb:.0f} MB")):
        first = runs[form][0]
        per_split = first["examples_per_split"]
        times = [r["example_gen_s"] for r in runs[form]]
        print(f"| {form} | {label} | {first['files_seen']:,} | "
              f"{per_split.get('train', 0):,} / {per_split.get('valid', 0):,} / "
              f"{per_split.get('eval', 0):,} | {', '.join(f'{t:.1f} s' for t in times)} | "
              f"{min(times) / first['files_seen'] * 1000:.2f} s |")
    print(f"\nraw figures: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
