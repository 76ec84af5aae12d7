"""The run report: one `report.html` that shows a person what a run did, its PNG figures, and
the model card of the pushed model (model_card.md and .html), all in one folder.

Built from plain data that the executor reads from the run's artifacts (`ReportInputs`); this
module does not touch TFX. Sections: the data (ingest counts, sample faces per class, per-split
statistics from TFDV, the validation anomalies), training curves per architecture, evaluation
on the eval split per candidate (each architecture, and their ensemble: confusion matrices,
per-class precision / recall / specificity / F1 / support), each candidate's most confident
mistakes per class and each trained network's Grad-CAM heat over right and wrong answers, the
candidates side by side, the selection and what was pushed. With `report_images` "none" no face
image reaches the report or the card (faces are personal data); the numbers and plots stay.
"""
from __future__ import annotations

import csv
import dataclasses
import html
import io
import os
from typing import Any, Dict, List, Optional

from components import contract
from components.class_metrics import per_class_scores
from components.models import training_metrics
from components.run_report import html_page, mistakes, model_card, plots

REPORT_FILE = "report.html"
MODEL_CARD_MD = "model_card.md"
MODEL_CARD_HTML = "model_card.html"
SAMPLE_GRID_PNG = "samples.png"
LABEL_DISTRIBUTION_PNG = "label_distribution.png"
COMPARISON_PNG = "f1_per_class.png"
REPORT_IMAGES_ALL, REPORT_IMAGES_NONE = contract.REPORT_IMAGES_ALL, contract.REPORT_IMAGES_NONE


def curves_png(arch: str) -> str:
    return f"training_curves_{arch}.png"


def confusion_png(candidate: str) -> str:
    return f"confusion_matrix_{candidate}.png"


def mistakes_png(candidate: str) -> str:
    return f"mistakes_{candidate}.png"


def heatmaps_png(arch: str) -> str:
    return f"gradcam_{arch}.png"


@dataclasses.dataclass
class Gallery:
    """A candidate's most confident mistakes per true class (mistakes.confident_mistakes), with
    the encoded images they refer to by index."""

    mistakes: Dict[str, List[mistakes.Example]]
    images: Dict[int, bytes]


@dataclasses.dataclass
class Heatmap:
    example: mistakes.Example
    overlay: Any            # uint8 [H, W, 3]: the input under its Grad-CAM heat


@dataclasses.dataclass
class Training:
    """One Trainer's record: its training summary and its per-epoch log (all restarts)."""

    summary: Dict[str, Any]
    history: Dict[str, List[float]]

    @property
    def kept_epoch(self) -> int:
        """1-based epoch whose weights were kept (best on the watched metric), 0 if unknown."""
        metric = self.summary.get("settings", {}).get("best_epoch_metric", "val_loss")
        values = self.history.get(metric) or []
        if not values:
            return 0
        best = min(values) if metric.endswith("loss") else max(values)
        return values.index(best) + 1


@dataclasses.dataclass
class Evaluation:
    """One Evaluator's result on the eval split."""

    matrix: List[List[float]]              # rows: true class, columns: predicted
    metrics: Dict[str, Any]                # overall metrics by TFMA name
    blessed: bool


@dataclasses.dataclass
class ReportInputs:
    label_names: List[str]
    ingest: Dict[str, Any]                 # the ingest report's summary.json
    samples: Dict[str, List[bytes]]        # class -> encoded training images
    statistics: Dict[str, List[Dict[str, Any]]]  # split -> feature rows (statistics_rows)
    anomalies: Dict[str, List[str]]        # split -> anomaly descriptions (empty: none)
    trainings: Dict[str, Training] = dataclasses.field(default_factory=dict)  # architecture ->
    evaluations: Dict[str, Evaluation] = dataclasses.field(default_factory=dict)  # candidate ->
    members: Dict[str, List[str]] = dataclasses.field(default_factory=dict)  # ensemble -> archs
    selection_metric: Optional[str] = None
    winner: Optional[str] = None
    pushed_destination: Optional[str] = None   # the version directory, None: nothing pushed
    pushed_tflite: Optional[str] = None        # its TFLite twin and scores (tflite.describe)
    artifacts: Dict[str, str] = dataclasses.field(default_factory=dict)  # name -> URI, shown
    galleries: Dict[str, Gallery] = dataclasses.field(default_factory=dict)  # candidate ->
    # architecture -> class -> Grad-CAM overlays of right, then wrong answers
    attention: Dict[str, Dict[str, List[Heatmap]]] = dataclasses.field(default_factory=dict)
    report_images: str = REPORT_IMAGES_ALL

    def label(self, candidate: str) -> str:
        """The candidate's name, with an ensemble's members: "ensemble (vgg16 + resnet50)"."""
        members = self.members.get(candidate)
        return f"{candidate} ({' + '.join(members)})" if members else candidate


