#!/usr/bin/env python3
"""`1 + 1` in a warm code context, interleaved with the cold ways, one run.

  context    POST /v1/sandboxes/{id}/run-code {"code": "1 + 1", "context": CID}
             over HTTPS (kept-alive connection) through nginx and a worker to
             the sandbox's agent, which lends the worker the pipes of the
             context's python3 (already running, numpy/pandas not imported)
  stream     the same cell as POST .../api/execute/code (SSE, the SDK's route)
  python3 -c `/usr/bin/python3 -c 'print(1+1)'` (Debian's, as in the sandbox) spawned directly, no
             sandbox: an interpreter's start-up, which a warm context skips
  exec       POST .../api/execute {"command": "python3 -c 'print(1+1)'"}: the
             same start-up, inside the sandbox
  ping       GET .../api/ping: the HTTPS round trip through nginx and a worker
             alone, the floor under every call

Prints medians and p99s, and the median ratio python3 -c / context.

Then a context's start, --start-rounds times for each language, interleaved:

  create LANG       POST .../api/contexts {"language": LANG}: answered when
                    the new driver said it is ready (then deleted, untimed)
  create+cell LANG  the same and its first cell, `1 + 1`
  node -e           `/usr/bin/node -e 1` spawned directly: Node's own start-up

  bench/interp.py [--rounds 500] [--start-rounds 30] [--build-dir build]
"""
import argparse
import json
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
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--start-rounds", type=int, default=30)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()

    stack = Stack(os.path.abspath(args.build_dir), workers=4, uid_base=930000000, uid_slots=16)
    stack.start()
    ctx = Context(stack)
    sid = "bench-interp"
    times = {"context": [], "stream": [], "python3 -c": [], "exec": [], "ping": []}
    try:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"keepAlive": True})
        assert status in (200, 201), body
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/contexts", {"language": "python"})
        assert status == 200, body
        cid = body["contextId"]

        def context():
            status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/run-code",
                                   {"code": "1 + 1", "context": cid})
            assert status == 200 and res["results"][0]["text"] == "2", res

        def stream():
            status, headers, raw = ctx.request("POST", f"/v1/sandboxes/{sid}/api/execute/code",
                                               json.dumps({"context_id": cid, "code": "1 + 1"}))
            assert status == 200 and b'"text":"2"' in raw and b"execution_complete" in raw, raw

        def direct():
            r = subprocess.run(["/usr/bin/python3", "-c", "print(1+1)"], capture_output=True)
            assert r.stdout == b"2\n"

        def exec_():
            status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                                   {"command": "python3 -c 'print(1+1)'"})
            assert status == 200 and res["stdout"] == "2\n", res

        def ping():
            status, res = ctx.json("GET", f"/v1/sandboxes/{sid}/api/ping")
            assert status == 200 and res["status"] == "healthy", res

        variants = [("context", context), ("stream", stream), ("python3 -c", direct),
                    ("exec", exec_), ("ping", ping)]
        for _, fn in variants:
            for _ in range(10):
                fn()
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, fn in order:
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1000)

        starts = {}

        def create(lang, cell):
            t0 = time.perf_counter()
            status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/contexts", {"language": lang})
            assert status == 200, body
            if cell:
                status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/run-code",
                                       {"code": "1 + 1", "context": body["contextId"]})
                assert status == 200 and res["results"][0]["text"] == "2", res
            took = (time.perf_counter() - t0) * 1000
            status, _ = ctx.json("DELETE", f"/v1/sandboxes/{sid}/api/contexts/{body['contextId']}")
            assert status == 200
            return took

        def node():
            t0 = time.perf_counter()
            r = subprocess.run(["/usr/bin/node", "-e", "1"], capture_output=True)
            assert r.returncode == 0, r
            return (time.perf_counter() - t0) * 1000

        kinds = [(f"create {lang}", lambda lang=lang: create(lang, False))
                 for lang in ("python", "javascript", "typescript")]
        kinds += [(f"create+cell {lang}", lambda lang=lang: create(lang, True))
                  for lang in ("python", "javascript", "typescript")]
        kinds += [("node -e", node)]
        for name, fn in kinds:
            fn()  # warm the page cache
            starts[name] = []
        for r in range(args.start_rounds):
            for name, fn in (kinds if r % 2 == 0 else kinds[::-1]):
                starts[name].append(fn())
    finally:
        stack.stop()

    print(f"{'variant':12} {'median ms':>10} {'p99 ms':>10}  (n={args.rounds})")
    for name, xs in times.items():
        print(f"{name:12} {statistics.median(xs):10.3f} {q(xs, 0.99):10.3f}")
    ratio = statistics.median(times["python3 -c"]) / statistics.median(times["context"])
    print(f"median ratio python3 -c / context: {ratio:.1f}x")
    print()
    print(f"{'start':22} {'median ms':>10} {'p99 ms':>10}  (n={args.start_rounds})")
    for name, xs in starts.items():
        print(f"{name:22} {statistics.median(xs):10.3f} {q(xs, 0.99):10.3f}")


if __name__ == "__main__":
    main()
