import pytest
import torch.utils.cpp_extension

from starnet.kernels import _build


@pytest.fixture
def fake_compiler(monkeypatch):
    """load_inline that records its calls; fails for the flag sets listed in ``failing``."""
    calls, failing = [], set()

    def load_inline(name, **kwargs):
        with_openmp = "-fopenmp" in kwargs.get("extra_cflags", [])
        calls.append((name, with_openmp))
        if ("openmp" if with_openmp else "serial") in failing:
            raise RuntimeError("compiler error")
        return f"module {name}"

    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", load_inline)
    monkeypatch.setattr(_build, "_built", {})
    return calls, failing


def test_builds_with_openmp_once(fake_compiler):
    calls, _ = fake_compiler
    assert _build.build("k", "", ["f"]) == "module k"
    assert _build.build("k", "", ["f"]) == "module k"
    assert calls == [("k", True)]


def test_falls_back_to_a_serial_build_without_openmp(fake_compiler):
    calls, failing = fake_compiler
    failing.add("openmp")
    with pytest.warns(RuntimeWarning, match="without OpenMP"):
        assert _build.build("k", "", ["f"]) == "module k_serial"
    assert calls == [("k", True), ("k_serial", False)]


def test_no_compiler_gives_none_and_one_warning(fake_compiler):
    _, failing = fake_compiler
    failing.update({"openmp", "serial"})
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert _build.build("k", "", ["f"]) is None
    assert _build.build("k", "", ["f"]) is None  # remembered: no second attempt


def test_accelerated_model_without_a_compiler_runs_plain(fake_compiler):
    """No compiler: each C++ kernel warns once and the accelerated model computes exactly what the plain one does."""
    import copy
    import warnings

    import torch

    from starnet import accelerate, create_starnet
    _, failing = fake_compiler
    failing.update({"openmp", "serial"})
    torch.manual_seed(0)
    model = create_starnet("s050", num_classes=10, width=8, depths=[1, 1, 1, 1]).to(memory_format=torch.channels_last)
    other = copy.deepcopy(model)
    accelerate(model, fast_dwconv=True, fused_mlp=True, fast_batchnorm=True)
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = model(x)
        out.sum().backward()
        model(x).sum().backward()  # a second step: no new warnings
    unavailable = [str(w.message) for w in caught if "unavailable" in str(w.message)]
    assert len(unavailable) == 3 and len({m.split()[0] for m in unavailable}) == 3  # one line per kernel
    ref = other(x)
    ref.sum().backward()
    assert torch.equal(out, ref)


def test_a_slow_build_says_what_it_compiles_and_how_far_it_is(fake_compiler, monkeypatch, caplog):
    """A first use compiles for ~30-60 s per kernel (minutes for StarNet's three): never in silence."""
    import time
    calls, _ = fake_compiler
    compile_fast = torch.utils.cpp_extension.load_inline

    def compile_slowly(name, **kwargs):
        time.sleep(0.5)
        return compile_fast(name, **kwargs)
    monkeypatch.setattr(torch.utils.cpp_extension, "load_inline", compile_slowly)
    monkeypatch.setattr(_build, "SLOW_BUILD_S", 0.1)
    monkeypatch.setattr(_build, "PROGRESS_S", 0.15)
    with caplog.at_level("INFO", logger="starnet"):
        assert _build.build("k", "", ["f"]) == "module k"
    lines = [r.getMessage() for r in caplog.records if r.name == "starnet"]
    assert lines[0].startswith("compiling the C++ kernel k: its first use on this machine (a minute or more; later")
    assert any(line.startswith("still compiling the C++ kernel k (") for line in lines[1:-1])
    assert lines[-1].startswith("C++ kernel k compiled in ")


def test_a_quick_load_from_the_cache_says_nothing(fake_compiler, caplog):
    with caplog.at_level("INFO", logger="starnet"):
        assert _build.build("k", "", ["f"]) == "module k"
    assert not [r for r in caplog.records if r.name == "starnet"]


@pytest.mark.parametrize("filename", sorted(p.name for p in _build.CSRC.glob("*.cpp")))
def test_source_is_the_csrc_file_with_every_line_where_the_file_has_it(filename):
    """What load_inline compiles: the .cpp with its ``#include "activations.h"`` replaced by that file's text, and
    ``#line`` directives that give each line the file and number it has in csrc/ (so compiler errors point there)."""
    files = {p.name: p.read_text().splitlines() for p in _build.CSRC.iterdir()}
    where = None
    for line in _build.source(filename).splitlines():
        if line.startswith("#line "):
            number, shown = line.split(" ", 2)[1:]
            assert shown.startswith('"starnet/kernels/csrc/')
            where = [shown.strip('"').rpartition("/")[2], int(number)]
            continue
        name, number = where
        assert line == files[name][number - 1], (name, number)
        assert not line.startswith('#include "')  # every include of csrc/ is in place
        where[1] += 1


def test_a_compiler_error_names_the_line_in_csrc(tmp_path):
    """The compiler reports an error at its line in csrc/, also after an included header."""
    if not _build.compiler_available():
        pytest.skip("no C++ compiler")
    import os
    import subprocess
    files = {"k.cpp": '#include "activations.h"\nfloat f(float v) { return act_f(v, 1); }\nint g() { return nope; }\n',
             "activations.h": (_build.CSRC / "activations.h").read_text()}
    (tmp_path / "k.cpp").write_text(_build.source("k.cpp", files.__getitem__))
    proc = subprocess.run([os.environ.get("CXX", "c++"), "-fsyntax-only", str(tmp_path / "k.cpp")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "starnet/kernels/csrc/k.cpp:3:" in proc.stderr
