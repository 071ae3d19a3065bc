"""Runs the integration suite as N pytest processes side by side.

The suite spends most of its time waiting (timeouts, drains, reloads), so
two processes on two cores take about half the time of one. Every process
collects the whole suite and takes test files, one at a time, from a queue
(EDDY_TEST_QUEUE, read by conftest's pytest_runtestloop): none waits idle
while another still has files to run. Each process gets its own temporary
directory and its own range of listening ports below the kernel's ephemeral
range (EDDY_TEST_PORTS, read by conftest.free_ports), so no process's
clients or backends can take a port another picked for its eddy.

Usage: shards.py [-j N] [pytest arguments...]   (from the repository top)
Prints each process's output when it ends; exits non-zero if any failed
(the logs and temporary directories are then kept).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PORT_LO, PORT_HI = 10000, 32000   # below ip_local_port_range's default


def main(argv):
    n = 2
    if argv[:1] == ["-j"]:
        n, argv = max(1, int(argv[1])), argv[2:]
    top = tempfile.mkdtemp(prefix="eddy-it-")
    queue = os.path.join(top, "queue")
    os.mkdir(queue)
    span = (PORT_HI - PORT_LO) // n
    procs = []
    for k in range(n):
        env = dict(os.environ)
        lo = PORT_LO + k * span
        env["EDDY_TEST_PORTS"] = f"{lo}-{lo + span - 1}"
        env["EDDY_TEST_QUEUE"] = queue
        log = open(os.path.join(top, f"shard{k}.log"), "w+")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--basetemp", os.path.join(top, f"shard{k}")]
        cmd += argv or ["t/integration"]
        procs.append((k, subprocess.Popen(cmd, env=env, cwd=TOP, stdout=log,
                                          stderr=subprocess.STDOUT), log))
    print(f"integration: {n} processes (logs in {top})", flush=True)
    start = time.monotonic()
    failed = False
    for k, p, log in procs:
        rc = p.wait()
        log.seek(0)
        out = log.read()
        log.close()
        print(f"== process {k}: rc {rc}, {time.monotonic() - start:.0f} s")
        sys.stdout.write(out)
        sys.stdout.flush()
        failed |= rc != 0
    print(f"integration: {len(os.listdir(queue))} test files run")
    if failed:
        return 1
    shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
