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
            target, _, fragment = target.partition("#")
            assert os.path.isfile(target), f"{page} links to a missing {target}"
            if fragment:
                with open(target) as f:
                    assert f'id="{fragment}"' in f.read(), f"{page}: no #{fragment} in {target}"
            if target.endswith(".png"):
                pngs.append(os.path.basename(target))
                assert plots.png_size(target) == expected_size(target)
    return pngs


def expected_size(png_path):
    png_name = os.path.basename(png_path)
    if png_name.startswith(("mistakes_", "gradcam_")):   # a row per class: a whole count of rows
        height = plots.png_size(png_path)[1]
        rows, rest = divmod(height - plots.GALLERY_HEADER, plots.GALLERY_ROW_HEIGHT)
        assert rest == 0 and rows >= 1, f"{png_name}: height {height} is no whole count of rows"
        return plots.gallery_size(rows)
    if png_name.startswith("training_curves_"):
        return plots.CURVES_SIZE
    if png_name.startswith("confusion_matrix_"):
        return plots.CONFUSION_SIZE
    return {report.SAMPLE_GRID_PNG: plots.SAMPLE_GRID_SIZE,
            report.LABEL_DISTRIBUTION_PNG: plots.LABEL_DISTRIBUTION_SIZE,
            report.COMPARISON_PNG: plots.COMPARISON_SIZE}[png_name]
