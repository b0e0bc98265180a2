"""Die with the process that started us (the embedded stack), so a crashed stack leaves no orphan.

The embedded stack sets PIPELINE_PARENT_PID. On Linux the kernel then kills this process when its
parent dies (prctl PR_SET_PDEATHSIG); the stack's next start finds the lease of the abandoned run
and releases it. In ECS the variable is unset and nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    expected = os.environ.get("PIPELINE_PARENT_PID")
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return
    # The parent may have died before prctl took effect: then we were re-parented already.
    if os.getppid() != int(expected):
        os._exit(1)
