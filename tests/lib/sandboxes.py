"""Helpers for the tests of persistent sandboxes (/v1/sandboxes/ID/...):
new IDs and their cleanup, commands through /api/execute and its stream,
the other /api routes and the shape of their answers, the sandbox's agent
and workspace as the host sees them.  Every function takes the test's
Context (tests/lib/context.py) first; none waits a fixed time on the host."""
import contextlib
import json
import os
import select
import signal
import threading
import time
import uuid

NO_SESSION = "__DISABLE_SESSION__"


def new_id():
    return "t-" + uuid.uuid4().hex[:12]


def workspace_dir(ctx, sid):
    """The host directory that is the sandbox's /workspace."""
    return os.path.join(ctx.state_dir, "workspaces", sid)


# ---------------------------------------------------------------------------
# Commands.

def execute(ctx, sid, command, **kw):
    """POST .../api/execute of command (kw: the request's other fields) -> its
    result; the request itself must succeed, the command need not."""
    body = {"command": command}
    body.update(kw)
    status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", body)
    assert status == 200, (command, kw, status, res)
    return res


def output(ctx, sid, command, **kw):
    """stdout of a command that must succeed."""
    res = execute(ctx, sid, command, **kw)
    assert res["exitCode"] == 0, (command, kw, res)
    return res["stdout"]


def sessionless(fn):
    """execute or output, run outside any session (sessionId NO_SESSION)
    unless the call names a session."""
    def call(ctx, sid, command, **kw):
        kw.setdefault("sessionId", NO_SESSION)
        return fn(ctx, sid, command, **kw)
    call.__doc__ = f"{fn.__doc__}  Outside any session unless sessionId is given."
    return call


def sse_events(resp):
    """Yields each event's JSON data from a text/event-stream response, and stops
    after the terminal event (the stream's contract: it always ends with one),
    without waiting for the kept-alive connection to close."""
    data = []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\r\n")
        if line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            ev = json.loads("\n".join(data))
            data = []
            yield ev
            if ev.get("type") in ("complete", "error"):
                return


def _open_sse(ctx, path, body):
    conn = ctx.stack.connection()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def open_stream(ctx, sid, body):
    """POST .../api/execute/stream on a connection of its own -> (connection,
    response); the caller closes the connection."""
    return _open_sse(ctx, f"/v1/sandboxes/{sid}/api/execute/stream", body)


def execute_stream(ctx, sid, body):
    """A whole /api/execute/stream call -> (stdout, stderr, terminal event)."""
    conn, resp = open_stream(ctx, sid, body)
    try:
        assert resp.status == 200, (resp.status, resp.read()[:500])
        events = list(sse_events(resp))
    finally:
        conn.close()
    assert events and events[-1]["type"] in ("complete", "error"), events
    out = "".join(e["data"] for e in events if e["type"] == "stdout")
    err = "".join(e["data"] for e in events if e["type"] == "stderr")
    return out, err, events[-1]


def read_stream(ctx, sid, body):
    """POST .../api/read/stream -> (status, content type, every event if the
    status is 200, else the response's body as bytes)."""
    conn, resp = _open_sse(ctx, f"/v1/sandboxes/{sid}/api/read/stream", body)
    try:
        ctype = resp.getheader("Content-Type", "")
        if resp.status != 200:
            return resp.status, ctype, resp.read()
        return resp.status, ctype, list(sse_events(resp))
    finally:
        conn.close()


class Background:
    """fn() on a daemon thread (a call that never returns cannot hold up the
    run's exit); result(timeout) gives its value or raises its exception."""

    def __init__(self, fn):
        self._done = threading.Event()
        self._value = None
        self._error = None
        threading.Thread(target=self._run, args=(fn,), daemon=True).start()

    def _run(self, fn):
        try:
            self._value = fn()
        except BaseException as e:  # handed to the test's thread by result()
            self._error = e
        finally:
            self._done.set()

    def done(self):
        return self._done.is_set()

    def result(self, timeout):
        assert self._done.wait(timeout), f"the call did not return within {timeout} s"
        if self._error is not None:
            raise self._error
        return self._value


