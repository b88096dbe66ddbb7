#!/usr/bin/env python3
"""Exec of `true` in a running persistent sandbox, interleaved, one run.

  sandboxd  POST /v1/sandboxes/{id}/api/execute {"command": "true"} over HTTPS
            (kept-alive connection) through nginx and a worker, straight to the
            sandbox's agent; the command runs under bash -c in its own pid and
            mount namespaces, with the sandbox's seccomp filter and limits
  nsenter   `nsenter --all --target AGENT_PID --setuid 1000 --setgid 1000 /bin/true`
            spawned directly by this script, into the same sandbox's namespaces
  engine    the same through libsandbox alone (tests/tools/sbx-run -P -n), no HTTP,
            as the agent measures it

Prints medians and p90s and the median ratio sandboxd / nsenter.

  bench/exec.py [--rounds 300] [--build-dir build]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402


def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)

    stack = Stack(build, workers=4, uid_base=910000000, uid_slots=64)
    stack.start()
    ctx = Context(stack)
    sid = "bench-exec"
    times = {"sandboxd": [], "nsenter": []}
    try:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"keepAlive": True})
        assert status in (200, 201), body
        agent = None
        for pid in stack.sandbox_pids(include_init=True):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"sandbox-agent\0serve"):
                    agent = pid
        assert agent, "no agent"
        ns = ["nsenter", "--all", "--target", str(agent), "--setuid", "1000", "--setgid", "1000",
              "/bin/true"]

        def via_sandboxd():
            status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "true"})
            assert status == 200 and res["exitCode"] == 0, res

        def via_nsenter():
            subprocess.run(ns, check=True, capture_output=True)

        variants = [("sandboxd", via_sandboxd), ("nsenter", via_nsenter)]
        for _, fn in variants:
            for _ in range(10):
                fn()
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, fn in order:
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        stack.stop()

    eng_dir = os.path.join("/tmp", f"bench-exec-engine-{os.getpid()}")
    os.makedirs(eng_dir, mode=0o711, exist_ok=True)
    os.chmod(eng_dir, 0o711)
    r = subprocess.run([os.path.join(build, "tests", "tools", "sbx-run"), "-s", eng_dir, "-P",
                        "-n", str(args.rounds), "--", "/bin/true"], capture_output=True, text=True)
    engine = [int(x) / 1000 for x in r.stderr.split()]
    print(f"rounds={args.rounds} cpus={os.cpu_count()} kernel={os.uname().release}")
    for name in ("sandboxd", "nsenter"):
        xs = times[name]
        print(f"{name:9s} median {statistics.median(xs):6.2f} ms   p90 {q(xs, 0.9):6.2f} ms")
    if engine:
        print(f"{'engine':9s} median {statistics.median(engine):6.2f} ms   p90 {q(engine, 0.9):6.2f} ms"
              "   (agent's own measure, no HTTP)")
    print(f"median ratio sandboxd/nsenter = {statistics.median(times['sandboxd']) / statistics.median(times['nsenter']):.3f}")
    # Throughput: closed loop, one connection, as above.
    print(f"sandboxd sequential rate = {1000 / statistics.median(times['sandboxd']):.0f} exec/s (one client)")


if __name__ == "__main__":
    main()
