"""End to end: the whole pipeline (both architectures and their ensemble) on tiny generated data.

The run trains, tunes, evaluates and pushes, through the command line. Re-runs, spans, drift,
warm start and a killed run's resume: tests/e2e_retraining_test.py.
"""
import glob
import json
import os
import re
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2

from components import contract, evaluation
from components.image_example_gen import executor as example_gen_executor
from components.image_example_gen import ingest_report
from components.model_selector import executor as selector_executor
from components.model_selector import selection as selection_lib
from components.models import (
    export,
    input_pipeline,
    time_budget,
    training_metrics,
    training_summary,
)
from components.run_report import executor as report_executor
from components.run_report import plots
from components.run_report import report as run_report
from pipeline import configs, demo_data, local_outputs, run_summary
from tests import image_folders, report_folder

pytestmark = pytest.mark.e2e

# 12 epochs: VGG16-fer learns the 20 faces a class well above chance (ResNet50-fer may stop
# early at chance; the selection picks the winner).
TRAINING = {"epochs": 12, "batch_size": 16, "tuner_trials": 1, "tuner_epochs": 1,
            "tuner_steps_per_epoch": 2}
LEARNED_ACCURACY = 0.4
# Far more than the demo needs: each Trainer plans its epochs and reaches the cap.
TIME_BUDGET = "40m"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = str(root / "data")
    demo_data.write_demo_dataset(data, {"train": 20, "eval": 6})
    out = str(root / "out")
    # Through the command line, as a person runs it. min_accuracy 0: whatever a few epochs
    # reach, run 1 must bless and push something.
    settings = [arg for name, value in TRAINING.items()
                for arg in ("--training-setting", f"{name}={json.dumps(value)}")]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data-root", data, "--output-dir", out,
         "--profile", "demo", "--min-accuracy", "0", "--time-budget", TIME_BUDGET, *settings],
        capture_output=True, text=True, timeout=1500, cwd=configs.PROJECT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = run_summary.latest_run(
        run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path),
        configs.PIPELINE_NAME)
    return {"data": data, "out": out, "outputs": outputs, "console": done.stdout,
            "console_err": done.stderr}


def test_the_console_shows_progress_and_the_log_file_the_rest(first_run):
    console = first_run["console"]
    assert first_run["console_err"] == ""
    lines = console.splitlines()
    log_path = lines[0].split("Log: ", 1)[1].split(" (", 1)[0]
    assert os.path.dirname(log_path) == local_outputs.OutputLayout(first_run["out"]).logs_dir
    for arch in contract.ARCHITECTURES:
        assert re.search(rf"\] Trainer_{arch} done in \d", console), arch
        epochs_run = training_summary.read_training_summary(
            first_run["outputs"][f"Trainer_{arch}"].uri("model_run"))["epochs_run"]
        assert epochs_run >= 1
        for epoch in range(1, epochs_run + 1):  # early stopping may end it before the last
            assert re.search(rf"\] Trainer {arch}: epoch {epoch}/{TRAINING['epochs']}  loss "
                             r"[\d.]+  accuracy [\d.]+  val_loss [\d.]+  val_accuracy [\d.]+  "
                             r"\([\d.]+ images/s, ETA \w+\)", console), (arch, epoch)
    assert "winner:" in console and lines[-1] == f"Log: {log_path}"
    assert re.search(r"^  ensemble  accuracy [\d.]+  macro-F1 [\d.]+  (not )?blessed  "
                     r"members: vgg16 \+ resnet50  evaluation: ", console, re.M)
    # No Python warning, absl/TFX/Beam record or C++ runtime line reaches the console ...
    noise = re.compile(r"warn|deprecat|^[IWEF]\d{4} |^(INFO|WARNING|ERROR):|absl|"
                       r"external/|tensorflow/core|Instructions for updating", re.I | re.M)
    assert not noise.search(console), noise.search(console)
    # ... they are in the log file.
    with open(log_path) as f:
        logged = f.read()
    assert "WARNING" in logged and "Component Transform is running." in logged
    assert "Trainer vgg16: epoch 1/" in logged


