#!/usr/bin/env python3
"""Persistent sandboxes at scale, one run:

  first-exec  POST /v1/sandboxes/NEW/api/execute {"command": "true"} for new IDs:
              creation (workspace, uid slot, agent) plus the command
  memory      host memory per idle running sandbox: MemAvailable before and
              after starting N sandboxes (kernel and agent together), / N
  running     N sandboxes running at once (their agents alive), and how long
              starting them took
  throughput  exec of `true` by C concurrent clients, each with its own
              kept-alive HTTPS connection and its own sandbox, for S seconds

  bench/scale.py [--sandboxes 1000] [--clients 8] [--seconds 10] [--build-dir build]
"""
import argparse
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise RuntimeError("no MemAvailable")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandboxes", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()

    stack = Stack(os.path.abspath(args.build_dir), workers=8, uid_base=1000000000,
                  uid_slots=args.sandboxes + 64, env={"SANDBOXD_WARM_POOL": "0"})
    stack.start()
    ctx = Context(stack)
    try:
        # First exec of a new ID.
        first = []
        for i in range(100):
            t0 = time.perf_counter()
            status, body = ctx.json("POST", f"/v1/sandboxes/new-{i}/api/execute", {"command": "true"})
            first.append((time.perf_counter() - t0) * 1000)
            assert status == 200 and body["exitCode"] == 0, body
        for i in range(100):
            ctx.json("DELETE", f"/v1/sandboxes/new-{i}")
        stack.wait_log(b"sandbox new-99 deleted", 120)

        # N sandboxes running at once.
        before = mem_available_kib()
        t0 = time.perf_counter()
        for i in range(args.sandboxes):
            status, body = ctx.json("PUT", f"/v1/sandboxes/s-{i}", {"keepAlive": True})
            assert status == 201, body
        start_s = time.perf_counter() - t0
        after = mem_available_kib()
        running = len(stack.sandbox_pids(include_init=True))
        per_kib = (before - after) / args.sandboxes

        # Throughput: C clients, each on its own sandbox and connection.
        counts = [0] * args.clients
        stop = time.monotonic() + args.seconds

        def client(k):
            c = Context(stack)
            while time.monotonic() < stop:
                status, body = c.json("POST", f"/v1/sandboxes/s-{k}/api/execute", {"command": "true"})
                assert status == 200, body
                counts[k] += 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rate = sum(counts) / (time.monotonic() - t0)
    finally:
        stack.stop()

    print(f"cpus={os.cpu_count()} kernel={os.uname().release} sandboxes={args.sandboxes} "
          f"clients={args.clients}")
    xs = sorted(first)
    print(f"first exec of a new ID: median {statistics.median(xs):.2f} ms, p90 {xs[int(0.9 * len(xs))]:.2f} ms")
    print(f"{args.sandboxes} sandboxes started in {start_s:.1f} s; {running} sandbox inits running at once")
    print(f"host memory per idle running sandbox: {per_kib:.0f} KiB")
    print(f"throughput: {rate:.0f} exec/s with {args.clients} clients")


if __name__ == "__main__":
    main()
