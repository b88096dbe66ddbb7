"""Worker supervision: a worker that dies is replaced, a sandbox whose worker
died is killed (sandboxes are the master's children, so nothing is orphaned),
and the service keeps serving."""
import os
import select
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from sandboxes import mounts_under  # noqa: E402


def _wait_workers(ctx, n, gone=(), timeout=10):
    """Waits until n workers run and none of the pids in gone is among them.
    The dead are waited for on pidfds; the replacements start right after the
    master reaps them, so a short bounded yield loop covers the rest."""
    for pid in gone:
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        select.select([fd], [], [], timeout)
        os.close(fd)
    deadline = time.monotonic() + timeout
    while True:
        pids = ctx.stack.worker_pids()
        if (len(pids) == n and not set(gone) & set(pids)) or time.monotonic() > deadline:
            return pids
        os.sched_yield()


def test_killed_worker_is_replaced(ctx):
    before = ctx.stack.worker_pids()
    assert len(before) == ctx.stack.workers, before
    victim = before[0]
    os.kill(victim, signal.SIGKILL)
    after = _wait_workers(ctx, ctx.stack.workers, gone=[victim])
    assert victim not in after and len(after) == ctx.stack.workers, (before, after)
    # The master says so in its log (read by a thread: wait for the line).
    ctx.stack.wait_log(f"worker {victim} killed by signal 9; replacing it".encode(), 10)
    for i in range(ctx.stack.workers * 2):
        status, body = ctx.run(f"print({i})")
        assert status == 200 and body["output"] == f"{i}\n", body


def test_sandbox_of_a_dead_worker_is_killed(ctx):
    """Kill every worker while one is waiting on a long run: the client gets a
    JSON 503 from nginx, the run's sandbox is killed, nothing is left on the
    host, and the replacements serve."""
    result = {}

    def long_run():
        from context import Context
        c = Context(ctx.stack)
        result["r"] = c.request("POST", "/v1/run", {"code": "import time\nprint('started', flush=True)\ntime.sleep(60)", "timeout": 60000})

    t = threading.Thread(target=long_run)
    t.start()
    # The run is in flight once its user process exists.
    ctx.stack.wait_sandbox_running()
    victims = ctx.stack.worker_pids()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive(), "the client was left hanging"
    status, headers, data = result["r"]
    assert status == 503 and b"SERVICE_UNAVAILABLE" in data, (status, data)
    left = ctx.host_sandbox_pids(settle_s=5)
    assert not left, f"the dead worker's sandbox is still running: {left}"
    after = _wait_workers(ctx, ctx.stack.workers, gone=victims)
    assert len(after) == ctx.stack.workers and not set(after) & set(victims), (victims, after)
    status, body = ctx.run("print('after')")
    assert status == 200 and body["output"] == "after\n", body


def test_shutdown_during_a_run(ctx):
    """SIGTERM while a run is in flight: the client gets a JSON 503 that says
    sandboxd is stopping (not a fake 'killed by signal 9' result), sandboxd
    exits 0 and leaves no sandbox process behind."""
    from stack import Stack
    from context import Context
    st = Stack(ctx.stack.build_dir, workers=1, uid_base=ctx.uid_base + 2 * ctx.uid_span, uid_slots=8)
    st.start()
    result = {}
    try:
        c = Context(st)

        def long_run():
            result["r"] = Context(st).json("POST", "/v1/run", {"code": "import time\ntime.sleep(60)", "timeout": 60000})

        t = threading.Thread(target=long_run)
        t.start()
        st.wait_sandbox_running()
        rc = st.stop_sandboxd()
        t.join(30)
        assert not t.is_alive()
        status, body = result["r"]
        assert status == 503 and body["code"] == "SERVICE_UNAVAILABLE", (status, body)
        assert "stopping" in body["message"], body
        assert rc == 0, rc
        assert not st.sandbox_pids(include_init=True), st.sandbox_pids(include_init=True)
        assert c is not None
    finally:
        st.stop()