# ---------------------------------------------------------------------------
# The other /api routes, and the shape of their answers.

def api(ctx, sid, route, body=None, method="POST"):
    return ctx.json(method, f"/v1/sandboxes/{sid}/api/{route}", body)


def assert_ok(status, body):
    assert status == 200, f"status {status}: {body}"
    assert body.get("success") is True, body
    assert isinstance(body.get("timestamp"), str) and body["timestamp"].endswith("Z"), body


def assert_error(status, body, want_status, want_code):
    assert status == want_status and body.get("code") == want_code, \
        f"want {want_status} {want_code}, got {status}: {body}"
    assert body.get("httpStatus") == want_status, body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("context", {}), dict), body
    assert isinstance(body.get("timestamp"), str) and body["timestamp"].endswith("Z"), body


# ---------------------------------------------------------------------------
# Deletion, and sandboxes deleted at the end of a test.

def wait_deleted(ctx, sid, count=1):
    """Waits for sid's count-th deletion (an ID can be used anew)."""
    ctx.stack.wait_log(f"sandbox {sid} deleted".encode(), 30, count=count)


def deletions(ctx, sid):
    """How many times sid was deleted so far."""
    return ctx.stack.log_text().count(f"sandbox {sid} deleted")


def delete_sandbox(ctx, sid):
    """Deletes sid and waits until its workspace is wiped and it is forgotten."""
    done = deletions(ctx, sid)
    status, body = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
    assert status == 200, body
    wait_deleted(ctx, sid, done + 1)


@contextlib.contextmanager
def new_sandboxes(ctx, n):
    """n new sandbox IDs, deleted (and waited for) at the end.  When the test
    fails the deletions are still tried, quietly, so that the failure reported
    is the test's own and its processes do not linger into later tests."""
    sids = [new_id() for _ in range(n)]
    try:
        yield sids
    except BaseException:
        for sid in sids:
            try:
                done = deletions(ctx, sid)
                status, _ = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
                if status == 200:
                    wait_deleted(ctx, sid, done + 1)
            except Exception:
                pass
        raise
    for sid in sids:
        delete_sandbox(ctx, sid)


@contextlib.contextmanager
def sandbox(ctx):
    """One new sandbox ID, as new_sandboxes(ctx, 1)."""
    with new_sandboxes(ctx, 1) as (sid,):
        yield sid


# ---------------------------------------------------------------------------
# The sandbox's agent.

def agent_pid(ctx, sid):
    """The sandbox's agent: in serve mode, running as the first uid of the range
    whose uid 1000 owns the sandbox's workspace."""
    for pid in ctx.stack.sandbox_pids(include_init=True):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd[:2] == [b"sandbox-agent", b"serve"]:
            with open(f"/proc/{pid}/status") as f:
                st = f.read()
            uid = int(st.split("Uid:")[1].split()[0])
            if uid == os.stat(workspace_dir(ctx, sid)).st_uid - 1000:
                return pid
    raise AssertionError(f"no agent found for {sid}")


def kill_agent(ctx, sid):
    """SIGKILLs the sandbox's agent and waits (on its pidfd) until it is gone
    -> its pid."""
    pid = agent_pid(ctx, sid)
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        select.select([fd], [], [], 10)
    finally:
        os.close(fd)
    return pid


def wait_asleep(ctx, sid):
    """Waits until sid sleeps (its sleepAfter must be 1): for the log line, for
    its agent to exit (on the agent's pidfd), then for the master, which
    marks the sandbox asleep when it reaps the agent, to say so."""
    fd = os.pidfd_open(agent_pid(ctx, sid))
    try:
        ctx.stack.wait_log(f"sandbox {sid}: idle for 1 s, going to sleep".encode(), 15)
        select.select([fd], [], [], 10)
    finally:
        os.close(fd)
    deadline = time.monotonic() + 5
    while True:
        status, body = ctx.json("GET", f"/v1/sandboxes/{sid}")
        if body.get("state") == "sleeping" or time.monotonic() > deadline:
            break
        os.sched_yield()
    assert body.get("state") == "sleeping", body


def mounts_under(path):
    """The mount points below path (canonical), as the host sees them now."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]
