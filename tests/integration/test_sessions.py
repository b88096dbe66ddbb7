"""Sessions of a persistent sandbox: shell state (cd, export) kept between the
commands of one session (a stream starts from them and leaves them); sessions
independent of each other but sharing files; the sessionless mode; the
session routes (create, list, delete) and their errors; the limit of 32
sessions; calls of one session serialized, of different sessions parallel;
sandbox environment set with POST .../env and PUT envVars; what survives
sleep and an agent crash (the sandbox's env) and what does not (sessions).

Nothing here waits a fixed time on the host: a command that must be running
is known to be by the first line it streams, a command that must wait does so
inside the sandbox until the test creates a file there."""
import contextlib
import json
import os
import secrets
import select
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

NO_SESSION = "__DISABLE_SESSION__"


# ---------------------------------------------------------------------------
# Helpers (small copies of those of test_sandboxes.py, and a few of this file's).

def _new_id():
    return "t-" + uuid.uuid4().hex[:12]


def _exec(ctx, sid, command, **kw):
    body = {"command": command}
    body.update(kw)
    status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", body)
    assert status == 200, (command, kw, status, res)
    return res


def _out(ctx, sid, command, **kw):
    """stdout of a command that must succeed."""
    res = _exec(ctx, sid, command, **kw)
    assert res["exitCode"] == 0, (command, kw, res)
    return res["stdout"]


def _workspace(ctx, sid):
    return os.path.join(ctx.state_dir, "workspaces", sid)


def _wait_deleted(ctx, sid):
    ctx.stack.wait_log(f"sandbox {sid} deleted".encode(), 30)


def _delete(ctx, sid):
    """Deletes sid and waits until its workspace is wiped and it is forgotten."""
    status, body = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
    assert status == 200, body
    _wait_deleted(ctx, sid)


@contextlib.contextmanager
def _sandbox(ctx):
    """A new sandbox ID, deleted (and waited for) at the end.  When the test
    fails the deletion is still tried, quietly, so that the failure reported
    is the test's own and its processes do not linger into later tests."""
    sid = _new_id()
    try:
        yield sid
    except BaseException:
        try:
            status, _ = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
            if status == 200:
                _wait_deleted(ctx, sid)
        except Exception:
            pass
        raise
    _delete(ctx, sid)


def _api(ctx, sid, route, body=None, method="POST"):
    return ctx.json(method, f"/v1/sandboxes/{sid}/api/{route}", body)


def _assert_ok(status, body):
    assert status == 200, f"status {status}: {body}"
    assert body.get("success") is True, body
    assert isinstance(body.get("timestamp"), str) and body["timestamp"].endswith("Z"), body


def _assert_error(status, body, want_status, want_code):
    assert status == want_status and body.get("code") == want_code, \
        f"want {want_status} {want_code}, got {status}: {body}"
    assert body.get("httpStatus") == want_status, body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("context", {}), dict), body
    assert isinstance(body.get("timestamp"), str) and body["timestamp"].endswith("Z"), body


def _session_list(ctx, sid):
    status, body = _api(ctx, sid, "session/list", method="GET")
    _assert_ok(status, body)
    assert isinstance(body["data"], list) and isinstance(body["sessions"], list), body
    assert body["count"] == len(body["data"]) == len(body["sessions"]), body
    assert [s["id"] for s in body["sessions"]] == body["data"], body
    return body


def _sse_events(resp):
    """Yields each event's JSON data from a text/event-stream response, and stops
    after the terminal event, without waiting for the connection to close."""
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


