#!/usr/bin/env python3
"""Wake on demand: the first exec of `true` in a sandbox that sleeps (its
agent ended after sleepAfter; its disk stays mounted), against an exec in the
same sandbox once awake.  Each round puts a sandbox to sleep (sleepAfter 1 s,
then waits for the master's log line and for GET to say "sleeping"), then
times the exec that wakes it and the exec after it.

  bench/wake.py [--rounds 20] [--build-dir build]
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    stack = Stack(os.path.abspath(args.build_dir), workers=4, uid_base=1600000000, uid_slots=16)
    stack.start()
    wake, awake = [], []
    try:
        ctx = Context(stack)
        sid = "bench-wake"
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"sleepAfter": 1})
        assert status in (200, 201), body

        def exec_true():
            t0 = time.perf_counter()
            status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "true"})
            assert status == 200 and res["exitCode"] == 0, res
            return (time.perf_counter() - t0) * 1000

        exec_true()
        for r in range(args.rounds):
            stack.wait_log(f"sandbox {sid}: idle for 1 s, going to sleep".encode(), 30, count=r + 1)
            while ctx.json("GET", f"/v1/sandboxes/{sid}")[1]["state"] != "sleeping":
                pass
            wake.append(exec_true())
            awake.append(exec_true())
    finally:
        stack.stop()
    print(f"rounds={args.rounds} cpus={os.cpu_count()} kernel={os.uname().release}")
    for name, xs in (("wake", wake), ("awake", awake)):
        xs = sorted(xs)
        print(f"{name:6s} median {statistics.median(xs):6.2f} ms   p90 {xs[int(0.9 * len(xs))]:6.2f} ms")


if __name__ == "__main__":
    main()
