"""The probe's constants: FER2013's six classes, its splits, the image size and file
types, the architectures, the cache version."""

CLASSES = ("angry", "fear", "happy", "neutral", "sad", "surprise")  # sorted; no `disgust`
SPLITS = (("train", "Training"), ("public", "PublicTest"), ("private", "PrivateTest"))
IMAGE_SIZE = 48
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
ARCHS = ("vgg16", "resnet50")
CACHE_VERSION = 1
