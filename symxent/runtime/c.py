"""Compile generated C with the system compiler at first use, cache it on disk, call it on NumPy arrays.

- Compiler: ``$CC`` or ``cc``; flags :data:`BASE_FLAGS` (``-O3 -fno-math-errno``, never
  ``-ffast-math``, which breaks inf/nan), ``-march=native`` where the compiler accepts it, and
  glibc's vector math library (``-lmvec``, macro ``SYMXENT_LIBMVEC``) where it links.
- Cache (:mod:`~symxent.runtime.cache`): one shared library per hash of (source, compiler, flags,
  CPU); written atomically, so concurrent processes are safe; a corrupt one is rebuilt.
- Calls: :class:`CKernel` converts arguments, allocates outputs and splits the rows (or elements)
  over threads: ctypes releases the GIL, so Python threads run the C code in parallel
  (``$SYMXENT_NUM_THREADS``, default: the usable cores).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy

from ..semantics import target_out_of_bounds
from .cache import cache_dir, load_or_rebuild

BASE_FLAGS = ("-O3", "-fno-math-errno", "-fopenmp-simd", "-fPIC", "-shared", "-std=c99")
#: below this many elements (rows x classes) a call runs on one thread
PARALLEL_THRESHOLD = 1 << 16
_SUFFIX = {numpy.dtype(numpy.float32): "f32", numpy.dtype(numpy.float64): "f64"}


class BuildError(RuntimeError):
    """The C compiler failed (its output is in the message)."""


def compiler() -> str:
    return os.environ.get("CC", "cc")


def _run(command: list) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True)


@functools.lru_cache(maxsize=None)
def _compiler_identity() -> str:
    try:
        result = _run([compiler(), "--version"])
    except OSError as exc:
        raise BuildError(f"no C compiler: {compiler()!r} ({exc}); set $CC") from None
    return result.stdout.splitlines()[0] if result.stdout else compiler()


def _cpu_identity() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return f"{platform.machine()} {hashlib.sha256(flags.encode()).hexdigest()[:16]}"


@functools.lru_cache(maxsize=None)
def flags() -> tuple:
    """The flags this machine's compiler accepts: the base ones, plus ``-march=native`` and libmvec
    where they work (probed once per compiler and CPU on a tiny source; the answer is cached on disk)."""
    key = hashlib.sha256("\n".join([_compiler_identity(), _cpu_identity(), " ".join(BASE_FLAGS)]).encode()).hexdigest()
    record = cache_dir() / f"flags-{key[:24]}.txt"
    try:
        return tuple(record.read_text().split("\n"))
    except OSError:
        pass
    chosen = list(BASE_FLAGS)
    probe = "#include <math.h>\n#pragma omp declare simd notinbranch\nfloat expf(float);\n" \
            "void f(float *x, int n) {\n#pragma omp simd\nfor (int i = 0; i < n; ++i) x[i] = expf(x[i]);\n}\n"
    for extra in (["-march=native"], ["-DSYMXENT_LIBMVEC", "-lmvec"]):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "probe.c"
            src.write_text(probe)
            result = _run([compiler(), *chosen, *extra, str(src), "-o", str(Path(tmp) / "probe.so"), "-lm"])
            if result.returncode == 0:
                chosen += extra
    with tempfile.NamedTemporaryFile("w", dir=cache_dir(), delete=False) as fh:  # written whole, then renamed
        fh.write("\n".join(chosen))
    os.replace(fh.name, record)
    return tuple(chosen)


def library_path(source: str, name: str = "kernel") -> Path:
    """Where the shared library of ``source`` is cached (a hash of the source, compiler, flags, CPU)."""
    all_flags = flags()
    key = hashlib.sha256("\n".join([source, _compiler_identity(), " ".join(all_flags), _cpu_identity()])
                         .encode()).hexdigest()[:24]
    return cache_dir() / f"{name}-{key}.so"


def compile_source(source: str, name: str = "kernel") -> Path:
    """The shared library built from ``source`` (from the cache when it is there)."""
    target = library_path(source, name)
    if target.exists():
        return target
    return _build(source, name, target)


def _build(source: str, name: str, target: Path) -> Path:
    all_flags = flags()
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp) / f"{name}.c"
        src.write_text(source)
        out = Path(tmp) / f"{name}.so"
        result = _run([compiler(), *all_flags, str(src), "-o", str(out), "-lm"])
        if result.returncode != 0:
            raise BuildError(f"compiling {name}.c failed:\n{result.stderr[-4000:]}")
        os.replace(out, target)
    return target


def load_library(path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path))


def load_source(source: str, name: str = "kernel") -> ctypes.CDLL:
    """The loaded library of ``source``: compiled at first use, cached, rebuilt if the cached file is corrupt."""
    target = library_path(source, name)
    return load_or_rebuild(target, lambda: _build(source, name, target), load_library)


@functools.lru_cache(maxsize=None)
def _library_for(source_path: str, mtime_ns: int) -> ctypes.CDLL:
    path = Path(source_path)
    return load_source(path.read_text(), path.stem)


def num_threads() -> int:
    value = os.environ.get("SYMXENT_NUM_THREADS")
    if value:
        return max(1, int(value))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@functools.lru_cache(maxsize=None)
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """A thread pool per process (``pid``: a forked child must not reuse its parent's dead threads)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="symxent")


class CKernel:
    """A generated C function pair (``<symbol>_f32``, ``<symbol>_f64``) called on NumPy arrays.

    ``kind``: ``rows`` (arrays (R, C), split by rows) or ``elements`` (flat arrays, split by
    range). ``args``: (name, role) in call order (the names of ``symxent.codegen.roles.Role``);
    ``outputs``: (name, layout, optional) with layout ``row`` (R,), ``dense`` (R, C) or
    ``elements``; ``params``: the parameter names a ``params`` dict must hold, in C order.
    The call ends with a bool that switches the optional outputs on when ``wants_grad`` (``want_grad``)
    or ``switch`` (its name, e.g. ``want_smoothing``) is given.
    """

    def __init__(self, source, symbol, kind, args, outputs, params=(), wants_grad=False, switch=None):
        self.source, self.symbol, self.kind = Path(source), symbol, kind
        self.args, self.outputs, self.params = tuple(args), tuple(outputs), tuple(params)
        self.wants_grad = bool(wants_grad or switch)

    def _function(self, dtype):
        source = self.source if isinstance(self.source, Path) else Path(self.source)
        lib = _library_for(str(source), source.stat().st_mtime_ns)
        fn = getattr(lib, f"{self.symbol}_{_SUFFIX[dtype]}")
        fn.restype = None
        return fn

    def __call__(self, *values):
        expected = len(self.args) + (1 if self.wants_grad else 0)
        if len(values) != expected:
            raise TypeError(f"{self.symbol}: expected {expected} arguments, got {len(values)}")
        want_grad = bool(values[-1]) if self.wants_grad else True
        first = next(v for (name, role), v in zip(self.args, values) if role in ("rows", "elements"))
        dtype = numpy.asarray(first).dtype
        if dtype not in _SUFFIX:
            raise TypeError(f"{self.symbol}: expected float32 or float64 input, got {dtype}")
        arrays, scalars, size, shape = [], [], None, None
        for (name, role), value in zip(self.args, values):
            if role == "flag":
                continue
            if role == "params":
                missing = [p for p in self.params if p not in value]
                if missing:
                    raise KeyError(f"params is missing {missing} (needs {list(self.params)})")
                scalars += [float(value[p]) for p in self.params]
            elif role == "scalar":
                scalars.append(float(value))
            elif role in ("index", "local_index"):
                arrays.append((role, numpy.ascontiguousarray(value, dtype=numpy.int64)))
            else:
                array = numpy.ascontiguousarray(value, dtype=dtype)
                arrays.append((role, array))
                if role == "rows":
                    if array.ndim != 2:
                        raise ValueError(f"{name}: expected a 2-D array (rows, classes), got shape {array.shape}")
                    if size is not None and array.shape != size:
                        raise ValueError(f"{name}: shape {array.shape} differs from {size}")
                    size = array.shape
                elif role == "elements":
                    shape = shape or array.shape
                    if array.shape != shape:
                        raise ValueError(f"{name}: shape {array.shape} differs from {shape}")
                    arrays[-1] = (role, array.reshape(-1))
                    size = (array.size,)
        if self.kind == "rows":
            rows, n = size
            for role, array in arrays:
                if role == "classes" and array.shape != (n,):
                    raise ValueError(f"expected a class vector of shape ({n},), got {array.shape}")
                if role == "row" and array.shape != (rows,):
                    raise ValueError(f"expected one value per row, shape ({rows},), got {array.shape}")
                if role in ("index", "local_index"):
                    if array.shape != (rows,):
                        raise ValueError(f"expected {rows} target indices, got shape {array.shape}")
                    lowest = -1 if role == "local_index" else 0  # -1: no class of this row
                    bad = array[(array < lowest) | (array >= n)]
                    if bad.size:
                        raise target_out_of_bounds(bad[0])
        outs = []
        for name, layout, optional in self.outputs:
            if optional and not want_grad:
                outs.append(None)
            elif layout == "row":
                outs.append(numpy.empty(size[0], dtype=dtype))
            else:
                outs.append(numpy.empty(size, dtype=dtype))
        self._run(self._function(dtype), size, arrays, scalars, outs, dtype)
        if shape is not None:
            outs = [None if out is None else out.reshape(shape) for out in outs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _run(self, fn, size, arrays, scalars, outs, dtype):
        total = int(numpy.prod(size))
        count = size[0]
        threads = min(num_threads(), count) if total >= PARALLEL_THRESHOLD else 1
        if count == 0:
            return
        per_row = size[1] if self.kind == "rows" else 1

        def call(lo, hi):
            pointers = []
            for role, array in arrays:
                if role in ("rows", "elements"):
                    pointers.append(ctypes.c_void_p(array.ctypes.data + lo * per_row * array.itemsize))
                elif role in ("index", "local_index", "row"):
                    pointers.append(ctypes.c_void_p(array.ctypes.data + lo * array.itemsize))
                else:  # classes
                    pointers.append(ctypes.c_void_p(array.ctypes.data))
            out_pointers = []
            for (name, layout, _), out in zip(self.outputs, outs):
                if out is None:
                    out_pointers.append(ctypes.c_void_p(0))
                else:
                    step = 1 if layout == "row" else per_row
                    out_pointers.append(ctypes.c_void_p(out.ctypes.data + lo * step * out.itemsize))
            sizes = [ctypes.c_int64(hi - lo)] + ([ctypes.c_int64(size[1])] if self.kind == "rows" else [])
            fn(*sizes, *pointers, *[ctypes.c_double(s) for s in scalars], *out_pointers)

        bounds = numpy.linspace(0, count, threads + 1).astype(int)
        if threads == 1:
            call(0, count)
            return
        pool = _pool(threads, os.getpid())
        futures = [pool.submit(call, int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
        for future in futures:
            future.result()
