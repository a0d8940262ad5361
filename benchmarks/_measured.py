"""Wall time and peak RSS of a whole command, measured from a small launcher process.

Why a launcher: Linux keeps a process's largest resident set across ``exec``, and a
child that ``subprocess`` starts (fork or vfork, then exec) begins with its parent's
memory mapped. ``os.wait4`` on a child of a benchmark that has grown (it generated a
350 MB cohort, or imported pandas) therefore reports the benchmark's own peak when
the child's is smaller: a parent holding 800 MB made ``python -c pass`` read 788 MiB.
A fresh Python of a few MiB starts the command instead and reports what ``wait4``
says about it: the largest of the command's processes, as ``/usr/bin/time`` prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_LAUNCHER = r"""
import json, os, subprocess, sys, time
log, cmd = sys.argv[1], sys.argv[2:]
with open(log, "w") as out:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
print(json.dumps({"wall_s": wall, "returncode": os.waitstatus_to_exitcode(status),
                  "peak_rss_mib": usage.ru_maxrss / 1024}))
"""


def run_measured(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None
                 ) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit status) of ``cmd``, its output (stdout and stderr) written to ``log``."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(log), *cmd], capture_output=True, text=True,
                          env=env, cwd=cwd, check=True)
    m = json.loads(done.stdout.strip().splitlines()[-1])
    return m["wall_s"], m["peak_rss_mib"], m["returncode"]
