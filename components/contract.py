"""The data and serving contract: names every stage and every client agree on.

Feature keys of the examples, split names, FER class names and label ids, accepted image
formats, model architectures and the candidates chosen among, and the exported model's
signatures and output keys. Components, the model code, serving clients and tests import this
module; it imports nothing of the project and no TFX, so a serving client can use it without
the pipeline's dependencies.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

# --- Raw features written by ImageFolderExampleGen (one tf.Example per image) ----------------
IMAGE_KEY = "image"                # encoded image bytes exactly as read from disk
LABEL_KEY = "label"                # int64 class id (index into the sorted class names)
LABEL_NAME_KEY = "label_name"      # class folder name, e.g. b"happy"
SOURCE_PATH_KEY = "source_path"    # path relative to the data root, e.g. b"Training/happy/x.jpg"
IMAGE_HEIGHT_KEY = "image_height"
IMAGE_WIDTH_KEY = "image_width"
IMAGE_CHANNELS_KEY = "image_channels"
IMAGE_FORMAT_KEY = "image_format"  # b"JPEG", b"PNG", b"BMP" or b"GIF"

# Features present at serving time (a client sends only the encoded image).
SERVING_FEATURE_KEYS = (IMAGE_KEY,)


def transformed_name(key: str) -> str:
    """Name of a feature after Transform (TFX convention: `_xf` suffix)."""
    return key + "_xf"


# --- Transformed features (Transform's output, the model's input) ---------------------------
IMAGE_XF_KEY = transformed_name(IMAGE_KEY)   # float32 [size, size, channels] in [0, 1]
LABEL_XF_KEY = transformed_name(LABEL_KEY)   # int64 class id
# FER2013's own images: 48x48 grayscale. Transform resizes every image to the model input size.
DEFAULT_IMAGE_SIZE = 48
DEFAULT_CHANNELS = 1

# --- Classes ----------------------------------------------------------------------------------
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
# The original study used six classes; `disgust` (436 training images) is opt-in.
DEFAULT_CLASSES = tuple(c for c in FER2013_CLASSES if c != "disgust")


def label_names(classes: Iterable[str], exclude_classes: Iterable[str] = ()) -> Tuple[str, ...]:
    """Class names by label id: the included classes, sorted, so that ids are the same on
    every machine and run for the same class selection."""
    excluded = set(exclude_classes)
    return tuple(sorted({c for c in classes if c not in excluded}))


def label_map(names: Sequence[str]) -> Dict[str, int]:
    """Class name -> label id, for names already in label-id order (see `label_names`)."""
    return {name: i for i, name in enumerate(names)}


def names_from_label_map(mapping: Mapping[str, int]) -> Tuple[str, ...]:
    """Class names by label id from a `label_map` (e.g. `label_map.json` of the examples)."""
    ids = sorted(mapping.values())
    if ids != list(range(len(ids))):
        raise ValueError(f"label ids must be 0..{len(ids) - 1}, got {sorted(mapping.items())}")
    return tuple(sorted(mapping, key=mapping.__getitem__))


# --- Splits -----------------------------------------------------------------------------------
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"
# Carved out of the training split by hash: the Tuner's objective and the Trainer's early
# stopping read it, so the eval split stays untouched until the Evaluator scores it.
VALID_SPLIT = "valid"
REQUIRED_SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
SPLIT_ORDER = (TRAIN_SPLIT, VALID_SPLIT, EVAL_SPLIT, TEST_SPLIT)
# Split folder name -> split: FER2013's names and Kaggle's.
DEFAULT_SPLIT_FOLDERS: Mapping[str, str] = {
    "Training": TRAIN_SPLIT,
    "train": TRAIN_SPLIT,
    "PublicTest": EVAL_SPLIT,
    "test": EVAL_SPLIT,
    "PrivateTest": TEST_SPLIT,
}


def validation_split(validation_fraction: float, split_folders: Mapping[str, str],
                     split_ratios: Optional[Mapping[str, float]] = None) -> str:
    """The split that tuning and early stopping read: `valid` when the data has one (carved
    out by `validation_fraction`, or the user's own), else `eval`."""
    own = set(split_ratios or {}) | set(split_folders.values())
    return VALID_SPLIT if validation_fraction or VALID_SPLIT in own else EVAL_SPLIT


# --- Image files ------------------------------------------------------------------------------
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# Formats tf.io.decode_image (used by Transform and serving) can decode.
DECODABLE_FORMATS = ("JPEG", "PNG", "BMP", "GIF")
# Leading bytes of each decodable format, and of formats people send that it cannot decode:
# ingest and serving judge a file by its content, not its name.
FORMAT_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
UNSUPPORTED_FORMAT_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"RIFF", "WEBP or another RIFF format"),
    (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
)