def test_worker_killed_mid_command_leaves_the_sandbox_intact(ctx):
    """Kill every worker while one waits on a long command in a persistent
    sandbox: the command's tree ends (the worker's connection to the agent
    closed), the sandbox and its workspace stay, and the next command works."""
    sid = "fault-" + os.urandom(4).hex()
    from context import Context
    c = Context(ctx.stack)
    status, body = c.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "echo kept > k.txt"})
    assert status == 200, body
    result = {}

    def long_command():
        result["r"] = Context(ctx.stack).request("POST", f"/v1/sandboxes/{sid}/api/execute",
                                                 {"command": "exec sleep 300", "timeoutMs": 600000})

    t = threading.Thread(target=long_command)
    t.start()
    ctx.stack.wait_sandbox_running()
    command_pids = ctx.stack.sandbox_pids()
    fds = [os.pidfd_open(p) for p in command_pids]
    victims = ctx.stack.worker_pids()
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    t.join(30)
    assert not t.is_alive()
    assert result["r"][0] == 503, result["r"]
    for fd in fds:
        r, _, _ = select.select([fd], [], [], 10)
        assert r, "the command outlived the worker that ran it"
        os.close(fd)
    _wait_workers(ctx, ctx.stack.workers, gone=victims)
    status, body = c.json("GET", f"/v1/sandboxes/{sid}")
    assert status == 200 and body["state"] == "running", body
    status, body = c.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "cat k.txt"})
    assert status == 200 and body["stdout"] == "kept\n", body
    c.json("DELETE", f"/v1/sandboxes/{sid}")
    ctx.stack.wait_log(f"sandbox {sid} deleted".encode(), 30)


def test_kill_9_of_the_whole_stack_loses_no_acknowledged_write(ctx):
    """SIGKILL to the master (its workers and every agent die with it, by their
    parent-death signal), then a restart: every sandbox is there, asleep, and
    every file a command had written before its answer is intact."""
    from context import Context
    c = Context(ctx.stack)
    sids = ["crash-" + os.urandom(4).hex() for _ in range(3)]
    for i, sid in enumerate(sids):
        status, body = c.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                              {"command": f"head -c 100000 /dev/urandom > blob; sha256sum blob > sum; echo {i} > n"})
        assert status == 200 and body["exitCode"] == 0, body
    master = ctx.stack.sandboxd.pid
    fd = os.pidfd_open(master)
    os.kill(master, signal.SIGKILL)
    select.select([fd], [], [], 10)
    os.close(fd)
    ctx.stack.sandboxd.wait()
    # Everything of the old run is gone before the new one starts.
    deadline = time.monotonic() + 10
    while ctx.stack.sandbox_pids(include_init=True) and time.monotonic() < deadline:
        os.sched_yield()
    assert not ctx.stack.sandbox_pids(include_init=True)
    # The old run's workspace mounts outlive it (nobody unmounts after a
    # SIGKILL): the crashed sandboxes' disks are still mounted on the host.
    ws_root = os.path.realpath(os.path.join(ctx.state_dir, "workspaces"))
    stray = [m for m in mounts_under(ws_root) if os.path.basename(m) in sids]
    assert len(stray) == len(sids), stray
    ctx.stack._log_thread.join(10)
    ctx.stack.sandboxd.stderr.close()
    ctx.stack.sandboxd_log.close()
    ctx.stack.start_sandboxd()
    # The new run detached them all before anything else.
    assert ctx.stack.wait_log(b"workspace mounts of an earlier run detached", 10)
    assert not [m for m in mounts_under(ws_root) if os.path.basename(m) in sids], mounts_under(ws_root)
    for i, sid in enumerate(sids):
        status, body = c.json("GET", f"/v1/sandboxes/{sid}")
        assert status == 200 and body["state"] == "sleeping", body
        status, body = c.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                              {"command": "sha256sum -c sum >/dev/null && cat n"})
        assert status == 200 and body["stdout"] == f"{i}\n", body
        c.json("DELETE", f"/v1/sandboxes/{sid}")
        ctx.stack.wait_log(f"sandbox {sid} deleted".encode(), 30)
