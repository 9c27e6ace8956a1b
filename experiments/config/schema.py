"""The config's schema: one typed dataclass per config group option, stored in Hydra's ConfigStore (on import of
``experiments.config``) as ``schema/<group>/<option>``, and named first in that option's YAML defaults list::

    # conf/trainer/default.yaml                  # conf/model/demonet.yaml (@package _global_)
    defaults:                                    defaults:
      - /schema/trainer/default@_here_             - /schema/model/demonet@model
      - _self_                                     - _self_

Hydra then refuses a value of the wrong type anywhere, and a key the schema lacks unless it is added with ``+``
(Hydra opens the node for that); ``experiments.config.check_config`` refuses those, so that every key is checked.

The fields are exactly the YAML's keys, with the YAML's types: a field the YAML lacks would enter every composed
config, and with it every run's config hash (``records.config_hash``), making finished runs look changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from starnet.kernels.accelerate import SWITCHES


# -- the top level (conf/config.yaml) -------------------------------------------------------------------------------
@dataclass
class StarbenchConfig:
    model: Any = MISSING
    data: Any = MISSING
    trainer: Any = MISSING
    logger: Any = MISSING
    task: Any = MISSING
    paths: Any = MISSING
    op: Any = "star"              # one op, or one per stage (StarNet): star | sum | any registered op
    seed: int = 0
    width: Optional[int] = None   # DemoNet: channels; StarNet: base width (null = the variant's)
    depth: Any = None             # DemoNet: blocks; StarNet: blocks per stage, a list of 4 (null = the variant's)


# -- model/ ---------------------------------------------------------------------------------------------------------
@dataclass
class DemoNetModel:
    name: str = "demonet"
    act: str = "gelu"
    patch_size: Optional[int] = None
    drop_path: float = 0.0
    layer_scale: float = 1.0e-6


@dataclass
class StarNetModel:
    name: str = "starnet"
    variant: str = "s1"
    act: str = "relu6"
    drop_path: float = 0.0
    init: str = "official"


# -- data/ ----------------------------------------------------------------------------------------------------------
@dataclass
class ImageData:
    """What every classification dataset has: the model and the trainer read these, whatever the source."""
    name: str = MISSING
    image_size: int = MISSING
    in_chans: int = MISSING
    num_classes: int = MISSING
    patch_size: int = MISSING
    train_size: Optional[int] = None
    val_size: Optional[int] = None
    mean: List[float] = MISSING
    std: List[float] = MISSING


@dataclass
class SmallImageData(ImageData):
    """Fashion-MNIST and CIFAR (experiments/data/small.py)."""
    root: str = MISSING
    val_from: str = "test"
    augment: bool = False
    download: bool = True


@dataclass
class FashionMNISTData(SmallImageData):
    name: str = "fashion_mnist"


@dataclass
class FashionPairsData(SmallImageData):
    """Two Fashion-MNIST items as the two channels of one image, 100 classes (experiments/data/small.py)."""
    name: str = "fashion_pairs"
    seed: int = MISSING


@dataclass
class Cifar10Data(SmallImageData):
    name: str = "cifar10"


@dataclass
class Cifar100Data(SmallImageData):
    name: str = "cifar100"


@dataclass
class SyntheticData(ImageData):
    name: str = "synthetic"
    val_from: str = "test"
    augment: bool = False
    noise: float = MISSING


@dataclass
class ImageNetData(ImageData):
    name: str = "imagenet"
    root: str = MISSING
    workers: int = MISSING
    crop_pct: float = MISSING
    interpolation: str = MISSING
    auto_augment: Optional[str] = None
    color_jitter: Optional[float] = None
    reprob: float = MISSING


@dataclass
class FashionDetData:
    name: str = "fashion_det"
    yaml: Optional[str] = None
    root: str = MISSING
    cache_dir: str = MISSING
    train_size: int = MISSING
    val_size: int = MISSING
    image_size: int = MISSING
    objects: List[int] = MISSING
    scale: List[float] = MISSING
    seed: int = MISSING
    allow_background: bool = False


@dataclass
class YoloData:
    name: str = "yolo"
    yaml: str = MISSING
    train_size: Optional[int] = None  # null = every image of the split; N = a fixed random N of them
    val_size: Optional[int] = None
    allow_background: bool = False


# -- trainer/ -------------------------------------------------------------------------------------------------------
def with_kernel_switches(cls: type) -> type:
    """``cls`` with one ``bool`` field per CPU kernel switch, ``True``, after its ``fast_paths``: the switches are
    ``starnet.kernels.accelerate.KernelOptions``' fields, declared there once (off in the library, on in training)."""
    own = dict(cls.__dict__.get("__annotations__", {}))
    names = list(own)
    at = names.index("fast_paths") + 1
    cls.__annotations__ = {**{n: own[n] for n in names[:at]}, **dict.fromkeys(SWITCHES, "bool"),
                           **{n: own[n] for n in names[at:]}}
    for name in SWITCHES:
        setattr(cls, name, True)
    return cls


