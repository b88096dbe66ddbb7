#!/usr/bin/env python3
"""One-shot run latency: `print(1)` in Python, interleaved, one run.

  sandboxd  POST /v1/run through nginx (HTTPS, a kept-alive connection) -> a
            fresh sandbox (user+pid+mount+net+ipc+uts+cgroup namespaces,
            pivot_root, seccomp, cgroup limits) -> result JSON
  bwrap     bubblewrap spawned directly by this script with a comparable
            layout (--unshare-all, read-only /usr, /proc, /dev, tmpfs /tmp)
  engine    tests/tools/sbx-run: libsandbox alone, no HTTP (for attribution)
  bare      python3 -c 'print(1)' with no sandbox at all (the floor)

The order of the variants rotates every round so that none always runs first.
Prints the median and p90 of each and the median ratio sandboxd / bwrap.

  bench/oneshot.py [--rounds 200] [--build-dir build]
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

PY = "/usr/bin/python3"
CODE = "print(1)"


def bwrap_argv():
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--tmpfs", "/workspace", "--chdir", "/workspace",
            "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache", "--clearenv",
            "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/workspace"]
    for top in ("bin", "sbin", "lib", "lib64"):
        p = "/" + top
        if os.path.islink(p):
            argv += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            argv += ["--ro-bind", p, p]
    return argv + [PY, "-c", CODE]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--warm-pool", type=int, default=None,
                    help="sandboxd's warm_pool (default: sandboxd's default)")
    ap.add_argument("--variants", default="sandboxd,bwrap,engine,bare",
                    help="comma-separated subset to run")
    args = ap.parse_args()

    env = {} if args.warm_pool is None else {"SANDBOXD_WARM_POOL": str(args.warm_pool)}
    stack = Stack(os.path.abspath(args.build_dir), workers=4, uid_base=900000000, uid_slots=64, env=env)
    stack.start()
    ctx = Context(stack)
    bw = bwrap_argv()
    engine = [os.path.join(args.build_dir, "tests", "tools", "sbx-run"), "-s",
              os.path.join(stack.dir, "engine-state"), "--", PY, "-c", CODE]
    os.makedirs(os.path.join(stack.dir, "engine-state"), mode=0o711, exist_ok=True)
    os.chmod(os.path.join(stack.dir, "engine-state"), 0o711)

    def via_sandboxd():
        status, body = ctx.run(CODE)
        assert status == 200 and body["output"] == "1\n", body

    def via_bwrap():
        out = subprocess.run(bw, capture_output=True, check=True).stdout
        assert out == b"1\n", out

    def via_engine():
        out = subprocess.run(engine, capture_output=True, check=True).stdout
        assert out == b"1\n", out

    def bare():
        out = subprocess.run([PY, "-c", CODE], capture_output=True, check=True).stdout
        assert out == b"1\n", out

    variants = [("sandboxd", via_sandboxd), ("bwrap", via_bwrap), ("engine", via_engine), ("bare", bare)]
    variants = [v for v in variants if v[0] in args.variants.split(",")]
    times = {name: [] for name, _ in variants}
    try:
        for name, fn in variants:  # warm-up: page cache, TLS session, worker start
            for _ in range(5):
                fn()
        for r in range(args.rounds):
            k = r % len(variants)
            for name, fn in variants[k:] + variants[:k]:
                times[name].append(timed(fn))
    finally:
        stack.stop()

    def q(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    print(f"rounds={args.rounds} warm_pool={args.warm_pool if args.warm_pool is not None else 'default'} "
          f"cpus={os.cpu_count()} kernel={os.uname().release}")
    for name, _ in variants:
        xs = times[name]
        print(f"{name:9s} median {statistics.median(xs):7.2f} ms   p90 {q(xs, 0.9):7.2f} ms")
    if "sandboxd" in times and "bwrap" in times:
        ratio = statistics.median(times["sandboxd"]) / statistics.median(times["bwrap"])
        print(f"median ratio sandboxd/bwrap = {ratio:.3f}")
    print(json.dumps({n: round(statistics.median(t), 3) for n, t in times.items()}))


if __name__ == "__main__":
    main()
