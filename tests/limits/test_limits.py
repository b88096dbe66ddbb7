"""Resource-exhaustion attacks (catalogue group A, and B3) through POST /v1/run.

Each test runs the attack in a fresh sandbox with a short timeout, asserts the
clear outcome the contract promises (EAGAIN at pids.max, OOM kill at
memory.max, ENOSPC at the tmpfs size, EMFILE at RLIMIT_NOFILE, timedOut at the
wall-clock limit, truncated at the 1 MiB output cap, ...), then that no
sandbox process is left on the host, GET /healthz is 200 and the next run
prints 42.  Every attack is capped so that, if a limit were missing, the test
fails on its own cap instead of hurting the host.
"""
import collections
import json
import os
import secrets
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from probe import (ProcEvents, baseline, check_recovered, fd_ready, last_json, run_code,  # noqa: E402
                   scan_sandbox, short)

MIB = 1 << 20


# ---------------------------------------------------------------------------
# Helpers.

def _assert_timed_out(body, elapsed, timeout_ms, what, grace_ms=3000):
    assert body.get("timedOut") is True, f"{what}: timedOut={body.get('timedOut')}: {short(body)}"
    assert body.get("success") is False, f"{what}: success={body.get('success')} for a timed-out run"
    et = body.get("executionTime")
    assert isinstance(et, int) and timeout_ms * 0.9 <= et <= timeout_ms + grace_ms, (
        f"{what}: executionTime {et} ms for a {timeout_ms} ms timeout")
    assert elapsed <= (timeout_ms + grace_ms) / 1000 + 5, (
        f"{what}: the request took {elapsed:.1f} s for a {timeout_ms} ms timeout")
    assert body.get("signal") in (None, 9), (
        f"{what}: ended by signal {body.get('signal')}, only SIGKILL can end it: {short(body)}")


def _host_shmem_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1])
    raise AssertionError("no Shmem line in /proc/meminfo")


def _assert_shmem_back(before_kib, what, slack_kib=64 * 1024):
    """tmpfs pages of a dead sandbox must be freed.  They go with its mount
    namespace, which dies with the sandbox's last process, before sandboxd
    answers the run (and check_recovered has also seen every process of it
    gone): one look, no waiting."""
    now = _host_shmem_kib()
    assert now <= before_kib + slack_kib, (
        f"host Shmem still {(now - before_kib) / 1024:.0f} MiB above its level before {what}: "
        f"the sandbox's tmpfs was not freed")


# ---------------------------------------------------------------------------
# A1, A2: pids.max.

def test_a01_fork_bomb_python_stops_at_pids_limit(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import errno, json, os, signal
devnull = os.open("/dev/null", os.O_RDWR)
kids, err = [], None
while len(kids) < 600:                  # 600 > pids.max 256: the cap if no limit
    try:
        pid = os.fork()
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    if pid == 0:
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            while True:
                signal.pause()
        finally:
            os._exit(0)
    kids.append(pid)
n = len(kids)
for pid in kids:
    os.kill(pid, signal.SIGKILL)
for pid in kids:
    os.waitpid(pid, 0)
pid = os.fork()                          # the counter went down again
if pid == 0:
    os._exit(7)
_, st = os.waitpid(pid, 0)
print(json.dumps({"forks": n, "error": err, "refork": os.waitstatus_to_exitcode(st)}))
''', timeout=5000)
    r = last_json(body, "python fork bomb")
    assert r["error"] == "EAGAIN", f"fork() did not fail with EAGAIN: {r}"
    assert 10 <= r["forks"] < 256, f"{r['forks']} forks succeeded: pids.max 256 not applied ({r})"
    assert r["refork"] == 7 and body["exitCode"] == 0 and not body["timedOut"], f"{r} {short(body)}"
    check_recovered(ctx, base, "a python fork bomb")


def test_a01_fork_bomb_bash_classic_is_killed_at_timeout(ctx):
    base = baseline(ctx)
    during = {"peak": 0}
    stop = os.eventfd(0)
    events = ProcEvents()

    def watch():
        # Once the bomb has filled the sandbox, the host must still fork.  The
        # bomb's processes share one host uid (other sandboxes, e.g. a warm
        # pool, and the sandbox's init have others): count per uid.  A count
        # changes only on a fork or an exit, so /proc is scanned after each
        # batch of process events (a wake-up: lost events do not matter), and
        # once more at the end.
        while True:
            last = fd_ready(stop)
            events.read(0 if last else None, stop)
            per_uid = collections.Counter(u for p, u in scan_sandbox(ctx).items() if p not in base)
            n = max(per_uid.values(), default=0)
            during["peak"] = max(during["peak"], n)
            if n >= 100 and "host_fork_rc" not in during:
                during["host_fork_rc"] = subprocess.run(["/bin/true"]).returncode
            if last:
                return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        body, elapsed = run_code(ctx, 'bomb() { bomb | bomb & }; bomb\nwhile :; do :; done\n', language="bash",
                                 timeout=2000)
    finally:
        os.eventfd_write(stop, 1)
        t.join(10)
        events.close()
        os.close(stop)
    _assert_timed_out(body, elapsed, 2000, "bash fork bomb")
    assert during["peak"] <= 256, f"the bomb reached {during['peak']} host processes of one uid (pids.max 256)"
    assert during.get("host_fork_rc") == 0, (
        f"the bomb never filled the sandbox or the host could not fork meanwhile: {during}")
    check_recovered(ctx, base, "the classic bash fork bomb")


def test_a02_thread_bomb_stops_at_pids_limit(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import json, threading
threading.stack_size(256 * 1024)
ev = threading.Event()
threads, err = [], None
while len(threads) < 600:
    t = threading.Thread(target=ev.wait, daemon=True)
    try:
        t.start()
    except RuntimeError as e:
        err = str(e)
        break
    threads.append(t)
n = len(threads)
ev.set()
for t in threads:
    t.join()
t = threading.Thread(target=lambda: None)
t.start()
t.join()
print(json.dumps({"threads": n, "error": err}))
''', timeout=5000)
    r = last_json(body, "thread bomb")
    assert r["error"] and "thread" in r["error"], f"thread creation never failed: {r}"
    assert 10 <= r["threads"] < 256, f"{r['threads']} threads started: pids.max 256 not applied ({r})"
    assert body["exitCode"] == 0 and not body["timedOut"], short(body)
    check_recovered(ctx, base, "a thread bomb")


