"""The generator's pipeline: loss -> derivation -> proved stable rewrites -> lowering -> printed code.

    generate("cross_entropy", "c")           # the source text
    write_all("codegen")                     # every built-in loss, every target, checked in
    load_kernel("cross_entropy", "numpy")    # the generated function, ready to call
"""
from __future__ import annotations

import functools
from pathlib import Path

from ..definitions.symbols import n as N
from . import rewrites
from .loss import KERNELS, Loss
from .lowering import lower
from .nodes import recognise

BACKENDS = ("numpy", "torch", "c")


def targets() -> dict:
    """The targets by name (constructed on use: the C target imports its build helpers)."""
    from .targets import NumpyTarget, TorchTarget
    table = {"numpy": NumpyTarget(), "torch": TorchTarget()}
    try:
        from .c_target import CTarget
        table["c"] = CTarget()
    except ImportError:
        pass
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
    table = targets()
    if target not in table:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(BACKENDS)}")
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
    return tgt.render(loss, lowered_functions(loss, tgt))                      # -> print + template


def generate(name_or_loss, target: str) -> str:
    """The generated source text of ``name_or_loss`` (a name of :data:`LOSSES` or a :class:`Loss`)
    for ``target`` in ``numpy``, ``torch``, ``c``."""
    files = generate_files(name_or_loss, target)
    main = next((text for name, text in files.items() if name.endswith(".c")), None)
    return main if main is not None else next(iter(files.values()))


def write_all(root, check: bool = False, names=None) -> list:
    """Write every built-in kernel (:data:`KERNELS`: the losses and the vocab-parallel shard kernels)
    for every target under ``root/{numpy,torch,c}/``.

    ``check=True`` writes nothing and returns the paths whose content differs from what would be
    generated (missing files included): drift. Otherwise returns the paths written.
    """
    root = Path(root)
    changed = []
    for target in BACKENDS:
        for name in (names or sorted(KERNELS)):
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