def read_training_log(text: str) -> Dict[str, List[float]]:
    """Keras CSVLogger output (one row per epoch, restarts appended) -> metric -> values."""
    history: Dict[str, List[float]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        for key, value in row.items():
            if key != "epoch" and value not in (None, ""):
                history.setdefault(key, []).append(float(value))
    return history


def statistics_rows(dataset) -> List[Dict[str, Any]]:
    """Rows for the report from a TFDV DatasetFeatureStatistics: feature, kind, missing, and
    min / mean / max (numbers) or distinct values and the most frequent (strings)."""
    rows = []
    for feature in dataset.features:
        row: Dict[str, Any] = {"feature": ".".join(feature.path.step) or feature.name}
        if feature.HasField("num_stats"):
            stats = feature.num_stats
            row.update(kind="number", missing=stats.common_stats.num_missing,
                       summary=f"min {stats.min:g}, mean {stats.mean:.4g}, max {stats.max:g}")
        elif feature.HasField("string_stats"):
            stats = feature.string_stats
            top = [b for b in stats.rank_histogram.buckets if b.label != "__BYTES_VALUE__"][:3]
            row.update(kind="bytes" if not top and stats.unique else "string",
                       missing=stats.common_stats.num_missing,
                       summary=f"{stats.unique} distinct" + (
                           "; most frequent: " + ", ".join(
                               f"{b.label} ({b.sample_count:.0f})" for b in top) if top else ""))
        else:
            row.update(kind=feature.WhichOneof("stats") or "?", missing="", summary="")
        rows.append(row)
    return rows


def anomaly_lines(anomalies) -> List[str]:
    """One line per anomaly in a TFDV Anomalies proto."""
    lines = [f"{name}: {info.short_description} ({info.description})"
             for name, info in sorted(anomalies.anomaly_info.items())]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"dataset: {info.short_description} ({info.description})")
    return lines


def write_report(inputs: ReportInputs, output_dir: str) -> str:
    """Writes the figures, the model card and report.html into `output_dir`; returns the
    report's path."""
    os.makedirs(output_dir, exist_ok=True)
    out = lambda name: os.path.join(output_dir, name)  # noqa: E731
    scores = {name: per_class_scores(e.matrix, inputs.label_names)
              for name, e in inputs.evaluations.items()}
    sections = [_outcome_section(inputs), _data_section(inputs, out)]
    if inputs.trainings:
        sections.append(_training_section(inputs, out))
    if inputs.evaluations:
        sections.append(_evaluation_section(inputs, scores, out))
        sections.append(_mistakes_section(inputs, scores, out))
    if inputs.artifacts:
        sections.append("<h2>Artifacts</h2>" + html_page.table(
            ["artifact", "URI"], [[k, v] for k, v in sorted(inputs.artifacts.items())]))
    card = model_card.ModelCard.build(inputs, scores)
    with open(out(MODEL_CARD_MD), "w") as f:
        f.write(card.markdown())
    with open(out(MODEL_CARD_HTML), "w") as f:
        f.write(card.html())
    with open(out(REPORT_FILE), "w") as f:
        f.write(html_page.page(f"{contract.MODEL_NAME}: run report", "".join(sections)))
    return out(REPORT_FILE)


