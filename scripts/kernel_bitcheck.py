"""Whether the C++ kernels of this checkout compile to the machine code of another git revision's, and compute the same.

    python scripts/kernel_bitcheck.py OLD_REV [--new NEW_REV] [--keep DIR]

Each side (OLD_REV's ``starnet/`` from ``git archive``; the working tree, or ``--new NEW_REV``) builds every kernel
(``dwconv``, ``fused_mlp``, ``fast_bn``, ``demo_block`` and, where the revision has it, the block kernel's zoo
build) in a cache of its own, with the flags its ``_build.py`` gives, in a fresh process on one thread. Per kernel
it then compares:

- the disassembly of the extension's ``.text`` section (``objdump -d --no-show-raw-insn``; the same names on both
  sides, so addresses and symbols line up): the same instructions mean the same results on any input;
- every output and gradient of its functions on fixed inputs, every op and activation code it has
  (``torch.equal``).

A change that only moves or comments C++ text (or a Python edit) must show both identical; exit status 1 if any
kernel differs. Builds take a minute or more each on a busy machine. Needs git and objdump (binutils).
"""
import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ("dwconv", "fused_mlp", "fast_bn", "demo_block", "demo_block_zoo")


def probe(out: Path) -> None:
    """In a process whose ``starnet`` is one side's: build each kernel, run it on fixed inputs, save the outputs
    (``out``/outputs.pt) and the paths of the built extensions (``out``/built.json)."""
    import torch
    from starnet.kernels import demo_block, dwconv, fast_bn, fused_mlp
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    built, outputs = {}, {}
    ext = {"dwconv": dwconv.extension(), "fused_mlp": fused_mlp.extension(), "fast_bn": fast_bn.extension(),
           "demo_block": demo_block.extension()}
    if "zoo" in inspect.signature(demo_block.extension).parameters:
        ext["demo_block_zoo"] = demo_block.extension(zoo=True)
    for name, module in ext.items():
        if module is None:
            sys.exit(f"error: the {name} kernel did not build on this side")
        built[name] = module.__file__

    x = rand(4, 16, 14, 14).contiguous(memory_format=torch.channels_last)
    g = rand(4, 16, 14, 14).contiguous(memory_format=torch.channels_last)
    outputs["dwconv"] = [ext["dwconv"].dw_weight_grad(x, g, 7)]

    m, c, hidden = 300, 24, 96
    x, w12, b12, wg, bg = rand(m, c), rand(2 * hidden, c) * 0.2, rand(2 * hidden), rand(c, hidden) * 0.1, rand(c)
    dout = rand(m, c)
    outputs["fused_mlp"] = []
    for act in (0, 1, 2):
        for op in (0, 1):
            outputs["fused_mlp"] += [ext["fused_mlp"].mlp_forward(x, w12, b12, wg, bg, act, op, 128),
                                     *ext["fused_mlp"].mlp_backward(dout, x, w12, b12, wg, act, op, 128)]

    x, w, b, gy = rand(1000, 32) * 2 + 0.5, rand(32), rand(32), rand(1000, 32)
    outputs["fast_bn"] = []
    for act in (0, 1, 2):
        y, mean, var = ext["fast_bn"].bn_forward(x, w, b, 1e-5, act)
        outputs["fast_bn"] += [y, mean, var, *ext["fast_bn"].bn_backward(gy, x, y, mean, var, w, 1e-5, act)]

    bsz, hw, c = 9, 7, 16
    hidden = 3 * c
    x, lnw, lnb, wt, dwb = rand(bsz * hw * hw, c), 1 + 0.1 * rand(c), 0.1 * rand(c), 0.1 * rand(49, c), rand(c)
    wf, bf, wg, bg, gamma = 0.2 * rand(2 * hidden, c), rand(2 * hidden), 0.1 * rand(c, hidden), rand(c), rand(c)
    dy = rand(bsz * hw * hw, c)
    for name, acts, ops in (("demo_block", (0, 1, 2, 3), (0, 1)), ("demo_block_zoo", (0, 1, 2, 3, 4), (0, 1, 2, 3))):
        if name not in ext:
            continue
        outputs[name] = []
        for act in acts:
            for op in ops:
                fwd = ext[name].block_forward(x, hw, hw, lnw, lnb, 1e-6, wt, dwb, wf, bf, wg, bg, gamma, act, op, 4)
                _, u, h, o, mean, rstd = fwd
                bwd = ext[name].block_backward(dy, x, hw, hw, lnw, lnb, wt, wf, bf, wg, gamma, u, h, o, mean, rstd,
                                               act, op, 4)
                outputs[name] += [*fwd, *bwd]
    torch.save(outputs, out / "outputs.pt")
    (out / "built.json").write_text(json.dumps(built))


