"""The run report's figures, as PNG files of fixed pixel sizes (matplotlib, Agg backend).

Each function draws one figure from plain Python data and writes it to `path`; the sizes are
constants so that a test can check what was written.
"""
from __future__ import annotations

import io
import math
from typing import Dict, List, Mapping, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")  # files only, no display

# isort: split
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

DPI = 100
SAMPLES_PER_CLASS = 8
# (width, height) in pixels of each figure.
SAMPLE_GRID_SIZE = (1000, 900)
CURVES_SIZE = (1500, 800)
CONFUSION_SIZE = (1400, 600)
COMPARISON_SIZE = (1200, 500)
LABEL_DISTRIBUTION_SIZE = (1200, 450)
# Per row (a class) of the mistakes gallery and the Grad-CAM grid; the width is fixed.
GALLERY_WIDTH, GALLERY_ROW_HEIGHT, GALLERY_HEADER = 1200, 190, 60
TRAIN_COLOR, VALID_COLOR = "#1f77b4", "#d62728"


def _figure(size: Tuple[int, int], rows: int = 1, cols: int = 1):
    return plt.subplots(rows, cols, figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI,
                        squeeze=False)


def _save(fig, path: str) -> None:
    fig.savefig(path, dpi=DPI)  # no bbox_inches="tight": the pixel size stays the constant
    plt.close(fig)


def _decoded(encoded: bytes):
    """(pixels, colour map) of an encoded image, as sample_grid shows it."""
    picture = Image.open(io.BytesIO(encoded))
    gray = picture.mode in ("L", "LA", "I", "I;16")
    return np.asarray(picture.convert("L" if gray else "RGB")), ("gray" if gray else None)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def gallery_size(rows: int) -> Tuple[int, int]:
    return GALLERY_WIDTH, GALLERY_HEADER + GALLERY_ROW_HEIGHT * max(rows, 1)


def _gallery_layout(fig, title: str, rows: int) -> None:
    """The title in the header band, the rows below it (each image titled above)."""
    height = gallery_size(rows)[1]
    fig.suptitle(title, fontsize=13, y=1 - 8 / height, va="top")
    fig.subplots_adjust(left=0.12, right=0.99, top=1 - (GALLERY_HEADER + 5) / height,
                        bottom=8 / height, hspace=0.35)


def mistakes_gallery(by_class: Mapping[str, Sequence], images: Mapping[int, bytes],
                     title: str, path: str) -> None:
    """A row per true class: its mistakes (mistakes.Example, most confident first), each
    titled with the class it was given and that class's probability."""
    classes = list(by_class)
    columns = max(1, max(len(v) for v in by_class.values()))
    fig, axes = _figure(gallery_size(len(classes)), len(classes), columns)
    for row, name in enumerate(classes):
        for col in range(columns):
            ax = axes[row][col]
            _bare(ax)
            if col < len(by_class[name]):
                example = by_class[name][col]
                pixels, cmap = _decoded(images[example.index])
                ax.imshow(pixels, cmap=cmap, vmin=0, vmax=255)
                ax.set_title(f"{example.predicted_class} {example.probability:.2f}",
                             fontsize=10, color="#b00020")
            elif col == 0:  # an empty row would read as a missing figure
                ax.set_box_aspect(1)  # square, as the image cells are
                ax.text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=10,
                        color="#006400", transform=ax.transAxes)
            if col == 0:
                ax.set_ylabel(f"true: {name}", rotation=0, ha="right", va="center",
                              fontsize=11)
    _gallery_layout(fig, title, len(classes))
    _save(fig, path)


def heatmap_grid(by_class: Mapping[str, Sequence], per_kind: int, title: str,
                 path: str) -> None:
    """A row per class: up to `per_kind` right answers, a gap, up to `per_kind` wrong ones
    (report.Heatmap), each titled with the class given and its probability."""
    classes = list(by_class)
    fig, axes = _figure(gallery_size(len(classes)), len(classes), 2 * per_kind + 1)
    for row, name in enumerate(classes):
        right = [h for h in by_class[name] if h.example.correct][:per_kind]
        wrong = [h for h in by_class[name] if not h.example.correct][:per_kind]
        cells = [*right, *[None] * (per_kind - len(right)), None,
                 *wrong, *[None] * (per_kind - len(wrong))]
        for col, heatmap in enumerate(cells):
            ax = axes[row][col]
            _bare(ax)
            if heatmap is not None:
                ax.imshow(heatmap.overlay)
                ax.set_title(f"{heatmap.example.predicted_class} "
                             f"{heatmap.example.probability:.2f}", fontsize=10,
                             color="#006400" if heatmap.example.correct else "#b00020")
            if col == 0:
                ax.set_ylabel(f"true: {name}", rotation=0, ha="right", va="center",
                              fontsize=11)
    _gallery_layout(fig, title, len(classes))
    _save(fig, path)


