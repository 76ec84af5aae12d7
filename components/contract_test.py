"""The contract module and the layering it makes possible."""
import ast
import os

import pytest

from components import contract

COMPONENTS_DIR = os.path.dirname(os.path.abspath(__file__))
PROJECT_PACKAGES = ("components", "pipeline", "serving", "bench", "tests")


def _imports(path):
    """Top-level module names imported by a Python file, e.g. {"tensorflow", "components"}."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_path(module):
    base = os.path.join(os.path.dirname(COMPONENTS_DIR), *module.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _transitive_imports(module):
    """Every module `module` imports, following this project's own modules."""
    seen, todo, found = set(), [module], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        path = _module_path(current)
        if path is None:
            continue
        for name in _imports(path):
            found.add(name)
            if name.split(".")[0] in PROJECT_PACKAGES:
                todo.append(name)
    return {name.split(".")[0] for name in found}


def test_no_module_imports_a_test_module():
    """Helpers shared by tests live in helper modules (tests/*.py without `_test`, fixtures):
    renaming or deleting one test must never break another."""
    root = os.path.dirname(COMPONENTS_DIR)
    offenders = []
    for package in PROJECT_PACKAGES:
        for folder, _, files in os.walk(os.path.join(root, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    offenders += [f"{os.path.relpath(path, root)} imports {i}"
                                  for i in sorted(_imports(path))
                                  if i.split(".")[-1].endswith("_test")
                                  or i.split(".")[-1].startswith("test_")]
    assert offenders == []


def test_nothing_under_components_imports_the_pipeline_package():
    offenders = []
    for root, _, files in os.walk(COMPONENTS_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(root, name)
                if any(i == "pipeline" or i.startswith("pipeline.") for i in _imports(path)):
                    offenders.append(os.path.relpath(path, COMPONENTS_DIR))
    assert offenders == []


def test_the_contract_needs_neither_tfx_nor_tensorflow():
    assert _transitive_imports("components.contract") <= {"__future__", "typing"}


def test_evaluation_and_export_code_do_not_import_keras_tuner():
    for module in ("components.evaluation", "components.models.input_pipeline",
                   "components.models.export", "components.models.training_summary",
                   "components.model_selector.selection",
                   "components.image_example_gen.ingest_report"):
        assert "keras_tuner" not in _transitive_imports(module), module
    assert "keras_tuner" in _transitive_imports("components.models.trainer")  # the check works


def test_label_ids_follow_the_sorted_included_class_names():
    names = contract.label_names(["sad", "happy", "disgust", "angry"], exclude_classes=["disgust"])
    assert names == ("angry", "happy", "sad")
    mapping = contract.label_map(names)
    assert mapping == {"angry": 0, "happy": 1, "sad": 2}
    assert contract.names_from_label_map(mapping) == names
    with pytest.raises(ValueError, match="label ids"):
        contract.names_from_label_map({"angry": 0, "sad": 2})


def test_validation_split_is_valid_only_when_there_is_one():
    folders = contract.DEFAULT_SPLIT_FOLDERS
    assert contract.validation_split(0.1, folders) == contract.VALID_SPLIT
    assert contract.validation_split(0.0, folders) == contract.EVAL_SPLIT
    assert contract.validation_split(0.0, {**folders, "Dev": "valid"}) == contract.VALID_SPLIT
    assert contract.validation_split(0.0, folders, {"train": 0.8, "valid": 0.1, "eval": 0.1}) \
        == contract.VALID_SPLIT


def test_the_model_builders_cover_the_contract_architectures():
    from components.models import trainer
    assert tuple(trainer.BUILDERS) == contract.ARCHITECTURES


def test_serving_needs_only_the_contract_and_the_warmup_records():
    """fer-serve and the clients run where no pipeline code is wanted: of this project they may
    import only `components.contract`, `components.warmup`, `components.quiet_start` and
    `components.transform` (the TFLite client decodes images as Transform does), and nothing
    may pull in TFX, tf.Transform, Keras or KerasTuner."""
    serving_dir = os.path.join(os.path.dirname(COMPONENTS_DIR), "serving")
    allowed = {"components", "components.contract", "components.warmup",
               "components.quiet_start", "components.transform"}
    for name in sorted(os.listdir(serving_dir)):
        if not name.endswith(".py") or name.endswith("_test.py") or name == "conftest.py":
            continue
        project = {i for i in _imports(os.path.join(serving_dir, name))
                   if i.split(".")[0] in PROJECT_PACKAGES and i.split(".")[0] != "serving"}
        assert project <= allowed, (name, project - allowed)
        module = f"serving.{name[:-3]}"
        heavy = _transitive_imports(module) & {"tfx", "tensorflow_transform", "keras",
                                               "keras_tuner", "tf_keras", "pipeline"}
        assert heavy == set(), (module, heavy)
    assert "tfx" in _transitive_imports("components.pusher.executor")  # the check works
