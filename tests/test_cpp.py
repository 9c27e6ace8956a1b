import pytest
import torch.utils.cpp_extension

from starnet import _cpp


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
    monkeypatch.setattr(_cpp, "_built", {})
    return calls, failing


def test_builds_with_openmp_once(fake_compiler):
    calls, _ = fake_compiler
    assert _cpp.build("k", "", ["f"]) == "module k"
    assert _cpp.build("k", "", ["f"]) == "module k"
    assert calls == [("k", True)]


def test_falls_back_to_a_serial_build_without_openmp(fake_compiler):
    calls, failing = fake_compiler
    failing.add("openmp")
    with pytest.warns(RuntimeWarning, match="without OpenMP"):
        assert _cpp.build("k", "", ["f"]) == "module k_serial"
    assert calls == [("k", True), ("k_serial", False)]


def test_no_compiler_gives_none_and_one_warning(fake_compiler):
    _, failing = fake_compiler
    failing.update({"openmp", "serial"})
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert _cpp.build("k", "", ["f"]) is None
    assert _cpp.build("k", "", ["f"]) is None  # remembered: no second attempt
