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
import os
import secrets
import select
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from sandboxes import (NO_SESSION, Background, api, assert_error, assert_ok, execute,  # noqa: E402
                       execute_stream, kill_agent, output, sandbox, wait_asleep)


# ---------------------------------------------------------------------------
# Helpers of this file's own (the shared ones are in tests/lib/sandboxes.py).

def _session_list(ctx, sid):
    status, body = api(ctx, sid, "session/list", method="GET")
    assert_ok(status, body)
    assert isinstance(body["data"], list) and isinstance(body["sessions"], list), body
    assert body["count"] == len(body["data"]) == len(body["sessions"]), body
    assert [s["id"] for s in body["sessions"]] == body["data"], body
    return body


def _hold(ctx, sid, session, tag, then=""):
    """Starts in `session` (with /api/execute, on a thread: a stream would not
    hold the session) a command that waits, inside the sandbox, until the
    test creates /tmp/go-TAG, then runs `then` and prints "released"; after
    20 s without the file it prints "gave-up".  Returns once the command is
    known to run (it has created /tmp/started-TAG): the call in flight."""
    cmd = (f"touch /tmp/started-{tag}; i=0; while [ ! -e /tmp/go-{tag} ] && [ $i -lt 400 ]; do sleep 0.05; "
           f"i=$((i+1)); done; if [ -e /tmp/go-{tag} ]; then {then or ':'}; echo released; else echo gave-up; fi")
    path = f"/v1/sandboxes/{sid}/api/execute"
    call = Background(lambda: ctx.post_on_new_connection(
        path, {"command": cmd, "sessionId": session, "timeoutMs": 60000}))
    res = execute(ctx, sid, f"i=0; while [ ! -e /tmp/started-{tag} ] && [ $i -lt 400 ]; do sleep 0.02; "
                            f"i=$((i+1)); done; [ -e /tmp/started-{tag} ] && echo started", sessionId=NO_SESSION)
    assert res["stdout"] == "started\n", ("the held command never started", res, call.done() and call.result(0))
    return call


def _release(ctx, sid, tag):
    assert output(ctx, sid, f"touch /tmp/go-{tag}", sessionId=NO_SESSION) == ""


def _finish(call):
    """The held command's result -> (stdout, a terminal event of its outcome)."""
    status, res = call.result(60)
    assert status == 200, (status, res)
    return res["stdout"], {"type": "complete", "exitCode": res["exitCode"]}


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
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, "cd /tmp")
        assert res["exitCode"] == 0 and res["sessionId"] == "default", res
        assert output(ctx, sid, "pwd") == "/tmp\n"
        # Naming "default" is the same session as naming none.
        res = execute(ctx, sid, "pwd; cd /usr", sessionId="default")
        assert res["stdout"] == "/tmp\n" and res["sessionId"] == "default", res
        assert output(ctx, sid, "pwd") == "/usr\n"


def test_export_and_unset_persist(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "export FOO=bar") == ""
        # Exported: the shell and its children see it.
        assert output(ctx, sid, 'echo "$FOO"; bash -c \'echo "child:$FOO"\'') == "bar\nchild:bar\n"
        assert output(ctx, sid, "unset FOO") == ""
        assert output(ctx, sid, 'echo "${FOO-unset}"') == "unset\n"


def test_exported_values_keep_every_byte(ctx):
    """Values with newlines, quotes, backslashes, dollars, backquotes, tabs,
    control characters and non-ASCII text come back exactly, also from a
    shell in POSIX mode (whose export -p looks different)."""
    value = 'one\ntwo "q" \'s\' \\ $x `y` \t \x01 \u00e9\u4e2d end'
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, 'export V="$(cat)"; export EMPTY=', stdin=value)
        assert res["exitCode"] == 0, res
        assert output(ctx, sid, 'printf %s "$V"') == value
        assert output(ctx, sid, 'echo "[${EMPTY-unset}]"') == "[]\n"
        assert output(ctx, sid, "set -o posix; export P=posix-$V") == ""
        assert output(ctx, sid, 'printf %s "$P"') == "posix-" + value


