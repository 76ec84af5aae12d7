"""Access to the shared FER2013 archives beside the repo (tests skip when they are absent)."""
from __future__ import annotations

import os
import tarfile
from typing import Dict, List, Optional

from pipeline import configs

FER2013_DIR = os.environ.get(
    "FER2013_DIR", os.path.join(os.path.dirname(configs.PROJECT_ROOT), "shared", "datasets",
                                "fer2013"))
ARCHIVES = ("Training.tar.gz", "PublicTest.tar.gz")


def missing_archives() -> List[str]:
    """The archives that are not readable files in FER2013_DIR."""
    return [a for a in ARCHIVES if not (os.path.isfile(os.path.join(FER2013_DIR, a))
                                        and os.access(os.path.join(FER2013_DIR, a), os.R_OK))]


def available() -> bool:
    """Whether both archives are there and readable. When FER2013_DIR exists but they are not,
    the tests that need them skip and the run fails (tests/skip_report.py)."""
    return not missing_archives()


def extract(dest: str, per_class: Optional[int] = None) -> Dict[str, int]:
    """Extracts both archives into `dest` (`dest/<split>/<class>/*.jpg`).

    With `per_class`, only the first `per_class` images of each split/class are extracted.
    Returns the number of files extracted per archive.
    """
    counts = {}
    for archive in ARCHIVES:
        taken: Dict[str, int] = {}
        with tarfile.open(os.path.join(FER2013_DIR, archive)) as tar:
            members = []
            for m in tar:
                if not m.isfile():
                    continue
                folder = os.path.dirname(m.name)
                if per_class is not None and taken.get(folder, 0) >= per_class:
                    continue
                taken[folder] = taken.get(folder, 0) + 1
                members.append(m)
            tar.extractall(dest, members=members)
        counts[archive] = len(members)
    return counts