def sniff_image_format(data: bytes) -> Optional[str]:
    """The decodable format `data` starts like (one of DECODABLE_FORMATS), or None."""
    for magic, name in FORMAT_SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def sniff_unsupported_format(data: bytes) -> Optional[str]:
    """The name of a known format the model cannot decode that `data` starts like, or None."""
    for magic, name in UNSUPPORTED_FORMAT_SIGNATURES:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "HEIC/AVIF or another ISO media format"
    return None

# Bad-input policies for files with an image extension that cannot be used as an image.
ON_BAD_IMAGE_FAIL = "fail"  # stop the run, listing the offending files
ON_BAD_IMAGE_SKIP = "skip"  # count, list in the ingest report, and go on
ON_BAD_IMAGE_CHOICES = (ON_BAD_IMAGE_FAIL, ON_BAD_IMAGE_SKIP)
# The run report's face images (--report-images): "all" shows them (sample faces, the mistakes
# gallery, the Grad-CAM heatmaps); "none" leaves every one out of the report and model card.
REPORT_IMAGES_ALL, REPORT_IMAGES_NONE = "all", "none"
REPORT_IMAGES_CHOICES = (REPORT_IMAGES_ALL, REPORT_IMAGES_NONE)

# --- Models and their evaluation -------------------------------------------------------------
ARCHITECTURES = ("vgg16", "resnet50")
# A candidate served as the mean of the probabilities of this run's trained architectures
# (components/ensemble); a run that trains fewer than two has none.
ENSEMBLE = "ensemble"
# What ModelSelector chooses among: each trained architecture, and the ensemble of them.
CANDIDATES = ARCHITECTURES + (ENSEMBLE,)
# Metric names in the Evaluator's output (TFMA), as readers of an evaluation look them up.
ACCURACY_METRIC = "sparse_categorical_accuracy"  # TFMA's name for SparseCategoricalAccuracy
MACRO_F1_METRIC = "macro_f1"                     # components/fer_metrics.py

# --- The exported model (what TF Serving loads) -----------------------------------------------
MODEL_NAME = "fer"  # TF Serving model name: <serving_dir>/<MODEL_NAME>/<version>/
# serving_default(image_bytes: string[B]) -> the outputs below.
SERVING_SIGNATURE = "serving_default"
SERVING_INPUT_KEY = "image_bytes"
# serving_examples(examples: string[B]) -> the same outputs, from serialized tf.Examples with
# an IMAGE_KEY feature (TFMA evaluates this one).
EXAMPLES_SIGNATURE = "serving_examples"
EXAMPLES_INPUT_KEY = "examples"
PROBABILITIES_KEY = "probabilities"        # float32 [B, C]
CLASSES_KEY = "classes"                    # string [B, C]: class names, in probability order
CLASS_ID_KEY = "class_id"                  # int64 [B]: argmax
PREDICTED_CLASS_KEY = "predicted_class"    # string [B]: name of the argmax class
OUTPUT_KEYS = (PROBABILITIES_KEY, CLASSES_KEY, CLASS_ID_KEY, PREDICTED_CLASS_KEY)
# TF Serving replays these PredictionLog records (TFRecord) when it loads a version; so does
# fer-serve. Path relative to the version directory.
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
# Not a signature (TF Serving never lists it): the exported module's function from Transform's
# images (float32 [B, H, W, C] in [0, 1]) to PROBABILITIES_KEY, which the Pusher converts to TFLite.
IMAGES_FUNCTION = "classify_images"
# The Pusher's TFLite copy of each pushed version: <model base path>-tflite/<version>/, a sibling
# of the model's directory (TF Serving scans only <serving_dir>/<MODEL_NAME>/), with the float16
# model in TFLITE_FILE, the dynamic-range int8 one in TFLITE_INT8_FILE when it kept its eval
# accuracy, and both accuracies in TFLITE_EVAL_FILE. Its class names, in probability order, are a
# JSON list in the flatbuffer's metadata entry TFLITE_CLASS_NAMES_METADATA.
TFLITE_DIR_SUFFIX = "-tflite"
TFLITE_FILE = "model_float16.tflite"
TFLITE_INT8_FILE = "model_dynamic_int8.tflite"
TFLITE_EVAL_FILE = "eval_accuracy.json"
TFLITE_CLASS_NAMES_METADATA = "fer_class_names"


def tflite_base_path(model_base_path: str) -> str:
    """Where the TFLite versions of the model versions under `model_base_path` go."""
    return model_base_path.rstrip("/") + TFLITE_DIR_SUFFIX


# TF Serving's default ports (its container's gRPC and REST); fer-serve uses the same.
GRPC_PORT = 8500
REST_PORT = 8501
# Where the clients look by default: a server on this machine.
DEFAULT_GRPC_TARGET = f"127.0.0.1:{GRPC_PORT}"
DEFAULT_REST_URL = f"http://127.0.0.1:{REST_PORT}"

# Python logger for the lines a person follows a run by (`fer-pipeline run` prints them on the
# console; everything else goes to the run's log file): training epochs, for one.
PROGRESS_LOGGER = "fer.progress"
