"""Deploy: a trained run (or a fresh architecture) -> reparameterized model -> ONNX, checked with ONNX Runtime.

Used by ``scripts/export_onnx.py`` and ``scripts/benchmark_latency.py``. Needs the ``deploy`` extra
(onnx, onnxruntime) for export and checking; the models themselves need only torch.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from starnet import StarNet, reparameterize

from ..errors import StarbenchError
from ..records import atomic_write, read_metrics
from ..train.models import build_model

log = logging.getLogger("starbench")

OPSET = 17


def model_from_run(run_dir, allow_unfinished: bool = False) -> Tuple[nn.Module, Tuple[int, int, int]]:
    """The model a run trained (its EMA weights when it kept an EMA), in eval mode, and its input shape. A run that
    did not complete (interrupted, failed, still running: its checkpoint is some epoch of many) is refused unless
    ``allow_unfinished``, and then logged as a warning."""
    from ..tasks.classify import run_identity
    from ..train.trainer import CHECKPOINT, load_checkpoint
    run_dir = Path(run_dir)
    config = run_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        raise StarbenchError(f"{run_dir} is not a run dir (no .hydra/config.yaml)")
    record = read_metrics(run_dir) or {}
    status = record.get("status", "unknown: no readable metrics.json")
    if status != "completed":
        done = f"{len(record.get('history') or [])} of {record.get('epochs', '?')} epochs done"
        if not allow_unfinished:
            raise StarbenchError(f"{run_dir} is not a completed run (status {status}; {done}): finish it by "
                                 "rerunning its command, or export its checkpoint as it is with --allow-unfinished")
        log.warning("exporting an unfinished run (status %s; %s)", status, done)
    cfg = OmegaConf.load(config)
    if cfg.task.name != "classify":
        raise StarbenchError(f"{run_dir} is a '{cfg.task.name}' run; ONNX export covers classifiers "
                             "(ultralytics exports detectors: YOLO(best.pt).export(format='onnx'))")
    d = cfg.data
    model = build_model(cfg, d.in_chans, d.num_classes)
    ckpt = load_checkpoint(run_dir / CHECKPOINT, run_identity(cfg))
    ema = ckpt.get("ema")
    state = {k.removeprefix("module."): v for k, v in ema.items()} if ema else ckpt["model"]
    model.load_state_dict(state)
    return model.eval(), (d.in_chans, d.image_size, d.image_size)


def export_onnx(model: nn.Module, path, input_shape: Tuple[int, int, int], reparam: bool = True,
                dynamic_batch: bool = True) -> Path:
    """Write ``model`` (reparameterized first unless ``reparam=False``; the argument is not changed) to
    ``path`` as ONNX with input ``images`` (N, C, H, W) and output ``logits``."""
    model = copy.deepcopy(model).eval()
    if reparam:
        # ONNX Runtime fuses each branch conv with its activation, which a merged f1|f2 conv would
        # prevent (measured here: S1 11.7 ms unmerged vs 15.6 ms merged at batch 1).
        reparameterize(model, **({"merge_branches": False} if isinstance(model, StarNet) else {}))
    path = Path(path)
    for parent in (path.parent, *path.parent.parents):  # mkdir's "File exists" would not say which path is a file
        if parent.exists():
            if not parent.is_dir():
                raise StarbenchError(f"cannot write {path}: {parent} is a file, not a directory")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(1, *input_shape)
    atomic_write(path, lambda f: torch.onnx.export(  # never a half-written model file, nor a stray temp file
        model, (x,), f, dynamo=False, opset_version=OPSET, input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None))
    return path


def ort_session(path, threads: Optional[int] = None, spinning: bool = True, profile_prefix: Optional[str] = None,
                optimized_path=None):
    """An ONNX Runtime CPU session at its default (highest) graph optimisation level. ``spinning=False``
    sets ``session.intra_op.allow_spinning=0``: idle pool threads sleep instead of spinning, which on a
    machine whose cores are busy with other work is much faster for both starbench's and timm's models
    (docs/performance.md); ``profile_prefix`` turns on ORT's profiler; ``optimized_path`` saves the graph
    ORT runs (after its own fusions)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise StarbenchError("ONNX Runtime is not installed: pip install -e \".[deploy]\"") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
        options.log_severity_level = 3  # not the warning that a saved NCHWc graph is hardware-specific
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_profile(path, feeds: Dict[str, np.ndarray], threads: Optional[int] = None, spinning: bool = True,
                calls: int = 50, warmup: int = 10, group: Optional[Callable[[str], str]] = None) -> Dict[str, Any]:
    """Where ONNX Runtime spends a call of the model at ``path``: ORT's own profiler over ``calls`` calls
    (after ``warmup``). Returns ``{"run_us": mean us per call, "kernel_us": {op type: mean us per call},
    "nodes": {op type: count in the graph ORT runs}}``, and with ``group`` (node name -> a label)
    ``"group_us"``: {label: mean us per call}; op types of ORT's internal domains keep their
    domain's last part (``nchwc.Conv``: a Conv with ORT's BatchNorm/activation/Add fusions, blocked layout)."""
    import json
    import statistics
    import tempfile

    import onnx
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        session = ort_session(path, threads, spinning, profile_prefix=Path(tmp) / "profile",
                              optimized_path=optimized)
        for _ in range(warmup):
            session.run(None, feeds)
        session.end_profiling()  # drop the warm-up: a new session profiles from its first call
        session = ort_session(path, threads, spinning, profile_prefix=Path(tmp) / "profile")
        for _ in range(calls):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
        graph = onnx.load(str(optimized)).graph
    runs = [e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"][-calls:]
    kernel: Dict[str, float] = {}
    groups: Dict[str, float] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e["args"]["op_name"]
            kernel[op] = kernel.get(op, 0.0) + e["dur"] / calls
            if group:
                label = group(e["name"][:-len("_kernel_time")])
                groups[label] = groups.get(label, 0.0) + e["dur"] / calls
    nodes: Dict[str, int] = {}
    for node in graph.node:
        name = (node.domain.rsplit(".", 1)[-1] + "." if node.domain else "") + node.op_type
        nodes[name] = nodes.get(name, 0) + 1
    by_time = lambda d: dict(sorted(d.items(), key=lambda kv: -kv[1]))  # noqa: E731
    out = {"run_us": statistics.fmean(runs), "kernel_us": by_time(kernel), "nodes": by_time(nodes)}
    if group:
        out["group_us"] = by_time(groups)
    return out


@torch.no_grad()
def check_onnx(path, model: nn.Module, input_shape: Tuple[int, int, int], batch: int = 2, seed: int = 0) -> float:
    """Max |ORT - PyTorch| over max |PyTorch| on a random batch (the training-form model is the reference)."""
    x = torch.randn(batch, *input_shape, generator=torch.Generator().manual_seed(seed))
    ref = model.eval()(x)
    out = torch.from_numpy(np.asarray(ort_session(path).run(None, {"images": x.numpy()})[0]))
    return ((out - ref).abs().max() / ref.abs().max()).item()
