import os
import shutil
import time

import grpc
import pytest
import tensorflow as tf

from components import contract
from serving import errors, model_store
from serving.conftest import corrupt_copy, push


def test_only_complete_integer_versions_count(tmp_path, tiny_exports, caplog):
    base = tmp_path / "fer"
    top = str(model_store.MAX_VERSION)
    over = str(model_store.MAX_VERSION + 1)
    for name in ("17", ".staging-18-abc", "notes", "19", "²", "٣", top, over):
        (base / name).mkdir(parents=True)
        if name != "19":
            (base / name / "saved_model.pb").write_bytes(b"x")
    reported = set()
    with caplog.at_level("WARNING", logger="fer_serve"):
        for _ in range(3):  # 19 has no saved_model.pb yet
            assert sorted(model_store.version_dirs(str(base), reported)) == [17, int(top)]
    assert reported == {".staging-18-abc", "notes", "²", "٣", over}
    warned = [r.message for r in caplog.records]
    assert len(warned) == 4 and all(any(n in m for m in warned) for n in ("notes", "²", over))
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
    store.refresh()  # not retried before the retry interval (60 s) while its files are unchanged
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


def test_pinned_versions_are_tf_servings_specific_policy(model_base, tiny_exports):
    first = push(tiny_exports[0], model_base)
    second = push(tiny_exports[1], model_base)
    third = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base, num_latest=1,
                                   pinned_versions=[first, third + 1000],
                                   version_labels={"stable": first, "gone": second})
    store.refresh()
    # Exactly the pinned versions on disk: not the newest one besides them, nor a missing pin.
    assert store.available_versions() == [first]
    assert store.get().version == first and store.get(label="stable").version == first
    for call in (lambda: store.get(third), lambda: store.get(label="gone")):
        with pytest.raises(errors.ServingError) as e:
            call()
        assert e.value.code == grpc.StatusCode.NOT_FOUND
    both = model_store.ModelStore(contract.MODEL_NAME, model_base, num_latest=1,
                                  pinned_versions=[third, first])
    both.refresh()
    assert both.available_versions() == [first, third] and both.get().version == third
    assert model_store.ModelStore(contract.MODEL_NAME, model_base, num_latest=2).wanted_versions(
        [first, second, third]) == [third, second]


def test_an_unknown_version_label_is_invalid_argument(model_base, tiny_exports):
    version = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base,
                                   version_labels={"stable": version})
    store.refresh()
    with pytest.raises(errors.ServingError) as e:
        store.get(label="nope")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "nope" in e.value.message and "stable" in e.value.message


def test_no_version_loaded_is_not_found_like_tf_serving(model_base):
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    with pytest.raises(errors.ServingError) as e:
        store.get()
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert "Servable not found for request: Latest(fer)" in e.value.message
    with pytest.raises(errors.ServingError) as e:
        store.status()
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert "Could not find any versions of model fer" in e.value.message


def test_a_folder_of_non_ascii_digits_is_ignored_and_new_versions_still_load(
        model_base, tiny_exports, caplog):
    good = push(tiny_exports[0], model_base)
    shutil.copytree(tiny_exports[1], os.path.join(model_base, "²"))  # "²".isdigit() is True
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    with caplog.at_level("WARNING", logger="fer_serve"):
        store.refresh()
        assert store.get().version == good
        store.refresh()
        newer = push(tiny_exports[1], model_base)
        store.refresh()
    assert store.get().version == newer and store.available_versions() == [newer]
    assert sum("²" in r.message for r in caplog.records) == 1  # once, not at every poll


def test_a_version_above_int64_is_ignored_and_never_in_the_status(model_base, tiny_exports):
    good = push(tiny_exports[0], model_base)
    shutil.copytree(tiny_exports[1], os.path.join(model_base, "1" + "0" * 19))  # 20 digits
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    assert store.get().version == good
    assert [s.version for s in store.status()] == [good]