def _open_stream(ctx, sid, body):
    conn = ctx.stack.connection()
    conn.request("POST", f"/v1/sandboxes/{sid}/api/execute/stream", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return conn, resp


def _stream(ctx, sid, body):
    """A whole /api/execute/stream call -> (stdout, stderr, terminal event)."""
    conn, resp = _open_stream(ctx, sid, body)
    try:
        assert resp.status == 200, (resp.status, resp.read()[:500])
        events = list(_sse_events(resp))
    finally:
        conn.close()
    assert events and events[-1]["type"] in ("complete", "error"), events
    out = "".join(e["data"] for e in events if e["type"] == "stdout")
    err = "".join(e["data"] for e in events if e["type"] == "stderr")
    return out, err, events[-1]


def _post_new_connection(ctx, path, body):
    """One POST on a connection of its own (safe from another thread)."""
    conn = ctx.stack.connection()
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, {"raw": data[:500].decode("utf-8", "replace")}


class _Background:
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


def _hold(ctx, sid, session, tag, then=""):
    """Starts in `session` (with /api/execute, on a thread: a stream would not
    hold the session) a command that waits, inside the sandbox, until the
    test creates /tmp/go-TAG, then runs `then` and prints "released"; after
    20 s without the file it prints "gave-up".  Returns once the command is
    known to run (it has created /tmp/started-TAG): the call in flight."""
    cmd = (f"touch /tmp/started-{tag}; i=0; while [ ! -e /tmp/go-{tag} ] && [ $i -lt 400 ]; do sleep 0.05; "
           f"i=$((i+1)); done; if [ -e /tmp/go-{tag} ]; then {then or ':'}; echo released; else echo gave-up; fi")
    path = f"/v1/sandboxes/{sid}/api/execute"
    call = _Background(lambda: _post_new_connection(
        ctx, path, {"command": cmd, "sessionId": session, "timeoutMs": 60000}))
    res = _exec(ctx, sid, f"i=0; while [ ! -e /tmp/started-{tag} ] && [ $i -lt 400 ]; do sleep 0.02; "
                          f"i=$((i+1)); done; [ -e /tmp/started-{tag} ] && echo started", sessionId=NO_SESSION)
    assert res["stdout"] == "started\n", ("the held command never started", res, call.done() and call.result(0))
    return call


def _release(ctx, sid, tag):
    assert _out(ctx, sid, f"touch /tmp/go-{tag}", sessionId=NO_SESSION) == ""


def _finish(call):
    """The held command's result -> (stdout, a terminal event of its outcome)."""
    status, res = call.result(60)
    assert status == 200, (status, res)
    return res["stdout"], {"type": "complete", "exitCode": res["exitCode"]}


def _agent_pid(ctx, sid):
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
            if uid == os.stat(_workspace(ctx, sid)).st_uid - 1000:
                return pid
    raise AssertionError(f"no agent found for {sid}")


def _wait_asleep(ctx, sid):
    """Waits (on the log, the agent's pidfd, then the state) until sid sleeps;
    its sleepAfter must be 1."""
    fd = os.pidfd_open(_agent_pid(ctx, sid))
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


def _host_pids_with_argv(ctx, argv):
    found = []
    for pid in ctx.stack.sandbox_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[:-1] == argv:
                    found.append(pid)
        except OSError:
            pass
    return found


def _wait_host_process(ctx, argv, timeout=10):
    """Waits until a sandbox process with exactly this argv runs on the host."""
    deadline = time.monotonic() + timeout
    while True:
        pids = _host_pids_with_argv(ctx, argv)
        if pids:
            return pids
        assert time.monotonic() < deadline, f"no sandbox process {argv} started"
        os.sched_yield()


# ---------------------------------------------------------------------------
# Shell state within a session.

def test_default_session_keeps_cd(ctx):
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, "cd /tmp")
        assert res["exitCode"] == 0 and res["sessionId"] == "default", res
        assert _out(ctx, sid, "pwd") == "/tmp\n"
        # Naming "default" is the same session as naming none.
        res = _exec(ctx, sid, "pwd; cd /usr", sessionId="default")
        assert res["stdout"] == "/tmp\n" and res["sessionId"] == "default", res
        assert _out(ctx, sid, "pwd") == "/usr\n"


def test_export_and_unset_persist(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "export FOO=bar") == ""
        # Exported: the shell and its children see it.
        assert _out(ctx, sid, 'echo "$FOO"; bash -c \'echo "child:$FOO"\'') == "bar\nchild:bar\n"
        assert _out(ctx, sid, "unset FOO") == ""
        assert _out(ctx, sid, 'echo "${FOO-unset}"') == "unset\n"


