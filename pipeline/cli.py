"""`fer-pipeline`: the command-line entry point.

  fer-pipeline run                         # demo: generates demo faces, runs the pipeline
  fer-pipeline run --data-root DIR --profile cpu
  fer-pipeline retrain --data-root DIR --profile cpu   # from cron: one line out, a lock
  fer-pipeline demo-data DIR               # only write the demo image folders
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from typing import Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
# google-api-core warns on every import that Python 3.10 is old; the stack is pinned to 3.10.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")

from components import contract  # noqa: E402  (after the environment is set)
from pipeline import cli_options, configs, local_outputs  # noqa: E402
from pipeline import console as console_lib  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-pipeline",
        description="Facial-expression recognition TFX pipeline: image folders -> validated, "
                    "transformed examples -> tuned, trained and evaluated VGG16 and ResNet50 "
                    "-> the best blessed model pushed to a TF Serving model directory.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run the pipeline locally (LocalDagRunner + Beam DirectRunner)",
        formatter_class=cli_options.HelpFormatter,
        description="Run the pipeline locally. Without --data-root (or --data-csv), a "
                    "deterministic demo dataset is generated under OUTPUT_DIR/demo_data and used.")
    run.add_argument("--data-root", help="image folders: DATA_ROOT/<split>/<class>/<image> (or "
                     "the folder of --data-csv); default: generated demo data")
    run.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR,
                     help="artifacts (pipeline_root/), ML Metadata (metadata/) and demo data")
    cli_options.add_run_options(run, schema_dir_default=configs.SCHEMA_DIR,
                                serving_dir_help="Pusher target: SERVING_DIR/fer/<version>/ "
                                                 "(default: OUTPUT_DIR/serving)")
    run.add_argument("-v", "--verbose", action="store_true", help="show every TFX/Beam log line")

    retrain = sub.add_parser(
        "retrain", help="one scheduled retraining run: safe to call from cron",
        formatter_class=cli_options.HelpFormatter,
        description="Run the pipeline on the latest span of DATA_ROOT (docs/retraining.md).\n"
                    "One run at a time (a lock file); everything goes to a log\n"
                    "file under OUTPUT_DIR/logs; stdout gets one line: span, winner and its\n"
                    "metric against the serving model's, pushed version or why not.\n\n"
                    "Exit status: 0 the run finished (pushed or rightly not); "
                    f"{EXIT_BAD_INPUT} bad data or\n"
                    "options (missing data, validation, drift); "
                    f"{EXIT_FAILED} a component failed (e.g.\n"
                    f"training); {EXIT_LOCKED} another run holds the lock. "
                    "The reason: one line on stderr.")
    retrain.add_argument("--data-root", required=True,
                         help="image folders: DATA_ROOT/span-<N>/<split>/<class>/<image>, or "
                              "DATA_ROOT/<split>/<class>/<image>")
    retrain.add_argument("--output-dir", default=local_outputs.DEFAULT_OUTPUT_DIR,
                         help="artifacts, ML Metadata, logs and the lock file")
    retrain.add_argument("--lock-file", help="default: OUTPUT_DIR/retrain.lock")
    cli_options.add_run_options(retrain, schema_dir_default=configs.SCHEMA_DIR,
                                serving_dir_help="Pusher target: SERVING_DIR/fer/<version>/ "
                                                 "(default: OUTPUT_DIR/serving)")

    demo = sub.add_parser("demo-data", help="write the demo image folders and exit")
    demo.add_argument("out_dir")
    demo.add_argument("--train-per-class", type=int,
                      default=configs.DEMO_IMAGES_PER_CLASS[contract.TRAIN_SPLIT])
    demo.add_argument("--eval-per-class", type=int,
                      default=configs.DEMO_IMAGES_PER_CLASS[contract.EVAL_SPLIT])
    return parser


def _print_summary(outputs, output_dir: str) -> None:
    from components.image_example_gen import executor as example_gen_executor
    from components.image_example_gen import ingest_report

    layout = local_outputs.OutputLayout(os.path.abspath(output_dir))
    print(f"\n=== {configs.PIPELINE_NAME}: run {outputs.run_id} finished ===")
    for node_id, node in outputs.nodes.items():
        print(f"{node_id:<22} {node.state}")
    if "ImageFolderExampleGen" in outputs.nodes:
        gen = outputs["ImageFolderExampleGen"]
        report_uri = gen.uri(example_gen_executor.INGEST_REPORT_KEY)
        summary = ingest_report.read_summary(report_uri)
        print("\nIngest:", ingest_report.format_summary(summary))
        print(f"  label map: {json.dumps(summary['label_map'])}")
        print(f"  examples: {gen.uri(example_gen_executor.EXAMPLES_KEY)}")
        print(f"  report:   {ingest_report.summary_path(report_uri)}, "
              f"skipped files: {ingest_report.skipped_path(report_uri)}")
    if "StatisticsGen" in outputs.nodes:
        print(f"Statistics: {outputs['StatisticsGen'].uri('statistics')}")
    if "ExampleValidator" in outputs.nodes and "SchemaValidationGate" in outputs.nodes:
        print(f"Anomalies:  {outputs['ExampleValidator'].uri('anomalies')} (none: the gate passed)")
    if "Transform" in outputs.nodes:
        t = outputs["Transform"]
        print(f"Transform:  graph {t.uri('transform_graph')}\n"
              f"            transformed examples {t.uri('transformed_examples')}")
    _print_models(outputs)
    if "RunReport" in outputs.nodes:
        from components.run_report import executor as report_executor
        from components.run_report import report

        report_dir = outputs["RunReport"].uri(report_executor.REPORT_KEY)
        print(f"\nReport:     {os.path.join(report_dir, report.REPORT_FILE)}\n"
              f"Model card: {os.path.join(report_dir, report.MODEL_CARD_MD)}")
    print(f"ML Metadata: {layout.metadata_path}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_models(outputs) -> None:
    from components.model_selector import executor as selector_executor
    from components.model_selector import selection as selection_lib
    from components.pusher import executor as pusher_executor
    from components.pusher import tflite

    if "ModelSelector" not in outputs.nodes:
        return
    selection = selection_lib.read(outputs["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    print(f"\nModels (eval split; selection metric: {selection.metric}):")
    for name, c in sorted(selection.candidates.items()):
        metrics = c.get("metrics", {})
        members = selection.members().get(name)
        print(f"  {name:<9} accuracy {_fmt(metrics.get(contract.ACCURACY_METRIC))}  "
              f"macro-F1 {_fmt(metrics.get(contract.MACRO_F1_METRIC))}  "
              f"{'blessed' if c['blessed'] else 'not blessed'}  "
              + (f"members: {' + '.join(members)}  " if members else "")
              + f"evaluation: {c['evaluation_uri']}")
    winner = selection.winner
    print(f"  winner: {selection.label(winner) if winner else 'none (no blessed candidate)'}")
    for name, m in sorted(selection.winner_metrics.get("per_class", {}).items()):
        print(f"    {name:<10} precision {_fmt(m.get('precision'))}  "
              f"recall {_fmt(m.get('recall'))}  F1 {_fmt(m.get('f1'))}")
    if "Pusher" in outputs.nodes:
        pushed = outputs["Pusher"].artifacts["pushed_model"][0]
        print(f"  pushed: {pusher_executor.describe_push(pushed)}")
        tflite_dir = pusher_executor.pushed_tflite_destination(pushed)
        if tflite_dir:
            print(f"  tflite: {tflite.describe(tflite_dir, tflite.read_eval(tflite_dir))}")


EXIT_FAILED = 1      # a component failed (training error, ...)
EXIT_BAD_INPUT = 2   # bad options or data: missing, invalid, drifted
EXIT_LOCKED = 3      # retrain: another run holds the lock


def _log_path(args: argparse.Namespace, prefix: str) -> str:
    layout = local_outputs.OutputLayout(os.path.abspath(args.output_dir))
    return os.path.join(layout.logs_dir, time.strftime(f"{prefix}-%Y%m%d-%H%M%S.log"))


def _open_console(args: argparse.Namespace) -> console_lib.Console:
    if args.verbose:
        return console_lib.Console.verbose()
    log_path = _log_path(args, "run")
    console = console_lib.Console.capture(log_path)
    print(f"Log: {log_path} (TFX, Beam and TensorFlow output; -v prints it here)",
          file=console.out)
    return console


def _cmd_run(args: argparse.Namespace) -> int:
    # Before TensorFlow loads, so that its C++ lines go to the log.
    with _open_console(args) as console:
        rc, outputs = _run(args, console)
        if outputs is not None:
            with contextlib.redirect_stdout(console.out):
                _print_summary(outputs, args.output_dir)
                if console.log_path:
                    print(f"Log: {console.log_path}")
        return rc


def _cmd_retrain(args: argparse.Namespace) -> int:
    from pipeline import run_lock, run_summary

    layout = local_outputs.OutputLayout(os.path.abspath(args.output_dir))
    lock = run_lock.RunLock(args.lock_file or layout.lock_path)
    try:
        lock.acquire()
    except run_lock.LockHeldError as e:
        print(f"ERROR (locked): {e}", file=sys.stderr)
        return EXIT_LOCKED
    try:
        with console_lib.Console.capture(_log_path(args, "retrain"), progress=False) as console:
            if lock.took_over:
                logging.warning("took over a stale lock: %s", lock.took_over)
            rc, outputs = _run(args, console, one_line_errors=True)
            if outputs is not None:
                print(f"{run_summary.outcome(outputs)} | log {console.log_path}",
                      file=console.out)
            return rc
    finally:
        lock.release()


def _run(args: argparse.Namespace, console: console_lib.Console,
         one_line_errors: bool = False):
    """Runs the pipeline; returns (exit status, run outputs or None). Errors are printed."""
    from components.image_example_gen.driver import NoSpanError
    from components.image_example_gen.ingest_report import BadInputError
    from components.image_example_gen.layout import LayoutError
    from components.models.devices import NoGpuError
    from components.validation_gate import DataValidationError
    from pipeline import demo_data, local_runner

    def error(e: Exception, rc: int, where: str = ""):
        if one_line_errors:
            where = where or (f"; log: {console.log_path}" if console.log_path else "")
            print(f"ERROR ({type(e).__name__}): {console_lib.one_line(str(e))}{where}",
                  file=console.err)
        else:
            print(f"\nERROR ({type(e).__name__}): {e}{where}", file=console.err)
        return rc, None

    options = cli_options.run_options(args)
    data_root = args.data_root
    if data_root is None and options["data_csv"]:
        # A CSV given by its path: its folder is the data root.
        data_root, options["data_csv"] = os.path.split(os.path.abspath(options["data_csv"]))
    elif data_root is None:
        data_root = local_outputs.OutputLayout(os.path.abspath(args.output_dir)).demo_data_dir
        written = demo_data.write_demo_dataset(data_root)
        print(f"Demo data: {written} images written to {data_root}", file=console.out)
    elif options["data_csv"] and os.path.isabs(options["data_csv"]):
        # A path inside the data root names the file relative to it.
        inside = os.path.relpath(options["data_csv"], os.path.abspath(data_root))
        options["data_csv"] = options["data_csv"] if inside.startswith("..") else inside
    options["schema_dir"] = os.path.abspath(options["schema_dir"])
    if options["serving_dir"]:
        options["serving_dir"] = os.path.abspath(options["serving_dir"])
    try:
        budget = configs.time_budget(configs.RunOptions(data_root=data_root, **options))
        if budget and one_line_errors:  # retrain: its console is one line; the log has it
            logging.info("%s", budget.describe())
        elif budget:
            print(budget.describe(), file=console.out)
        outputs = local_runner.run(data_root=data_root, output_dir=args.output_dir,
                                   pipeline_name=args.pipeline_name, **options)
    except (configs.PipelineArgumentError, LayoutError, BadInputError, DataValidationError,
            NoSpanError, NoGpuError) as e:
        return error(e, EXIT_BAD_INPUT)
    except Exception as e:  # noqa: BLE001  (the traceback goes to the log, a line to the console)
        logging.exception("the run failed")
        where = f"; the traceback is in {console.log_path}" if console.log_path else ""
        return error(e, EXIT_FAILED, where)
    return 0, outputs


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from pipeline import demo_data

    written = demo_data.write_demo_dataset(
        args.out_dir, {contract.TRAIN_SPLIT: args.train_per_class,
                       contract.EVAL_SPLIT: args.eval_per_class})
    print(f"{written} images written to {args.out_dir}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return {"run": _cmd_run, "retrain": _cmd_retrain,
            "demo-data": _cmd_demo_data}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