def test_each_trainer_planned_its_epochs_in_its_share_of_the_time_budget(first_run):
    console = first_run["console"]
    assert "Time budget 40m00s: Trainer vgg16 20m00s, Trainer resnet50 20m00s\n" in console
    for arch in contract.ARCHITECTURES:
        assert re.search(rf"\] Trainer {arch}: [\d,]+ images/s -> {TRAINING['epochs']} epochs "
                         rf"of \d+ images in \w+ \(budget 20m00s, the epochs cap\)\n", console)
        summary = training_summary.read_training_summary(
            first_run["outputs"][f"Trainer_{arch}"].uri("model_run"))
        plan = summary["time_plan"]
        assert plan["budget_s"] == 1200 and plan["planned_epochs"] == TRAINING["epochs"]
        assert plan["epochs_run"] == summary["epochs_run"]
        assert plan["images_per_second"] > 0 and 0 < plan["spent_s"] < 1200
        assert plan["stopped_by"] != time_budget.STOPPED_BY_BUDGET


def test_report_figures_links_and_the_pushed_models_card(first_run):
    outputs = first_run["outputs"]
    report_dir = outputs["RunReport"].uri(report_executor.REPORT_KEY)
    report_path = os.path.join(report_dir, run_report.REPORT_FILE)
    assert f"Report:     {report_path}" in first_run["console"]
    pngs = report_folder.check_report_folder(report_path)  # links resolve, PNG sizes
    # A mistakes gallery for each candidate that made mistakes, Grad-CAM for each network (the
    # pushed model's gallery is linked twice: from the report and from its model card).
    selection = selection_lib.read(outputs["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    erring = [name for name in contract.CANDIDATES
              if selection.candidates[name]["metrics"][evaluation.ACCURACY] < 1.0]
    assert sorted(set(pngs)) == sorted([
        run_report.LABEL_DISTRIBUTION_PNG, run_report.SAMPLE_GRID_PNG, run_report.COMPARISON_PNG,
        *(f(arch) for arch in contract.ARCHITECTURES
          for f in (run_report.curves_png, run_report.confusion_png, run_report.heatmaps_png)),
        run_report.confusion_png(contract.ENSEMBLE), *map(run_report.mistakes_png, erring)])
    with open(report_path) as f:
        assert f.read().count("<p>No mistakes on the eval split.</p>") == \
            len(contract.CANDIDATES) - len(erring)
    for name in pngs:
        if name.startswith(("mistakes_", "gradcam_")):   # a row per class
            assert plots.png_size(os.path.join(report_dir, name)) == plots.gallery_size(
                len(contract.DEFAULT_CLASSES))
    # Every training curve was recorded, for training and validation, each epoch run.
    for arch in contract.ARCHITECTURES:
        model_run = outputs[f"Trainer_{arch}"].uri("model_run")
        epochs_run = training_summary.read_training_summary(model_run)["epochs_run"]
        assert 1 <= epochs_run <= TRAINING["epochs"]
        with open(os.path.join(model_run, training_summary.TRAINING_LOG)) as f:
            history = run_report.read_training_log(f.read())
        for metric in training_metrics.TRAINING_CURVE_METRICS:
            for key in (metric, f"val_{metric}"):
                assert len(history[key]) == epochs_run, key
    # The model card names the pushed version and its per-class metrics on the eval split.
    pushed = outputs["Pusher"].artifacts["pushed_model"][0].custom_properties
    version = pushed["pushed_version"].string_value
    with open(os.path.join(report_dir, run_report.MODEL_CARD_MD)) as f:
        card = f.read()
    members = selection.members().get(selection.winner)
    served = f"{selection.winner} of {' + '.join(members)}" if members else selection.winner
    assert card.startswith(f"# Model card: {contract.MODEL_NAME}, version {version} ({served})")
    accuracy = selection.winner_metrics[evaluation.ACCURACY]
    assert f"- **accuracy**: {accuracy:.4f}" in card
    # A row per class (precision, recall, specificity, F1 from the Evaluator's confusion
    # matrix), its support being the eval split's images of that class.
    eval_counts = ingest_report.read_summary(outputs["ImageFolderExampleGen"].uri(
        example_gen_executor.INGEST_REPORT_KEY))["examples"][contract.EVAL_SPLIT]
    for name in contract.DEFAULT_CLASSES:
        row = next(line for line in card.splitlines() if line.startswith(f"| {name} | "))
        cells = [v.strip() for v in row.strip("|").split("|")]
        assert all(0.0 <= float(v) <= 1.0 for v in cells[1:5]) and \
            int(cells[5]) == eval_counts[name], row


def test_every_candidate_trained_evaluated_and_the_winner_pushed(first_run):
    outputs = first_run["outputs"]
    for arch in contract.ARCHITECTURES:
        for node in (f"Tuner_{arch}", f"Trainer_{arch}", f"Evaluator_{arch}"):
            assert outputs[node].state == "COMPLETE", node
    for node in ("Ensemble", "Evaluator_ensemble", "ModelSelector", "Pusher"):
        assert outputs[node].state == "COMPLETE", node

    selection = selection_lib.read(outputs["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    assert set(selection.candidates) == set(contract.CANDIDATES)
    assert selection.members() == {contract.ENSEMBLE: list(contract.ARCHITECTURES)}
    assert selection.winner in contract.CANDIDATES
    winner = selection.candidates[selection.winner]
    # The winner learned: chance on six balanced classes is 1/6 (it reached 0.67 when written).
    assert winner["blessed"] and winner["metric_value"] >= LEARNED_ACCURACY
    assert all(c["metric_value"] <= winner["metric_value"]
               for c in selection.candidates.values() if c["blessed"])
    # The metrics behind the choice are recorded with it, per class by class name.
    for c in selection.candidates.values():
        assert c["metrics"][evaluation.ACCURACY] == c["metric_value"]
        assert 0.0 <= c["metrics"][evaluation.MACRO_F1] <= 1.0
        assert set(c["metrics"]["per_class"]) == set(contract.DEFAULT_CLASSES)
        assert all(set(m) == {"precision", "recall", "f1"}
                   for m in c["metrics"]["per_class"].values())

    # Early stopping watched the held-out part of training, never the eval split.
    for arch in contract.ARCHITECTURES:
        validation_files = training_summary.read_training_summary(
            outputs[f"Trainer_{arch}"].uri("model_run"))["validation_files"]
        assert validation_files and all("Split-valid" in p for p in validation_files)

    pushed = outputs["Pusher"].artifacts["pushed_model"][0].custom_properties
    assert pushed["pushed"].int_value == 1
    serving_root = os.path.join(local_outputs.OutputLayout(first_run["out"]).serving_dir,
                                contract.MODEL_NAME)
    assert os.listdir(serving_root) == [pushed["pushed_version"].string_value]


def test_per_class_metrics_and_slices_are_present(first_run):
    outputs = first_run["outputs"]
    for candidate in contract.CANDIDATES:
        metrics = list(tfma.load_metrics(outputs[f"Evaluator_{candidate}"].uri("evaluation")))
        overall = next(m for m in metrics if not m.slice_key.single_slice_keys)
        names = {(kv.key.name, kv.key.sub_key.class_id.value if kv.key.HasField("sub_key")
                  else None, kv.key.aggregation_type.macro_average)
                 for kv in overall.metric_keys_and_values}
        for name in ("precision", "recall", "f1_score"):
            assert {(name, c, False) for c in range(6)} <= names, name
        assert ("macro_f1", None, False) in names            # macro-F1 (argmax)
        assert ("sparse_categorical_accuracy", None, False) in names
        by_class = {m.slice_key.single_slice_keys[0].bytes_value for m in metrics
                    if m.slice_key.single_slice_keys}
        assert by_class == {c.encode() for c in contract.DEFAULT_CLASSES}
        plots = list(tfma.load_plots(outputs[f"Evaluator_{candidate}"].uri("evaluation")))
        assert any("multi_class_confusion_matrix_at_thresholds" in str(p) for p in plots)


def test_pushed_model_classifies_raw_jpeg_and_png_bytes(first_run):
    serving_root = os.path.join(local_outputs.OutputLayout(first_run["out"]).serving_dir,
                                contract.MODEL_NAME)
    version = os.listdir(serving_root)[0]
    model = tf.saved_model.load(os.path.join(serving_root, version))
    serve = model.signatures[contract.SERVING_SIGNATURE]
    rgb_big = np.stack([image_folders.face("sad", 5, size=96)] * 3, axis=-1)
    images = [image_folders.encode(image_folders.face("happy", 1)),
              image_folders.encode(rgb_big, "PNG")]
    out = serve(image_bytes=tf.constant(images))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (2, 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert [c.decode() for c in out["classes"].numpy()[0]] == list(contract.DEFAULT_CLASSES)
    assert all(c.decode() in contract.DEFAULT_CLASSES for c in out["predicted_class"].numpy())
    assert contract.EXAMPLES_SIGNATURE in model.signatures


def test_pushed_model_carries_warmup_records_and_fer_serve_serves_it(first_run):
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from components import warmup
    from serving.server import FerServer, ServerConfig

    serving_root = os.path.join(local_outputs.OutputLayout(first_run["out"]).serving_dir,
                                contract.MODEL_NAME)
    version = os.listdir(serving_root)[0]
    requests = warmup.read_warmup_requests(os.path.join(serving_root, version))
    assert [len(r.inputs[contract.SERVING_INPUT_KEY].string_val) for r in requests] == \
        list(warmup.WARMUP_BATCH_SIZES)
    assert {r.model_spec.signature_name for r in requests} == {contract.SERVING_SIGNATURE}

    with FerServer(ServerConfig(serving_root, grpc_port=0, rest_port=None)) as server:
        (loaded,) = [server.store.get()]
        assert loaded.version == int(version)
        assert loaded.warmup_requests == len(warmup.WARMUP_BATCH_SIZES)  # replayed at load
        stub = prediction_service_pb2_grpc.PredictionServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}"))
        request = predict_pb2.PredictRequest()
        request.model_spec.name = contract.MODEL_NAME
        request.inputs[contract.SERVING_INPUT_KEY].CopyFrom(tf.make_tensor_proto(
            [image_folders.encode(image_folders.face("happy", 3))]))
        response = stub.Predict(request, timeout=60)
    assert response.model_spec.version.value == int(version)
    assert tf.make_ndarray(response.outputs[contract.PROBABILITIES_KEY]).shape == (1, 6)


def _trainer_custom_config(out, model_artifact_id):
    """The custom_config of the Trainer execution that produced a model artifact (ML Metadata)."""
    store = run_summary.sqlite_store(local_outputs.OutputLayout(out).metadata_path)
    (producer,) = [e.execution_id for e in store.get_events_by_artifact_ids([model_artifact_id])
                   if e.type == metadata_store_pb2.Event.OUTPUT]
    (execution,) = store.get_executions_by_id([producer])
    return json.loads(execution.custom_properties["custom_config"].string_value)


def _records(pattern, feature_spec):
    files = sorted(tf.io.gfile.glob(pattern))
    return [(raw.numpy(), tf.io.parse_single_example(raw, feature_spec))
            for raw in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _colour_and_odd_sized_images():
    """Images unlike the training data: colour whose channels differ, sizes other than the
    model's and the faces' (PNG, so the pixels are known exactly), and a JPEG."""
    rng = np.random.default_rng(3)
    face = image_folders.face("surprise", 2, size=32)
    rgb_32 = np.stack([face, np.roll(face, 5, axis=1),
                       rng.integers(0, 256, face.shape, dtype=np.uint8)], axis=-1)
    rgb_96 = np.stack([image_folders.face("angry", 4, size=96),
                       image_folders.face("happy", 5, size=96),
                       image_folders.face("sad", 6, size=96)], axis=-1)
    rgba_50x70 = np.concatenate([rgb_96[:50, :70], np.full((50, 70, 1), 255, np.uint8)],
                                axis=-1)
    return rgb_32, [image_folders.encode(rgb_32, "PNG"), image_folders.encode(rgb_96, "PNG"),
                    image_folders.encode(rgba_50x70, "PNG"),
                    image_folders.encode(image_folders.face("fear", 7, size=37), "PNG"),
                    image_folders.encode(rgb_96, "JPEG")]


def test_no_train_serve_skew_served_accuracy_is_the_evaluators(first_run):
    """The pushed model, given the eval images' raw bytes, scores what the Evaluator measured;
    serving_default, serving_examples and the trained Keras model applied to Transform's own
    (Beam) output agree per probability, on the eval images and on colour and odd-sized ones."""
    import tensorflow_transform as tft

    from components.models import trainer, warm_start
    from components.models.training_config import TrainConfig

    outputs, out = first_run["outputs"], first_run["out"]
    selection = selection_lib.read(outputs["ModelSelector"].uri(selector_executor.BLESSING_KEY))
    winner = selection.winner
    evaluator_accuracy = selection.candidates[winner]["metrics"][evaluation.ACCURACY]
    serving_root = os.path.join(local_outputs.OutputLayout(out).serving_dir, contract.MODEL_NAME)
    (version,) = os.listdir(serving_root)
    served = tf.saved_model.load(os.path.join(serving_root, version))
    serve_images = served.signatures[contract.SERVING_SIGNATURE]
    serve_examples = served.signatures[contract.EXAMPLES_SIGNATURE]

    # 1. The eval images as files on disk, bytes as read, through serving_default.
    paths = sorted(glob.glob(os.path.join(first_run["data"], "PublicTest", "*", "*")))
    served_out = serve_images(image_bytes=tf.constant([open(p, "rb").read() for p in paths]))
    predicted = [c.decode() for c in served_out[contract.PREDICTED_CLASS_KEY].numpy()]
    truth = [os.path.basename(os.path.dirname(p)) for p in paths]
    served_accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
    assert served_accuracy == pytest.approx(evaluator_accuracy, abs=1e-6)

    # 2. The Keras models as trained (the winner's network, or an ensemble's members): rebuilt
    # from their config, with the weights they saved; an ensemble serves their mean.
    tft_output = tft.TFTransformOutput(outputs["Transform"].uri("transform_graph"))
    networks = []
    for arch in selection.members().get(winner, [winner]):
        trainer_model = outputs[f"Trainer_{arch}"].artifacts["model"][0]
        config = TrainConfig.from_custom_config(_trainer_custom_config(out, trainer_model.id))
        summary = training_summary.read_training_summary(
            outputs[f"Trainer_{arch}"].uri("model_run"))
        keras_model = trainer.build_model(config, summary["hyperparameters"],
                                          input_pipeline.image_shape(tft_output))
        weights_dir = os.path.join(trainer_model.uri, warm_start.WEIGHTS_DIR)
        keras_model.load_weights(os.path.join(weights_dir, warm_start.WEIGHTS_FILE))
        with open(os.path.join(weights_dir, warm_start.SPEC_FILE)) as f:
            assert warm_start.weights_digest(keras_model) == json.load(f)["weights_sha256"]
        networks.append((trainer.classifier(keras_model), config))

    def keras_probabilities(images):
        return np.mean([export.predict_probabilities(
            network, images, config.test_time_augmentation, config.tta_shift).numpy()
            for network, config in networks], axis=0)

    # Transform's eval output as Beam wrote it, matched to the raw eval examples by content:
    # each materialized image equals the one serving's Transform layer makes of the raw bytes.
    raw = _records(os.path.join(outputs["ImageFolderExampleGen"].uri("examples"), "Split-eval",
                                "*"), tft_output.raw_feature_spec())
    transformed = _records(os.path.join(outputs["Transform"].uri("transformed_examples"),
                                        "Split-eval", "*"),
                           tft_output.transformed_feature_spec())
    assert len(raw) == len(transformed) == len(paths)
    raw_bytes = tf.constant([r[contract.IMAGE_KEY].numpy()[0] for _, r in raw])
    layer_images = tft_output.transform_features_layer()(
        {contract.IMAGE_KEY: tf.reshape(raw_bytes, [-1, 1])})[contract.IMAGE_XF_KEY].numpy()
    beam_images = np.stack([t[contract.IMAGE_XF_KEY].numpy() for _, t in transformed])
    distance = np.abs(beam_images[:, None] - layer_images[None]).reshape(
        len(beam_images), len(layer_images), -1).max(axis=-1)
    match = distance.argmin(axis=1)
    assert sorted(match) == list(range(len(raw)))                    # one to one
    assert distance[np.arange(len(match)), match].max() <= 1e-6
    # The raw label is a [1] tensor: .item(), as numpy 2 no longer makes an int of a 1-d array.
    assert [int(t[contract.LABEL_XF_KEY]) for _, t in transformed] == \
        [raw[m][1][contract.LABEL_KEY].numpy().item() for m in match]

    from_beam = keras_probabilities(beam_images)
    from_images = serve_images(image_bytes=raw_bytes)[contract.PROBABILITIES_KEY].numpy()
    from_examples = serve_examples(examples=tf.constant([r for r, _ in raw]))[
        contract.PROBABILITIES_KEY].numpy()
    np.testing.assert_allclose(from_images, from_examples, rtol=0, atol=1e-5)
    np.testing.assert_allclose(from_beam, from_images[match], rtol=0, atol=1e-5)

    # 3. Colour and odd-sized images: the three paths agree here too.
    rgb_32, extra = _colour_and_odd_sized_images()
    extra_examples = [tf.train.Example(features=tf.train.Features(feature={
        contract.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))}))
        .SerializeToString() for b in extra]
    extra_images = tft_output.transform_features_layer()(
        {contract.IMAGE_KEY: tf.reshape(tf.constant(extra), [-1, 1])})[contract.IMAGE_XF_KEY]
    from_images = serve_images(image_bytes=tf.constant(extra))[
        contract.PROBABILITIES_KEY].numpy()
    np.testing.assert_allclose(
        serve_examples(examples=tf.constant(extra_examples))[contract.PROBABILITIES_KEY].numpy(),
        from_images, rtol=0, atol=1e-5)
    np.testing.assert_allclose(keras_probabilities(extra_images), from_images, rtol=0, atol=1e-5)
    # Channel order, weights and scaling, against numpy: the 32-px colour PNG needs no
    # resizing, so the model input is its ITU-R 601 luma / 255.
    luma = rgb_32.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140]) / 255.0
    assert extra_images.shape[1:] == (32, 32, 1)
    np.testing.assert_allclose(extra_images[0, ..., 0].numpy(), luma, rtol=0, atol=1e-5)


