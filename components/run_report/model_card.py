"""The model card of the model a run pushed: what it is, what it was trained and evaluated on,
how it scores per class, what it is for and where it falls short. Markdown and HTML.

Built from the same `ReportInputs` as the report; a run that pushed nothing gets a card that
says so and lists the candidates' scores.
"""
from __future__ import annotations

import dataclasses
import html
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components import contract
from components.models import time_budget
from components.run_report import html_page

INTENDED_USE = (
    "Classifying the facial expression of one pre-cropped, roughly frontal face image into one "
    "of the listed classes, e.g. to study expression recognition or to aggregate expressions "
    "over many images. The input is the encoded image bytes; the output is a probability per "
    "class.")
LIMITATIONS = (
    "An expression is not an emotion: the model labels how a face looks, not what a person "
    "feels. Do not use it to make decisions about individuals (hiring, policing, health, "
    "education).",
    "The model knows only the data above (for FER2013: low-resolution grayscale web images with "
    "noisy labels); expect lower accuracy on other cameras, lighting, poses, occlusions and on "
    "faces that are not cropped the same way.",
    "No evaluation by age, gender or skin tone was done: the data carries no such labels, and "
    "published work reports uneven accuracy across groups for models of this kind.",
    "Legal limits: in the EU, the AI Act (Regulation (EU) 2024/1689) prohibits AI systems that "
    "infer the emotions of a person in the workplace or in education institutions, except for "
    "medical or safety reasons (Article 5(1)(f), in force since 2 February 2025); elsewhere it "
    "classes emotion recognition as high-risk (Annex III, point 1(c)) and requires that the "
    "people exposed to it be told (Article 50(3)). Face images are personal data under the "
    "GDPR. Check the law where the model is used before deploying it.",
)


