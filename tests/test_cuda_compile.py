"""Every generated CUDA source compiles for Hopper (``nvcc -arch=sm_90 -c``): no GPU needed.

Skipped only when nvcc is missing. The flags are those torch's extension build adds (its
``__CUDA_NO_HALF_*`` defines, ``--expt-relaxed-constexpr``), so code that relies on implicit
half/bf16 conversions fails here as it would at load time, and the runtime's skeleton headers
(``symxent/runtime/include``) on the include path. Objects are cached by source hash
in pytest's cache folder: a rerun recompiles only what changed.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from symxent.runtime.cuda import headers_text, include_dir

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "codegen" / "cuda").glob("*.cu"))
#: what torch.utils.cpp_extension adds to every nvcc command (COMMON_NVCC_FLAGS)
TORCH_NVCC_FLAGS = ["-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
                    "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
                    "--expt-relaxed-constexpr"]
#: the skeleton headers the generated sources include, as the runtime passes them
FLAGS = ["-arch=sm_90", "-O3", "-std=c++17", "-Xcompiler", "-fPIC", *TORCH_NVCC_FLAGS, f"-I{include_dir()}"]


def find_nvcc():
    candidates = [shutil.which("nvcc")]
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home:
            candidates.append(str(Path(home) / "bin" / "nvcc"))
    candidates.append("/usr/local/bin/nvcc")
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


NVCC = find_nvcc()
pytestmark = pytest.mark.skipif(NVCC is None, reason="nvcc not found (put it on PATH or set CUDA_HOME): "
                                                      "the generated .cu files were not compiled")


def _nvcc_version() -> str:
    return subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout


def _key(text: str) -> str:
    return hashlib.sha256("\0".join([text, headers_text(), " ".join(FLAGS), _nvcc_version()]).encode()).hexdigest()[:24]


def compile_cuda(text: str, cache: Path) -> tuple:
    """``(returncode, log)`` of ``nvcc FLAGS -c`` on ``text`` (object ``cache/KEY.o``); successes are cached."""
    key = _key(text)
    done = cache / f"{key}.ok"
    if done.exists() and (cache / f"{key}.o").exists():
        return 0, "(cached)"
    source = cache / f"{key}.cu"
    source.write_text(text)
    result = subprocess.run([NVCC, *FLAGS, "-c", str(source), "-o", str(cache / f"{key}.o")],
                            capture_output=True, text=True)
    if result.returncode == 0:
        done.write_text(result.stderr)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def nvcc_cache(request):
    return Path(request.config.cache.mkdir("symxent_nvcc"))


@pytest.fixture(scope="module")
def compiled(nvcc_cache):
    """Every checked-in source compiled, two at a time (the results by file name)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = pool.map(lambda path: compile_cuda(path.read_text(), nvcc_cache), SOURCES)
        return dict(zip((p.name for p in SOURCES), results))


def test_every_cuda_kernel_is_checked_in():
    """codegen/cuda/ holds exactly one .cu per kernel of CUDA_LOSSES."""
    from symxent.codegen.cuda.losses import CUDA_LOSSES
    assert {p.stem for p in SOURCES} == set(CUDA_LOSSES)


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_generated_cuda_source_compiles_for_sm90(source, compiled):
    returncode, log = compiled[source.name]
    assert returncode == 0, f"nvcc failed on {source.name}:\n{log[-4000:]}"


@pytest.mark.parametrize("name", ["focal", "softcap"])
def test_user_row_loss_compiles_through_the_row_template(name, nvcc_cache):
    """Code generation I's user losses use the same row template as cross-entropy."""
    from symxent.codegen.cuda import generate_cuda, user_loss_examples
    text = generate_cuda(user_loss_examples()[name])
    assert "struct Case0" in text and f"SYMXENT_CUDA_ROWS_MODULE({name}, sx_{name}::Module)" in text
    returncode, log = compile_cuda(text, nvcc_cache)
    assert returncode == 0, f"nvcc failed on the generated {name}:\n{log[-4000:]}"


