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