def test_exported_values_keep_every_byte(ctx):
    """Values with newlines, quotes, backslashes, dollars, backquotes, tabs,
    control characters and non-ASCII text come back exactly, also from a
    shell in POSIX mode (whose export -p looks different)."""
    value = 'one\ntwo "q" \'s\' \\ $x `y` \t \x01 \u00e9\u4e2d end'
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, 'export V="$(cat)"; export EMPTY=', stdin=value)
        assert res["exitCode"] == 0, res
        assert _out(ctx, sid, 'printf %s "$V"') == value
        assert _out(ctx, sid, 'echo "[${EMPTY-unset}]"') == "[]\n"
        assert _out(ctx, sid, "set -o posix; export P=posix-$V") == ""
        assert _out(ctx, sid, 'printf %s "$P"') == "posix-" + value


def test_unexported_variables_and_functions_do_not_persist(ctx):
    """Documented: only cd and export carry over, not plain variables or functions."""
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "X=plain; f() { echo fn; }; echo $X; f") == "plain\nfn\n"
        res = _exec(ctx, sid, 'echo "${X-unset}"; type -t f || echo no-function')
        assert res["stdout"] == "unset\nno-function\n", res


def test_state_kept_after_a_failing_command(ctx):
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, "cd /tmp && export E=kept; false", sessionId="s")
        assert res["exitCode"] == 1 and res["success"] is False, res
        assert _out(ctx, sid, 'pwd; echo "$E"', sessionId="s") == "/tmp\nkept\n"


def test_stream_starts_from_the_session_and_leaves_it(ctx):
    """As the SDK's execStream: a stream runs from its session's cwd and
    environment, beside the session's other calls, and changes nothing."""
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "cd /usr; export S1=from-execute", sessionId="s") == ""
        out, _, end = _stream(ctx, sid, {"command": 'pwd; echo "$S1"; cd /tmp; export S2=x', "sessionId": "s"})
        assert end["type"] == "complete" and end["exitCode"] == 0, end
        assert out == "/usr\nfrom-execute\n", out
        assert _out(ctx, sid, 'pwd; echo "[${S2-}]"', sessionId="s") == "/usr\n[]\n"
        # The default session is the default of both routes.
        assert _out(ctx, sid, "cd /tmp") == ""
        out, _, end = _stream(ctx, sid, {"command": "pwd"})
        assert out == "/tmp\n", out
        # A stream does not wait for a busy session.
        _out(ctx, sid, "rm -f /tmp/go-st /tmp/started-st", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "st")
        out, _, end = _stream(ctx, sid, {"command": "echo beside", "sessionId": "s"})
        assert out == "beside\n" and end["exitCode"] == 0, (out, end)
        assert not call.done(), call.result(0)
        _release(ctx, sid, "st")
        assert _finish(call)[0] == "released\n"


def test_per_call_env_applies_to_that_call_only(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, 'echo "$A"', env={"A": "call"}) == "call\n"
        assert _out(ctx, sid, 'echo "${A-unset}"') == "unset\n"
        # Over a variable the session exported: the call's value, for that call.
        assert _out(ctx, sid, "export A=session") == ""
        assert _out(ctx, sid, 'echo "$A"', env={"A": "call"}) == "call\n"
        assert _out(ctx, sid, 'echo "$A"') == "session\n"


def test_per_call_cwd_leaves_the_session_cwd(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "cd /tmp", sessionId="s") == ""
        assert _out(ctx, sid, "pwd", sessionId="s", cwd="/usr") == "/usr\n"
        assert _out(ctx, sid, "pwd", sessionId="s") == "/tmp\n"
        # A bad cwd is still the caller's mistake, and changes nothing either.
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                                {"command": "pwd", "sessionId": "s", "cwd": "/no/such/dir"})
        assert status == 400 and body["code"] == "VALIDATION_FAILED", body
        assert _out(ctx, sid, "pwd", sessionId="s") == "/tmp\n"


