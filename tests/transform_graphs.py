"""A Transform graph of the pipeline's own preprocessing_fn, as TFX's Transform writes it, for
component tests that need one (test helper): three classes at the demo profile's 32 px."""
from __future__ import annotations

import os
import tempfile

from components import contract, transform
from tests import image_folders

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "schema", "schema.pbtxt")
IMAGE_SIZE = 32          # the demo profile's
LABELS = ["angry", "happy", "sad"]


def raw_example(label: int, seed: int) -> dict:
    name = LABELS[label]
    return {contract.IMAGE_KEY: [image_folders.encode(image_folders.face(name, seed))],
            contract.LABEL_KEY: [label], contract.LABEL_NAME_KEY: [name.encode()],
            contract.SOURCE_PATH_KEY: [f"Training/{name}/{seed}.jpg".encode()],
            contract.IMAGE_HEIGHT_KEY: [48], contract.IMAGE_WIDTH_KEY: [48],
            contract.IMAGE_CHANNELS_KEY: [1], contract.IMAGE_FORMAT_KEY: [b"JPEG"]}


def write(out_dir: str) -> str:
    """What TFX's Transform writes as its transform_graph, for the pipeline's preprocessing_fn
    at IMAGE_SIZE px."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata
    from tfx.utils import io_utils

    metadata = dataset_metadata.DatasetMetadata(io_utils.SchemaReader().read(SCHEMA_FILE))

    def preprocessing_fn(inputs):
        return transform.preprocessing_fn(inputs, {transform.IMAGE_SIZE_CONFIG_KEY: IMAGE_SIZE})

    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=tempfile.mkdtemp()):
        raw = pipeline | beam.Create([raw_example(i % len(LABELS), i) for i in range(3)])
        transform_fn = (raw, metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
        _ = metadata | "raw metadata" >> tft_beam.WriteMetadata(
            os.path.join(out_dir, tft.TFTransformOutput.RAW_METADATA_DIR), pipeline)
    return out_dir