def test_the_ensembles_tfma_metrics_are_its_own_probabilities_scored_directly(first_run):
    """On the eval split, the ensemble serves the mean of its members' served probabilities, and
    TFMA's accuracy and confusion matrix of it are the argmax of those against the labels."""
    outputs = first_run["outputs"]
    raw_eval = sorted(glob.glob(os.path.join(outputs["ImageFolderExampleGen"].uri("examples"),
                                             "Split-eval", "*")))
    records = [r.numpy() for r in tf.data.TFRecordDataset(raw_eval, compression_type="GZIP")]
    labels = np.array([tf.train.Example.FromString(r).features.feature[contract.LABEL_KEY]
                       .int64_list.value[0] for r in records])

    def served(node):
        model = tf.saved_model.load(os.path.join(outputs[node].uri("model"), "Format-Serving"))
        return model.signatures[contract.EXAMPLES_SIGNATURE](examples=tf.constant(records))[
            contract.PROBABILITIES_KEY].numpy()

    probabilities = served("Ensemble")
    np.testing.assert_allclose(
        probabilities, np.mean([served(f"Trainer_{arch}") for arch in contract.ARCHITECTURES],
                               axis=0), rtol=0, atol=1e-5)
    predicted = probabilities.argmax(axis=1)
    evaluation_uri = outputs["Evaluator_ensemble"].uri("evaluation")
    metrics = evaluation.overall_metrics(evaluation_uri, contract.DEFAULT_CLASSES)
    assert metrics["example_count"] == len(labels)
    assert metrics[evaluation.ACCURACY] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    classes = len(contract.DEFAULT_CLASSES)
    direct = np.zeros((classes, classes))
    np.add.at(direct, (labels, predicted), 1)
    np.testing.assert_array_equal(evaluation.confusion_matrix(evaluation_uri, classes), direct)