def test_exit_syntax_errors_and_timeouts_do_not_break_the_session(ctx):
    """What a persistent shell must survive: exit, unbalanced syntax (which must
    not swallow the next command), a timeout."""
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, "exit 5", sessionId="s")
        assert res["exitCode"] == 5 and res["success"] is False, res
        assert _out(ctx, sid, "echo after-exit", sessionId="s") == "after-exit\n"
        for bad in ("echo 'unterminated", "if true; then echo x", "( echo open", "}"):
            res = _exec(ctx, sid, bad, sessionId="s", timeoutMs=10000)
            assert res["exitCode"] != 0 and res["timedOut"] is False, (bad, res)
            assert _out(ctx, sid, "echo next", sessionId="s") == "next\n", bad
        res = _exec(ctx, sid, "sleep 30", sessionId="s", timeoutMs=500)
        assert res["timedOut"] is True and res["success"] is False, res
        assert _out(ctx, sid, "echo after-timeout", sessionId="s") == "after-timeout\n"


def test_output_and_stdin_boundaries_in_a_session(ctx):
    """Output without a final newline, empty output, large output and stdin are
    exactly the command's own; a command reading stdin never reads the next
    command (its stdin without `stdin` is empty)."""
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, "printf no-newline; printf err-part >&2", sessionId="s")
        assert res["stdout"] == "no-newline" and res["stderr"] == "err-part", res
        res = _exec(ctx, sid, "true", sessionId="s")
        assert res["stdout"] == "" and res["stderr"] == "", res
        res = _exec(ctx, sid, "head -c 200000 /dev/zero | tr '\\0' a", sessionId="s")
        assert res["stdout"] == "a" * 200000 and res["truncated"] is False, len(res["stdout"])
        res = _exec(ctx, sid, "cat; echo end", sessionId="s", stdin="line one\nline two")
        assert res["stdout"] == "line one\nline twoend\n", res
        res = _exec(ctx, sid, 'cat; read x; echo "[$x]"', sessionId="s", timeoutMs=10000)
        assert res["stdout"] == "[]\n" and res["timedOut"] is False, res
        assert _out(ctx, sid, "echo still-here", sessionId="s") == "still-here\n"


# ---------------------------------------------------------------------------
# Several sessions.

def test_sessions_are_independent_but_share_files(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "cd /tmp; export WHO=a; echo from-a > /workspace/shared.txt", sessionId="a") == ""
        assert _out(ctx, sid, "cd /usr; export WHO=b", sessionId="b") == ""
        assert _out(ctx, sid, 'pwd; echo "$WHO"', sessionId="a") == "/tmp\na\n"
        assert _out(ctx, sid, 'pwd; echo "$WHO"; cat /workspace/shared.txt', sessionId="b") == "/usr\nb\nfrom-a\n"
        assert _out(ctx, sid, 'pwd; echo "${WHO-unset}"; cat shared.txt') == "/workspace\nunset\nfrom-a\n"


def test_sessionless_calls_keep_nothing(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "cd /tmp; export Z=1", sessionId=NO_SESSION) == ""
        assert _out(ctx, sid, 'pwd; echo "${Z-unset}"', sessionId=NO_SESSION) == "/workspace\nunset\n"
        # Neither the default session's state leaks in, nor theirs into it.
        assert _out(ctx, sid, "cd /usr; export D=1") == ""
        assert _out(ctx, sid, 'pwd; echo "${D-unset}"', sessionId=NO_SESSION) == "/workspace\nunset\n"
        assert _out(ctx, sid, 'pwd; echo "${Z-unset}"') == "/usr\nunset\n"
        assert NO_SESSION not in _session_list(ctx, sid)["data"]


def test_unknown_session_is_created_on_first_use(ctx):
    with _sandbox(ctx) as sid:
        res = _exec(ctx, sid, "pwd; cd /tmp", sessionId="fresh-1")
        assert res["stdout"] == "/workspace\n" and res["sessionId"] == "fresh-1", res
        lst = _session_list(ctx, sid)
        assert "fresh-1" in lst["data"], lst
        status, body = _api(ctx, sid, "session/create", {"id": "fresh-1"})
        _assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")
        # The 409 left the session as it was.
        assert _out(ctx, sid, "pwd", sessionId="fresh-1") == "/tmp\n"


# ---------------------------------------------------------------------------
# The session routes.

