"""Build the opt-in C++ CPU kernels (``dwconv.py``, ``fused_mlp.py``, ``fast_bn.py``, ``demo_block.py``) from
their sources in ``csrc/`` with torch's ``load_inline``. The lowest layer of the package: imports torch only.

Compiled with the system C++ compiler on first use (~30 s each, then cached by torch in
~/.cache/torch_extensions). Where a kernel cannot be built, callers get ``None`` and a warning, and
use PyTorch's own ops instead.

``-fopenmp`` matters: without it ATen's ``at::parallel_for`` compiles to a serial loop inside an
extension. The extension then needs ``libgomp.so.1``, which resolves to the copy torch has already
loaded, so ``torch.set_num_threads`` governs the kernels' threads too. OpenMP worker threads start
with autograd's grad mode on (it is thread-local): kernels that call ATen ops in a parallel region
set ``at::NoGradGuard`` there.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Sequence

log = logging.getLogger("starnet")
_built: Dict[str, object] = {}
# A build that takes longer than this is a compile, not a load from torch's cache (under a second here): from then
# on it is said, and how long it has run, every PROGRESS_S, so that a first run never sits silent for minutes.
SLOW_BUILD_S = 3.0
PROGRESS_S = 15.0

CSRC = Path(__file__).resolve().parent / "csrc"
_LOCAL_INCLUDE = re.compile(r'#include "([^"]+)"\s*')


def source(filename: str, read: Optional[Callable[[str], str]] = None) -> str:
    """The C++ of ``csrc/<filename>`` as the one string ``load_inline`` compiles, each ``#include "x.h"`` of a file
    in ``csrc/`` replaced by that file's text. ``#line`` directives give every line its file and number, so a compiler
    error names the line in ``csrc/``; the files are named relative to the package's parent
    (``starnet/kernels/csrc/...``), so the string, and with it torch's build cache, is the same wherever the package
    lives. Directives aside, the compiler sees the text pasted together, as an ``#include`` would give it, so moving
    or commenting C++ changes no machine code (``scripts/kernel_bitcheck.py REV`` checks a change). ``read``: the
    text of a file in ``csrc/`` by name (default: this package's; the step benchmark's ``--kernel-rev`` reads a git
    revision's)."""
    if read is None:
        return _package_source(filename)
    shown = f"starnet/kernels/csrc/{filename}"
    parts = [f'#line 1 "{shown}"\n']
    for number, line in enumerate(read(filename).splitlines(keepends=True), 1):
        included = _LOCAL_INCLUDE.fullmatch(line)
        if included:
            parts += [source(included.group(1), read), f'#line {number + 1} "{shown}"\n']
        else:
            parts.append(line)
    return "".join(parts)


@lru_cache(maxsize=None)
def _package_source(filename: str) -> str:  # read once: the kernels ask for their extension on every call
    return source(filename, lambda name: (CSRC / name).read_text())


def compiler_available() -> bool:
    """Whether the C++ compiler torch's extensions build with (``$CXX``, else ``c++``) is on the PATH: the kernels
    here, and ``torch.compile`` on CPU (``compile_branches``), need one."""
    return shutil.which(os.environ.get("CXX", "c++")) is not None


@contextmanager
def said_while_slow(begin: str, going: str, done: str, logger: logging.Logger = log) -> Iterator[None]:
    """Log lines while the block runs past ``SLOW_BUILD_S``: ``begin`` once, then ``going`` every ``PROGRESS_S`` and
    ``done`` at the end (both formatted with the seconds so far); nothing for a block that ends sooner (a kernel
    loaded from torch's cache). The trainer's first step (which compiles what it runs) says so the same way."""
    finished, start, said = threading.Event(), time.monotonic(), []

    def watch() -> None:
        wait = SLOW_BUILD_S
        while not finished.wait(wait):
            logger.info(going % (time.monotonic() - start) if said else begin)
            said.append(True)
            wait = PROGRESS_S

    watcher = threading.Thread(target=watch, name="said-while-slow", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        watcher.join()
        if said:
            logger.info(done % (time.monotonic() - start))


def build(name: str, source: str, functions: Sequence[str]):
    """The compiled extension ``name``, or None where it cannot be built (a warning says why, once)."""
    if name not in _built:
        from torch.utils.cpp_extension import get_default_build_root
        cache = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
        with said_while_slow(f"compiling the C++ kernel {name}: its first use on this machine (a minute or more; "
                             f"later runs load it from {cache})",
                             f"still compiling the C++ kernel {name} (%.0f s)", f"C++ kernel {name} compiled in %.0f s"):
            _build(name, source, functions)
    return _built[name]


def _build(name: str, source: str, functions: Sequence[str]) -> None:
    """``load_inline`` with OpenMP, else without, else None (a warning), into ``_built[name]``."""
    from torch.utils.cpp_extension import load_inline
    flags = ["-O3", "-march=native"]
    try:
        _built[name] = load_inline(name, cpp_sources=source, functions=list(functions),
                                   extra_cflags=flags + ["-fopenmp"], extra_ldflags=["-fopenmp"])
    except Exception as e:  # e.g. a compiler without OpenMP (Apple clang): one thread, still correct
        try:
            _built[name] = load_inline(name + "_serial", cpp_sources=source, functions=list(functions),
                                       extra_cflags=flags)
            warnings.warn(f"{name} C++ kernel built without OpenMP ({type(e).__name__}); it runs on one "
                          "thread", RuntimeWarning)
        except Exception as e:  # no compiler, no headers: the native ops still work
            _built[name] = None
            warnings.warn(f"{name} C++ kernel unavailable ({type(e).__name__}: {str(e)[:200]}); "
                          "using PyTorch's ops", RuntimeWarning)
