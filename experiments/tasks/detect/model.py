"""StarNet as the backbone of an ultralytics YOLOv8 detector, with no change to ultralytics.

ultralytics builds a model from a YAML/dict whose rows name modules it looks up in
``ultralytics.nn.tasks``; importing this module registers ``StarNetBackbone`` there. The backbone
is layer 0 and returns the stride 8/16/32 maps as a list; three of ultralytics' ``Index`` layers
pick them apart, and the neck and head are read at run time from ultralytics' own ``yolov8.yaml``.

Generate a YAML for plain ultralytics use::

    python -m experiments.tasks.detect.model --variant s050 --op sum --nc 80 -o starnet_s050_sum_yolov8n.yaml
    # then, in Python: import experiments.tasks.detect.model; YOLO("starnet_s050_sum_yolov8n.yaml").train(...)
"""
from __future__ import annotations

import argparse
import ast
from copy import deepcopy
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import yaml
from torch import nn

from . import env  # noqa: F401  (sets up ultralytics before it is imported below)
import ultralytics  # noqa: E402
import ultralytics.nn.tasks as yolo_tasks  # noqa: E402
from ultralytics.utils import YAML  # noqa: E402

from starnet import VARIANTS, create_starnet  # noqa: E402
from starnet.layers import ConvBN  # noqa: E402

from ...config import plain  # noqa: E402
from ...errors import StarbenchError  # noqa: E402

YOLO_SCALES = ("n", "s", "m", "l", "x")
TAPS = (1, 2, 3)  # StarNet stages with strides 8, 16, 32 (P3, P4, P5)


