"""What the scripts under ``scripts/`` share: argparse types (``cli``) and ONNX export of trained runs
(``export``). The benchmarks' timing harness is ``experiments.train.timing`` (the trainer's thread probe uses it
too)."""