def side(label: str, source_root: Callable[[], Path], work: Path) -> Path:
    """Run ``probe`` with ``source_root()`` first on the path and a build cache of this side's own (a side that
    ``--keep``'s dir already holds is taken as it is)."""
    out = work / label
    if (out / "built.json").is_file() and (out / "outputs.pt").is_file():
        print(f"{label}: the builds and outputs already in {out}", flush=True)
        return out
    out.mkdir(exist_ok=True)
    root = source_root()
    env = dict(os.environ, PYTHONPATH=str(root), TORCH_EXTENSIONS_DIR=str(out / "torch_extensions"))
    print(f"{label}: building and running the kernels of {root} ...", flush=True)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--probe", str(out)], env=env,
                          cwd=str(work))
    if proc.returncode:
        sys.exit(f"error: the {label} side failed (exit {proc.returncode})")
    return out


def export(rev: str, dest: Path) -> Path:
    """``rev``'s ``starnet/`` under ``dest``."""
    dest.mkdir(exist_ok=True)
    archive = dest / "src.tar"
    with open(archive, "wb") as f:
        proc = subprocess.run(["git", "archive", rev, "starnet"], cwd=ROOT, stdout=f, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"error: {rev}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'git archive failed'}")
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "src")
    return dest / "src"


def text_disassembly(so: str) -> list:
    proc = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-j", ".text", so], capture_output=True, text=True,
                          check=True)
    return proc.stdout.splitlines()[2:]  # from the section on: the first lines name the file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", nargs="?", help="the git revision to compare with (e.g. main)")
    ap.add_argument("--new", default=None, help="a git revision instead of the working tree")
    ap.add_argument("--keep", default=None, help="build in this dir and keep it, instead of a temp dir; a side it "
                    "already holds (old/, new/: from an earlier --keep) is compared without building again")
    ap.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(Path(args.probe))
        return 0
    if not args.old:
        ap.error("the revision to compare with is required")
    for tool in ("git", "objdump"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} is not on the PATH (kernel_bitcheck needs git and objdump)")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kernel_bitcheck_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        old = side("old", lambda: export(args.old, work / "old_src"), work)
        if args.new:
            new = side("new", lambda: export(args.new, work / "new_src"), work)
        else:
            new = side("new", lambda: ROOT, work)
        import torch
        built = [json.loads((d / "built.json").read_text()) for d in (old, new)]
        outputs = [torch.load(d / "outputs.pt") for d in (old, new)]
        differ = 0
        for name in KERNELS:
            if name not in built[0] or name not in built[1]:
                print(f"{name}: only in the {'new' if name in built[1] else 'old'} side, not compared")
                continue
            code = [text_disassembly(b[name]) for b in built]
            same_code = code[0] == code[1]
            same_file = Path(built[0][name]).read_bytes() == Path(built[1][name]).read_bytes()
            pairs = list(zip(outputs[0][name], outputs[1][name]))
            same_out = len(outputs[0][name]) == len(outputs[1][name]) and all(torch.equal(a, b) for a, b in pairs)
            differ += not (same_code and same_out)
            print(f"{name}: .text {'identical' if same_code else 'DIFFERS'} ({len(code[1])} lines of disassembly"
                  f"{'; the whole .so byte for byte' if same_file else ''}); outputs "
                  f"{'equal' if same_out else 'DIFFER'} ({len(pairs)} tensors)")
        print("every kernel the same" if not differ else f"{differ} kernel(s) differ")
        return 1 if differ else 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
