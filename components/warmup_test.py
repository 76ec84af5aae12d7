import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components import contract, warmup


def test_warmup_file_holds_predict_logs_with_real_images_in_each_batch_size(tmp_path):
    path = warmup.write_warmup_requests(str(tmp_path))
    assert path == str(tmp_path / contract.WARMUP_FILE)

    records = list(tf.data.TFRecordDataset(path).as_numpy_iterator())
    logs = [prediction_log_pb2.PredictionLog.FromString(r) for r in records]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * len(logs)
    sizes = []
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == contract.MODEL_NAME
        assert request.model_spec.signature_name == contract.SERVING_SIGNATURE
        assert list(request.inputs) == [contract.SERVING_INPUT_KEY]
        images = tf.make_ndarray(request.inputs[contract.SERVING_INPUT_KEY])
        sizes.append(len(images))
        for data in images:  # every entry is an image TensorFlow decodes
            assert tf.io.decode_image(data, expand_animations=False).shape[0] >= 48
    assert sizes == list(warmup.WARMUP_BATCH_SIZES)
    assert [r.inputs[contract.SERVING_INPUT_KEY] for r in warmup.read_warmup_requests(
        str(tmp_path))] == [log.predict_log.request.inputs[contract.SERVING_INPUT_KEY]
                            for log in logs]


def test_warmup_images_cover_png_jpeg_gray_rgb_and_two_sizes():
    decoded = [tf.io.decode_image(b, expand_animations=False).numpy()
               for b in warmup.warmup_images(8)]
    assert {d.shape[-1] for d in decoded} == {1, 3}
    assert {d.shape[0] for d in decoded} == {48, 96}
    formats = {b[:4] for b in warmup.warmup_images(8)}
    assert b"\x89PNG" in formats and any(f.startswith(b"\xff\xd8") for f in formats)
    assert len({d.tobytes() for d in decoded}) == 8  # not one image repeated
    assert all(np.ptp(d) > 0 for d in decoded)


def test_no_warmup_file_reads_as_none_and_a_foreign_record_is_refused(tmp_path):
    assert warmup.read_warmup_requests(str(tmp_path)) == []
    path = tmp_path / contract.WARMUP_FILE
    path.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(prediction_log_pb2.PredictionLog(
            classify_log=prediction_log_pb2.ClassifyLog()).SerializeToString())
    try:
        warmup.read_warmup_requests(str(tmp_path))
    except ValueError as e:
        assert "classify_log" in str(e)
    else:
        raise AssertionError("a classify_log record was accepted")
