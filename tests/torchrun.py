"""Run a script in two real processes under ``torchrun`` (``python -m torch.distributed.run``), as the DDP tests do:
on one machine (``--standalone --nproc_per_node=2``) or as two machines (two launchers, ``--nnodes=2
--nproc_per_node=1``, meeting at a c10d rendezvous on localhost, as the launchers of two cluster nodes would)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Mapping

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def torchrun(
    *args: str, env: Mapping[str, str] | None = None, timeout: int = 300, nodes: int = 1
) -> subprocess.CompletedProcess:
    """``torchrun ... ARGS`` from the repository root, two worker processes in all; output captured as text.

    Args:
        args: the script (or ``-m module``) and its arguments.
        env: the environment of the launchers (default: this process's).
        timeout: seconds before the launchers are killed.
        nodes: 1 for ``--standalone --nproc_per_node=2``; 2 for two launchers with one process each, which only the
            rendezvous joins (global ranks 0 and 1, local rank 0 in both).

    Returns:
        the launchers' outcome: the first non-zero exit code (else 0) and their output, node after node.
    """
    environ = None if env is None else dict(env)
    if nodes == 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=environ, timeout=timeout)
    rendezvous = [
        f"--nnodes={nodes}", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=localhost:{_free_port()}",
        f"--rdzv_id={uuid.uuid4().hex}", "--max_restarts=0",
    ]
    # the first launcher hosts the rendezvous store, as the node named in the endpoint would; every launcher on
    # localhost would otherwise take itself for that node
    commands = [
        [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--rdzv_conf=is_host={int(n == 0)}", *args]
        for n in range(nodes)
    ]
    # output to files, not pipes: a launcher blocked on a full pipe would stall the other at the next collective
    files = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in range(nodes)]
    launchers = [
        subprocess.Popen(command, stdout=o, stderr=e, text=True, cwd=REPO, env=environ)
        for command, (o, e) in zip(commands, files)
    ]
    try:
        for launcher in launchers:
            launcher.wait(timeout=timeout)
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                launcher.kill()
                launcher.wait()
    texts = []
    for o, e in files:
        o.seek(0)
        e.seek(0)
        texts.append((o.read(), e.read()))
        o.close()
        e.close()
    codes = [launcher.returncode for launcher in launchers]
    return subprocess.CompletedProcess(
        commands[0], next((c for c in codes if c), 0), "".join(o for o, _ in texts), "".join(e for _, e in texts)
    )
