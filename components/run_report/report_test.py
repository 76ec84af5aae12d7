"""The run report and model card from plain inputs: files, figure sizes, links, contents."""
import io

import numpy as np
import pytest
from PIL import Image

from components import contract
from components.run_report import mistakes, model_card, plots, report
from tests.report_folder import check_report_folder

LABELS = ["angry", "happy", "sad"]


def _png(value):
    buffer = io.BytesIO()
    Image.new("L", (48, 48), value).save(buffer, format="PNG")
    return buffer.getvalue()


def _gallery_and_attention():
    """vgg16 took two sad faces for angry (0.9, 0.7) and one for happy; happy and angry have
    none wrong."""
    labels = np.array([2, 2, 2, 0, 1])
    probabilities = np.array([[0.9, 0.05, 0.05], [0.7, 0.1, 0.2], [0.1, 0.6, 0.3],
                              [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    images = [_png(30 * i) for i in range(len(labels))]
    worst = mistakes.confident_mistakes(labels, probabilities, LABELS)
    gallery = report.Gallery(mistakes=worst, images={e.index: images[e.index]
                                                     for shown in worst.values() for e in shown})
    shown = mistakes.heatmap_examples(labels, probabilities, LABELS)
    overlay = np.zeros((48, 48, 3), np.uint8)
    attention = {"vgg16": {name: [report.Heatmap(example=e, overlay=overlay) for e in examples]
                           for name, examples in shown.items()}}
    return {"vgg16": gallery}, attention


def _inputs(pushed=True, report_images=contract.REPORT_IMAGES_ALL):
    history = {"loss": [1.5, 1.2, 1.1], "val_loss": [1.6, 1.3, 1.35],
               "accuracy": [0.3, 0.5, 0.6], "val_accuracy": [0.3, 0.45, 0.5]}
    matrices = {"vgg16": [[8, 1, 1], [0, 10, 0], [2, 2, 6]],
                "resnet50": [[5, 3, 2], [1, 9, 0], [3, 3, 4]]}
    return report.ReportInputs(
        label_names=LABELS,
        ingest={"files_seen": 62, "examples_total": 60, "skipped_total": 2,
                "skipped": {"not_an_image": 2}, "data_root": "/data",
                "examples": {"train": {"angry": 10, "happy": 25, "sad": 5},
                             "eval": {"angry": 10, "happy": 10, "sad": 10}}},
        samples={name: [_png(40 * i) for i in range(3)] for name in LABELS},
        statistics={"train": [{"feature": "label", "kind": "number", "missing": 0,
                               "summary": "min 0, mean 1, max 2"}]},
        anomalies={"train": [], "eval": ["image_format: Unexpected string values (GIF)"]},
        trainings={arch: report.Training(
            summary={"variant": "fer", "width": 0.25, "batch_size": 64,
                     "steps_per_epoch": 10,
                     "hyperparameters": {"optimizer": "adam", "learning_rate": 1e-3},
                     "settings": {"best_epoch_metric": "val_loss"}},
            history=history) for arch in matrices},
        evaluations={arch: report.Evaluation(
            matrix=m, blessed=arch == "vgg16",
            metrics={contract.ACCURACY_METRIC: 0.8 if arch == "vgg16" else 0.6,
                     contract.MACRO_F1_METRIC: 0.79, "example_count": 30.0})
            for arch, m in matrices.items()},
        selection_metric=contract.ACCURACY_METRIC, winner="vgg16",
        pushed_destination="/serving/fer/1764150000" if pushed else None,
        report_images=report_images)


def test_report_figures_links_and_model_card(tmp_path):
    path = report.write_report(_inputs(), str(tmp_path))
    assert path == str(tmp_path / report.REPORT_FILE)
    pngs = check_report_folder(path)
    assert sorted(pngs) == sorted([
        report.LABEL_DISTRIBUTION_PNG, report.SAMPLE_GRID_PNG, report.COMPARISON_PNG,
        *(f(arch) for arch in ("vgg16", "resnet50")
          for f in (report.curves_png, report.confusion_png))])
    page = (tmp_path / report.REPORT_FILE).read_text()
    assert "Unexpected string values (GIF)" in page and "no anomalies" in page
    assert "Winner on sparse_categorical_accuracy: <b>vgg16</b>, accuracy 0.8000" in page
    card = (tmp_path / report.MODEL_CARD_MD).read_text()
    assert card.startswith("# Model card: fer, version 1764150000 (vgg16)")
    # Per-class metrics of the pushed model, from its confusion matrix: sad has 6 of 10
    # right and 6 of 7 predictions right; 20 others of which 1 predicted sad.
    assert "| sad | 0.8571 | 0.6000 | 0.9500 | 0.7059 | 10 |" in card
    assert "happy has 5.0x as many images as sad" in card
    assert "Weakest class on the eval split: sad" in card


def test_the_ensemble_is_shown_beside_its_members_and_its_card_names_them(tmp_path):
    inputs = _inputs()
    inputs.evaluations[contract.ENSEMBLE] = report.Evaluation(
        matrix=[[9, 1, 0], [0, 10, 0], [1, 2, 7]], blessed=True,
        metrics={contract.ACCURACY_METRIC: 0.8667, contract.MACRO_F1_METRIC: 0.86,
                 "example_count": 30.0})
    inputs.members = {contract.ENSEMBLE: ["vgg16", "resnet50"]}
    inputs.winner = contract.ENSEMBLE
    path = report.write_report(inputs, str(tmp_path))
    pngs = check_report_folder(path)
    # Its confusion matrix beside the members'; no training curves: it trains nothing.
    assert report.confusion_png(contract.ENSEMBLE) in pngs
    assert report.curves_png(contract.ENSEMBLE) not in pngs
    page = (tmp_path / report.REPORT_FILE).read_text()
    assert "<b>ensemble (vgg16 + resnet50)</b>, accuracy 0.8667" in page
    assert "<h3>ensemble (vgg16 + resnet50)</h3>" in page
    card = (tmp_path / report.MODEL_CARD_MD).read_text()
    assert card.startswith("# Model card: fer, version 1764150000 (ensemble of vgg16 + "
                           "resnet50)")
    assert "- **architecture**: ensemble of vgg16 + resnet50: the mean of" in card
    for member in ("vgg16", "resnet50"):
        assert f"- **{member}: architecture**: {member} (fer variant, width 0.25)" in card
    assert "| ensemble (vgg16 + resnet50) | 0.8667 | 0.8600 | yes |" in card
    assert "| sad | 1.0000 | 0.7000 |" in card  # the ensemble's own per-class scores


def test_the_kept_epoch_follows_the_watched_metric():
    training = report.Training(summary={"settings": {"best_epoch_metric": "val_loss"}},
                               history={"val_loss": [1.6, 1.3, 1.35],
                                        "val_accuracy": [0.3, 0.45, 0.5]})
    assert training.kept_epoch == 2
    training.summary["settings"]["best_epoch_metric"] = "val_accuracy"
    assert training.kept_epoch == 3
    assert report.Training(summary={}, history={}).kept_epoch == 0


def test_nothing_pushed_says_so(tmp_path):
    inputs = _inputs(pushed=False)
    card = model_card.ModelCard.build(inputs, {})
    assert card.pushed_version is None
    assert "no model was pushed" in card.markdown()
    report.write_report(inputs, str(tmp_path))
    assert "Pushed: nothing" in (tmp_path / report.REPORT_FILE).read_text()


def test_per_class_scores_from_a_confusion_matrix():
    scores = report.per_class_scores([[8, 2], [1, 9]], ["a", "b"])
    assert scores["a"] == pytest.approx({"precision": 8 / 9, "recall": 0.8,
                                         "specificity": 0.9, "f1": 16 / 19, "support": 10})


def test_training_log_spans_restarts():
    text = "epoch,accuracy,loss\n0,0.3,1.5\n1,0.5,1.2\n2,0.6,1.1\n"
    assert report.read_training_log(text) == {"accuracy": [0.3, 0.5, 0.6],
                                              "loss": [1.5, 1.2, 1.1]}


def test_the_model_card_gives_a_time_budgets_plan_and_what_happened(tmp_path):
    inputs = _inputs()
    inputs.trainings["vgg16"].summary["time_plan"] = {
        "budget_s": 3150.0, "images_per_second": 612.4, "planned_epochs": 23,
        "planned_training_s": 3065.0, "epochs_run": 23, "spent_s": 3050.0,
        "stopped_by": "plan"}
    report.write_report(inputs, str(tmp_path))
    card = (tmp_path / report.MODEL_CARD_MD).read_text()
    assert ("- **time budget**: 52m30s: 612 images/s in the first epoch -> 23 epochs planned, "
            "ending at 51m05s; 23 run in 50m50s (plan)") in card
    inputs.trainings["vgg16"].summary.pop("time_plan")
    report.write_report(inputs, str(tmp_path))
    assert "time budget" not in (tmp_path / report.MODEL_CARD_MD).read_text()


def test_the_mistakes_gallery_and_heatmaps_are_shown_and_the_card_links_them(tmp_path):
    inputs = _inputs()
    inputs.galleries, inputs.attention = _gallery_and_attention()
    path = report.write_report(inputs, str(tmp_path))
    pngs = check_report_folder(path)
    assert report.mistakes_png("vgg16") in pngs and report.heatmaps_png("vgg16") in pngs
    for name in (report.mistakes_png("vgg16"), report.heatmaps_png("vgg16")):
        assert plots.png_size(str(tmp_path / name)) == plots.gallery_size(len(LABELS))
    page = (tmp_path / report.REPORT_FILE).read_text()
    assert 'id="mistakes"' in page and "Grad-CAM" in page
    card = (tmp_path / report.MODEL_CARD_MD).read_text()
    # The weakest class (sad, F1 0.71) with what it was taken for (its confusion-matrix row:
    # 2 angry, 2 happy) and its most confident mistakes from the gallery.
    assert ("Its 10 examples were most often taken for happy (2) and angry (2). Its most "
            "confident mistakes: given angry at 0.90, given angry at 0.70, given happy at 0.60 "
            "(images: mistakes_vgg16.png in the run report)") in card
    assert "[mistakes_vgg16.png](mistakes_vgg16.png)" in card
    assert "Article 5(1)(f)" in card


def test_report_images_none_leaves_every_face_out(tmp_path):
    inputs = _inputs(report_images=contract.REPORT_IMAGES_NONE)
    inputs.galleries, inputs.attention = _gallery_and_attention()
    path = report.write_report(inputs, str(tmp_path))
    pngs = check_report_folder(path)
    faces = {report.SAMPLE_GRID_PNG, report.mistakes_png("vgg16"), report.heatmaps_png("vgg16")}
    assert not faces & set(pngs)
    assert not faces & set(p.name for p in tmp_path.iterdir())   # not even written
    # The numbers and plots stay.
    assert report.confusion_png("vgg16") in pngs and report.curves_png("vgg16") in pngs
    page = (tmp_path / report.REPORT_FILE).read_text()
    assert "--report-images none" in page and "weakest class" in page
    card = (tmp_path / report.MODEL_CARD_MD).read_text()
    assert "Weakest class on the eval split: sad" in card and ".png" not in card
    assert "Article 5(1)(f)" in card


def test_the_pushed_tflite_twin_and_its_scores_are_named(tmp_path):
    from components.pusher import tflite

    recorded = {"eval_images": 30, "accuracy": {"float16": 0.8, "dynamic_int8": 0.7667},
                "max_int8_accuracy_drop": 0.01, "written": ["float16"]}
    inputs = _inputs()
    inputs.pushed_tflite = tflite.describe("/serving/fer-tflite/1764150000", recorded)
    report.write_report(inputs, str(tmp_path))
    line = ("/serving/fer-tflite/1764150000: accuracy on 30 eval images float16 0.8000; "
            "int8 0.7667, more than 1 point below, not written")
    assert f"<p>TFLite: {line}</p>" in (tmp_path / report.REPORT_FILE).read_text()
    assert f"TFLite, for devices: {line}." in (tmp_path / report.MODEL_CARD_MD).read_text()
    recorded["written"].append("dynamic_int8")
    assert tflite.describe("d", recorded).endswith("int8 0.7667, written beside it")
    assert tflite.describe("d", None) == "float16 in d (not measured on an eval split)"
