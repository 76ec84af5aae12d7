"""The project's fer builder and the training model: augmentation layers in front."""

from __future__ import annotations

from .constants import CLASSES, IMAGE_SIZE


def build_models(keras, arch, args):
    from components.models import resnet50, vgg16
    from components.models.augmentation import RandomErase, RandomPadCrop, augmentation_layers
    from components.models.training_config import DEFAULT_HYPERPARAMETERS
    builders = {"vgg16": vgg16.build, "resnet50": resnet50.build}
    hp = dict(DEFAULT_HYPERPARAMETERS[arch])  # a copy: the learning rate is overridden below
    base = builders[arch]((IMAGE_SIZE, IMAGE_SIZE, 1), len(CLASSES), variant="fer",
                          dropout=hp["dropout"], head_units=hp["head_units"], width=args.width)
    s = args.seed
    # Pad-crop (seed + 1) and erasing (seed + 2), after the other layers; all in float32 under
    # the bf16 policy, plain keras.ops, jit-safe on every backend.
    crop_and_erase = []
    if args.crop_pad:
        crop_and_erase.append(RandomPadCrop(args.crop_pad, fill_mode=args.crop_fill, seed=s + 1,
                                            dtype="float32", name="random_pad_crop"))
    if args.erasing:
        crop_and_erase.append(RandomErase(args.erasing, seed=s + 2, dtype="float32",
                                          name="random_erase"))
    if args.aug in ("project", "zoom"):
        # The project's augmentation: flip, translation 0.08, rotation 0.04, contrast 0.2
        # (clipped to [0, 1]), then zoom 0.1 (--aug zoom), pad-crop and erasing. It pads only by
        # reflection: with --crop-fill constant the last two are built here instead.
        own = args.crop_fill == "reflect"
        aug_layers = augmentation_layers(s, zoom=0.1 if args.aug == "zoom" else 0.0,
                                         crop_pad=args.crop_pad if own else 0,
                                         erasing=args.erasing if own else 0.0)
        if keras.backend.backend() == "jax":
            # RandomTranslation/Rotation/Zoom declare supports_jit=False because TensorFlow's
            # projective-transform op has no XLA kernel; with them in a model Keras silently
            # drops jit_compile and JAX runs every op eagerly (on the 2-core CPU test: 55 s vs
            # 31 s per VGG16 step; far worse on a GPU). Under JAX they are
            # plain keras.ops (affine_transform = jax.scipy.ndimage.map_coordinates) and
            # SeedGenerator state, both fine under jit.
            for layer in aug_layers:
                layer.supports_jit = True
        if not own:
            aug_layers += crop_and_erase
    else:
        aug_layers = ([keras.layers.RandomFlip("horizontal", seed=s, dtype="float32")]
                      if args.aug == "flip" else [])
        aug_layers += crop_and_erase
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image", dtype="float32")
    x = inputs
    if aug_layers:
        x = keras.Sequential(aug_layers, name="augment")(x)  # active only when training=True
    train_model = keras.Model(inputs, base(x), name=f"{arch}_train")
    return base, train_model, hp
