"""The runtime: compile, cache and call the generated kernels.

It never imports the generator (``symxent.codegen``), the prover (``symxent.prove``) or SymPy: a
program that only calls :mod:`symxent.functional` on the NumPy or C backend loads NumPy, this
package and the checked-in generated modules (``symxent_codegen``), nothing more.

- :mod:`~symxent.runtime.cache`: the cache directory and a self-healing load of cached libraries;
- :mod:`~symxent.runtime.c`: compile a generated C source at first use and call it on NumPy arrays;
- :mod:`~symxent.runtime.kernels`: the generated kernel of a name for a backend;
- :mod:`~symxent.runtime.cuda`: compile a generated CUDA module at first use (from its checked-in source
  and contract, ``codegen/cuda/NAME.cu`` / ``NAME.py``) and call it on CUDA tensors;
- :mod:`~symxent.runtime.cuda_autograd`: the autograd functions over the CUDA kernels (imports torch).
"""
