"""argparse helpers shared by the scripts under ``scripts/``: bad arguments end in one
``<script>: error: ...`` line (exit 2), not a traceback."""
from __future__ import annotations

import argparse

import torch

from ..errors import StarbenchError
from ..train.device import resolve_device


def int_at_least(minimum: int):
    """argparse ``type=``: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def check_device(ap: argparse.ArgumentParser, name: str) -> torch.device:
    """--device as a torch.device (``experiments.train.device.resolve_device``), or an argparse error for a bad
    name or a missing CUDA."""
    try:
        return resolve_device(name, "--device")
    except StarbenchError as e:
        ap.error(f"argument --device: {e}")
