"""Run a script in two real processes under ``torchrun`` (``python -m torch.distributed.run``), as the DDP tests do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent.parent


def torchrun(*args: str, env: Mapping[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 ARGS`` from the repository root; output captured as text."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=None if env is None else dict(env), timeout=timeout)
