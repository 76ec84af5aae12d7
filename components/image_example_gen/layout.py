"""Resolve an image-folder data root into splits and class folders.

Only directories are listed here (root and split level): a few dozen entries whatever the data
size. The files inside class folders are listed and read by the Beam pipeline in the executor.

Supported layouts:
  <root>/<split folder>/<class>/<image>   split folders named by `split_folders`
  <root>/<class>/<image>                  with `split_ratios` (hash-based split)
  <root>/<one split folder>/<class>/...   with `split_ratios` (hash-based split of that folder)
"""
from __future__ import annotations

import dataclasses
import posixpath
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from components import contract

# Reasons an entry found while listing folders does not become an example.
REASON_NOT_IN_CLASS_FOLDER = "not_in_class_folder"
REASON_UNMAPPED_FOLDER = "unmapped_folder"
REASON_HIDDEN = "hidden_entry"


class LayoutError(ValueError):
    """The data root does not have the expected folder structure."""


@dataclasses.dataclass(frozen=True)
class ClassFolder:
    """One `<split>/<class>` folder whose files become examples (or listed skips)."""

    rel_dir: str              # relative to the data root, '/'-separated
    class_name: str
    label: Optional[int]      # None: the class is not included, its files are skipped
    split: Optional[str]      # output split; None: decided per file by hash (split_ratios)


@dataclasses.dataclass(frozen=True)
class StrayEntry:
    """An entry at root or split level that is not a class folder (listed in the report)."""

    rel_path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class DatasetLayout:
    root: str
    class_names: Tuple[str, ...]            # included classes, sorted; label id = index
    splits: Tuple[str, ...]                 # output split names
    class_folders: Tuple[ClassFolder, ...]
    stray_entries: Tuple[StrayEntry, ...]
    split_ratios: Optional[Dict[str, float]] = None
    validation_fraction: float = 0.0        # of the training files, hashed into VALID_SPLIT

    @property
    def label_map(self) -> Dict[str, int]:
        return contract.label_map(self.class_names)


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _list_dir(path: str) -> List[Tuple[str, bool]]:
    """(name, is_dir) for each entry, sorted by name."""
    out = []
    for name in sorted(tf.io.gfile.listdir(path)):
        name = name.rstrip("/")
        out.append((name, tf.io.gfile.isdir(posixpath.join(path, name))))
    return out


def validate_split_ratios(split_ratios: Mapping[str, float]) -> Dict[str, float]:
    ratios = {str(k): float(v) for k, v in split_ratios.items()}
    missing = [s for s in contract.REQUIRED_SPLITS if s not in ratios]
    if missing:
        raise LayoutError(f"split_ratios must name the splits {list(contract.REQUIRED_SPLITS)}; "
                          f"missing {missing} in {ratios}")
    if any(v <= 0 for v in ratios.values()):
        raise LayoutError(f"split_ratios must all be > 0: {ratios}")
    total = sum(ratios.values())
    return {k: v / total for k, v in ratios.items()}


def check_validation_fraction(validation_fraction: float, own_splits: Iterable[str]) -> None:
    """Raises LayoutError unless `validation_fraction` can carve a `valid` split out of
    training, given the splits the data has of its own (`own_splits`)."""
    if not 0.0 <= validation_fraction < 1.0:
        raise LayoutError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if validation_fraction and contract.VALID_SPLIT in set(own_splits):
        raise LayoutError(
            f"split {contract.VALID_SPLIT!r} is already given by split_ratios or split_folders; "
            "set validation_fraction to 0 to use it instead of carving one out of training")


def ordered_splits(splits: Iterable[str]) -> Tuple[str, ...]:
    """Split names in the pipeline's order (contract.SPLIT_ORDER), others after them."""
    order = {s: i for i, s in enumerate(contract.SPLIT_ORDER)}
    return tuple(sorted(set(splits), key=lambda s: (order.get(s, len(order)), s)))