# ---------------------------------------------------------------------------
# A3, A5: memory.max.

def _assert_oom(body, what):
    out = body.get("output") or ""
    assert "NOT_KILLED" not in out, f"{what}: allocated up to the test's own cap, no memory limit: {short(body)}"
    assert body.get("oomKilled") is True and body.get("signal") == 9, (
        f"{what}: expected oomKilled=true and signal=9: {short(body)}")
    assert body.get("timedOut") is False and body.get("success") is False, short(body)
    mibs = [int(x) for x in out.split() if x.isdigit()]
    assert not mibs or max(mibs) <= 512, f"{what}: reported {max(mibs)} MiB before the kill (memory.max 512 MiB)"


def test_a03_memory_bomb_python_is_oom_killed(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
chunks = []
for i in range(1, 65):                     # up to 4 GiB, touched (b"\x01" * n writes every page)
    chunks.append(b"\x01" * (64 << 20))
    print(i * 64, flush=True)
print("NOT_KILLED", flush=True)
''', timeout=5000)
    _assert_oom(body, "python memory bomb")
    assert (body.get("output") or "").split(), f"the bomb printed no progress before the kill: {short(body)}"
    check_recovered(ctx, base, "a python memory bomb")


def test_a03_memory_bomb_javascript_is_oom_killed(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
const a = [];
for (let i = 1; i <= 64; i++) {
  a.push(Buffer.alloc(64 << 20, 1));
  process.stdout.write(`${i * 64}\n`);
}
console.log("NOT_KILLED");
''', language="javascript", timeout=5000)
    _assert_oom(body, "javascript memory bomb")
    check_recovered(ctx, base, "a javascript memory bomb")


def test_a05_sparse_mapping_touched_is_oom_killed(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import json, mmap
try:
    m = mmap.mmap(-1, 8 << 30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0x4000))
except OSError as e:
    print(json.dumps({"mmap": "refused", "errno": e.errno}), flush=True)
    raise SystemExit(0)
print("mapped", flush=True)
for off in range(0, 2 << 30, 4096):       # touch up to 2 GiB of it
    m[off] = 1
    if off % (64 << 20) == 0 and off:
        print(off >> 20, flush=True)
