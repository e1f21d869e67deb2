"""The generator's pipeline: loss -> derivation -> proved stable rewrites -> lowering -> printed code.

    generate("cross_entropy", "c")           # the source text (any target of TARGETS: numpy, torch, c, triton, cuda)
    write_all("codegen")                     # every built-in kernel for every target that can express it
    load_kernel("cross_entropy", "numpy")    # the generated function, ready to call

A target is a platform of this one pipeline (``targets.py``: a printer, its proved rules, templates and how
its binding is emitted); :func:`target_registry` is the registry, and each target says which kinds of kernel it
can express (``Target.kinds``).
"""
from __future__ import annotations

import functools
from pathlib import Path

from ..definitions.symbols import n as N
from . import rewrites
from .loss import KERNELS, Loss
from .lowering import lower
from .nodes import recognise

#: the targets whose generated kernels ``load_kernel`` returns as plain functions of arrays (triton's: of tensors)
BACKENDS = ("numpy", "torch", "c", "triton")
#: every target of the generator (CUDA kernels are loaded by ``symxent.runtime.cuda``)
TARGETS = BACKENDS + ("cuda",)


@functools.lru_cache(maxsize=None)
def target_registry() -> dict:
    """The targets by name (constructed once, on first use)."""
    from .c_target import CTarget
    from .cuda.target import CudaTarget
    from .targets import NumpyTarget, TorchTarget
    from .triton_target import TritonTarget
    table = {"numpy": NumpyTarget(), "torch": TorchTarget(), "c": CTarget(), "triton": TritonTarget(),
             "cuda": CudaTarget()}
    assert tuple(table) == TARGETS
    return table


def as_loss(name_or_loss, registry=None, what: str = "loss") -> Loss:
    """A :class:`Loss` as is, or the one called ``name_or_loss`` in ``registry`` (default :data:`KERNELS`)."""
    if isinstance(name_or_loss, Loss):
        return name_or_loss
    registry = KERNELS if registry is None else registry
    if name_or_loss not in registry:
        raise KeyError(f"unknown {what} {name_or_loss!r}; known: {', '.join(sorted(registry))}")
    return registry[name_or_loss]


def _target(target):
    table = target_registry()
    if target not in table:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return table[target]


@functools.lru_cache(maxsize=64)
def derived_functions(loss: Loss) -> tuple:
    """The kernel functions of ``loss`` with derived gradients (cached: every target shares them)."""
    return tuple(loss.functions())


@functools.lru_cache(maxsize=256)
def _stable(expr, optims: tuple, recognised: bool = True):
    return rewrites.optimize(recognise(expr, N) if recognised else expr, optims)


def function_rules(function, target) -> tuple:
    """The rules for ``function``'s outputs: its own (``Loss.rules``, applied to the outputs as written)
    or ``target``'s stabilising rules (after :func:`recognise`)."""
    if function.rules is None:
        return tuple(target.optims)
    return tuple(rewrites.RULES[name] for name in function.rules)


def lowered_functions(loss: Loss, target) -> list:
    """Each kernel function of ``loss`` derived, rewritten with ``target``'s proved rules, lowered."""
    out = []
    for function in derived_functions(loss):                                  # definitions -> derivation
        rules, recognised = function_rules(function, target), function.rules is None
        stable = {name: _stable(expr, rules, recognised) for name, expr in function.outputs}  # -> rewrite
        out.append(lower(function, stable))                                   # -> statements
    return out


def generate_files(name_or_loss, target: str) -> dict:
    """``{file name: source text}`` for one loss and one target (C: the .c file and its binding)."""
    loss, tgt = as_loss(name_or_loss), _target(target)
    if not tgt.expresses(loss):
        raise ValueError(f"the {target} target has no template for {loss.name!r} (a {loss.kind} kernel); it "
                         f"generates kinds {', '.join(sorted(tgt.kinds))}")
    return tgt.render(loss, lowered_functions(loss, tgt))                      # -> print + template


def generate(name_or_loss, target: str) -> str:
    """The generated source text of ``name_or_loss`` (a name of :data:`KERNELS` or a :class:`Loss`)
    for ``target`` in :data:`TARGETS` (the main file: C's ``.c``, CUDA's ``.cu``)."""
    files = generate_files(name_or_loss, target)
    main = next((text for name, text in files.items() if name.endswith((".c", ".cu"))), None)
    return main if main is not None else next(iter(files.values()))


def kernels_for(target: str) -> list:
    """The built-in kernels (:data:`KERNELS`) ``target`` can express, by name."""
    tgt = _target(target)
    return sorted(name for name, loss in KERNELS.items() if tgt.expresses(loss))


def write_all(root, check: bool = False, names=None) -> list:
    """Write every built-in kernel (:data:`KERNELS`: the losses and the vocab-parallel shard kernels)
    for every target that can express it, under ``root/<target>/``.

    ``check=True`` writes nothing and returns the paths whose content differs from what would be
    generated (missing files included): drift. Otherwise returns the paths written.
    """
    root = Path(root)
    changed = []
    for target in TARGETS:
        for name in (names or kernels_for(target)):
            if names and not _target(target).expresses(as_loss(name)):
                continue
            for filename, text in generate_files(name, target).items():
                path = root / target / filename
                current = path.read_text() if path.exists() else None
                if current == text:
                    continue
                changed.append(path)
                if not check:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
    return changed


@functools.lru_cache(maxsize=None)
def load_kernel(name: str, backend: str):
    """The generated kernel ``name`` for ``backend`` (the runtime's :func:`~symxent.runtime.kernels.load_kernel`,
    with the generator's names checked first)."""
    from ..runtime.kernels import load_kernel as runtime_load_kernel
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if name not in KERNELS:
        raise KeyError(f"unknown kernel {name!r}; known: {', '.join(sorted(KERNELS))}")
    return runtime_load_kernel(name, backend)


def compile_loss(loss: Loss, backend: str):
    """A user loss's kernel, generated now and loaded from the cache directory:
    ``kern(z, target, params, want_grad)`` (C: compiled as well)."""
    import hashlib
    import importlib.util
    from ..runtime.cache import cache_dir
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    files = generate_files(loss, backend)
    digest = hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).hexdigest()[:16]
    folder = cache_dir() / "losses" / f"{backend}-{loss.name}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        path = folder / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"symxent_user_{backend}_{loss.name}_{digest}",
                                                  folder / f"{loss.name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, loss.name)