def test_unexported_variables_and_functions_do_not_persist(ctx):
    """Documented: only cd and export carry over, not plain variables or functions."""
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "X=plain; f() { echo fn; }; echo $X; f") == "plain\nfn\n"
        res = execute(ctx, sid, 'echo "${X-unset}"; type -t f || echo no-function')
        assert res["stdout"] == "unset\nno-function\n", res


def test_state_kept_after_a_failing_command(ctx):
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, "cd /tmp && export E=kept; false", sessionId="s")
        assert res["exitCode"] == 1 and res["success"] is False, res
        assert output(ctx, sid, 'pwd; echo "$E"', sessionId="s") == "/tmp\nkept\n"


def test_stream_starts_from_the_session_and_leaves_it(ctx):
    """As the SDK's execStream: a stream runs from its session's cwd and
    environment, beside the session's other calls, and changes nothing."""
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "cd /usr; export S1=from-execute", sessionId="s") == ""
        out, _, end = execute_stream(ctx, sid, {"command": 'pwd; echo "$S1"; cd /tmp; export S2=x', "sessionId": "s"})
        assert end["type"] == "complete" and end["exitCode"] == 0, end
        assert out == "/usr\nfrom-execute\n", out
        assert output(ctx, sid, 'pwd; echo "[${S2-}]"', sessionId="s") == "/usr\n[]\n"
        # The default session is the default of both routes.
        assert output(ctx, sid, "cd /tmp") == ""
        out, _, end = execute_stream(ctx, sid, {"command": "pwd"})
        assert out == "/tmp\n", out
        # A stream does not wait for a busy session.
        output(ctx, sid, "rm -f /tmp/go-st /tmp/started-st", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "st")
        out, _, end = execute_stream(ctx, sid, {"command": "echo beside", "sessionId": "s"})
        assert out == "beside\n" and end["exitCode"] == 0, (out, end)
        assert not call.done(), call.result(0)
        _release(ctx, sid, "st")
        assert _finish(call)[0] == "released\n"


def test_per_call_env_applies_to_that_call_only(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, 'echo "$A"', env={"A": "call"}) == "call\n"
        assert output(ctx, sid, 'echo "${A-unset}"') == "unset\n"
        # Over a variable the session exported: the call's value, for that call.
        assert output(ctx, sid, "export A=session") == ""
        assert output(ctx, sid, 'echo "$A"', env={"A": "call"}) == "call\n"
        assert output(ctx, sid, 'echo "$A"') == "session\n"


def test_per_call_cwd_leaves_the_session_cwd(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "cd /tmp", sessionId="s") == ""
        assert output(ctx, sid, "pwd", sessionId="s", cwd="/usr") == "/usr\n"
        assert output(ctx, sid, "pwd", sessionId="s") == "/tmp\n"
        # A bad cwd is still the caller's mistake, and changes nothing either.
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                                {"command": "pwd", "sessionId": "s", "cwd": "/no/such/dir"})
        assert status == 400 and body["code"] == "VALIDATION_FAILED", body
        assert output(ctx, sid, "pwd", sessionId="s") == "/tmp\n"
        # A directory the sandbox's user may not enter is refused as one that
        # does not exist: the directory is entered as that user.
        assert output(ctx, sid, "mkdir -p /tmp/locked && chmod 000 /tmp/locked", sessionId="s") == ""
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                                {"command": "pwd", "sessionId": "s", "cwd": "/tmp/locked"})
        assert status == 400 and body["code"] == "VALIDATION_FAILED", body
        assert "Permission denied" in body["message"], body


