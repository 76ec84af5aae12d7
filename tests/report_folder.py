"""Checks of a written run report folder: links resolve, figures have their sizes (test helpers)."""
import html.parser
import os

from components.run_report import plots, report


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.targets.append(attrs["src"])
        elif tag == "a":
            self.targets.append(attrs["href"])


def local_targets(html_path):
    """Every img src and a href of an HTML file, as paths beside it."""
    parser = _Links()
    with open(html_path) as f:
        parser.feed(f.read())
    return [os.path.join(os.path.dirname(html_path), t) for t in parser.targets]


def check_report_folder(report_path):
    """What the e2e test checks too: every link of the report and the model card resolves and
    every PNG is a valid image of its figure's size. Returns the PNG names."""
    pngs = []
    for page in (report_path, os.path.join(os.path.dirname(report_path),
                                           report.MODEL_CARD_HTML)):
        for target in local_targets(page):
            assert os.path.isfile(target), f"{page} links to a missing {target}"
            if target.endswith(".png"):
                pngs.append(os.path.basename(target))
                assert plots.png_size(target) == expected_size(os.path.basename(target))
    return pngs


def expected_size(png_name):
    if png_name.startswith("training_curves_"):
        return plots.CURVES_SIZE
    if png_name.startswith("confusion_matrix_"):
        return plots.CONFUSION_SIZE
    return {report.SAMPLE_GRID_PNG: plots.SAMPLE_GRID_SIZE,
            report.LABEL_DISTRIBUTION_PNG: plots.LABEL_DISTRIBUTION_SIZE,
            report.COMPARISON_PNG: plots.COMPARISON_SIZE}[png_name]