def test_the_status_forgets_versions_neither_on_disk_nor_loaded(model_base, tiny_exports):
    first = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)
    store.refresh()
    second = push(tiny_exports[1], model_base)
    bad_dir = corrupt_copy(tiny_exports[1], model_base, second + 100)
    store.refresh()
    assert {s.version: s.state for s in store.status()} == {
        second + 100: model_store.END, second: model_store.AVAILABLE, first: model_store.END}
    shutil.rmtree(bad_dir)
    shutil.rmtree(os.path.join(model_base, str(first)))
    store.refresh()
    assert [s.version for s in store.status()] == [second]
    with pytest.raises(errors.ServingError) as e:
        store.status(second + 100)
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def _refresh_until(store, done, polls=100, timeout_s=20.0, pause_s=0.02):
    """refresh() until done() holds: at most `polls` passes and `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    for _ in range(polls):
        time.sleep(pause_s)
        store.refresh()
        if done() or time.monotonic() > deadline:
            break


def test_a_failed_version_is_retried_after_the_interval_though_its_files_look_unchanged(
        model_base, tiny_exports, caplog):
    good = push(tiny_exports[0], model_base)
    bad = good + 100
    pb = os.path.join(corrupt_copy(tiny_exports[1], model_base, bad), "saved_model.pb")
    store = model_store.ModelStore(contract.MODEL_NAME, model_base, load_retry_interval_s=0.05)
    store.refresh()
    assert store.status(bad)[0].state == model_store.END and store.get().version == good
    # Fixed in place with the same mtime: the old fingerprint; only a retry can pick it up.
    before = os.stat(pb)
    shutil.copyfile(os.path.join(tiny_exports[1], "saved_model.pb"), pb)
    os.utime(pb, ns=(before.st_atime_ns, before.st_mtime_ns))
    with caplog.at_level("WARNING", logger="fer_serve"):
        _refresh_until(store, lambda: bad in store.available_versions())
    assert store.get().version == bad and store.available_versions() == [bad]
    status = store.status(bad)[0]
    assert status.state == model_store.AVAILABLE and status.error_code == grpc.StatusCode.OK
    assert any("retrying" in r.message and "retry 1 of 5" in r.message for r in caplog.records)


def test_retries_stop_after_max_load_retries_until_the_files_change(model_base, tiny_exports,
                                                                     caplog):
    good = push(tiny_exports[0], model_base)
    bad = good + 100
    pb = os.path.join(corrupt_copy(tiny_exports[1], model_base, bad), "saved_model.pb")
    store = model_store.ModelStore(contract.MODEL_NAME, model_base, max_load_retries=2,
                                   load_retry_interval_s=0.01)

    def count(text):
        return sum(text in r.message for r in caplog.records)

    with caplog.at_level("WARNING", logger="fer_serve"):
        store.refresh()
        _refresh_until(store, lambda: False, polls=25)  # far more polls than retries
        assert count("failed to load") == 3 and count("retrying") == 2  # the load + 2 retries
        assert count("no more retries") == 1
        status = store.status(bad)[0]
        assert status.state == model_store.END and status.error_message
        assert store.get().version == good
        before = os.stat(pb)  # new files: a fresh count
        os.utime(pb, ns=(before.st_atime_ns, before.st_mtime_ns + 10 ** 9))
        store.refresh()
        assert count("failed to load") == 4 and count("retrying") == 2


def test_refresh_safely_survives_a_file_system_hiccup(model_base, tiny_exports, monkeypatch,
                                                      caplog):
    version = push(tiny_exports[0], model_base)
    store = model_store.ModelStore(contract.MODEL_NAME, model_base)

    def hiccup(*args, **kwargs):
        raise tf.errors.UnavailableError(None, None, "storage not reachable")

    monkeypatch.setattr(model_store, "version_dirs", hiccup)
    with caplog.at_level("ERROR", logger="fer_serve"):
        assert store.refresh_safely() is False
    assert any("refresh" in r.message for r in caplog.records)
    monkeypatch.undo()
    assert store.refresh_safely() is True and store.get().version == version