@dataclasses.dataclass
class ModelCard:
    model_name: str
    pushed_version: Optional[str]
    pushed_destination: Optional[str]
    architecture: Optional[str]
    details: List[Tuple[str, str]]
    data: Dict[str, Dict[str, int]]
    label_names: List[str]
    overall: List[Tuple[str, str]]
    per_class: Dict[str, Dict[str, float]]
    candidates: List[Tuple[str, float, float, str]]
    data_limits: List[str]
    gallery_figure: Optional[str] = None    # the pushed model's mistakes, when faces are shown
    tflite: Optional[str] = None            # its TFLite twin and scores (tflite.describe)

    @classmethod
    def build(cls, inputs, scores: Dict[str, Dict[str, Dict[str, float]]]) -> "ModelCard":
        """`inputs`: report.ReportInputs; `scores`: candidate -> class -> per-class scores."""
        winner = inputs.winner if inputs.pushed_destination else None
        members = inputs.members.get(winner, [])
        architecture = f"{winner} of {' + '.join(members)}" if members else winner
        details: List[Tuple[str, str]] = []
        overall: List[Tuple[str, str]] = []
        if winner:
            if members:
                details = [("architecture", f"{architecture}: the mean of their class "
                                            "probabilities, each network with its own "
                                            "test-time augmentation")]
                for member in members:
                    details += [(f"{member}: {key}", value) for key, value in
                                _training_details(member, inputs.trainings.get(member))]
            else:
                details = _training_details(winner, inputs.trainings.get(winner))
            metrics = inputs.evaluations[winner].metrics
            overall = [("accuracy", f"{metrics.get(contract.ACCURACY_METRIC, float('nan')):.4f}"),
                       ("macro-F1", f"{metrics.get(contract.MACRO_F1_METRIC, float('nan')):.4f}"),
                       ("examples", f"{int(metrics.get('example_count', 0))}")]
        candidates = [
            (inputs.label(name), float(e.metrics.get(contract.ACCURACY_METRIC, float("nan"))),
             float(e.metrics.get(contract.MACRO_F1_METRIC, float("nan"))),
             "yes" if e.blessed else "no")
            for name, e in sorted(inputs.evaluations.items())]
        data = inputs.ingest.get("examples", {})
        return cls(
            model_name=contract.MODEL_NAME,
            pushed_version=(os.path.basename(inputs.pushed_destination.rstrip("/"))
                            if inputs.pushed_destination else None),
            pushed_destination=inputs.pushed_destination, architecture=architecture,
            details=details, data=data, label_names=list(inputs.label_names), overall=overall,
            per_class=scores.get(winner, {}) if winner else {}, candidates=candidates,
            gallery_figure=(_gallery_of(inputs, winner) or (None,))[0],
            tflite=inputs.pushed_tflite if winner else None,
            data_limits=_data_limits(
                data.get(contract.TRAIN_SPLIT, {}), scores.get(winner, {}) if winner else {},
                inputs.evaluations[winner].matrix if winner else None, list(inputs.label_names),
                _gallery_of(inputs, winner)))

    @property
    def title(self) -> str:
        if not self.pushed_version:
            return f"Model card: {self.model_name} (nothing pushed by this run)"
        return f"Model card: {self.model_name}, version {self.pushed_version} ({self.architecture})"

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        if self.pushed_version:
            lines += [f"Served as model `{self.model_name}`, version `{self.pushed_version}` "
                      f"(`{self.pushed_destination}`).", ""]
            if self.tflite:
                lines += [f"TFLite, for devices: {self.tflite}.", ""]
            lines += ["## Model", ""] + [f"- **{k}**: {v}" for k, v in self.details] + [""]
        else:
            lines += ["No candidate was blessed, so no model was pushed by this run.", ""]
        lines += ["## Intended use", "", INTENDED_USE, "", "## Data", ""]
        lines += _markdown_table(["split", *self.label_names, "total"], self._data_rows())
        if self.pushed_version:
            lines += ["## Evaluation (eval split)", ""]
            lines += [f"- **{k}**: {v}" for k, v in self.overall] + [""]
            lines += _markdown_table(
                ["class", "precision", "recall", "specificity", "F1", "support"],
                self._per_class_rows())
            if self.gallery_figure:
                lines += [f"Its most confident mistakes per class: [{self.gallery_figure}]"
                          f"({self.gallery_figure}), with Grad-CAM heatmaps in "
                          "[the run report](report.html#mistakes).", ""]
        lines += ["## Candidates of this run", ""]
        lines += _markdown_table(["candidate", "accuracy", "macro-F1", "blessed"],
                                 self.candidates)
        lines += ["## Limitations", ""] + [f"- {text}" for text in
                                           (*self.data_limits, *LIMITATIONS)] + [""]
        return "\n".join(lines)

    def html(self) -> str:
        parts = []
        if self.pushed_version:
            parts.append(f"<p>Served as model <code>{html.escape(self.model_name)}</code>, "
                         f"version <code>{html.escape(self.pushed_version)}</code> "
                         f"(<code>{html.escape(str(self.pushed_destination))}</code>).</p>")
            if self.tflite:
                parts.append(f"<p>TFLite, for devices: {html.escape(self.tflite)}.</p>")
            parts.append("<h2>Model</h2>" + html_page.table(None, self.details))
        else:
            parts.append("<p>No candidate was blessed, so no model was pushed by this run.</p>")
        parts.append(f"<h2>Intended use</h2><p>{html.escape(INTENDED_USE)}</p>")
        parts.append("<h2>Data</h2>" + html_page.table(["split", *self.label_names, "total"],
                                                      self._data_rows()))
        if self.pushed_version:
            parts.append("<h2>Evaluation (eval split)</h2>"
                         + html_page.table(None, self.overall)
                         + html_page.table(["class", "precision", "recall", "specificity",
                                            "F1", "support"], self._per_class_rows()))
            if self.gallery_figure:
                figure = html.escape(self.gallery_figure)
                parts.append(f'<p>Its most confident mistakes per class: <a href="{figure}">'
                             f'{figure}</a>, with Grad-CAM heatmaps in <a href="report.html'
                             '#mistakes">the run report</a>.</p>')
        parts.append("<h2>Candidates of this run</h2>" + html_page.table(
            ["candidate", "accuracy", "macro-F1", "blessed"], self.candidates))
        parts.append("<h2>Limitations</h2><ul>" + "".join(
            f"<li>{html.escape(text)}</li>" for text in (*self.data_limits, *LIMITATIONS))
            + "</ul>")
        parts.append('<p class="muted"><a href="report.html">back to the run report</a></p>')
        return html_page.page(self.title, "".join(parts))

    def _data_rows(self) -> List[List[Any]]:
        return [[split, *(counts.get(c, 0) for c in self.label_names), sum(counts.values())]
                for split, counts in self.data.items()]

    def _per_class_rows(self) -> List[List[Any]]:
        return [[name, s["precision"], s["recall"], s["specificity"], s["f1"], s["support"]]
                for name, s in self.per_class.items()]