def test_session_create_defaults(ctx):
    with _sandbox(ctx) as sid:
        status, body = _api(ctx, sid, "session/create", {})
        _assert_ok(status, body)
        new = body["sessionId"]
        assert isinstance(new, str) and new.startswith("session_") and body["id"] == new, body
        assert body["cwd"] == "/workspace" and body["data"] == {"id": new, "cwd": "/workspace"}, body
        status, other = _api(ctx, sid, "session/create", {})
        _assert_ok(status, other)
        assert other["sessionId"] != new, (body, other)
        assert {new, other["sessionId"]} <= set(_session_list(ctx, sid)["data"])
        res = _exec(ctx, sid, "pwd", sessionId=new)
        assert res["stdout"] == "/workspace\n" and res["sessionId"] == new, res


def test_session_create_with_env_and_cwd(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "mkdir -p sub/dir", sessionId=NO_SESSION) == ""
        status, body = _api(ctx, sid, "session/create",
                            {"id": "s1", "env": {"S_ENV": "one two", "_X1": ""}, "cwd": "sub/dir"})
        _assert_ok(status, body)
        assert body["sessionId"] == "s1" and body["id"] == "s1", body
        assert body["cwd"] == "/workspace/sub/dir" and body["data"] == {"id": "s1", "cwd": "/workspace/sub/dir"}, body
        out = _out(ctx, sid, 'pwd; echo "$S_ENV|${_X1-unset}"; bash -c \'echo "child:$S_ENV"\'', sessionId="s1")
        assert out == "/workspace/sub/dir\none two|\nchild:one two\n", out
        status, body = _api(ctx, sid, "session/create", {"id": "s2", "cwd": "/tmp"})
        _assert_ok(status, body)
        assert body["cwd"] == "/tmp", body
        assert _out(ctx, sid, "pwd", sessionId="s2") == "/tmp\n"
        # The env was the session's own.
        assert _out(ctx, sid, 'echo "${S_ENV-unset}"', sessionId="s2") == "unset\n"
        assert _out(ctx, sid, 'pwd; echo "${S_ENV-unset}"') == "/workspace\nunset\n"


def test_session_create_existing_id_conflicts(ctx):
    with _sandbox(ctx) as sid:
        status, body = _api(ctx, sid, "session/create", {"id": "dup", "cwd": "/tmp"})
        _assert_ok(status, body)
        assert _out(ctx, sid, "export MARK=first", sessionId="dup") == ""
        status, body = _api(ctx, sid, "session/create", {"id": "dup", "cwd": "/usr", "env": {"MARK": "second"}})
        _assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")
        assert _out(ctx, sid, 'pwd; echo "$MARK"', sessionId="dup") == "/tmp\nfirst\n"
        # The default session, once used, exists too.
        _out(ctx, sid, "true")
        status, body = _api(ctx, sid, "session/create", {"id": "default"})
        _assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")


def test_session_create_rejects_bad_ids(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "true", sessionId=NO_SESSION)
        before = set(_session_list(ctx, sid)["data"])
        for bad in ("", "a b", "a/b", "../x", "x" * 64, NO_SESSION, "caf\u00e9", "a\nb", "a:b", 5, True, ["a"], {}):
            status, body = _api(ctx, sid, "session/create", {"id": bad})
            _assert_error(status, body, 400, "VALIDATION_FAILED")
        assert set(_session_list(ctx, sid)["data"]) == before
        # The edges of what is allowed.
        for good in ("x" * 63, "A.b_c-9", "-x", ".dot"):
            status, body = _api(ctx, sid, "session/create", {"id": good})
            _assert_ok(status, body)
            assert body["sessionId"] == good, body


def test_session_create_rejects_bad_env(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "true", sessionId=NO_SESSION)
        bad_envs = ["A=1", ["A=1"], 5, True, {"1A": "x"}, {"A B": "x"}, {"": "x"}, {"A=B": "x"},
                    {"A-B": "x"}, {"A": 1}, {"A": True}, {"A": ["x"]}, {"A": {"x": "y"}},
                    {"GOOD": "1", "1BAD": "x"}]
        for i, env in enumerate(bad_envs):
            status, body = _api(ctx, sid, "session/create", {"id": f"badenv{i}", "env": env})
            _assert_error(status, body, 400, "VALIDATION_FAILED")
        left = [s for s in _session_list(ctx, sid)["data"] if s.startswith("badenv")]
        assert not left, f"refused creates made sessions: {left}"