def test_exit_syntax_errors_and_timeouts_do_not_break_the_session(ctx):
    """What a persistent shell must survive: exit, unbalanced syntax (which must
    not swallow the next command), a timeout."""
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, "exit 5", sessionId="s")
        assert res["exitCode"] == 5 and res["success"] is False, res
        assert output(ctx, sid, "echo after-exit", sessionId="s") == "after-exit\n"
        for bad in ("echo 'unterminated", "if true; then echo x", "( echo open", "}"):
            res = execute(ctx, sid, bad, sessionId="s", timeoutMs=10000)
            assert res["exitCode"] != 0 and res["timedOut"] is False, (bad, res)
            assert output(ctx, sid, "echo next", sessionId="s") == "next\n", bad
        res = execute(ctx, sid, "sleep 30", sessionId="s", timeoutMs=500)
        assert res["timedOut"] is True and res["success"] is False, res
        assert output(ctx, sid, "echo after-timeout", sessionId="s") == "after-timeout\n"


def test_output_and_stdin_boundaries_in_a_session(ctx):
    """Output without a final newline, empty output, large output and stdin are
    exactly the command's own; a command reading stdin never reads the next
    command (its stdin without `stdin` is empty)."""
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, "printf no-newline; printf err-part >&2", sessionId="s")
        assert res["stdout"] == "no-newline" and res["stderr"] == "err-part", res
        res = execute(ctx, sid, "true", sessionId="s")
        assert res["stdout"] == "" and res["stderr"] == "", res
        res = execute(ctx, sid, "head -c 200000 /dev/zero | tr '\\0' a", sessionId="s")
        assert res["stdout"] == "a" * 200000 and res["truncated"] is False, len(res["stdout"])
        res = execute(ctx, sid, "cat; echo end", sessionId="s", stdin="line one\nline two")
        assert res["stdout"] == "line one\nline twoend\n", res
        res = execute(ctx, sid, 'cat; read x; echo "[$x]"', sessionId="s", timeoutMs=10000)
        assert res["stdout"] == "[]\n" and res["timedOut"] is False, res
        assert output(ctx, sid, "echo still-here", sessionId="s") == "still-here\n"


# ---------------------------------------------------------------------------
# Several sessions.

def test_sessions_are_independent_but_share_files(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "cd /tmp; export WHO=a; echo from-a > /workspace/shared.txt", sessionId="a") == ""
        assert output(ctx, sid, "cd /usr; export WHO=b", sessionId="b") == ""
        assert output(ctx, sid, 'pwd; echo "$WHO"', sessionId="a") == "/tmp\na\n"
        assert output(ctx, sid, 'pwd; echo "$WHO"; cat /workspace/shared.txt', sessionId="b") == "/usr\nb\nfrom-a\n"
        assert output(ctx, sid, 'pwd; echo "${WHO-unset}"; cat shared.txt') == "/workspace\nunset\nfrom-a\n"


def test_sessionless_calls_keep_nothing(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "cd /tmp; export Z=1", sessionId=NO_SESSION) == ""
        assert output(ctx, sid, 'pwd; echo "${Z-unset}"', sessionId=NO_SESSION) == "/workspace\nunset\n"
        # Neither the default session's state leaks in, nor theirs into it.
        assert output(ctx, sid, "cd /usr; export D=1") == ""
        assert output(ctx, sid, 'pwd; echo "${D-unset}"', sessionId=NO_SESSION) == "/workspace\nunset\n"
        assert output(ctx, sid, 'pwd; echo "${Z-unset}"') == "/usr\nunset\n"
        assert NO_SESSION not in _session_list(ctx, sid)["data"]


def test_unknown_session_is_created_on_first_use(ctx):
    with sandbox(ctx) as sid:
        res = execute(ctx, sid, "pwd; cd /tmp", sessionId="fresh-1")
        assert res["stdout"] == "/workspace\n" and res["sessionId"] == "fresh-1", res
        lst = _session_list(ctx, sid)
        assert "fresh-1" in lst["data"], lst
        status, body = api(ctx, sid, "session/create", {"id": "fresh-1"})
        assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")
        # The 409 left the session as it was.
        assert output(ctx, sid, "pwd", sessionId="fresh-1") == "/tmp\n"