def _training_details(arch: str, training) -> List[Tuple[str, str]]:
    """What the model card says of a trained network (`training`: report.Training, or None
    when its record is missing)."""
    if not training:
        return []
    s = training.summary
    hp = s.get("hyperparameters", {})
    return [
        ("architecture", f"{arch} ({s.get('variant', '')} variant, width "
                         f"{s.get('width', 1.0)})"),
        ("hyperparameters", ", ".join(f"{k} {v:.3g}" if isinstance(v, float)
                                      else f"{k} {v}" for k, v in hp.items())),
        ("training", f"{len(training.history.get('loss', []))} epochs of "
                     f"{s.get('steps_per_epoch', '?')} steps x "
                     f"{s.get('batch_size', '?')} images; weights of epoch "
                     f"{training.kept_epoch or '?'} kept (best "
                     f"{s.get('settings', {}).get('best_epoch_metric', '?')})"),
        ("test-time augmentation", str(s.get("test_time_augmentation", "none"))),
        ("trained on", s.get("devices", {}).get("trained_on", "not recorded")),
    ] + ([("time budget", time_budget.describe_outcome(s["time_plan"]))]
         if s.get("time_plan") else [])


def _gallery_of(inputs, winner: Optional[str]):
    """(figure file, the weakest class's mistakes) of the winner's gallery when the report shows
    face images, else None."""
    from components.run_report import report  # report imports this module

    gallery = inputs.galleries.get(winner) if winner else None
    if gallery is None or inputs.report_images != report.REPORT_IMAGES_ALL:
        return None
    return report.mistakes_png(winner), gallery.mistakes


def _data_limits(train_counts: Dict[str, int], per_class: Dict[str, Dict[str, float]],
                 matrix: Optional[Sequence[Sequence[float]]] = None,
                 label_names: Sequence[str] = (), gallery=None) -> List[str]:
    limits = []
    if train_counts and min(train_counts.values()) > 0:
        rarest = min(train_counts, key=train_counts.get)
        commonest = max(train_counts, key=train_counts.get)
        ratio = train_counts[commonest] / train_counts[rarest]
        if ratio >= 1.5:
            limits.append(f"Class imbalance in training: {commonest} has {ratio:.1f}x as many "
                          f"images as {rarest}.")
    if per_class:
        weakest = min(per_class, key=lambda name: per_class[name]["f1"])
        text = (f"Weakest class on the eval split: {weakest} (F1 "
                f"{per_class[weakest]['f1']:.2f}); its predictions deserve the least trust.")
        if matrix is not None and weakest in label_names:
            row = list(matrix[list(label_names).index(weakest)])
            taken = sorted(((count, name) for name, count in zip(label_names, row, strict=True)
                            if name != weakest and count), reverse=True)[:2]
            if taken:
                text += (f" Its {int(sum(row))} examples were most often taken for "
                         + " and ".join(f"{name} ({int(count)})" for count, name in taken) + ".")
        if gallery:
            figure, by_class = gallery
            shown = by_class.get(weakest) or []
            if shown:
                text += (" Its most confident mistakes: "
                         + ", ".join(f"given {e.predicted_class} at {e.probability:.2f}"
                                     for e in shown[:3])
                         + f" (images: {figure} in the run report).")
        limits.append(text)
    return limits


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> List[str]:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    return ([f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
            + [f"| {' | '.join(cell(v) for v in row)} |" for row in rows] + [""])
