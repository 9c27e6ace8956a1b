"""What the scripts under ``scripts/`` share: argparse types (``cli``), the timing harness of the benchmarks
(``timing``) and ONNX export of trained runs (``export``)."""