print("NOT_KILLED", flush=True)
''', timeout=5000)
    out = body.get("output") or ""
    if '"mmap": "refused"' in out:       # RLIMIT_AS refused the 8 GiB mapping: contained too
        assert body["exitCode"] == 0, short(body)
    else:
        assert "mapped" in out, f"the mapping probe did not run: {short(body)}"
        _assert_oom(body, "touched MAP_NORESERVE mapping")
    check_recovered(ctx, base, "a sparse mapping being touched")


# ---------------------------------------------------------------------------
# A6: tmpfs fill.

_FILL = r'''
import errno, json, os
d = "@DIR@/sbx-fill-@TOK@"
cap = @CAP@ << 20
os.mkdir(d)
block = b"\x01" * (1 << 20)
written, err, i = 0, None, 0
while written < cap and err is None:
    path = "%s/f%d" % (d, i)
    i += 1
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
    try:
        for _ in range(4):                 # 4 MiB files: RLIMIT_FSIZE is not what is tested here
            n = os.write(fd, block)
            written += n
            if n < len(block):
                raise OSError(errno.ENOSPC, "short write")
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
    finally:
        os.close(fd)
print(json.dumps({"written_mib": written / 1048576.0, "error": err, "files": i}), flush=True)
'''


def _fill(ctx, directory, cap_mib):
    tok = secrets.token_hex(6)
    code = _FILL.replace("@DIR@", directory).replace("@TOK@", tok).replace("@CAP@", str(cap_mib))
    before = _host_shmem_kib()
    body, _ = run_code(ctx, code, timeout=5000)
    host_dir = f"{directory}/sbx-fill-{tok}"
    if os.path.isdir(host_dir):          # the sandbox wrote into the host's directory
        import shutil
        shutil.rmtree(host_dir, ignore_errors=True)
        raise AssertionError(f"the fill landed in the host's {directory}")
    return body, before


def test_a06_tmp_fill_stops_at_tmpfs_size(ctx):
    base = baseline(ctx)
    body, before = _fill(ctx, "/tmp", 1024)
    r = last_json(body, "/tmp fill")
    assert r["error"] == "ENOSPC", f"/tmp fill did not end in ENOSPC: {r} {short(body)}"
    assert 128 <= r["written_mib"] <= 256.5, f"/tmp took {r['written_mib']:.1f} MiB (tmpfs size 256 MiB)"
    assert body["exitCode"] == 0 and not body["oomKilled"], short(body)
    check_recovered(ctx, base, "filling /tmp")
    _assert_shmem_back(before, "filling /tmp")


def test_a06_dev_shm_fill_is_contained(ctx):
    base = baseline(ctx)
    body, before = _fill(ctx, "/dev/shm", 1536)
    if body.get("oomKilled"):
        # No size= on /dev/shm: memory.max caught it, which is contained too.
        assert body.get("signal") == 9, short(body)
    else:
        r = last_json(body, "/dev/shm fill")
        assert r["error"] == "ENOSPC" and r["written_mib"] <= 512, (
            f"/dev/shm fill: {r} (expected ENOSPC within the 512 MiB sandbox memory)")
    check_recovered(ctx, base, "filling /dev/shm")
    _assert_shmem_back(before, "filling /dev/shm")


# ---------------------------------------------------------------------------
# A10: descriptors.

def test_a10_fd_exhaustion_ends_in_emfile(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import errno, json, os, resource, socket
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
fds, err = [], None
while len(fds) < 200000:
    try:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        err = errno.errorcode.get(e.errno, str(e.errno))
        break
n_files = len(fds)
for fd in fds:
    os.close(fd)
pairs, err2 = [], None
while len(pairs) < 100000:
    try:
        pairs.append(socket.socketpair())
    except OSError as e:
        err2 = errno.errorcode.get(e.errno, str(e.errno))
        break
n_pairs = len(pairs)
for a, b in pairs:
    a.close()
    b.close()
os.close(os.open("/dev/null", os.O_RDONLY))
print(json.dumps({"files": n_files, "files_error": err, "pairs": n_pairs, "pairs_error": err2,
                  "soft": soft, "hard": hard}))
''', timeout=5000)
    r = last_json(body, "fd exhaustion")
    assert r["files_error"] == "EMFILE" and r["pairs_error"] == "EMFILE", f"no EMFILE: {r}"
    assert 10 <= r["files"] <= r["soft"] <= 65536, f"RLIMIT_NOFILE not applied: {r}"
    assert r["pairs"] * 2 <= r["soft"], f"socketpairs beyond RLIMIT_NOFILE: {r}"
    check_recovered(ctx, base, "fd exhaustion")


# ---------------------------------------------------------------------------
# A11: one CPU.

