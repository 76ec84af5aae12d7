"""The bf16 self-check: jitted bf16 vs float32 convolutions before training (JAX)."""

from __future__ import annotations

import numpy as np

from .constants import IMAGE_SIZE


def bf16_selfcheck(batch):
    """Jitted bf16 vs float32, forward and gradient, of (a) VGG16's first block (conv, BN in
    inference form, ReLU, twice, then 2x2 max pool) and (b) a ResNet-style stride-2 3x3 conv
    and strided 1x1 shortcut. XLA:CPU in jaxlib 0.11.2 miscompiles (a) in bf16: a varying
    fraction of non-finite or garbage outputs from run to run.
    Returns (non-finite fraction, max abs diff, that relative to max |fp32|, error or None)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32))
    ws = [jnp.asarray(rng.standard_normal(shape).astype(np.float32) * scale) for shape, scale in
          (((3, 3, 1, 64), 0.3), ((3, 3, 64, 64), 0.05), ((3, 3, 1, 64), 0.3),
           ((1, 1, 64, 128), 0.1))]

    def conv(h, w, stride, dtype):
        return lax.conv_general_dilated(h, w.astype(dtype), (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def bn_relu(h, dtype):
        return jnp.maximum((h.astype(jnp.float32) * lax.rsqrt(jnp.float32(1.001))).astype(dtype), 0)

    def vgg_block(ws, x, dtype):
        h = bn_relu(conv(x.astype(dtype), ws[0], 1, dtype), dtype)
        h = bn_relu(conv(h, ws[1], 1, dtype), dtype)
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                 "VALID").astype(jnp.float32)  # as keras' JAX max_pool

    def resnet_part(ws, x, dtype):
        r = bn_relu(conv(x.astype(dtype), ws[2], 2, dtype), dtype)  # stem: 3x3, stride 2
        return conv(r, ws[3], 2, dtype).astype(jnp.float32)          # strided 1x1 shortcut

    outs = {"bf16": [], "fp32": []}
    try:
        for name, dtype in (("bf16", jnp.bfloat16), ("fp32", jnp.float32)):
            for fn in (vgg_block, resnet_part):
                # Inference on its own (as predict/evaluate), then the gradient (as training):
                # in one jit, the backward pass would change what XLA fuses.
                f = lambda ws, x, fn=fn, d=dtype: fn(ws, x, d)  # noqa: E731
                outs[name].append(np.asarray(jax.jit(f)(ws, x)))
                g = jax.jit(jax.grad(lambda ws, x, f=f: jnp.mean(f(ws, x) ** 2)))(ws, x)
                outs[name] += [np.asarray(t, np.float32) for t in g]
    except Exception as e:  # e.g. no cuDNN algorithm for a bf16 convolution
        return 1.0, float("inf"), float("inf"), f"{type(e).__name__}: {e}"[:2000]
    bad, rel, diff = 0.0, 0.0, 0.0
    for lo, hi in zip(outs["bf16"], outs["fp32"], strict=True):
        fin = np.isfinite(lo)
        bad = max(bad, float((~fin).mean()))
        d = float(np.abs(np.where(fin, lo, 0) - hi).max())
        diff = max(diff, d)
        rel = max(rel, d / max(float(np.abs(hi).max()), 1e-12))
    return bad, diff, rel, None