def test_session_list_reports_sessions(ctx):
    with _sandbox(ctx) as sid:
        for name, cwd in (("a", "/tmp"), ("b", None)):
            body = {"id": name} if cwd is None else {"id": name, "cwd": cwd}
            status, res = _api(ctx, sid, "session/create", body)
            _assert_ok(status, res)
        lst = _session_list(ctx, sid)
        assert set(lst["data"]) - {"default"} == {"a", "b"}, lst
        by_id = {s["id"]: s for s in lst["sessions"]}
        assert by_id["a"] == {**by_id["a"], "cwd": "/tmp", "busy": False}, lst
        assert by_id["b"] == {**by_id["b"], "cwd": "/workspace", "busy": False}, lst
        _out(ctx, sid, "true", sessionId="c")
        assert set(_session_list(ctx, sid)["data"]) - {"default"} == {"a", "b", "c"}


def test_session_list_shows_a_busy_session(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "rm -f /tmp/go-busy /tmp/started-busy", sessionId="idle")
        call = _hold(ctx, sid, "worker", "busy")
        by_id = {s["id"]: s for s in _session_list(ctx, sid)["sessions"]}
        assert by_id["worker"]["busy"] is True and by_id["idle"]["busy"] is False, by_id
        _release(ctx, sid, "busy")
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete" and end["exitCode"] == 0, (out, end)
        by_id = {s["id"]: s for s in _session_list(ctx, sid)["sessions"]}
        assert by_id["worker"]["busy"] is False, by_id


def test_session_delete(ctx):
    with _sandbox(ctx) as sid:
        assert _out(ctx, sid, "cd /tmp; export G=1", sessionId="gone") == ""
        status, body = _api(ctx, sid, "session/delete", {"sessionId": "gone"})
        _assert_ok(status, body)
        assert body["sessionId"] == "gone", body
        assert "gone" not in _session_list(ctx, sid)["data"]
        status, body = _api(ctx, sid, "session/delete", {"sessionId": "gone"})
        _assert_error(status, body, 404, "SESSION_NOT_FOUND")
        # Used again, the name is a new session with nothing of the old one.
        assert _out(ctx, sid, 'pwd; echo "${G-unset}"', sessionId="gone") == "/workspace\nunset\n"


def test_session_delete_bad_input(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "true", sessionId="keep")
        for bad in ({}, {"sessionId": 5}, {"sessionId": None}, {"sessionId": ["keep"]}, {"id": "keep"}):
            status, body = _api(ctx, sid, "session/delete", bad)
            _assert_error(status, body, 400, "VALIDATION_FAILED")
        status, body = _api(ctx, sid, "session/delete", {"sessionId": "never-made"})
        _assert_error(status, body, 404, "SESSION_NOT_FOUND")
        assert "keep" in _session_list(ctx, sid)["data"]


def test_session_delete_kills_its_running_command(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "true", sessionId="victim")
        secs = f"{400 + secrets.randbelow(500)}.{secrets.randbelow(100)}"
        path = f"/v1/sandboxes/{sid}/api/execute"
        call = _Background(lambda: _post_new_connection(
            ctx, path, {"command": f"sleep {secs}; echo not-killed", "sessionId": "victim", "timeoutMs": 600000}))
        fds = [os.pidfd_open(pid) for pid in _wait_host_process(ctx, [b"sleep", secs.encode()])]
        try:
            status, body = _api(ctx, sid, "session/delete", {"sessionId": "victim"})
            _assert_ok(status, body)
            status, res = call.result(30)
            assert status == 200, (status, res)
            assert res["success"] is False and "not-killed" not in res["stdout"], res
            assert res["signal"] is not None or res["exitCode"] != 0, res
            for fd in fds:
                r, _, _ = select.select([fd], [], [], 10)
                assert r, "a process of the command outlived its session"
        finally:
            for fd in fds:
                os.close(fd)
        assert "victim" not in _session_list(ctx, sid)["data"]
        # The other sessions go on.
        assert _out(ctx, sid, "echo alive") == "alive\n"


