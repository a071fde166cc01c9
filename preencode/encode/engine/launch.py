"""What a process knows of its rank before the Trainer exists: the launcher's environment variables.

Lightning runs the command again for its other local ranks with ``LOCAL_RANK`` (and ``NODE_RANK``,
``WORLD_SIZE``) set; torchrun starts every rank with ``RANK``, SLURM with ``SLURM_PROCID``, LSF and MPI
with their own. Global rank 0 is the process for which none of them names another rank: it claims the
output folder (lock, ``details.json``) before any model or data work, the others only read it.
Imports nothing heavy, so that this is decided before torch is loaded.
"""

from __future__ import annotations

import os

#: Set by the launchers Lightning supports (its own, torchrun, SLURM, LSF, MPI) in every process they start.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "NODE_RANK", "GROUP_RANK", "LOCAL_RANK", "JSM_NAMESPACE_RANK",
                  "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def launched_as_rank_zero() -> bool:
    """Whether this process will be global rank 0: no launcher variable gives it another rank."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) != 0:
            return False
    return True