def test_the_pushed_version_has_a_tflite_twin_that_scores_as_the_saved_model(first_run):
    """The Pusher's TFLite twin of the winner (VGG16-fer, ResNet50-fer or their ensemble):
    beside TF Serving's folder, the same version, the class names in its metadata, and on the
    eval images the SavedModel's answers: probabilities within 0.01 (float16 weights through
    VGG16-fer or ResNet50-fer: looser than components/pusher/tflite_test.py's small networks),
    accuracy within half a point."""
    from serving import tflite_predict

    outputs, out = first_run["outputs"], first_run["out"]
    serving_root = os.path.join(local_outputs.OutputLayout(out).serving_dir, contract.MODEL_NAME)
    (version,) = os.listdir(serving_root)
    pushed = outputs["Pusher"].artifacts["pushed_model"][0].custom_properties
    tflite_dir = os.path.join(contract.tflite_base_path(serving_root), version)
    assert pushed["pushed_tflite_destination"].string_value == tflite_dir
    with open(os.path.join(tflite_dir, contract.TFLITE_EVAL_FILE)) as f:
        scored = json.load(f)  # float16 and int8 on the eval split, int8 kept within a point
    written = [contract.TFLITE_FILE] + [contract.TFLITE_INT8_FILE] * (
        "dynamic_int8" in scored["written"])
    assert sorted(os.listdir(tflite_dir)) == sorted([contract.TFLITE_EVAL_FILE, *written])
    classifier = tflite_predict.TFLiteClassifier(contract.tflite_base_path(serving_root))
    assert classifier.classes == list(contract.DEFAULT_CLASSES)
    assert classifier.version == int(version)

    paths = sorted(glob.glob(os.path.join(first_run["data"], "PublicTest", "*", "*")))
    images = [open(p, "rb").read() for p in paths]
    served = tf.saved_model.load(os.path.join(serving_root, version)).signatures[
        contract.SERVING_SIGNATURE](image_bytes=tf.constant(images))[
        contract.PROBABILITIES_KEY].numpy()
    local = np.array([p.probabilities for p in classifier.predict(images)])
    np.testing.assert_allclose(local, served, atol=0.01, rtol=0)
    truth = np.array([contract.DEFAULT_CLASSES.index(os.path.basename(os.path.dirname(p)))
                      for p in paths])
    assert abs(np.mean(local.argmax(axis=1) == truth) -
               np.mean(served.argmax(axis=1) == truth)) <= 0.005
    assert scored["eval_images"] == len(paths)
    assert scored["accuracy"]["float16"] == pytest.approx(np.mean(local.argmax(axis=1) == truth))
    report_dir = outputs["RunReport"].uri(report_executor.REPORT_KEY)
    with open(os.path.join(report_dir, run_report.REPORT_FILE)) as f:
        assert f"<p>TFLite: {tflite_dir}: accuracy on {len(paths)} eval images" in f.read()
