"""How torch's OpenMP threads wait, chosen before torch is imported.

OpenMP reads ``OMP_WAIT_POLICY`` once, when torch loads it. Its default
(active) makes idle threads spin: fastest on an idle machine, but with other
processes on the same cores the spinning threads take their time slices, and
a default digits epoch measured on 2 shared cores took 142 s instead of 17 s
(issue 20). The passive policy gives the cores away while waiting, at a cost
alone (35 s instead of 15 s, same source), so it is set only when the load
already fills the cores, and never over a value the user set. Importing this
module (the CLI does, before anything imports torch) applies the choice.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping


def machine_busy() -> bool:
    """Whether the 1-minute load average already fills every core."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this system
        return False
    return load >= (os.cpu_count() or 1)


def choose_wait_policy(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """``OMP_WAIT_POLICY=PASSIVE`` on a busy machine unless the user chose one; the value set."""
    if "OMP_WAIT_POLICY" in environ or not machine_busy():
        return None
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


choose_wait_policy()
