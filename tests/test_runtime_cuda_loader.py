"""The CUDA loader's host side (no GPU needed): toolkit checks and what the build cache key covers."""
import pytest

from symxent.runtime import cuda


@pytest.mark.parametrize("nvcc, torch_cuda, refused", [("13.0", "13.0", False), ("13.0", "13.2", False),
                                                        ("13.0", "12.8", True), ("12.4", "13.0", True),
                                                        (None, "13.0", False), ("13.0", None, False)])
def test_a_toolkit_of_another_cuda_major_version_is_refused_with_the_reason(nvcc, torch_cuda, refused):
    reason = cuda.toolkit_mismatch(nvcc, torch_cuda)
    assert (reason is not None) == refused
    if refused:
        assert f"nvcc is CUDA {nvcc}" in reason and f"built with CUDA {torch_cuda}" in reason and "CUDA_HOME" in reason


def test_nvcc_release_is_read_from_the_toolkit_or_none(tmp_path):
    assert cuda.nvcc_release(str(tmp_path)) is None  # no bin/nvcc there
    cuda.nvcc_release.cache_clear()  # (cached per toolkit)
    fake = tmp_path / "bin" / "nvcc"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Cuda compilation tools, release 12.6, V12.6.85'\n")
    fake.chmod(0o755)
    assert cuda.nvcc_release(str(tmp_path)) == "12.6"


def test_the_build_key_covers_the_toolkit(monkeypatch, tmp_path):
    import torch.utils.cpp_extension as ext

    monkeypatch.setattr(ext, "CUDA_HOME", str(tmp_path / "one"))
    first = cuda.build_key("source", "binding")
    monkeypatch.setattr(ext, "CUDA_HOME", str(tmp_path / "two"))
    assert cuda.build_key("source", "binding") != first
    monkeypatch.setattr(cuda, "nvcc_release", lambda home: "12.9")
    other_release = cuda.build_key("source", "binding")
    monkeypatch.setattr(cuda, "nvcc_release", lambda home: "13.0")
    assert cuda.build_key("source", "binding") != other_release