# ---------------------------------------------------------------------------
# The session routes.

def test_session_create_defaults(ctx):
    with sandbox(ctx) as sid:
        status, body = api(ctx, sid, "session/create", {})
        assert_ok(status, body)
        new = body["sessionId"]
        assert isinstance(new, str) and new.startswith("session_") and body["id"] == new, body
        assert body["cwd"] == "/workspace" and body["data"] == {"id": new, "cwd": "/workspace"}, body
        status, other = api(ctx, sid, "session/create", {})
        assert_ok(status, other)
        assert other["sessionId"] != new, (body, other)
        assert {new, other["sessionId"]} <= set(_session_list(ctx, sid)["data"])
        res = execute(ctx, sid, "pwd", sessionId=new)
        assert res["stdout"] == "/workspace\n" and res["sessionId"] == new, res


def test_session_create_with_env_and_cwd(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "mkdir -p sub/dir", sessionId=NO_SESSION) == ""
        status, body = api(ctx, sid, "session/create",
                           {"id": "s1", "env": {"S_ENV": "one two", "_X1": ""}, "cwd": "sub/dir"})
        assert_ok(status, body)
        assert body["sessionId"] == "s1" and body["id"] == "s1", body
        assert body["cwd"] == "/workspace/sub/dir" and body["data"] == {"id": "s1", "cwd": "/workspace/sub/dir"}, body
        out = output(ctx, sid, 'pwd; echo "$S_ENV|${_X1-unset}"; bash -c \'echo "child:$S_ENV"\'', sessionId="s1")
        assert out == "/workspace/sub/dir\none two|\nchild:one two\n", out
        status, body = api(ctx, sid, "session/create", {"id": "s2", "cwd": "/tmp"})
        assert_ok(status, body)
        assert body["cwd"] == "/tmp", body
        assert output(ctx, sid, "pwd", sessionId="s2") == "/tmp\n"
        # The env was the session's own.
        assert output(ctx, sid, 'echo "${S_ENV-unset}"', sessionId="s2") == "unset\n"
        assert output(ctx, sid, 'pwd; echo "${S_ENV-unset}"') == "/workspace\nunset\n"


def test_session_create_existing_id_conflicts(ctx):
    with sandbox(ctx) as sid:
        status, body = api(ctx, sid, "session/create", {"id": "dup", "cwd": "/tmp"})
        assert_ok(status, body)
        assert output(ctx, sid, "export MARK=first", sessionId="dup") == ""
        status, body = api(ctx, sid, "session/create", {"id": "dup", "cwd": "/usr", "env": {"MARK": "second"}})
        assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")
        assert output(ctx, sid, 'pwd; echo "$MARK"', sessionId="dup") == "/tmp\nfirst\n"
        # The default session, once used, exists too.
        output(ctx, sid, "true")
        status, body = api(ctx, sid, "session/create", {"id": "default"})
        assert_error(status, body, 409, "SESSION_ALREADY_EXISTS")


