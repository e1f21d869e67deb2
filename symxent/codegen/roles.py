"""Types for what the generator branches on: the :class:`Role` of a kernel argument and the :class:`Kind`
of a loss, each with the attributes the targets ask for (instead of string comparisons in every target).

Both are ``StrEnum`` s: a member is its name as a string (``Role.ROWS == "rows"``), which is also how the
generated bindings spell it for the runtime (``symxent.runtime`` never imports this module).
"""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """How a kernel argument is shaped and what it binds (``R`` rows, ``C`` classes)."""

    ROWS = "rows"                # (R, C) float array, one row per sample (binds an IndexedBase)
    INDEX = "index"              # (R,) int64 class indices in [0, C) (binds the target index c)
    LOCAL_INDEX = "local_index"  # (R,) int64: a class in [0, C), or -1 where the row's class is not among these
    #                              C classes (a vocab-parallel shard that does not own the target, an ignored
    #                              row); binds an integer Symbol that may be negative: Sum(delta(j, t) f(j)) over
    #                              the row is f(t) where 0 <= t < C and 0 otherwise
    ROW = "row"                  # (R,) float array, one value per row (binds a Symbol): a shift such as the
    #                              global row max, or a per-row coefficient
    CLASSES = "classes"          # (C,) float array, one value per class (binds an IndexedBase)
    SCALAR = "scalar"            # a Python float (binds a Symbol; the torch kernels also take a 0-d tensor)
    FLAG = "flag"                # a bool selecting a case
    ELEMENTS = "elements"        # flat float array, the same shape as the other element arrays (binds a Symbol)
    PARAMS = "params"            # dict of named floats (binds the loss's parameter Symbols)

    @property
    def is_index(self) -> bool:
        """A target-class index per row."""
        return self in (Role.INDEX, Role.LOCAL_INDEX)

    @property
    def per_row(self) -> bool:
        """One value per row, an (R,) array: a row value or a class index."""
        return self is Role.ROW or self.is_index

    @property
    def is_float_array(self) -> bool:
        """A float array: (R, C) rows, (R,) row values, (C,) class values or flat elements."""
        return self in (Role.ROWS, Role.ROW, Role.CLASSES, Role.ELEMENTS)

    @property
    def is_data(self) -> bool:
        """The array whose shape the call takes: the rows of a row kernel, the elements of an elementwise one."""
        return self in (Role.ROWS, Role.ELEMENTS)

    @property
    def binds_base(self) -> bool:
        """Binds an IndexedBase (its elements are the kernel's data), not a Symbol."""
        return self in (Role.ROWS, Role.CLASSES)

    @property
    def may_supply(self) -> bool:
        """May carry a reduction the caller computed over the whole row (``Arg.supplies``)."""
        return self in (Role.ROW, Role.SCALAR)

    @property
    def is_number(self) -> bool:
        """Passed to the kernel as numbers, not arrays: a scalar, or the parameters' values."""
        return self in (Role.SCALAR, Role.PARAMS)


class Kind(StrEnum):
    """What a :class:`~symxent.codegen.loss.Loss` computes (see its docstring for each)."""

    ROW = "row"                    # a row's loss, and its gradient by the row
    ELEMENTWISE = "elementwise"    # an element's loss, and its derivative
    MAP = "map"                    # a row map (softmax) and its vector-Jacobian product
    ROW_SUMS = "row_sums"          # named class sums of a row, no derivative
    ROW_GRADIENT = "row_gradient"  # only the gradient of a row objective (a backward kernel)

    @property
    def has_loss_and_gradient(self) -> bool:
        """Returns ``(loss, gradient or None)`` and ends its call with ``want_grad``."""
        return self in (Kind.ROW, Kind.ELEMENTWISE)

    @property
    def over_rows(self) -> bool:
        """Works on (R, C) rows with the class index ``k`` free in its outputs (not element by element)."""
        return self is not Kind.ELEMENTWISE

    @property
    def output_name(self) -> str:
        """What one case's expression is, as the generated files' headers say it."""
        return {Kind.MAP: "out[k]", Kind.ROW_SUMS: "sums", Kind.ROW_GRADIENT: "grad"}.get(self, "loss")