def test_at_most_32_sessions(ctx):
    with _sandbox(ctx) as sid:
        for i in range(32):
            status, body = _api(ctx, sid, "session/create", {"id": f"s{i}"})
            _assert_ok(status, body)
        status, body = _api(ctx, sid, "session/create", {"id": "one-too-many"})
        _assert_error(status, body, 503, "CAPACITY_EXCEEDED")
        assert "one-too-many" not in _session_list(ctx, sid)["data"]
        # A freed place can be taken again.
        status, body = _api(ctx, sid, "session/delete", {"sessionId": "s0"})
        _assert_ok(status, body)
        status, body = _api(ctx, sid, "session/create", {"id": "one-too-many"})
        _assert_ok(status, body)
        assert _out(ctx, sid, "echo ok", sessionId="one-too-many") == "ok\n"


# ---------------------------------------------------------------------------
# One at a time within a session, in parallel across sessions.

def test_calls_in_one_session_run_one_at_a_time(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "rm -f /tmp/go-serial /tmp/started-serial /tmp/order", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "serial", then="echo first >> /tmp/order")
        path = f"/v1/sandboxes/{sid}/api/execute"
        second = _Background(lambda: _post_new_connection(
            ctx, path, {"command": "echo second >> /tmp/order; cat /tmp/order", "sessionId": "s"}))
        # Were the second call not held back, it would write /tmp/order: give it
        # a second (waiting inside the sandbox) to do so.
        res = _exec(ctx, sid, "for i in $(seq 20); do [ -e /tmp/order ] && break; sleep 0.05; done; "
                              "cat /tmp/order 2>/dev/null || echo not-yet", sessionId=NO_SESSION)
        assert res["stdout"] == "not-yet\n", f"a second call in a busy session ran at once: {res}"
        assert not second.done(), second.result(0)
        _release(ctx, sid, "serial")
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete" and end["exitCode"] == 0, (out, end)
        status, res = second.result(30)
        assert status == 200 and res["stdout"] == "first\nsecond\n", (status, res)


def test_other_sessions_run_while_one_is_busy(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "rm -f /tmp/go-par /tmp/started-par", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "par")
        assert _out(ctx, sid, "echo t", sessionId="t") == "t\n"
        assert _out(ctx, sid, "echo d") == "d\n"
        out, _, end = _stream(ctx, sid, {"command": "echo u", "sessionId": "u"})
        assert out == "u\n" and end["exitCode"] == 0, (out, end)
        _release(ctx, sid, "par")
        # The held command was still waiting all that time: it saw the release.
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete", (out, end)


# ---------------------------------------------------------------------------
# The sandbox's environment: POST .../env and PUT envVars.

def test_env_route_applies_to_every_session(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "true")
        _out(ctx, sid, "true", sessionId="early")
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env",
                                {"envVars": {"GLOBAL_A": "one", "GLOBAL_B": "two words"}})
        _assert_ok(status, body)
        for session in ("default", "early", "late", NO_SESSION):
            out = _out(ctx, sid, 'echo "$GLOBAL_A|$GLOBAL_B"; bash -c \'echo "$GLOBAL_A"\'', sessionId=session)
            assert out == "one|two words\none\n", (session, out)
        status, body = _api(ctx, sid, "session/create", {"id": "created"})
        _assert_ok(status, body)
        assert _out(ctx, sid, 'echo "$GLOBAL_A"', sessionId="created") == "one\n"
        # null unsets, everywhere; the other variable stays.
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"GLOBAL_A": None}})
        _assert_ok(status, body)
        for session in ("default", "early", "late", "created", NO_SESSION):
            out = _out(ctx, sid, 'echo "${GLOBAL_A-unset}|$GLOBAL_B"', sessionId=session)
            assert out == "unset|two words\n", (session, out)


def test_env_unset_gives_a_default_back_to_existing_sessions(ctx):
    with _sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"PATH": "/nowhere"}})
        _assert_ok(status, body)
        assert _out(ctx, sid, 'echo "$PATH"') == "/nowhere\n"
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"PATH": None}})
        _assert_ok(status, body)
        # The session that knew /nowhere has the default again, not nothing.
        assert _out(ctx, sid, 'echo "$PATH"') == "/usr/local/bin:/usr/bin:/bin\n"