def test_session_create_rejects_bad_ids(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true", sessionId=NO_SESSION)
        before = set(_session_list(ctx, sid)["data"])
        for bad in ("", "a b", "a/b", "../x", "x" * 64, NO_SESSION, "caf\u00e9", "a\nb", "a:b", 5, True, ["a"], {}):
            status, body = api(ctx, sid, "session/create", {"id": bad})
            assert_error(status, body, 400, "VALIDATION_FAILED")
        assert set(_session_list(ctx, sid)["data"]) == before
        # The edges of what is allowed.
        for good in ("x" * 63, "A.b_c-9", "-x", ".dot"):
            status, body = api(ctx, sid, "session/create", {"id": good})
            assert_ok(status, body)
            assert body["sessionId"] == good, body


def test_session_create_rejects_bad_env(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true", sessionId=NO_SESSION)
        bad_envs = ["A=1", ["A=1"], 5, True, {"1A": "x"}, {"A B": "x"}, {"": "x"}, {"A=B": "x"},
                    {"A-B": "x"}, {"A": 1}, {"A": True}, {"A": ["x"]}, {"A": {"x": "y"}},
                    {"GOOD": "1", "1BAD": "x"}]
        for i, env in enumerate(bad_envs):
            status, body = api(ctx, sid, "session/create", {"id": f"badenv{i}", "env": env})
            assert_error(status, body, 400, "VALIDATION_FAILED")
        left = [s for s in _session_list(ctx, sid)["data"] if s.startswith("badenv")]
        assert not left, f"refused creates made sessions: {left}"


def test_session_list_reports_sessions(ctx):
    with sandbox(ctx) as sid:
        for name, cwd in (("a", "/tmp"), ("b", None)):
            body = {"id": name} if cwd is None else {"id": name, "cwd": cwd}
            status, res = api(ctx, sid, "session/create", body)
            assert_ok(status, res)
        lst = _session_list(ctx, sid)
        assert set(lst["data"]) - {"default"} == {"a", "b"}, lst
        by_id = {s["id"]: s for s in lst["sessions"]}
        assert by_id["a"] == {**by_id["a"], "cwd": "/tmp", "busy": False}, lst
        assert by_id["b"] == {**by_id["b"], "cwd": "/workspace", "busy": False}, lst
        output(ctx, sid, "true", sessionId="c")
        assert set(_session_list(ctx, sid)["data"]) - {"default"} == {"a", "b", "c"}


def test_session_list_shows_a_busy_session(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "rm -f /tmp/go-busy /tmp/started-busy", sessionId="idle")
        call = _hold(ctx, sid, "worker", "busy")
        by_id = {s["id"]: s for s in _session_list(ctx, sid)["sessions"]}
        assert by_id["worker"]["busy"] is True and by_id["idle"]["busy"] is False, by_id
        _release(ctx, sid, "busy")
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete" and end["exitCode"] == 0, (out, end)
        by_id = {s["id"]: s for s in _session_list(ctx, sid)["sessions"]}
        assert by_id["worker"]["busy"] is False, by_id


def test_session_delete(ctx):
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "cd /tmp; export G=1", sessionId="gone") == ""
        status, body = api(ctx, sid, "session/delete", {"sessionId": "gone"})
        assert_ok(status, body)
        assert body["sessionId"] == "gone", body
        assert "gone" not in _session_list(ctx, sid)["data"]
        status, body = api(ctx, sid, "session/delete", {"sessionId": "gone"})
        assert_error(status, body, 404, "SESSION_NOT_FOUND")
        # Used again, the name is a new session with nothing of the old one.
        assert output(ctx, sid, 'pwd; echo "${G-unset}"', sessionId="gone") == "/workspace\nunset\n"


def test_session_delete_bad_input(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true", sessionId="keep")
        for bad in ({}, {"sessionId": 5}, {"sessionId": None}, {"sessionId": ["keep"]}, {"id": "keep"}):
            status, body = api(ctx, sid, "session/delete", bad)
            assert_error(status, body, 400, "VALIDATION_FAILED")
        status, body = api(ctx, sid, "session/delete", {"sessionId": "never-made"})
        assert_error(status, body, 404, "SESSION_NOT_FOUND")
        assert "keep" in _session_list(ctx, sid)["data"]


def test_session_delete_kills_its_running_command(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true", sessionId="victim")
        secs = f"{400 + secrets.randbelow(500)}.{secrets.randbelow(100)}"
        path = f"/v1/sandboxes/{sid}/api/execute"
        call = Background(lambda: ctx.post_on_new_connection(
            path, {"command": f"sleep {secs}; echo not-killed", "sessionId": "victim", "timeoutMs": 600000}))
        fds = [os.pidfd_open(pid) for pid in _wait_host_process(ctx, [b"sleep", secs.encode()])]
        try:
            status, body = api(ctx, sid, "session/delete", {"sessionId": "victim"})
            assert_ok(status, body)
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
        assert output(ctx, sid, "echo alive") == "alive\n"


def test_at_most_32_sessions(ctx):
    with sandbox(ctx) as sid:
        for i in range(32):
            status, body = api(ctx, sid, "session/create", {"id": f"s{i}"})
            assert_ok(status, body)
        status, body = api(ctx, sid, "session/create", {"id": "one-too-many"})
        assert_error(status, body, 503, "CAPACITY_EXCEEDED")
        assert "one-too-many" not in _session_list(ctx, sid)["data"]
        # A freed place can be taken again.
        status, body = api(ctx, sid, "session/delete", {"sessionId": "s0"})
        assert_ok(status, body)
        status, body = api(ctx, sid, "session/create", {"id": "one-too-many"})
        assert_ok(status, body)
        assert output(ctx, sid, "echo ok", sessionId="one-too-many") == "ok\n"


# ---------------------------------------------------------------------------
# One at a time within a session, in parallel across sessions.

def test_calls_in_one_session_run_one_at_a_time(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "rm -f /tmp/go-serial /tmp/started-serial /tmp/order", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "serial", then="echo first >> /tmp/order")
        path = f"/v1/sandboxes/{sid}/api/execute"
        second = Background(lambda: ctx.post_on_new_connection(
            path, {"command": "echo second >> /tmp/order; cat /tmp/order", "sessionId": "s"}))
        # Were the second call not held back, it would write /tmp/order: give it
        # a second (waiting inside the sandbox) to do so.
        res = execute(ctx, sid, "for i in $(seq 20); do [ -e /tmp/order ] && break; sleep 0.05; done; "
                                "cat /tmp/order 2>/dev/null || echo not-yet", sessionId=NO_SESSION)
        assert res["stdout"] == "not-yet\n", f"a second call in a busy session ran at once: {res}"
        assert not second.done(), second.result(0)
        _release(ctx, sid, "serial")
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete" and end["exitCode"] == 0, (out, end)
        status, res = second.result(30)
        assert status == 200 and res["stdout"] == "first\nsecond\n", (status, res)


def test_other_sessions_run_while_one_is_busy(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "rm -f /tmp/go-par /tmp/started-par", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "par")
        assert output(ctx, sid, "echo t", sessionId="t") == "t\n"
        assert output(ctx, sid, "echo d") == "d\n"
        out, _, end = execute_stream(ctx, sid, {"command": "echo u", "sessionId": "u"})
        assert out == "u\n" and end["exitCode"] == 0, (out, end)
        _release(ctx, sid, "par")
        # The held command was still waiting all that time: it saw the release.
        out, end = _finish(call)
        assert out == "released\n" and end["type"] == "complete", (out, end)


# ---------------------------------------------------------------------------
# The sandbox's environment: POST .../env and PUT envVars.

def test_env_route_applies_to_every_session(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true")
        output(ctx, sid, "true", sessionId="early")
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env",
                                {"envVars": {"GLOBAL_A": "one", "GLOBAL_B": "two words"}})
        assert_ok(status, body)
        for session in ("default", "early", "late", NO_SESSION):
            out = output(ctx, sid, 'echo "$GLOBAL_A|$GLOBAL_B"; bash -c \'echo "$GLOBAL_A"\'', sessionId=session)
            assert out == "one|two words\none\n", (session, out)
        status, body = api(ctx, sid, "session/create", {"id": "created"})
        assert_ok(status, body)
        assert output(ctx, sid, 'echo "$GLOBAL_A"', sessionId="created") == "one\n"
        # null unsets, everywhere; the other variable stays.
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"GLOBAL_A": None}})
        assert_ok(status, body)
        for session in ("default", "early", "late", "created", NO_SESSION):
            out = output(ctx, sid, 'echo "${GLOBAL_A-unset}|$GLOBAL_B"', sessionId=session)
            assert out == "unset|two words\n", (session, out)


