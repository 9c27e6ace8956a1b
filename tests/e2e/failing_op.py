"""A fusion op the config checks accept (it imports, passes the registry's call on two small 2-D tensors, builds a
model) that fails once a model runs it on its feature maps: a job that fails after Preflight let its sweep start
(tests/e2e/test_sweep.py)."""


def explode(a, b):
    if a.dim() > 2:
        raise ValueError("explode: this op fails on purpose")
    return a * b
