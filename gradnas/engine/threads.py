"""The intra-op thread count of a run: the config's, or one that suits the machine's load."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch


def choose_threads(configured: int, log: Callable[[str], None]) -> int:
    """Set and return torch's thread count.

    ``configured`` > 0 is used as given. With 0 (the default), torch's
    default of one thread per core is kept on an idle machine; when other
    processes already load every core, the run takes one thread, since
    threads that wait on each other across time slices made an epoch 8x
    slower (issue 20), and says so.
    """
    if configured:
        torch.set_num_threads(configured)
        return configured
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return torch.get_num_threads()
    if load < cores:
        return torch.get_num_threads()
    # Every core is taken already: one thread, which never waits on a descheduled sibling.
    torch.set_num_threads(1)
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    log(
        f"warning: the load average ({load:.1f}) fills this machine's {cores} cores, so this run "
        f"uses 1 thread{' and passive OpenMP waiting' if passive else ''}; "
        f"pass --threads N (or set threads in the config) to choose"
    )
    return 1
