"""Reading Transform's output back (test helper)."""
import os

import tensorflow as tf
import tensorflow_transform as tft

from components import contract

IMAGE_XF = contract.transformed_name(contract.IMAGE_KEY)


def read_transformed(transform_node, split):
    tft_output = tft.TFTransformOutput(transform_node.uri("transform_graph"))
    split_dir = os.path.join(transform_node.uri("transformed_examples"), f"Split-{split}")
    files = [os.path.join(split_dir, f) for f in os.listdir(split_dir)]
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1000)
    return [tf.io.parse_example(b, tft_output.transformed_feature_spec()) for b in ds]