def _data_section(inputs: ReportInputs, out) -> str:
    ingest = inputs.ingest
    per_split = ingest.get("examples", {})
    parts = ["<h2>Data</h2>",
             f"<p>{ingest.get('files_seen', 0)} files seen under "
             f"<code>{html.escape(str(ingest.get('data_root', '')))}</code>: "
             f"{ingest.get('examples_total', 0)} examples, "
             f"{ingest.get('skipped_total', 0)} skipped"
             + (f" ({html.escape(', '.join(f'{k}: {v}' for k, v in ingest['skipped'].items()))})"
                if ingest.get("skipped") else "") + ".</p>"]
    classes = inputs.label_names
    parts.append(html_page.table(["split", *classes, "total"],
                        [[split, *(counts.get(c, 0) for c in classes), sum(counts.values())]
                         for split, counts in per_split.items()]))
    if per_split:
        plots.label_distribution(per_split, out(LABEL_DISTRIBUTION_PNG))
        parts.append(html_page.img(LABEL_DISTRIBUTION_PNG, "examples per class and split"))
    if inputs.samples and inputs.report_images == REPORT_IMAGES_ALL:
        plots.sample_grid(inputs.samples, out(SAMPLE_GRID_PNG))
        parts.append(html_page.img(SAMPLE_GRID_PNG, "sample training images per class"))
    parts.append("<h3>Statistics (TFDV)</h3>")
    for split, rows in inputs.statistics.items():
        parts.append(f"<p><b>{html.escape(split)}</b></p>")
        parts.append(html_page.table(["feature", "kind", "missing", "summary"],
                            [[r["feature"], r["kind"], r["missing"], r["summary"]]
                             for r in rows]))
    parts.append("<h3>Validation against the schema (TFDV)</h3>")
    for split, lines in inputs.anomalies.items():
        status = ('<span class="ok">no anomalies</span>' if not lines else
                  '<span class="bad">' + "<br>".join(map(html.escape, lines)) + "</span>")
        parts.append(f"<p><b>{html.escape(split)}</b>: {status}</p>")
    return "".join(parts)


def _training_section(inputs: ReportInputs, out) -> str:
    parts = ["<h2>Training</h2>"]
    rows = []
    for arch, training in sorted(inputs.trainings.items()):
        s = training.summary
        hp = s.get("hyperparameters", {})
        rows.append([arch, f"{s.get('variant', '')}, width {s.get('width', 1.0)}",
                     f"{hp.get('optimizer', '')} {hp.get('learning_rate', 0):.2g}",
                     s.get("batch_size", ""), len(training.history.get("loss", [])),
                     training.kept_epoch or "",
                     s.get("settings", {}).get("best_epoch_metric", ""),
                     s.get("devices", {}).get("trained_on", "")])
    parts.append(html_page.table(["architecture", "model", "optimizer, learning rate", "batch",
                         "epochs run", "epoch kept", "kept by", "trained on"], rows))
    metrics = [m for m in training_metrics.TRAINING_CURVE_METRICS]
    for arch, training in sorted(inputs.trainings.items()):
        plots.training_curves(training.history, metrics, f"{arch}: training and validation",
                              out(curves_png(arch)), training.kept_epoch)
        parts.append(f"<h3>{html.escape(arch)}</h3>" + html_page.img(curves_png(arch),
                                                             f"training curves of {arch}"))
    return "".join(parts)


def _evaluation_section(inputs: ReportInputs, scores, out) -> str:
    parts = ["<h2>Evaluation on the eval split (TFMA)</h2>"]
    accuracy, macro_f1 = contract.ACCURACY_METRIC, contract.MACRO_F1_METRIC
    parts.append(html_page.table(
        ["candidate", "accuracy", "macro-F1", "examples", "blessed"],
        [[inputs.label(name), e.metrics.get(accuracy, float("nan")),
          e.metrics.get(macro_f1, float("nan")), int(e.metrics.get("example_count", 0)),
          "yes" if e.blessed else "no"]
         for name, e in sorted(inputs.evaluations.items())]))
    if len(scores) > 1:
        plots.per_class_comparison({inputs.label(name): s for name, s in scores.items()}, "f1",
                                   out(COMPARISON_PNG))
        parts.append(html_page.img(COMPARISON_PNG, "F1 per class, candidates side by side"))
    for name, evaluation in sorted(inputs.evaluations.items()):
        label = inputs.label(name)
        parts.append(f"<h3>{html.escape(label)}</h3>")
        plots.confusion_matrices(evaluation.matrix, inputs.label_names,
                                 f"{label}: confusion matrix (eval split)",
                                 out(confusion_png(name)))
        parts.append(html_page.img(confusion_png(name), f"confusion matrix of {label}"))
        parts.append(html_page.table(
            ["class", "precision", "recall (sensitivity)", "specificity", "F1", "support"],
            [[c, s["precision"], s["recall"], s["specificity"], s["f1"], s["support"]]
             for c, s in scores[name].items()]))
    return "".join(parts)