def sample_grid(images: Mapping[str, Sequence[bytes]], path: str) -> None:
    """Up to SAMPLES_PER_CLASS encoded images (JPEG/PNG/...) per class: a row per class."""
    classes = list(images)
    fig, axes = _figure(SAMPLE_GRID_SIZE, len(classes), SAMPLES_PER_CLASS)
    for row, name in enumerate(classes):
        for col in range(SAMPLES_PER_CLASS):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(images[name]):
                picture = Image.open(io.BytesIO(images[name][col]))
                gray = picture.mode in ("L", "LA", "I", "I;16")
                ax.imshow(np.asarray(picture.convert("L" if gray else "RGB")),
                          cmap="gray" if gray else None, vmin=0, vmax=255)
            if col == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=12)
    fig.suptitle("Sample training images per class", fontsize=14)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.02, wspace=0.05, hspace=0.08)
    _save(fig, path)


def training_curves(history: Mapping[str, Sequence[float]], metrics: Sequence[str],
                    title: str, path: str, kept_epoch: int = 0) -> None:
    """One panel per metric: training and validation (`val_` + metric) per epoch (1-based);
    a dotted line marks `kept_epoch` (the weights kept), when given."""
    cols = 3
    rows = math.ceil(len(metrics) / cols)
    fig, axes = _figure(CURVES_SIZE, rows, cols)
    for i, metric in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        ax.set_title(metric)
        if not (history.get(metric) or history.get(f"val_{metric}")):
            ax.axis("off")
            ax.text(0.5, 0.5, f"{metric}: not recorded", ha="center", va="center",
                    color="gray", transform=ax.transAxes)
            continue
        for key, label, color in ((metric, "training", TRAIN_COLOR),
                                  (f"val_{metric}", "validation", VALID_COLOR)):
            values = history.get(key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3,
                        color=color, label=label)
        if kept_epoch:
            ax.axvline(kept_epoch, color="gray", linestyle=":", linewidth=1,
                       label=f"kept (epoch {kept_epoch})")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if i == 0:
            ax.legend(fontsize=9)
    for j in range(len(metrics), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(title, fontsize=14)
    fig.subplots_adjust(left=0.06, right=0.98, top=0.88, bottom=0.08, wspace=0.25, hspace=0.45)
    _save(fig, path)


def confusion_matrices(matrix: Sequence[Sequence[float]], label_names: Sequence[str],
                       title: str, path: str) -> None:
    """Counts, and rows normalised to the true class (recall on the diagonal), side by side."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, axes = _figure(CONFUSION_SIZE, 1, 2)
    for ax, values, subtitle, fmt in ((axes[0][0], counts, "counts", "{:.0f}"),
                                      (axes[0][1], normalized, "share of the true class",
                                       "{:.2f}")):
        ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() or 1)
        ticks = range(len(label_names))
        ax.set_xticks(ticks, label_names, rotation=45, ha="right")
        ax.set_yticks(ticks, label_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(subtitle)
        threshold = (values.max() or 1) / 2
        for r in ticks:
            for c in ticks:
                ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=9,
                        color="white" if values[r, c] > threshold else "black")
    fig.suptitle(title, fontsize=14)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.2, wspace=0.35)
    _save(fig, path)


def per_class_comparison(scores: Mapping[str, Mapping[str, Mapping[str, float]]],
                         metric: str, path: str) -> None:
    """`metric` per class for each candidate: grouped bars (scores: candidate -> class -> ...)."""
    candidates = list(scores)
    classes: List[str] = list(next(iter(scores.values()))) if scores else []
    fig, axes = _figure(COMPARISON_SIZE)
    ax = axes[0][0]
    width = 0.8 / max(1, len(candidates))
    for i, candidate in enumerate(candidates):
        values = [scores[candidate][name][metric] for name in classes]
        positions = np.arange(len(classes)) + (i - (len(candidates) - 1) / 2) * width
        bars = ax.bar(positions, values, width, label=candidate)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylim(0, 1.2)  # room above the bars for the legend in one row
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per class on the eval split")
    ax.legend(loc="upper center", ncol=len(candidates))
    ax.grid(axis="y", alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.1)
    _save(fig, path)


def label_distribution(counts: Mapping[str, Mapping[str, int]], path: str) -> None:
    """Examples per class in each split (counts: split -> class -> n), as grouped bars."""
    splits = list(counts)
    classes = sorted({name for per_class in counts.values() for name in per_class})
    fig, axes = _figure(LABEL_DISTRIBUTION_SIZE)
    ax = axes[0][0]
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        values = [counts[split].get(name, 0) for name in classes]
        positions = np.arange(len(classes)) + (i - (len(splits) - 1) / 2) * width
        bars = ax.bar(positions, values, width, label=split)
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel("examples")
    ax.set_title("Examples per class and split")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.1)
    _save(fig, path)


def png_size(path: str) -> Tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
        return image.size


SIZES: Dict[str, Tuple[int, int]] = {
    "sample_grid": SAMPLE_GRID_SIZE, "curves": CURVES_SIZE, "confusion": CONFUSION_SIZE,
    "comparison": COMPARISON_SIZE, "label_distribution": LABEL_DISTRIBUTION_SIZE,
}