def test_env_unset_gives_a_default_back_to_existing_sessions(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"PATH": "/nowhere"}})
        assert_ok(status, body)
        assert output(ctx, sid, 'echo "$PATH"') == "/nowhere\n"
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"PATH": None}})
        assert_ok(status, body)
        # The session that knew /nowhere has the default again, not nothing.
        assert output(ctx, sid, 'echo "$PATH"') == "/usr/local/bin:/usr/bin:/bin\n"


def test_env_change_during_a_command_outlives_it(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "rm -f /tmp/go-envrun /tmp/started-envrun", sessionId=NO_SESSION)
        call = _hold(ctx, sid, "s", "envrun", then="export MINE=1")
        # Several changes while it runs, of the same names: the last of each counts.
        for change in ({"LATE": "first"}, {"LATE": "arrived", "GONE": "x"}, {"GONE": None}):
            status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": change})
            assert_ok(status, body)
        _release(ctx, sid, "envrun")
        assert _finish(call)[0] == "released\n"
        # Both the command's own export and the changes made while it ran.
        assert output(ctx, sid, 'echo "$MINE $LATE ${GONE-unset}"', sessionId="s") == "1 arrived unset\n"
        assert output(ctx, sid, "env | grep -c ^LATE=", sessionId="s") == "1\n"