def test_env_change_during_a_command_outlives_it(ctx):
    with _sandbox(ctx) as sid:
        _out(ctx, sid, "rm -f /tmp/go-envrun /tmp/started-envrun", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "envrun", then="export MINE=1")
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"LATE": "arrived"}})
        _assert_ok(status, body)
        _release(ctx, sid, "envrun")
        assert _finish(call)[0] == "released\n"
        # Both the command's own export and the change made while it ran.
        assert _out(ctx, sid, 'echo "$MINE $LATE"', sessionId="s") == "1 arrived\n"


def test_env_route_rejects_bad_bodies(ctx):
    with _sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"KEEP": "1"}})
        _assert_ok(status, body)
        bad_bodies = [
            {"envVars": "A=1"}, {"envVars": ["A=1"]}, {"envVars": 5},
            {"envVars": {"1A": "x"}}, {"envVars": {"A B": "x"}}, {"envVars": {"": "x"}},
            {"envVars": {"A=B": "x"}}, {"envVars": {"A": 1}}, {"envVars": {"A": True}},
            {"envVars": {"A": ["x"]}}, {"envVars": {"A": {"x": "y"}}},
            {"envVars": {"A": "x"}, "extra": 1},
            {"envVars": {"A": "x", "1BAD": "y"}},
        ]
        for bad in bad_bodies:
            status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", bad)
            _assert_error(status, body, 400, "VALIDATION_FAILED")
        for not_an_object in ([], "A=1"):
            status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", not_an_object)
            assert status == 400 and body.get("httpStatus") == 400, (not_an_object, body)
        # Nothing of the refused bodies was applied, not even their good parts.
        assert _out(ctx, sid, 'echo "$KEEP|${A-unset}"') == "1|unset\n"


def test_put_envvars_sets_the_sandbox_env(ctx):
    with _sandbox(ctx) as sid:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": {"P_VAR": "q"}})
        assert status == 201 and body["id"] == sid, body
        assert _out(ctx, sid, 'echo "$P_VAR"') == "q\n"
        assert _out(ctx, sid, 'echo "$P_VAR"', sessionId="other") == "q\n"
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": {"P_VAR": None, "P2": "r"}})
        assert status == 200, body
        assert _out(ctx, sid, 'echo "${P_VAR-unset}|$P2"') == "unset|r\n"
        for bad in ({"A": 1}, {"1A": "x"}, "A=1"):
            status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": bad})
            _assert_error(status, body, 400, "VALIDATION_FAILED")
        assert _out(ctx, sid, 'echo "${A-unset}|$P2"') == "unset|r\n"


def test_env_survives_sleep_but_sessions_do_not(ctx):
    with _sandbox(ctx) as sid:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"sleepAfter": 1})
        assert status == 201, body
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"SLEEPY": "kept"}})
        _assert_ok(status, body)
        assert _out(ctx, sid, "cd /tmp; export MINE=1") == ""
        assert _out(ctx, sid, "cd /usr", sessionId="named") == ""
        _wait_asleep(ctx, sid)
        out = _out(ctx, sid, 'pwd; echo "$SLEEPY|${MINE-unset}"')
        assert out == "/workspace\nkept|unset\n", out
        assert "named" not in _session_list(ctx, sid)["data"]
        assert _out(ctx, sid, "pwd", sessionId="named") == "/workspace\n"


def test_agent_crash_resets_sessions_and_keeps_env(ctx):
    with _sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"CRASHY": "kept"}})
        _assert_ok(status, body)
        assert _out(ctx, sid, "cd /tmp; export MINE=1") == ""
        assert _out(ctx, sid, "cd /usr", sessionId="named") == ""
        pid = _agent_pid(ctx, sid)
        fd = os.pidfd_open(pid)
        try:
            os.kill(pid, signal.SIGKILL)
            select.select([fd], [], [], 10)
        finally:
            os.close(fd)
        out = _out(ctx, sid, 'pwd; echo "$CRASHY|${MINE-unset}"')
        assert out == "/workspace\nkept|unset\n", out
        assert "named" not in _session_list(ctx, sid)["data"]
