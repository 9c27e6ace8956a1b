"""Old path of ``experiments.data.fashion_det``: ``python -m experiments.detect.fashion_det`` is documented
(docs/detection.md) and named in generated data YAMLs."""
from experiments.data.fashion_det import CLASSES, FashionDetSpec, ensure, generate, main, spec_from_cfg  # noqa: F401

if __name__ == "__main__":
    main()