def test_env_route_rejects_bad_bodies(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"KEEP": "1"}})
        assert_ok(status, body)
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
            assert_error(status, body, 400, "VALIDATION_FAILED")
        for not_an_object in ([], "A=1"):
            status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", not_an_object)
            assert status == 400 and body.get("httpStatus") == 400, (not_an_object, body)
        # Nothing of the refused bodies was applied, not even their good parts.
        assert output(ctx, sid, 'echo "$KEEP|${A-unset}"') == "1|unset\n"


def test_put_envvars_sets_the_sandbox_env(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": {"P_VAR": "q"}})
        assert status == 201 and body["id"] == sid, body
        assert output(ctx, sid, 'echo "$P_VAR"') == "q\n"
        assert output(ctx, sid, 'echo "$P_VAR"', sessionId="other") == "q\n"
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": {"P_VAR": None, "P2": "r"}})
        assert status == 200, body
        assert output(ctx, sid, 'echo "${P_VAR-unset}|$P2"') == "unset|r\n"
        for bad in ({"A": 1}, {"1A": "x"}, "A=1"):
            status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"envVars": bad})
            assert_error(status, body, 400, "VALIDATION_FAILED")
        assert output(ctx, sid, 'echo "${A-unset}|$P2"') == "unset|r\n"


def test_env_survives_sleep_but_sessions_do_not(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"sleepAfter": 1})
        assert status == 201, body
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"SLEEPY": "kept"}})
        assert_ok(status, body)
        assert output(ctx, sid, "cd /tmp; export MINE=1") == ""
        assert output(ctx, sid, "cd /usr", sessionId="named") == ""
        wait_asleep(ctx, sid)
        out = output(ctx, sid, 'pwd; echo "$SLEEPY|${MINE-unset}"')
        assert out == "/workspace\nkept|unset\n", out
        assert "named" not in _session_list(ctx, sid)["data"]
        assert output(ctx, sid, "pwd", sessionId="named") == "/workspace\n"


def test_agent_crash_resets_sessions_and_keeps_env(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/env", {"envVars": {"CRASHY": "kept"}})
        assert_ok(status, body)
        assert output(ctx, sid, "cd /tmp; export MINE=1") == ""
        assert output(ctx, sid, "cd /usr", sessionId="named") == ""
        kill_agent(ctx, sid)
        out = output(ctx, sid, 'pwd; echo "$CRASHY|${MINE-unset}"')
        assert out == "/workspace\nkept|unset\n", out
        assert "named" not in _session_list(ctx, sid)["data"]
