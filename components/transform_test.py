"""Transform module: decoding/resizing of every accepted image kind, and preprocessing_fn in TFT."""
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tfx.utils import io_utils

from components import contract, transform
from tests import image_folders

# The curated schema, found from this file: component tests do not import the pipeline package.
SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "schema", "schema.pbtxt")

IMAGE_XF = contract.transformed_name(contract.IMAGE_KEY)
LABEL_XF = contract.transformed_name(contract.LABEL_KEY)


def decode(data, size=48, channels=1):
    return transform.decode_image(tf.constant(data), size, channels).numpy()


def test_gray_48_jpeg_is_scaled_to_unit_range_without_resampling():
    pixels = image_folders.face("happy", 1)
    out = decode(image_folders.encode(pixels, "PNG"))  # PNG: lossless, so exact comparison
    assert out.shape == (48, 48, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], pixels / 255.0, atol=1e-5)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF"])
@pytest.mark.parametrize("channels", [1, 3])
def test_formats_and_channels(fmt, channels):
    rgb = np.stack([image_folders.face("sad", 2)] * 3, axis=-1)
    for pixels in (rgb, rgb[..., 0]):
        out = decode(image_folders.encode(pixels, fmt), channels=channels)
        assert out.shape == (48, 48, channels)
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert out.std() > 0.05  # the face survived


def test_rgba_png_drops_alpha():
    rgba = np.concatenate([np.stack([image_folders.face()] * 3, -1),
                           np.full((48, 48, 1), 7, np.uint8)], -1)
    out = decode(image_folders.encode(rgba, "PNG"), channels=3)
    np.testing.assert_allclose(out, rgba[..., :3] / 255.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 64), (200, 120), (30, 30)])
def test_any_size_is_resized(shape):
    pixels = np.asarray(tf.image.resize(image_folders.face()[..., None], shape)).astype(np.uint8)
    out = decode(image_folders.encode(pixels[..., 0]), size=48)
    assert out.shape == (48, 48, 1)


def test_other_model_input_size():
    out = transform.decode_images(tf.constant([image_folders.encode(image_folders.face())] * 2),
                                  96, 3)
    assert out.shape == (2, 96, 96, 3)


def test_preprocessing_fn_runs_in_tf_transform_with_the_curated_schema():
    schema = io_utils.SchemaReader().read(SCHEMA_FILE)
    metadata = dataset_metadata.DatasetMetadata(schema)
    raw = []
    for i, cls in enumerate(("angry", "fear", "happy")):
        raw.append({
            contract.IMAGE_KEY: [image_folders.encode(image_folders.face(cls, i))],
            contract.LABEL_KEY: [i],
            contract.LABEL_NAME_KEY: [cls.encode()],
            contract.SOURCE_PATH_KEY: [f"Training/{cls}/{i}.jpg".encode()],
            contract.IMAGE_HEIGHT_KEY: [48], contract.IMAGE_WIDTH_KEY: [48],
            contract.IMAGE_CHANNELS_KEY: [1], contract.IMAGE_FORMAT_KEY: [b"JPEG"],
        })

    def fn(inputs):
        return transform.preprocessing_fn(inputs, {transform.IMAGE_SIZE_CONFIG_KEY: 32,
                                                   transform.CHANNELS_CONFIG_KEY: 3})

    with tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        (transformed, transformed_metadata), _ = (
            (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(fn, output_record_batches=False))
    assert len(transformed) == 3
    assert [int(t[LABEL_XF]) for t in transformed] == [0, 1, 2]
    for t in transformed:
        image = np.asarray(t[IMAGE_XF])
        assert image.shape == (32, 32, 3) and 0 <= image.min() and image.max() <= 1
    spec = transformed_metadata.schema
    assert {f.name for f in spec.feature} == {IMAGE_XF, LABEL_XF}


def test_serving_inputs_without_label():
    out = transform.preprocessing_fn(
        {contract.IMAGE_KEY: tf.constant([[image_folders.encode(image_folders.face())]])})
    assert set(out) == {IMAGE_XF} and out[IMAGE_XF].shape == (1, 48, 48, 1)


def test_channels_must_be_1_or_3():
    with pytest.raises(ValueError, match="channels"):
        transform.preprocessing_fn({contract.IMAGE_KEY: tf.constant([[b""]])},
                                   {transform.CHANNELS_CONFIG_KEY: 2})


def test_preprocessing_fn_has_no_full_pass_analyzers():
    """Nothing for Transform's analyzer cache to keep, which is why the pipeline does not wire it
    (docs/retraining.md). An analyzer (a mean, a vocabulary) fails this test: wire
    the cache then, so a window of spans does not analyze old spans again."""
    import tensorflow_transform as tft
    from tensorflow_transform import impl_helper

    feature_spec = impl_helper.get_type_specs_from_feature_specs(
        tft.tf_metadata.schema_utils.schema_as_feature_spec(
            io_utils.SchemaReader().read(SCHEMA_FILE)).feature_spec)
    assert tft.get_analyze_input_columns(transform.preprocessing_fn, feature_spec) == []

    def with_an_analyzer(inputs):  # the check itself can fail
        outputs = transform.preprocessing_fn(inputs)
        outputs["label_centered"] = tft.scale_to_z_score(tf.cast(inputs[contract.LABEL_KEY],
                                                                 tf.float32))
        return outputs

    assert tft.get_analyze_input_columns(with_an_analyzer, feature_spec) == [contract.LABEL_KEY]
