#!/usr/bin/env python3
"""Runs every test of sandboxd and prints one closing line: "N passed, N failed".

  tests/run.py --build-dir build [--only PATTERN] [--keep]

1. The cmocka unit binaries (build/tests/unit/test_*), counted test by test.
2. The libFuzzer targets (tests/fuzz), each for --fuzz-seconds over its corpus.
3. The Python suites (tests/{integration,security,limits,faults,interpreter}/test_*.py) against
   one real stack: nginx with the shipped config and a real sandboxd, started
   here.  Each test_*(ctx) function is one test.

A test that cannot run where it must (not root, no user namespaces, nginx
missing) is a failure, never a skip.
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "lib"))

from stack import Stack  # noqa: E402
from context import Context  # noqa: E402

SUITES = ["integration", "security", "limits", "faults", "interpreter"]


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []

    def ok(self, name, secs=None):
        self.passed += 1
        print(f"ok   {name}" + (f" ({secs:.2f}s)" if secs is not None else ""), flush=True)

    def fail(self, name, why):
        self.failed += 1
        self.failures.append(name)
        print(f"FAIL {name}\n     " + why.replace("\n", "\n     "), flush=True)


def run_unit(build_dir, tally, only):
    binaries = sorted(glob.glob(os.path.join(build_dir, "tests", "unit", "test_*")))
    binaries = [b for b in binaries if os.access(b, os.X_OK) and not b.endswith((".o", ".c"))]
    if not binaries:
        tally.fail("unit: binaries", f"no unit test binaries under {build_dir}/tests/unit (was it built?)")
        return
    for b in binaries:
        name = os.path.basename(b)
        if only and not re.search(only, name):
            continue
        r = subprocess.run([b], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        oks = re.findall(r"^\[\s+OK\s+\] (\S+)", out, re.M)
        bad = sorted(set(re.findall(r"^\[\s+FAILED\s+\] (\S+)$", out, re.M)))
        for t in oks:
            tally.ok(f"unit/{name}/{t}")
        for t in bad:
            if t.isdigit():
                continue
            tally.fail(f"unit/{name}/{t}", out[-3000:])
        if r.returncode != 0 and not bad:
            tally.fail(f"unit/{name}", f"exit {r.returncode} without a failed test:\n{out[-3000:]}")
        if r.returncode == 0 and not oks:
            tally.fail(f"unit/{name}", f"ran no test:\n{out[-3000:]}")


def run_fuzz(build_dir, tally, only, seconds):
    """Builds the libFuzzer targets and runs each for a bounded time over its
    kept corpus (tests/fuzz/corpus/NAME); new inputs go to a scratch directory.
    A crash, leak or sanitizer report fails the target."""
    names = ["fuzz_request", "fuzz_conf"]
    names = [n for n in names if not only or re.search(only, "fuzz/" + n)]
    if not names:
        return
    out = os.path.join(build_dir, "fuzz")
    r = subprocess.run([os.path.join(HERE, "fuzz", "build.sh"), out], capture_output=True, text=True)
    if r.returncode != 0:
        tally.fail("fuzz/build", r.stdout[-2000:] + r.stderr[-2000:])
        return
    for name in names:
        corpus = os.path.join(HERE, "fuzz", "corpus", name[len("fuzz_"):])
        with tempfile.TemporaryDirectory(prefix="sandboxd-fuzz-") as scratch:
            t0 = time.monotonic()
            r = subprocess.run([os.path.join(out, name), f"-max_total_time={seconds}", "-timeout=10",
                                f"-artifact_prefix={scratch}/", scratch, corpus],
                               capture_output=True, text=True, timeout=seconds + 120)
            if r.returncode == 0 and "Done" in r.stderr:
                tally.ok(f"fuzz/{name}", time.monotonic() - t0)
            else:
                tally.fail(f"fuzz/{name}", f"exit {r.returncode}\n" + r.stderr[-3000:])


def preflight(tally):
    """What the stack needs; missing pieces are failures, loudly."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root: sandboxd's master must run as root")
    for tool in ("nginx", "openssl"):
        if not any(os.access(os.path.join(p, tool), os.X_OK) for p in os.environ.get("PATH", "").split(":") + ["/usr/sbin"]):
            problems.append(f"{tool} is not installed")
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                problems.append("user namespaces are disabled (user.max_user_namespaces=0)")
    except OSError:
        problems.append("no /proc/sys/user/max_user_namespaces: kernel without user namespaces")
    for p in problems:
        tally.fail("preflight", p)
    return not problems


def load_tests(only):
    tests = []
    for suite in SUITES:
        for path in sorted(glob.glob(os.path.join(HERE, suite, "test_*.py"))):
            modname = f"{suite}_{os.path.basename(path)[:-3]}"
            spec = importlib.util.spec_from_file_location(modname, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            for attr in sorted(vars(mod)):
                fn = getattr(mod, attr)
                if attr.startswith("test_") and callable(fn):
                    name = f"{suite}/{os.path.basename(path)[:-3]}::{attr}"
                    if only and not re.search(only, name):
                        continue
                    tests.append((name, fn, getattr(mod, "STACK", None)))
    return tests


def run_suites(build_dir, tally, only, keep):
    try:
        tests = load_tests(only)
    except Exception:
        tally.fail("load tests", traceback.format_exc())
        return
    if not tests:
        return
    if not preflight(tally):
        return
    stack = Stack(build_dir)
    try:
        stack.start()
    except Exception:
        tally.fail("stack start", traceback.format_exc() + "\n" + _tail(stack))
        stack.stop(keep_dir=True)
        return
    ctx = Context(stack)
    try:
        for name, fn, _ in tests:
            t0 = time.monotonic()
            try:
                fn(ctx)
            except Exception as e:
                detail = traceback.format_exc() if not isinstance(e, AssertionError) else f"{e}\n{traceback.format_exc(limit=-2)}"
                tally.fail(name, detail + _tail(stack))
            else:
                tally.ok(name, time.monotonic() - t0)
            if stack.sandboxd.poll() is not None:
                tally.fail(f"{name} (after)", f"sandboxd died: exit {stack.sandboxd.returncode}\n" + _tail(stack))
                stack.stop_sandboxd()
                stack.start_sandboxd()
    finally:
        rc = stack.stop(keep_dir=keep or tally.failed > 0)
        if rc not in (0, None):
            tally.fail("stack stop", f"sandboxd exited {rc} on SIGTERM\n" + _tail(stack))
        left = stack.sandbox_pids(include_init=True)
        if left:
            tally.fail("stack stop", f"sandbox processes left on the host after stop: {left}")
        if tally.failed:
            print(f"(logs kept in {stack.dir})", flush=True)


def _tail(stack):
    try:
        return "\n--- sandboxd log (tail) ---\n" + stack.log_text()[-1500:]
    except Exception:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", help="regular expression on test names")
    ap.add_argument("--keep", action="store_true", help="keep the stack's directory")
    ap.add_argument("--no-unit", action="store_true")
    ap.add_argument("--fuzz-seconds", type=int, default=15,
                    help="time for each fuzz target (0: skip fuzzing)")
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    tally = Tally()
    if not args.no_unit:
        run_unit(build_dir, tally, args.only)
    if args.fuzz_seconds > 0:
        run_fuzz(build_dir, tally, args.only, args.fuzz_seconds)
    run_suites(build_dir, tally, args.only, args.keep)
    if tally.failures:
        print("failed: " + ", ".join(tally.failures))
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed or tally.passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
