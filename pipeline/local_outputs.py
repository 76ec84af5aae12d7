"""Where a local run writes: artifacts, ML Metadata, the serving directory and the demo data.

Used by the local runner, the command line and the benchmarks; kept apart from
local_runner.py so that the command line can read its defaults without loading TFX.
"""
from __future__ import annotations

import dataclasses
import os

from pipeline import configs

DEFAULT_OUTPUT_DIR = os.path.join(configs.PROJECT_ROOT, "outputs")


@dataclasses.dataclass(frozen=True)
class OutputLayout:
    """The folders of a local run under one root (`--output-dir`)."""

    root: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.root, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.root, "metadata", "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.root, "serving")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def lock_path(self) -> str:
        return os.path.join(self.root, "retrain.lock")

    @property
    def demo_data_dir(self) -> str:
        return os.path.join(self.root, "demo_data")
