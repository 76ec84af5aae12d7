import os
import shutil

import grpc
import pytest

from components import contract
from serving import errors, model_store
from serving.conftest import corrupt_copy, push


def test_only_complete_integer_versions_count(tmp_path, tiny_exports):
    base = tmp_path / "fer"
    for name in ("17", ".staging-18-abc", "notes", "19"):
        (base / name).mkdir(parents=True)
    (base / "17" / "saved_model.pb").write_bytes(b"x")
    (base / ".staging-18-abc" / "saved_model.pb").write_bytes(b"x")
    assert list(model_store.version_dirs(str(base))) == [17]  # 19 has no saved_model.pb yet
    assert model_store.version_dirs(str(tmp_path / "missing")) == {}


def test_newest_version_serves_and_a_new_one_takes_over_after_warmup(model_base, tiny_exports):
    first = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    old = store.get()
    assert old.version == first and old.warmup_requests == 3
    second = push(tiny_exports[1], model_base)
    store.refresh()
    assert store.get().version == second and store.available_versions() == [second]
    # The old version object still works for a request that already holds it.
    assert old.signatures[contract.SERVING_SIGNATURE] is not None
    states = {s.version: s.state for s in store.status()}
    assert states == {second: model_store.AVAILABLE, first: model_store.END}
    with pytest.raises(errors.ServingError) as e:
        store.get(first)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and str(second) in e.value.message


def test_an_unloadable_version_is_reported_and_the_old_one_keeps_serving(model_base,
                                                                         tiny_exports, caplog):
    good = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    corrupt_copy(tiny_exports[1], model_base, good + 100)
    with caplog.at_level("ERROR", logger="fer_serve"):
        store.refresh()
    assert store.get().version == good
    status = store.status(good + 100)[0]
    assert status.state == model_store.END and status.error_code == grpc.StatusCode.UNKNOWN
    assert status.error_message
    assert any("failed to load" in r.message for r in caplog.records)
    store.refresh()  # not retried while its files are unchanged
    assert sum("failed to load" in r.message for r in caplog.records) == 1


def test_a_version_whose_warmup_fails_never_takes_traffic(model_base, tiny_exports):
    good = push(tiny_exports[0], model_base)
    bad_dir = os.path.join(model_base, str(good + 1))
    shutil.copytree(tiny_exports[1], bad_dir)
    with open(os.path.join(bad_dir, contract.WARMUP_FILE), "wb") as f:
        f.write(b"\x00" * 40)  # not a TFRecord file
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    assert store.get().version == good
    assert store.status(good + 1)[0].state == model_store.END


def test_pinned_versions_and_labels(model_base, tiny_exports):
    first = push(tiny_exports[0], model_base)
    second = push(tiny_exports[1], model_base)
    third = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base, num_latest=1,
                                   pinned_versions=[first], version_labels={"stable": first,
                                                                            "gone": second})
    store.refresh()
    assert store.available_versions() == [first, third]
    assert store.get().version == third
    assert store.get(first).version == first
    assert store.get(label="stable").version == first
    for call in (lambda: store.get(second), lambda: store.get(label="gone"),
                 lambda: store.get(label="nope")):
        with pytest.raises(errors.ServingError) as e:
            call()
        assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_no_version_yet_is_unavailable_not_a_crash(model_base):
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    with pytest.raises(errors.ServingError) as e:
        store.get()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
