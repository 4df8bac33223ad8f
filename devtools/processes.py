"""Waiting for processes the local tools started to be gone (`make stop`, the embedded server)."""
from __future__ import annotations

import os
import time


def wait_gone(pid: int, seconds: float, *, group: bool = False) -> bool:
    """True once process `pid` (or the process group it leads) no longer exists, False after
    `seconds`. A child of ours is reaped on the way, so it does not linger as a zombie."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            (os.killpg if group else os.kill)(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
