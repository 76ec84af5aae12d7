"""Recipe flags: the per-architecture learning rate (--lr) and the recipe recorded per
architecture."""

from __future__ import annotations


def lr_for(arch, spec):
    """--lr: '0.01' or 'vgg16=0.01,resnet50=0.02' (0 / absent: the project default)."""
    spec = str(spec).strip()
    if "=" not in spec:
        return float(spec or 0)
    for part in spec.split(","):
        k, _, v = part.partition("=")
        if k.strip() == arch:
            return float(v)
    return 0.0


def recipe_of(args):
    """The recipe flags that differ between runs (recorded per architecture)."""
    keys = ("optimizer", "momentum", "weight_decay", "lr_schedule", "warmup_epochs", "lr_floor",
            "plateau_factor", "plateau_patience", "aug", "crop_pad", "crop_fill", "erasing",
            "label_smoothing", "mixup", "cutmix", "mix_prob", "class_weights", "batch",
            "epochs", "tta_shifts", "patience")
    return {k: getattr(args, k) for k in keys}