def test_a11_cpu_hog_gets_one_cpu(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import json, os, resource, time
start = time.monotonic()
end = start + 1.5
kids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        x = 0
        while time.monotonic() < end:
            x += 1
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
wall = time.monotonic() - start
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime}))
''', timeout=5000)
    r = last_json(body, "cpu hog")
    ratio = r["cpu"] / r["wall"]
    assert r["wall"] >= 1.4, f"the hog did not run: {r}"
    # On this 2-core host an unlimited hog gets about 2.0.
    assert ratio <= 1.3, (f"3 busy processes used {ratio:.2f} CPUs over {r['wall']:.2f} s (limit: 1 CPU; host has "
                          f"{os.cpu_count()} CPUs)")
    check_recovered(ctx, base, "a CPU hog")


# ---------------------------------------------------------------------------
# A12-A14: wall-clock timeout, whatever the program does.

def test_a12_busy_loop_python_times_out(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, 'print("spinning", flush=True)\nwhile True:\n    pass\n', timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "python while True")
    check_recovered(ctx, base, "a python busy loop")


def test_a12_busy_loop_javascript_times_out(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, "for (;;) {}\n", language="javascript", timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "javascript for (;;)")
    check_recovered(ctx, base, "a javascript busy loop")


def test_a12_busy_loop_bash_times_out(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, "while :; do :; done\n", language="bash", timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "bash while :")
    check_recovered(ctx, base, "a bash busy loop")


def test_a12_sleep_past_timeout(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, 'import time\nprint("sleeping", flush=True)\ntime.sleep(100000)\n', timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "time.sleep")
    check_recovered(ctx, base, "a sleeping program")


def test_a12_sleeping_children_past_timeout(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, "sleep 1000 & sleep 1000 & wait\n", language="bash", timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "bash waiting on sleeping children")
    check_recovered(ctx, base, "sleeping children")


def test_a13_sigterm_ignoring_tree_is_killed(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, r'''
import os, signal, time
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
          signal.SIGXCPU, signal.SIGALRM, signal.SIGPIPE):
    signal.signal(s, signal.SIG_IGN)
if os.fork() == 0:
    os.setsid()                  # a second process, in its own session, also ignoring
    while True:
        time.sleep(0.05)
print("ignoring", flush=True)
while True:
    time.sleep(0.05)
''', timeout=2000)
    assert "ignoring" in (body.get("output") or ""), f"the program did not run: {short(body)}"
    _assert_timed_out(body, elapsed, 2000, "SIGTERM-ignoring program", grace_ms=6000)
    check_recovered(ctx, base, "a SIGTERM-ignoring process tree")


def test_a14_stopped_program_is_killed(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, r'''
import os, signal
if os.fork() == 0:
    os.kill(os.getpid(), signal.SIGSTOP)
    os._exit(0)