def _outcome_section(inputs: ReportInputs) -> str:
    parts = ["<h2>Outcome</h2>"]
    if inputs.evaluations:
        winner = inputs.winner
        pushed = inputs.pushed_destination
        line = (f"Winner on {html.escape(str(inputs.selection_metric))}: <b>"
                f"{html.escape(inputs.label(winner) if winner else 'none (no blessed candidate)')}"
                "</b>")
        if winner and winner in inputs.evaluations:
            metrics = inputs.evaluations[winner].metrics
            line += (f", accuracy {metrics.get(contract.ACCURACY_METRIC, float('nan')):.4f}, "
                     f"macro-F1 {metrics.get(contract.MACRO_F1_METRIC, float('nan')):.4f} on "
                     "the eval split")
        parts.append(f"<p>{line}.</p>")
        parts.append("<p>Pushed: " + (f"<code>{html.escape(pushed)}</code>" if pushed else
                                      "nothing") + "</p>")
        if pushed and inputs.pushed_tflite:
            parts.append(f"<p>TFLite: {html.escape(inputs.pushed_tflite)}</p>")
    else:
        parts.append("<p>No models in this run: the data half only.</p>")
    parts.append(f'<p>Model card: <a href="{MODEL_CARD_HTML}">{MODEL_CARD_HTML}</a> '
                 f'(<a href="{MODEL_CARD_MD}">Markdown</a>)</p>')
    return "".join(parts)


def weakest_class(class_scores: Dict[str, Dict[str, float]]) -> str:
    """The class with the lowest F1 (ties: the first)."""
    return min(class_scores, key=lambda name: class_scores[name]["f1"])


def _mistakes_section(inputs: ReportInputs, scores, out) -> str:
    parts = ['<h2 id="mistakes">Mistakes and attention (eval split)</h2>']
    weakest = [[inputs.label(name), weakest_class(s), s[weakest_class(s)]["f1"]]
               for name, s in sorted(scores.items())]
    parts.append(html_page.table(["candidate", "weakest class", "its F1"], weakest))
    if inputs.report_images != REPORT_IMAGES_ALL:
        parts.append("<p>Face images are left out of this report (<code>--report-images "
                     "none</code>): the mistakes gallery and the Grad-CAM heatmaps show faces. "
                     "The confusion matrices above count the same mistakes.</p>")
        return "".join(parts)
    parts.append(
        "<p>Each candidate's most confident mistakes per true class: the image, then the class "
        "it was given and that class's probability, as the served model (test-time views "
        "included) scores it. Grad-CAM heat (red) shows where each trained network looked for "
        "the class it gave, on its most confident right answers (left of the bar) and "
        "wrong ones (right), at the network's input size; see "
        "<code>components/run_report/gradcam.py</code> for which feature map.</p>")
    for name, gallery in sorted(inputs.galleries.items()):
        label = inputs.label(name)
        parts.append(f"<h3>{html.escape(label)}: most confident mistakes</h3>")
        if not any(gallery.mistakes.values()):
            parts.append("<p>No mistakes on the eval split.</p>")
            continue
        plots.mistakes_gallery(gallery.mistakes, gallery.images, f"{label}: most confident "
                               "mistakes per true class", out(mistakes_png(name)))
        parts.append(html_page.img(mistakes_png(name), f"most confident mistakes of {label}"))
    for arch, by_class in sorted(inputs.attention.items()):
        parts.append(f"<h3>{html.escape(arch)}: Grad-CAM, right and wrong answers</h3>")
        plots.heatmap_grid(by_class, mistakes.HEATMAPS_PER_KIND,
                           f"{arch}: where it looked (right answers | wrong answers)",
                           out(heatmaps_png(arch)))
        parts.append(html_page.img(heatmaps_png(arch), f"Grad-CAM heatmaps of {arch}"))
    if inputs.members:
        parts.append("<p>An ensemble has no feature map of its own: its members' heat is "
                     "above.</p>")
    return "".join(parts)
