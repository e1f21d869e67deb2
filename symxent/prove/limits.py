"""Bounded resources for a proof: a child process with a memory cap, killed at the deadline; and a
size guard on expansion.

SymPy can run away inside one call (``expand((a + b + c + d)**1000)`` grows past gigabytes), so a
check between steps cannot bound a proof. :func:`run_bounded` runs the whole decision (parsing,
symbolic steps, numeric checks, counterexample search) in a forked child whose address space is
capped (``RLIMIT_AS``: what the process has now plus ``memory``), and kills it at the deadline:
whatever the input, the caller gets an answer within the time limit, or :class:`LimitExceeded`.
:func:`guarded_expand` refuses, before calling SymPy, an expansion that would make more than
:data:`TERM_BUDGET` terms, so that the symbolic steps stop early and say why.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import select
import signal
import time

import sympy as sp

#: seconds a proof may take (``--timeout``)
DEFAULT_TIMEOUT = 10.0
#: bytes a proof may add to the address space of the process that runs it
DEFAULT_MEMORY = 1 << 30
#: the most terms an expansion may produce
TERM_BUDGET = 20_000


class LimitExceeded(Exception):
    """A proof ran out of time or memory; ``reason`` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ExpansionLimit(LimitExceeded):
    """An expansion would produce more than :data:`TERM_BUDGET` terms."""


# --- expansion ------------------------------------------------------------------------------------

def expanded_terms(expr) -> int:
    """An upper bound on the number of terms ``expand(expr)`` gives (multinomial counts for powers)."""
    if not isinstance(expr, sp.Basic) or expr.is_Atom:
        return 1
    if isinstance(expr, sp.Add):
        return sum(expanded_terms(a) for a in expr.args)
    if isinstance(expr, sp.Mul):
        return math.prod(expanded_terms(a) for a in expr.args)
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and abs(int(expr.exp)) >= 2:
        terms, power = expanded_terms(expr.base), abs(int(expr.exp))
        return math.comb(terms + power - 1, power) if terms > 1 else 1
    return 1


def check_expansion(expr, what: str = "expanding") -> None:
    """Raise :class:`ExpansionLimit` if expanding ``expr`` (or any argument inside it) would give more
    than :data:`TERM_BUDGET` terms."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Add, sp.Mul, sp.Pow)):
            count = expanded_terms(node)
            if count > TERM_BUDGET:
                text = sp.sstr(node)
                text = text if len(text) <= 60 else text[:57] + "..."
                raise ExpansionLimit(f"{what} {text} would give about {count:.3g} terms "
                                     f"(more than {TERM_BUDGET})")


def guarded_expand(expr, **hints):
    """``sympy.expand(expr, **hints)``, refused with :class:`ExpansionLimit` when it would be too large."""
    check_expansion(expr)
    return sp.expand(expr, **hints)


# --- a child process ------------------------------------------------------------------------------

def _address_space() -> int:
    """Bytes of virtual address space this process uses now (0 if unknown)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def can_isolate() -> bool:
    """Whether proofs can run in a forked child here (POSIX with fork)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


def run_bounded(function, args: tuple, timeout: float, memory: int):
    """``function(*args)`` in a forked child with ``memory`` more bytes of address space than now and
    ``timeout`` seconds. Returns its result or re-raises its exception; raises :class:`LimitExceeded`
    when the child runs out of time or memory (or dies). Where there is no fork it runs in-process."""
    if not can_isolate():
        return function(*args)
    read_end, write_end = os.pipe()
    budget = _address_space() + memory
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        status = 0
        try:
            try:
                import resource
                resource.setrlimit(resource.RLIMIT_AS, (budget, budget))
            except (ImportError, ValueError, OSError):
                pass
            try:
                outcome = ("ok", function(*args))
            except MemoryError:
                outcome = ("limit", "memory: the proof needed more than the memory limit")
            except RecursionError:
                outcome = ("limit", "recursion: the expression is nested too deeply for SymPy")
            except BaseException as exc:  # handed to the parent, re-raised there
                outcome = ("error", exc)
            try:
                data = pickle.dumps(outcome)
            except Exception as exc:  # an unpicklable result or exception
                data = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
            view = memoryview(data)
            while view:
                written = os.write(write_end, view)
                view = view[written:]
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise LimitExceeded(f"time: no answer within {timeout:g} s")
            ready, _, _ = select.select([read_end], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:  # on every way out (an answer, the deadline, Ctrl-C) the child is gone afterwards
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    if not chunks:
        raise LimitExceeded("memory: the proof process died (killed for its memory use, or it crashed)")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "ok":
        return value
    if kind == "limit":
        raise LimitExceeded(value)
    raise value
