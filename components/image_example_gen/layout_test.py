"""Folder-layout resolution: splits, classes, and the errors a user sees."""
import os

import pytest

from components import contract
from components.image_example_gen import layout
from components.image_example_gen.layout import LayoutError


def mkdirs(root, *rel):
    for r in rel:
        os.makedirs(os.path.join(root, r), exist_ok=True)
    return str(root)


def test_fer2013_layout_with_default_classes(tmp_path):
    classes = [f"{s}/{c}" for s in ("Training", "PublicTest", "PrivateTest")
               for c in contract.FER2013_CLASSES]
    root = mkdirs(tmp_path, *classes)
    result = layout.resolve_layout(root)
    assert result.splits == ("train", "eval", "test")
    assert result.class_names == contract.DEFAULT_CLASSES
    assert result.label_map == {"angry": 0, "fear": 1, "happy": 2, "neutral": 3, "sad": 4,
                                "surprise": 5}
    disgust = [f for f in result.class_folders if f.class_name == "disgust"]
    assert len(disgust) == 3 and all(f.label is None for f in disgust)  # listed, not ingested
    assert {f.split for f in result.class_folders} == {"train", "eval", "test"}


def test_disgust_is_opt_in_and_shifts_ids_by_sorted_name(tmp_path):
    root = mkdirs(tmp_path, *[f"{s}/{c}" for s in ("Training", "PublicTest")
                              for c in contract.FER2013_CLASSES])
    result = layout.resolve_layout(root, classes=contract.FER2013_CLASSES)
    assert result.label_map["disgust"] == 1 and result.label_map["surprise"] == 6
    assert layout.resolve_layout(root, classes=None).class_names == contract.FER2013_CLASSES


def test_kaggle_names_map_to_train_and_eval(tmp_path):
    root = mkdirs(tmp_path, "train/happy", "train/sad", "test/happy", "test/sad")
    result = layout.resolve_layout(root, classes=None)
    assert result.splits == ("train", "eval")
    assert {(f.rel_dir, f.split) for f in result.class_folders} == {
        ("train/happy", "train"), ("train/sad", "train"), ("test/happy", "eval"),
        ("test/sad", "eval")}


def test_custom_split_mapping(tmp_path):
    root = mkdirs(tmp_path, "fit/a", "holdout/a")
    result = layout.resolve_layout(root, split_folders={"fit": "train", "holdout": "eval"},
                                   classes=None)
    assert result.splits == ("train", "eval")


def test_root_that_does_not_exist(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        layout.resolve_layout(str(tmp_path / "missing"))


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(LayoutError, match="not a directory"):
        layout.resolve_layout(str(tmp_path / "f"))


def test_missing_eval_split_names_what_was_looked_for(tmp_path):
    root = mkdirs(tmp_path, "Training/happy")
    with pytest.raises(LayoutError, match=r"missing split 'eval'.*PublicTest.*--split-ratios"):
        layout.resolve_layout(root, classes=None)


def test_no_split_folders_suggests_both_fixes(tmp_path):
    root = mkdirs(tmp_path, "happy", "sad")
    with pytest.raises(LayoutError, match="--split-folders.*--split-ratios"):
        layout.resolve_layout(root, classes=None)


def test_two_folders_for_one_split(tmp_path):
    root = mkdirs(tmp_path, "Training/a", "train/a", "PublicTest/a")
    with pytest.raises(LayoutError, match="all map to split 'train'"):
        layout.resolve_layout(root, classes=None)


def test_class_in_train_but_absent_from_eval(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "Training/sad", "PublicTest/happy")
    with pytest.raises(LayoutError, match=r"\['sad'\] have no folder in split 'eval'"):
        layout.resolve_layout(root, classes=["happy", "sad"])
    allowed = layout.resolve_layout(root, classes=["happy", "sad"],
                                    allow_missing_eval_classes=True)
    assert allowed.class_names == ("happy", "sad")


def test_class_absent_from_train_is_always_an_error(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "PublicTest/happy", "PublicTest/sad")
    with pytest.raises(LayoutError, match=r"no folder in split 'train'"):
        layout.resolve_layout(root, classes=["happy", "sad"], allow_missing_eval_classes=True)


def test_requested_class_without_folder(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "PublicTest/happy")
    with pytest.raises(LayoutError, match=r"\['angry'\] requested but no such folder"):
        layout.resolve_layout(root, classes=["angry", "happy"])


def test_no_class_left_after_exclusion(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "PublicTest/happy")
    with pytest.raises(LayoutError, match="no classes left"):
        layout.resolve_layout(root, classes=None, exclude_classes=["happy"])


def test_stray_entries_are_reported(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "PublicTest/happy", "notes", ".git",
                  "Training/.ipynb_checkpoints")
    (tmp_path / "README.md").write_text("x")
    (tmp_path / "Training" / "labels.csv").write_text("x")
    result = layout.resolve_layout(root, classes=None)
    assert {(e.rel_path, e.reason) for e in result.stray_entries} == {
        (".git", layout.REASON_HIDDEN),
        ("README.md", layout.REASON_NOT_IN_CLASS_FOLDER),
        ("notes", layout.REASON_UNMAPPED_FOLDER),
        ("Training/.ipynb_checkpoints", layout.REASON_HIDDEN),
        ("Training/labels.csv", layout.REASON_NOT_IN_CLASS_FOLDER),
    }


def test_split_ratios_on_class_folders_at_root(tmp_path):
    root = mkdirs(tmp_path, "happy", "sad")
    result = layout.resolve_layout(root, classes=None, split_ratios={"train": 8, "eval": 2})
    assert result.split_ratios == {"train": 0.8, "eval": 0.2}
    assert all(f.split is None for f in result.class_folders)
    assert result.splits == ("train", "eval")


def test_split_ratios_on_a_single_split_folder(tmp_path):
    root = mkdirs(tmp_path, "Training/happy", "Training/sad")
    result = layout.resolve_layout(root, classes=None, split_ratios={"train": 0.9, "eval": 0.1})
    assert {f.rel_dir for f in result.class_folders} == {"Training/happy", "Training/sad"}


def test_split_ratios_refuse_several_split_folders(tmp_path):
    root = mkdirs(tmp_path, "Training/a", "PublicTest/a")
    with pytest.raises(LayoutError, match="single folder"):
        layout.resolve_layout(root, classes=None, split_ratios={"train": 1, "eval": 1})


@pytest.mark.parametrize("ratios, match", [({"train": 1}, "missing"),
                                           ({"train": 1, "eval": 0}, "> 0")])
def test_bad_split_ratios(ratios, match):
    with pytest.raises(LayoutError, match=match):
        layout.validate_split_ratios(ratios)