print("stopping", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
print("resumed", flush=True)
''', timeout=2000)
    assert "stopping" in (body.get("output") or ""), f"the program did not run: {short(body)}"
    _assert_timed_out(body, elapsed, 2000, "SIGSTOPped program")
    check_recovered(ctx, base, "a stopped program")


# ---------------------------------------------------------------------------
# A15, A16: output.

def _flood(ctx, stream):
    other = "stderr" if stream == "stdout" else "stdout"
    body, elapsed = run_code(ctx, rf'''
import sys
chunk = b"x" * (1 << 20)
w = sys.{stream}.buffer
for _ in range(100):                     # 100 MiB, no newline
    w.write(chunk)
    w.flush()
print("flood-done", file=sys.{other}, flush=True)
''', timeout=5000)
    return body, elapsed


def _assert_capped(body, key, elapsed, what):
    text = body.get(key) or ""
    assert body.get("truncated") is True, f"{what}: truncated={body.get('truncated')}, {len(text)} chars kept"
    assert 512 * 1024 <= len(text) <= MIB, f"{what}: {len(text)} chars kept (cap 1 MiB per stream)"
    assert text.strip("x") == "", f"{what}: the kept output is not the program's: {text[:100]!r}...{text[-100:]!r}"
    assert body.get("timedOut") is False and elapsed < 10, (
        f"{what}: the run blocked until the timeout ({elapsed:.1f} s): the service must drain or kill the "
        f"producer once the cap is reached: {short(body)}")
    assert len(json.dumps(body)) < 3 * MIB, f"{what}: response of {len(json.dumps(body))} bytes"


def test_a15_stdout_flood_is_capped(ctx):
    base = baseline(ctx)
    body, elapsed = _flood(ctx, "stdout")
    _assert_capped(body, "output", elapsed, "100 MiB on stdout")
    assert len(body.get("errors") or "") < 64 * 1024, short(body)
    check_recovered(ctx, base, "a 100 MiB stdout flood")


def test_a15_stderr_flood_is_capped(ctx):
    base = baseline(ctx)
    body, elapsed = _flood(ctx, "stderr")
    _assert_capped(body, "errors", elapsed, "100 MiB on stderr")
    assert len(body.get("output") or "") < 64 * 1024, short(body)
    check_recovered(ctx, base, "a 100 MiB stderr flood")


def test_a16_output_tarpit_is_killed_at_timeout(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, r'''
import sys, time
while True:
    sys.stdout.write(".")
    sys.stdout.flush()
    time.sleep(0.1)
''', timeout=2000)
    _assert_timed_out(body, elapsed, 2000, "1 byte per 100 ms")
    out = body.get("output") or ""
    assert out.strip(".") == "" and len(out) <= 40, f"tarpit output: {out!r}"
    check_recovered(ctx, base, "an output tarpit")


# ---------------------------------------------------------------------------
# A17: concurrent runs.

def test_a17_concurrent_runs_are_answered_and_separate(ctx):
    base = baseline(ctx)
    n = 12
    results = [None] * n

    def one(i):
        try:
            results[i] = ctx.run_on_new_connection(f"print({i} * 1000 + 7)", timeout=20000)
        except Exception as e:  # reported below
            results[i] = ("exception", repr(e))

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    problems, ok = [], 0
    for i, res in enumerate(results):
        if res is None or res[0] == "exception":
            problems.append(f"run {i}: {res}")
            continue
        status, body = res
        if status == 200:
            ok += 1
            if body.get("output") != f"{i * 1000 + 7}\n":
                problems.append(f"run {i}: output {body.get('output')!r} (another run's?)")
        elif status not in (429, 503):
            problems.append(f"run {i}: HTTP {status} {short(body)}")
    assert not problems, "concurrent runs:\n  " + "\n  ".join(problems)
    assert ok >= 1, f"none of {n} concurrent runs was served: {[r[0] for r in results]}"
    check_recovered(ctx, base, f"{n} concurrent runs")


# ---------------------------------------------------------------------------
# A19: interpreter bomb.

def test_a19_interpreter_bomb_is_contained(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, "x = 10 ** 10 ** 10\nprint('NOT_STOPPED')\n", timeout=3000)
    assert "NOT_STOPPED" not in (body.get("output") or ""), short(body)
    if body.get("oomKilled"):
        assert body.get("signal") == 9, short(body)
    else:
        _assert_timed_out(body, elapsed, 3000, "10 ** 10 ** 10")
    check_recovered(ctx, base, "10 ** 10 ** 10")


# ---------------------------------------------------------------------------
# B3, B5: a daemon (setsid + double fork, stdio closed, SIGTERM/SIGHUP ignored).

def test_b03_daemon_does_not_survive_the_run(ctx):
    base = baseline(ctx)
    body, elapsed = run_code(ctx, r'''
import json, os, signal, time
rfd, wfd = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.chdir("/")
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.write(wfd, str(os.getpid()).encode())
        os.close(wfd)
        while True:
            time.sleep(0.1)
    os._exit(0)
os.close(wfd)
os.wait()
daemon = int(os.read(rfd, 32))
print(json.dumps({"daemon": daemon, "alive": os.path.exists("/proc/%d" % daemon),
                  "daemon_sid": os.getsid(daemon), "my_sid": os.getsid(0)}), flush=True)
''', timeout=3000)
    r = last_json(body, "daemon")
    assert r["alive"] and r["daemon_sid"] != r["my_sid"], f"the daemon was not running in its own session: {r}"
    assert body["exitCode"] == 0, f"the launcher's exit status was lost: {short(body)}"
    assert elapsed < 3 + 8, f"the run took {elapsed:.1f} s with a 3 s timeout"
    check_recovered(ctx, base, "a daemonised orphan")


# ---------------------------------------------------------------------------
# rlimits the contract names.

def test_rlimits_core_nofile_fsize_applied(ctx):
    base = baseline(ctx)
    body, _ = run_code(ctx, r'''
import json, resource
names = ["RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_STACK"]
print(json.dumps({n: resource.getrlimit(getattr(resource, n)) for n in names} | {"inf": resource.RLIM_INFINITY}))
''', timeout=5000)
    r = last_json(body, "rlimits")
    inf = r["inf"]
    assert r["RLIMIT_CORE"] == [0, 0], f"RLIMIT_CORE {r['RLIMIT_CORE']}: core dumps must be off and stay off"
    assert r["RLIMIT_NOFILE"][0] != inf and 0 < r["RLIMIT_NOFILE"][1] <= 65536, f"RLIMIT_NOFILE {r['RLIMIT_NOFILE']}"
    assert r["RLIMIT_FSIZE"][0] != inf, f"RLIMIT_FSIZE not set: {r['RLIMIT_FSIZE']}"
    check_recovered(ctx, base, "the rlimit probe")
