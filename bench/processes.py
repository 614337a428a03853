"""Processes the benchmarks start or watch: a Chroma server, and resident memory read from ``/proc``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def memory_kb(pid: int) -> tuple[int, int]:
    """(current, peak) resident set of a running process in kB (``VmRSS``, ``VmHWM``); (0, 0) once it is gone."""
    found = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in found:
                found[key] = int(line.split()[1])
    except OSError:
        pass
    return found["VmRSS:"], found["VmHWM:"]


def memory_mb(pid: int) -> tuple[float, float]:
    """:func:`memory_kb` in MB."""
    current, peak = memory_kb(pid)
    return current / 1024, peak / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_chroma(path: Path, port: int) -> subprocess.Popen[bytes]:
    """A Chroma server (``chroma run`` from this venv) on ``port`` storing under ``path``, once it answers."""
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen([str(chroma), "run", "--path", str(path), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"chroma run exited with {server.returncode}") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the Chroma server on port {port} did not answer within 5 minutes")
