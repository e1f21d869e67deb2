"""Run a function on P local processes joined in a gloo process group (CPU): tests, demos, ``symxent verify``.

    results = run_on_ranks(my_function, 2, arg)   # my_function(rank, world_size, arg) on each rank

``my_function`` must be importable by name (a module-level function): the processes are started with
``torch.multiprocessing`` (start method "spawn"). Its return values come back in rank order.
"""
from __future__ import annotations

import os
import pickle
import sys
import tempfile


def _entry(rank, world_size, workdir, function, args):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    # local processes talk over the loopback device (the host name may resolve to an unreachable address)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo" if sys.platform.startswith("linux") else "lo0")
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(workdir, 'rendezvous')}",
                            rank=rank, world_size=world_size)
    try:
        result = function(rank, world_size, *args)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(workdir, f"rank{rank}.pickle"), "wb") as out:
        pickle.dump(result, out)


#: seconds the ranks may take together before they are killed (a collective that some rank never joins hangs)
TIMEOUT = 600


def run_on_ranks(function, world_size: int, *args, timeout: float = TIMEOUT) -> list:
    """``[function(rank, world_size, *args) for each rank]``, each rank in its own gloo process; ``TimeoutError``
    (the ranks killed) after ``timeout`` seconds."""
    import time

    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    with tempfile.TemporaryDirectory(prefix="symxent-gloo-") as workdir:
        context = mp.start_processes(_entry, args=(world_size, workdir, function, args), nprocs=world_size,
                                     join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError(f"{function.__name__} on {world_size} gloo ranks did not finish within "
                                   f"{timeout:g} s (a collective that some rank never reached?); the ranks were killed")
        results = []
        for rank in range(world_size):
            with open(os.path.join(workdir, f"rank{rank}.pickle"), "rb") as result:
                results.append(pickle.load(result))
    return results
