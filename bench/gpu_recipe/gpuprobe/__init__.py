"""The GPU probe's parts, one job per module; bench/gpu_recipe/probe.py is the entry
point. Keras, JAX, torch and PIL are imported inside functions only, so the numpy parts
(data, splits, recipe, mixing, metrics, results) import without them.
"""