def resolve_layout(
    root: str,
    split_folders: Mapping[str, str] = contract.DEFAULT_SPLIT_FOLDERS,
    classes: Optional[Sequence[str]] = contract.DEFAULT_CLASSES,
    exclude_classes: Sequence[str] = (),
    split_ratios: Optional[Mapping[str, float]] = None,
    allow_missing_eval_classes: bool = False,
    validation_fraction: float = 0.0,
) -> DatasetLayout:
    """Finds the split and class folders under `root`.

    Args:
      root: data root (local path or any filesystem tf.io.gfile reads).
      split_folders: split folder name -> output split name.
      classes: classes to include; None includes every class folder found.
      exclude_classes: classes to leave out (applied after `classes`).
      split_ratios: output split -> weight; enables the hash-based split of a single folder.
      allow_missing_eval_classes: if False, an included class without a folder in a non-training
        split is an error (a class missing from training always is).
      validation_fraction: this share of the training files (by hash of class/file name) goes
        to a `valid` split instead; 0 leaves training whole.

    Raises:
      LayoutError: with a message that says what is wrong and how to fix it.
    """
    root = root.rstrip("/") or "/"
    if not tf.io.gfile.exists(root):
        raise LayoutError(f"data root {root!r} does not exist")
    if not tf.io.gfile.isdir(root):
        raise LayoutError(f"data root {root!r} is not a directory")

    stray: List[StrayEntry] = []
    split_dirs: Dict[str, List[str]] = {}   # output split -> folder names
    other_dirs: List[str] = []
    for name, is_dir in _list_dir(root):
        if _is_hidden(name):
            stray.append(StrayEntry(name, REASON_HIDDEN))
        elif not is_dir:
            stray.append(StrayEntry(name, REASON_NOT_IN_CLASS_FOLDER))
        elif name in split_folders:
            split_dirs.setdefault(split_folders[name], []).append(name)
        else:
            other_dirs.append(name)

    ratios = validate_split_ratios(split_ratios) if split_ratios else None
    check_validation_fraction(validation_fraction, set(ratios or {}) | set(split_folders.values()))
    # (rel_dir of the split folder or '' for the root, output split or None for hash split)
    sources: List[Tuple[str, Optional[str]]] = []
    if ratios:
        if not split_dirs:
            sources = [("", None)]      # <root>/<class>/<image>
            other_dirs = []
        elif sum(len(v) for v in split_dirs.values()) == 1:
            sources = [(next(iter(split_dirs.values()))[0], None)]
        else:
            found = sorted(d for v in split_dirs.values() for d in v)
            raise LayoutError(
                f"split_ratios hash-splits a single folder, but {root!r} has several split "
                f"folders {found}; drop split_ratios to use them as they are")
    else:
        if not split_dirs:
            raise LayoutError(
                f"no split folders under {root!r} (looked for {sorted(split_folders)}; found "
                f"{[n for n in other_dirs] or 'nothing'}). Either name the folders with "
                f"--split-folders, e.g. 'Training=train,PublicTest=eval', or put class folders "
                f"directly under the root and pass --split-ratios, e.g. 'train=0.8,eval=0.2'")
        for split, names in split_dirs.items():
            if len(names) > 1:
                raise LayoutError(f"folders {names} under {root!r} all map to split {split!r}; "
                                  "keep one, or map them explicitly with --split-folders")
        for split in contract.REQUIRED_SPLITS:
            if split not in split_dirs:
                wanted = sorted(n for n, s in split_folders.items() if s == split)
                raise LayoutError(
                    f"missing split {split!r}: none of the folders {wanted} exists under "
                    f"{root!r} (found {sorted(d for v in split_dirs.values() for d in v)}). "
                    "To split a single folder by hash, pass --split-ratios 'train=0.8,eval=0.2'")
        sources = [(names[0], split) for split, names in split_dirs.items()]

    for name in other_dirs:
        stray.append(StrayEntry(name, REASON_UNMAPPED_FOLDER))

    # Class folders per source.
    found: List[Tuple[str, str, Optional[str]]] = []   # (rel_dir, class, split)
    for src_dir, split in sources:
        src_path = posixpath.join(root, src_dir) if src_dir else root
        for name, is_dir in _list_dir(src_path):
            rel = posixpath.join(src_dir, name) if src_dir else name
            if _is_hidden(name):
                stray.append(StrayEntry(rel, REASON_HIDDEN))
            elif not is_dir:
                stray.append(StrayEntry(rel, REASON_NOT_IN_CLASS_FOLDER))
            else:
                found.append((rel, name, split))

    all_class_names = sorted({c for _, c, _ in found})
    if classes is None:
        wanted = list(all_class_names)
    else:
        wanted = list(dict.fromkeys(classes))
        absent = [c for c in wanted if c not in all_class_names]
        if absent:
            raise LayoutError(
                f"class(es) {absent} requested but no such folder under {root!r}; class folders "
                f"found: {all_class_names or 'none'} (choose classes with --classes, or "
                "--classes all for every folder)")
    class_names = contract.label_names(wanted, exclude_classes)
    if not class_names:
        raise LayoutError(f"no classes left to ingest under {root!r}: found "
                          f"{all_class_names}, requested {classes}, "
                          f"excluded {sorted(exclude_classes)}")
    label_map = contract.label_map(class_names)

    if not ratios:
        by_split: Dict[str, set] = {split: set() for _, split in sources}
        for _, c, split in found:
            by_split[split].add(c)
        for split, present in by_split.items():
            missing = [c for c in class_names if c not in present]
            if missing and (split == contract.TRAIN_SPLIT or not allow_missing_eval_classes):
                hint = ("" if split == contract.TRAIN_SPLIT
                        else ", or accept it with --allow-missing-eval-classes")
                raise LayoutError(
                    f"class(es) {missing} have no folder in split {split!r} under {root!r}; "
                    f"exclude them with --exclude-classes{hint}")

    folders = tuple(ClassFolder(rel_dir=rel, class_name=c, label=label_map.get(c), split=split)
                    for rel, c, split in found)
    return DatasetLayout(
        root=root,
        class_names=class_names,
        splits=ordered_splits(list(ratios.keys() if ratios else [s for _, s in sources])
                              + ([contract.VALID_SPLIT] if validation_fraction else [])),
        class_folders=folders,
        stray_entries=tuple(stray),
        split_ratios=ratios,
        validation_fraction=validation_fraction,
    )
