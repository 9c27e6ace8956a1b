"""Old path of ``experiments.tasks.detect.model``: checkpoints pickled before the move name
``experiments.detect.model.StarNetBackbone``, and ``python -m experiments.detect.model`` is documented."""
from experiments.tasks.detect.model import (TAPS, YOLO_SCALES, StarNetBackbone, backbone_of,  # noqa: F401
                                            detector_config, main, stage_channels, write_config)

if __name__ == "__main__":
    main()