def _pybind_includes():
    """Include folders holding pybind11 (torch ships it) and Python.h, or None."""
    try:
        from torch.utils.cpp_extension import include_paths
    except ImportError:
        return None
    folders = [*include_paths(), sysconfig.get_paths()["include"]]
    if not any((Path(f) / "pybind11" / "pybind11.h").is_file() for f in folders):
        return None
    return folders


def _cudart_folder():
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda", str(Path(NVCC).resolve().parents[1]) if NVCC else None):
        for sub in ("lib64", "lib"):
            if home and (Path(home) / sub / "libcudart.so").exists():
                return Path(home) / sub
    return None


def _loader_calls() -> dict:
    """``{host function: number of arguments}`` of every ``self.module.F(...)`` call in the runtime."""
    import ast
    tree = ast.parse((ROOT / "symxent" / "runtime" / "cuda.py").read_text())
    calls = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "module"):
            # the elementwise call passes its eight (pointer, period) arguments as *args
            count = sum(8 if isinstance(a, ast.Starred) else 1 for a in node.args)
            calls.setdefault(node.func.attr, set()).add(count)
    return calls


@pytest.mark.parametrize("name", ["cross_entropy", "bce_with_logits"], ids=["rows", "elementwise"])
def test_module_links_imports_and_takes_the_runtimes_arguments(name, compiled, nvcc_cache, tmp_path):
    """The .cu object and the binding of its checked-in contract link into an importable module (no
    undefined symbol); each host function takes as many arguments as the runtime passes it; bad arguments
    become Python exceptions before any CUDA call (no GPU needed)."""
    import importlib
    import importlib.util
    compiler = shutil.which("c++") or shutil.which("g++")
    folders, cudart = _pybind_includes(), _cudart_folder()
    if compiler is None or folders is None or cudart is None:
        pytest.skip("no host C++ compiler, pybind11 headers or libcudart")
    source = ROOT / "codegen" / "cuda" / f"{name}.cu"
    assert compiled[source.name][0] == 0
    module_name = f"sx_probe_{name}"
    which = "ROWS" if name == "cross_entropy" else "ELEMENTWISE"
    # the .cu defines, and the binding calls, the host API that symxent/cuda/api.h declares once
    assert f"SYMXENT_CUDA_{which}_MODULE({name}, " in source.read_text()
    binding = tmp_path / "binding.cpp"
    contract = importlib.import_module(f"symxent_codegen.cuda.{name}").CONTRACT
    binding.write_text(contract.pybind)
    assert f"SYMXENT_CUDA_{which}_BINDING({name})" in contract.pybind
    library = tmp_path / (module_name + sysconfig.get_config_var("EXT_SUFFIX"))
    result = subprocess.run([compiler, "-std=c++17", "-O1", "-fPIC", "-shared", f"-DTORCH_EXTENSION_NAME={module_name}",
                             *(f"-I{f}" for f in [*folders, include_dir()]), str(binding), str(nvcc_cache / f"{_key(source.read_text())}.o"),
                             f"-L{cudart}", f"-Wl,-rpath,{cudart}", "-lcudart", "-o", str(library)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    spec = importlib.util.spec_from_file_location(module_name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for function, counts in _loader_calls().items():
        if hasattr(module, function):
            arity = len(getattr(module, function).__doc__.split("(", 1)[1].split(")", 1)[0].split(","))
            assert counts == {arity}, f"the runtime calls {function} with {counts} arguments, the module takes {arity}"
    if name == "cross_entropy":
        assert module.rows(0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 0, 10, -100, False, [0.0, 0.0], 0) is None
        with pytest.raises(ValueError, match="expected 2 parameter"):
            module.rows(0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 1, 10, -100, False, [0.0], 0)
        with pytest.raises(ValueError, match="dtype must be"):
            module.rows(0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 1, 10, -100, False, [0.0, 0.0], 0)
        with pytest.raises(ValueError, match="no such case"):
            module.rows(5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 1, 10, -100, False, [0.0, 0.0], 0)
    else:
        assert module.elementwise(0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1.0, 0, [], 0) is None
        with pytest.raises(ValueError, match="dtype must be"):
            module.elementwise(0, 9, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1.0, 4, [], 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