class StarNetBackbone(nn.Module):
    """StarNet stages 1-3 as one ultralytics layer: ``forward(x) -> [P3, P4, P5]``, the stages' outputs as
    timm's ``forward_intermediates`` gives them (channels and strides from ``feature_info``).

    The YAML row passes every argument explicitly, so a checkpoint's ``model.yaml`` records the
    variant and the op it was trained with."""

    def __init__(self, variant: str = "s050", op: Union[str, Sequence[str]] = "star", act: str = "relu6",
                 width: Optional[int] = None, depths: Optional[Sequence[int]] = None, in_chans: int = 3,
                 drop_path: float = 0.0, init: str = "official"):
        super().__init__()
        self.variant, self.op = variant, op
        self.body = create_starnet(variant, op=op, act=act, num_classes=0, in_chans=in_chans,
                                   drop_path=drop_path, width=width, depths=depths, init=init)
        if len(self.body.feature_info) != 4:
            raise ValueError(f"the detector taps StarNet stages 1-3 and needs 4 stages, got depths={depths}")
        self.body.norm = nn.Identity()  # the classifier's final norm: not part of the feature maps
        self.channels: List[int] = [self.body.feature_info[i]["num_chs"] for i in TAPS]
        self.strides: List[int] = [self.body.feature_info[i]["reduction"] for i in TAPS]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return self.body.forward_intermediates(x, indices=TAPS, stop_early=True, intermediates_only=True)

    @torch.no_grad()
    def fuse(self) -> "StarNetBackbone":
        """Fold each BatchNorm into its conv (inference only; ultralytics' ``fuse()`` skips our layers)."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval
        for m in self.modules():
            if isinstance(m, ConvBN) and hasattr(m, "bn"):
                m.conv = fuse_conv_bn_eval(m.conv.eval(), m.bn.eval())
                del m.bn
        return self

    def extra_repr(self) -> str:
        return f"variant={self.variant}, op={self.op}, channels={self.channels}"


# parse_model() resolves a row's module name in ultralytics.nn.tasks' globals: this is the registration.
yolo_tasks.StarNetBackbone = StarNetBackbone


def allow_safe_load() -> None:
    """Let ``ULTRALYTICS_SAFE_LOAD=1`` (torch ``weights_only`` loading) accept our checkpoints: the
    pickled detector names these classes and the fusion functions, nothing else of ours: the ops registered so far
    (on import, and again by the detect task once the config's op is known: an op by import path)."""
    from starnet import FUSION_OPS
    from starnet.kernels.dwconv import DepthwiseConv2d
    from starnet.kernels.fast_bn import BatchNorm2d
    from starnet.layers import DropPath, GlobalPool
    from starnet.model import StarBlock, StarNet, Stem
    from starnet.ops import Fusion
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:
        classes = [StarNetBackbone, StarNet, Stem, StarBlock, ConvBN, BatchNorm2d, DepthwiseConv2d, DropPath, Fusion,
                   GlobalPool, *FUSION_OPS.values()]
        # A weights_only load matches the module path written in the file: checkpoints saved before a class
        # moved name it by its old path (experiments.detect.model.StarNetBackbone, ...), so allow both.
        # By name only: nothing is imported under the old path.
        old = [(cls, name) for cls, name in _old_paths(classes) if name != f"{cls.__module__}.{cls.__qualname__}"]
        add([*classes, *old])


def _old_paths(classes):
    """(class, the dotted path it was pickled under before the layout change on 2026-12-01) for the classes that
    moved. ``weights_only`` is then the only way to load a checkpoint that names the kernels' old modules (they
    are gone); the backbone's old module is kept for loads without it (experiments/detect/, whose docstring says
    when these names go)."""
    before = {"StarNetBackbone": "experiments.detect.model", "DepthwiseConv2d": "starnet.dwconv",
              "BatchNorm2d": "starnet.fast_bn"}
    return [(cls, f"{before[cls.__name__]}.{cls.__qualname__}") for cls in classes if cls.__name__ in before]


allow_safe_load()


def tap_channels(variant: str, width: Optional[int] = None) -> List[int]:
    """Channels of P3, P4, P5: ``feature_info`` of a StarNet built on the meta device (no memory, no init)."""
    try:
        body = create_starnet(variant, width=width, num_classes=0, device="meta")
    except ValueError as e:  # an unknown variant, a width that is not a positive integer
        raise StarbenchError(str(e)) from None
    return [body.feature_info[i]["num_chs"] for i in TAPS]


def _stock_yolov8() -> Dict[str, Any]:
    return YAML.load(Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml")


def detector_config(variant: str = "s050", op: Union[str, Sequence[str]] = "star", act: str = "relu6",
                    nc: int = 80, scale: str = "n", width: Optional[int] = None,
                    depths: Optional[Sequence[int]] = None, in_chans: int = 3, drop_path: float = 0.0,
                    init: str = "official") -> Dict[str, Any]:
    """A model dict for ``ultralytics.YOLO``/``DetectionModel``: StarNet backbone, then YOLOv8's own
    SPPF, neck and Detect head (from ultralytics' ``yolov8.yaml``) at the given scale."""
    if scale not in YOLO_SCALES:
        raise StarbenchError(f"unknown YOLOv8 scale '{scale}'; valid: {', '.join(YOLO_SCALES)}")
    c3, c4, c5 = tap_channels(variant, width)
    stock = _stock_yolov8()
    backbone, head = stock["backbone"], stock["head"]
    # Stock YOLOv8: P3 is layer 4, P4 layer 6, SPPF (on P5) layer 9; the head starts at layer 10.
    if len(backbone) != 10 or backbone[-1][2] != "SPPF" or head[-1][2] != "Detect":
        raise StarbenchError(f"ultralytics {ultralytics.__version__} has a yolov8.yaml layout this code does not "
                             "know (tested: 8.4.x); pin ultralytics>=8.4,<8.5")
    ours = [[-1, 1, "StarNetBackbone", [variant, _yolo_arg(plain(op)), act, width, plain(depths), in_chans,
                                        float(drop_path), init]],
            [0, 1, "Index", [c3, 0]],   # 1: P3/8
            [0, 1, "Index", [c4, 1]],   # 2: P4/16
            [0, 1, "Index", [c5, 2]],   # 3: P5/32
            [-1, *deepcopy(backbone[-1][1:])]]  # 4: YOLOv8's SPPF
    where = {4: 1, 6: 2, 9: 4}
    shift = len(backbone) - len(ours)

    def remap(f: int) -> int:
        if f < 0:
            return f
        if f >= len(backbone):
            return f - shift
        if f not in where:
            raise StarbenchError(f"ultralytics {ultralytics.__version__}'s YOLOv8 head reads backbone layer {f}, "
                                 "which this code does not map (tested: 8.4.x)")
        return where[f]

    new_head = []
    for f, n, m, args in deepcopy(head):
        f = [remap(i) for i in f] if isinstance(f, list) else remap(f)
        new_head.append([f, n, m, args])
    return {"nc": int(nc), "scales": stock["scales"], "scale": scale, "backbone": ours, "head": new_head,
            # informational (ignored by ultralytics): what this detector is
            "starnet": {"variant": variant, "op": plain(op), "act": act, "width": width,
                        "depths": plain(depths), "stage_channels": [c3, c4, c5]}}


def _yolo_arg(value):
    """A string argument that ultralytics' ``parse_model`` gives back unchanged. It passes each one through
    ``ast.literal_eval`` and keeps the string only where that raises ValueError ("star", "sum"): an op by import
    path ("mypkg.ops:my_op") is a SyntaxError there, so it goes in quoted, which literal_eval turns back into it."""
    if not isinstance(value, str):
        return value
    try:
        ast.literal_eval(value)
    except ValueError:
        return value
    except Exception:
        pass
    return repr(value)


def write_config(path: Union[str, Path], config: Dict[str, Any]) -> Path:
    path = Path(path)
    # ultralytics takes a YAML file's scale from its name (yolov8n/s/m/l/x), not from the file.
    named = yolo_tasks.guess_model_scale(path) or "n"
    if named != config.get("scale", "n"):
        raise StarbenchError(f"{path.name}: ultralytics reads the scale from the file name; put "
                             f"'yolov8{config['scale']}' in it, e.g. starnet_yolov8{config['scale']}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ("# StarNet-YOLOv8 detector (generated by experiments/tasks/detect/model.py).\n"
              "# Use: import experiments.tasks.detect.model; ultralytics.YOLO('<this file>')\n")
    lines = []
    for key, value in config.items():
        if key in ("backbone", "head"):  # one row per line, as ultralytics' own YAMLs
            lines.append(f"{key}:")
            lines += [f"  - {_flow(row)}  # {i}" for i, row in
                      enumerate(value, start=0 if key == "backbone" else len(config["backbone"]))]
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {_flow(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_flow(value)}")
    path.write_text(header + "\n".join(lines) + "\n")
    return path


def _flow(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("...\n").strip()  # a bare scalar dumps as a document with an end marker


def backbone_of(model: nn.Module) -> Optional[StarNetBackbone]:
    return next((m for m in model.modules() if isinstance(m, StarNetBackbone)), None)


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description="Write a StarNet-YOLOv8 model YAML for ultralytics.")
    p.add_argument("--variant", default="s050", choices=list(VARIANTS))
    p.add_argument("--op", default="star", help="fusion op, e.g. star or sum")
    p.add_argument("--act", default="relu6")
    p.add_argument("--nc", type=int, default=80, help="number of classes")
    p.add_argument("--scale", default="n", choices=YOLO_SCALES, help="YOLOv8 neck/head scale")
    p.add_argument("-o", "--output", default=None, help="default: starnet_<variant>_<op>_yolov8<scale>.yaml")
    a = p.parse_args(argv)
    out = a.output or f"starnet_{a.variant}_{a.op}_yolov8{a.scale}.yaml"
    print(write_config(out, detector_config(a.variant, a.op, a.act, a.nc, a.scale)))


if __name__ == "__main__":
    main()