@dataclass
@with_kernel_switches
class TrainerConfig:
    """conf/trainer/default.yaml; paper_demonet.yaml and paper_starnet.yaml start from it (their defaults list)."""
    epochs: int = MISSING
    batch_size: int = MISSING
    eval_batch_size: int = MISSING
    optimizer: str = MISSING
    lr: float = MISSING
    lr_base_batch: Optional[int] = None
    weight_decay: float = MISSING
    betas: List[float] = MISSING
    warmup_epochs: Any = MISSING  # a number >= 0 (classify.check_settings); not float: the paper recipes' 5 stays 5,
    warmup_lr: float = MISSING    # as the config hash of their runs has it
    min_lr: float = MISSING
    label_smoothing: float = MISSING
    clip_grad: Optional[float] = None
    mixup: float = 0.0
    cutmix: float = 0.0
    ema: bool = False
    ema_decay: float = MISSING
    device: str = "auto"
    amp: Any = "auto"             # auto | true | false
    flush_denormal: bool = False
    fast_paths: bool = True       # false = PyTorch's plain ops, whatever the fast paths' own keys say
    # here with_kernel_switches puts the kernel switches: fast_dwconv: bool = True, and so on
    reuse_freed_memory: bool = True
    cudnn_benchmark: bool = True
    compile: bool = False
    channels_last: Any = "auto"   # auto | true | false
    threads: Any = "auto"         # auto | a positive int | null (all cores): experiments/train/threads.parse_threads
    sync_bn: bool = False
    checkpoint: bool = True


# -- logger/ --------------------------------------------------------------------------------------------------------
@dataclass
class NoLogger:
    name: str = "none"


@dataclass
class WandbLogger:
    name: str = "wandb"
    project: str = MISSING
    entity: Optional[str] = None
    mode: Optional[str] = None
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    run_id: Optional[str] = None


# -- task/ ----------------------------------------------------------------------------------------------------------
@dataclass
class ClassifyTask:
    name: str = "classify"


@dataclass
class MoonsTask:
    name: str = "moons"
    samples: int = MISSING
    noise: float = MISSING
    data_seed: int = MISSING
    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    weight_decay: float = MISSING
    min_lr: float = MISSING
    label_smoothing: float = MISSING
    clip_grad: float = MISSING
    svm_poly: Dict[str, Any] = MISSING
    svm_rbf: Dict[str, Any] = MISSING


@dataclass
class DetectTask:
    """ultralytics' training arguments (experiments/tasks/detect/train.py); ``args`` takes any other."""
    name: str = "detect"
    scale: str = MISSING
    epochs: int = MISSING
    imgsz: int = MISSING
    batch: int = MISSING
    val_batch: int = MISSING
    optimizer: str = MISSING
    lr0: float = MISSING
    lrf: float = MISSING
    momentum: float = MISSING
    weight_decay: float = MISSING
    warmup_epochs: float = MISSING
    warmup_bias_lr: float = MISSING
    cos_lr: bool = False
    close_mosaic: int = MISSING
    patience: int = MISSING
    amp: Any = False              # false | true | bf16
    deterministic: bool = True
    cache: Any = False            # false | ram | disk
    plots: bool = False
    workers: int = MISSING
    device: Any = "auto"          # auto | cpu | 0 | 0,1
    threads: Optional[int] = None
    args: Optional[Dict[str, Any]] = None


# -- paths/ ---------------------------------------------------------------------------------------------------------
@dataclass
class PathsConfig:
    root: str = MISSING
    runs: str = MISSING
    sweeps: str = MISSING


# group -> option -> schema; ``schema/<group>/<option>`` in the ConfigStore
SCHEMAS: Dict[str, Dict[str, type]] = {
    "model": {"demonet": DemoNetModel, "starnet": StarNetModel},
    "data": {"fashion_mnist": FashionMNISTData, "fashion_pairs": FashionPairsData, "cifar10": Cifar10Data, "cifar100": Cifar100Data,
             "synthetic": SyntheticData, "imagenet": ImageNetData, "fashion_det": FashionDetData, "yolo": YoloData},
    "trainer": {"default": TrainerConfig},
    "logger": {"none": NoLogger, "wandb": WandbLogger},
    "task": {"classify": ClassifyTask, "moons": MoonsTask, "detect": DetectTask},
    "paths": {"default": PathsConfig},
}
TOP_LEVEL = "starbench_schema"  # conf/config.yaml's first default


def register(store: Optional[ConfigStore] = None) -> None:
    store = store or ConfigStore.instance()
    store.store(name=TOP_LEVEL, node=StarbenchConfig)
    for group, options in SCHEMAS.items():
        for option, node in options.items():
            store.store(group=f"schema/{group}", name=option, node=node)
