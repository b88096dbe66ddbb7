"""The code interpreter through the real stack (nginx, sandboxd, a sandbox's
agent, the drivers): contexts (POST/GET/DELETE .../api/contexts), cells as a
stream (POST .../api/execute/code, the SDK's route) and as one result
(POST .../run-code).

Covered: state across cells, the last expression's value and ';', the order
of output and results in the stream, execution counts; rich results
(matplotlib PNG, pandas HTML); errors with the cell's line numbers; the
timeout (interrupted, state kept) and its escalation (killed, state lost);
the OOM killer (on a stack of its own with a small memory limit); contexts
isolated from each other, with their own cwd and environment; JavaScript
and TypeScript contexts; stdin at EOF and live output; listing, deleting,
errors and the limit of 16 contexts; a client that goes away mid-cell; the
output cap and idle reaping (each on a stack of its own with a small value).

Nothing here waits a fixed time on the host: a cell that must be running is
known to be by the first line it streamed, a cell that must wait does so
inside the sandbox (until the test creates a file there), and reaping is
waited for by polling GET .../api/contexts against a deadline."""
import base64
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from context import Context  # noqa: E402
from sandboxes import NO_SESSION, api, assert_error, delete_sandbox, new_id, sandbox  # noqa: E402
from stack import Stack  # noqa: E402

TERMINAL = ("execution_complete", "error")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# Helpers of this file's own.

class Stream:
    """POST .../api/execute/code on a connection of its own, read event by
    event as they arrive.  The caller closes it (or uses it as a context
    manager)."""

    def __init__(self, ctx, sid, body):
        self.conn = ctx.stack.connection()
        self.conn.request("POST", f"/v1/sandboxes/{sid}/api/execute/code", body=json.dumps(body),
                          headers={"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ctype = self.resp.getheader("Content-Type", "")
        self.events = []
        self.ended = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.conn.close()

    def body(self):
        """The body of a response that is not a stream, decoded."""
        data = self.resp.read()
        try:
            return json.loads(data)
        except ValueError:
            raise AssertionError(f"{self.status} with a body that is not JSON: {data[:300]!r}")

    def next(self):
        """The next event (None at the end of the stream); comments (pings)
        are skipped."""
        assert self.status == 200, (self.status, self.resp.read()[:500])
        assert self.ctype.startswith("text/event-stream"), self.ctype
        if self.ended:
            return None
        data = []
        while True:
            line = self.resp.readline()
            if not line:
                self.ended = True
                assert not data, f"the stream ended inside an event: {data}"
                return None
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                ev = json.loads("\n".join(data))
                self.events.append(ev)
                if ev.get("type") in TERMINAL:
                    self.ended = True
                return ev

    def rest(self):
        """Reads up to the terminal event, which must come -> every event."""
        while self.next() is not None:
            pass
        assert self.events and self.events[-1]["type"] in TERMINAL, \
            f"the stream ended without a terminal event: {self.events}"
        return self.events


def stream_cell(ctx, sid, code, **kw):
    """A whole cell through /api/execute/code -> its events (the last one is
    terminal).  kw: context_id, language, timeout_ms."""
    body = {"code": code}
    body.update(kw)
    with Stream(ctx, sid, body) as s:
        return s.rest()


def merged(events):
    """(type, text) of each event, consecutive stdout (or stderr) chunks
    joined: how a stream's output is cut into events is not part of the
    contract, its order with the results is."""
    out = []
    for e in events:
        kind, text = e["type"], e.get("text")
        if out and kind in ("stdout", "stderr") and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
    return out


def stdout_of(events):
    return "".join(e["text"] for e in events if e["type"] == "stdout")


def stderr_of(events):
    return "".join(e["text"] for e in events if e["type"] == "stderr")


def results_of(events):
    return [e for e in events if e["type"] == "result"]


def main_text(events):
    mains = [e for e in results_of(events) if e.get("isMainResult")]
    assert len(mains) <= 1, events
    return mains[0].get("text") if mains else None


def ok_cell(ctx, sid, code, **kw):
    """A cell that must end without an error -> its events."""
    events = stream_cell(ctx, sid, code, **kw)
    assert events[-1]["type"] == "execution_complete", (code, events)
    return events


def run_code(ctx, sid, body):
    """POST .../run-code -> (status, body)."""
    return ctx.json("POST", f"/v1/sandboxes/{sid}/run-code", body)


def run_ok(ctx, sid, code, context=None, language=None, **kw):
    """A /run-code cell whose call must succeed -> its body (the cell itself
    may have failed: see body["error"])."""
    body = {"code": code}
    if context is not None:
        body["context"] = context
    if language is not None:
        body["language"] = language
    body.update(kw)
    status, res = run_code(ctx, sid, body)
    assert status == 200 and res.get("success") is True, (code, status, res)
    return res


def value(res):
    """The main result's text of a /run-code body whose cell must not fail."""
    assert res["error"] is None, res
    mains = [r for r in res["results"] if r.get("isMainResult")]
    assert len(mains) == 1, res
    return mains[0].get("text")


def new_context(ctx, sid, **body):
    """POST .../api/contexts that must succeed -> its body."""
    status, res = api(ctx, sid, "contexts", body)
    assert status == 200 and res.get("success") is True, (body, status, res)
    assert isinstance(res.get("contextId"), str) and len(res["contextId"]) == 36, res
    return res


def list_contexts(ctx, sid):
    status, res = api(ctx, sid, "contexts", method="GET")
    assert status == 200 and res.get("success") is True, (status, res)
    return {c["id"]: c for c in res["contexts"]}


def release(ctx, sid, tag):
    """Writes to the FIFO /workspace/go-TAG of a waiting cell, with a
    command of its own, whose open waits for the cell's (20 s at most: a
    cell that gave up fails its test, not hangs it)."""
    status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                           {"command": f"timeout 20 sh -c 'echo go > /workspace/go-{tag}'",
                            "sessionId": NO_SESSION})
    assert status == 200 and res["exitCode"] == 0, res


def waiting_cell_py(tag, then="print('released')"):
    """Python that makes the FIFO /workspace/go-TAG, prints 'first', then
    waits inside the sandbox (at most 20 s) for release() to write to it,
    then runs `then` (or prints 'gave-up')."""
    return (f"import os, select, sys\nos.mkfifo('/workspace/go-{tag}')\n"
            f"fd = os.open('/workspace/go-{tag}', os.O_RDONLY | os.O_NONBLOCK)\n"
            f"sys.stdout.write('first\\n')\n"
            f"released = select.select([fd], [], [], 20)[0]\nos.close(fd)\n"
            f"if released:\n    {then}\nelse:\n    print('gave-up')\n")


def extra_stack(ctx, n, env):
    """A small stack of its own, with env; its uids above the main stack's
    and those the other suites use (1, 2, 3 and 5 spans up)."""
    return Stack(ctx.stack.build_dir, workers=2, uid_base=ctx.uid_base + n * ctx.uid_span,
                 uid_slots=8, env=env)


def png_size(b64):
    """(width, height) of base64 PNG data, which must be a PNG."""
    raw = base64.b64decode(b64, validate=True)
    assert raw[:8] == PNG_SIGNATURE, raw[:16]
    length, kind = struct.unpack(">I4s", raw[8:16])
    assert kind == b"IHDR" and length == 13, raw[8:16]
    return struct.unpack(">II", raw[16:24])


# ---------------------------------------------------------------------------
# 1. State, values, order, counts.

def test_state_value_semicolon_order_and_count(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid, language="python")["contextId"]
        ev1 = ok_cell(ctx, sid, "x = 40\ny = 2", context_id=cid)
        assert results_of(ev1) == [] and stdout_of(ev1) == "", ev1
        assert ev1[-1]["execution_count"] == 1, ev1

        # print, then the last expression's value: stdout before the result.
        ev2 = ok_cell(ctx, sid, "print('hello')\nx + y", context_id=cid)
        assert merged(ev2) == [("stdout", "hello\n"), ("result", "42"), ("execution_complete", None)], ev2
        assert results_of(ev2)[0]["isMainResult"] is True, ev2
        assert ev2[-1]["execution_count"] == 2, ev2

        # ';' suppresses the value (comments after it do not matter); the
        # statement still ran.
        ev3 = ok_cell(ctx, sid, "z = x * 2\nz;  # quiet", context_id=cid)
        assert results_of(ev3) == [], ev3
        assert ev3[-1]["execution_count"] == 3, ev3

        # A display() result, then the value: both, the value the main one.
        ev4 = ok_cell(ctx, sid, "display('shown')\nz", context_id=cid)
        assert merged(ev4) == [("result", "'shown'"), ("result", "80"), ("execution_complete", None)], ev4
        assert [e["isMainResult"] for e in results_of(ev4)] == [False, True], ev4
        assert ev4[-1]["execution_count"] == 4, ev4

        # The same context through /run-code: state and count go on.
        res = run_ok(ctx, sid, "print('via run-code')\n_ + 1", context=cid)
        assert value(res) == "81", res
        assert "".join(res["logs"]["stdout"]) == "via run-code\n" and res["logs"]["stderr"] == [], res
        assert res["executionCount"] == 5 and res["contextId"] == cid, res
        assert res["code"] == "print('via run-code')\n_ + 1" and res["truncated"] is False, res
        # A context given as a CodeContext object, as the SDK sends it.
        res = run_ok(ctx, sid, "z", context={"id": cid, "language": "python"})
        assert value(res) == "80" and res["executionCount"] == 6, res
        assert list_contexts(ctx, sid)[cid]["executionCount"] == 6


def test_output_written_before_a_result_comes_before_it(ctx):
    """The documented order: the drivers flush the cell's output before each
    event and sandboxd reads the output pipes before it takes each event, so
    what the cell wrote before a result comes before it in the stream."""
    with sandbox(ctx) as sid:
        events = ok_cell(ctx, sid, "import sys\nfor i in range(20):\n    print(i)\n"
                                   "    sys.stderr.write(f'e{i}\\n')\n    display(-i)")
        results = 0
        for k, e in enumerate(events):
            if e["type"] != "result":
                continue
            i = -int(e["text"])
            assert i == results, [(x["type"], x.get("text")) for x in events]
            results += 1
            before = events[:k]
            assert stdout_of(before).startswith("".join(f"{n}\n" for n in range(i + 1))), (i, stdout_of(before))
            assert stderr_of(before).startswith("".join(f"e{n}\n" for n in range(i + 1))), (i, stderr_of(before))
        assert results == 20, events
        assert stdout_of(events) == "".join(f"{n}\n" for n in range(20)), events
        # Before a large result (a chart), and before an error.
        events = ok_cell(ctx, sid, "import matplotlib.pyplot as plt\nprint('before the chart')\n"
                                   "plt.plot([1, 2])\nplt.show()")
        assert merged(events)[0] == ("stdout", "before the chart\n") and "png" in events[-2], \
            [(k, (t or "")[:20]) for k, t in merged(events)]
        events = stream_cell(ctx, sid, "print('x' * 100000)\nraise RuntimeError('after output')")
        assert merged(events)[:1] == [("stdout", "x" * 100000 + "\n")] and len(merged(events)) == 2, \
            [(k, (t or "")[:20]) for k, t in merged(events)]
        assert events[-1]["ename"] == "RuntimeError", events[-1]


def test_default_context_is_made_on_demand(ctx):
    with sandbox(ctx) as sid:
        ok_cell(ctx, sid, "d = 'default'")
        res = run_ok(ctx, sid, "d")
        assert value(res) == "'default'" and res["contextId"] == "default-python", res
        assert res["executionCount"] == 2, res
        # An alias of the language names the same default context.
        res = run_ok(ctx, sid, "d", language="py")
        assert value(res) == "'default'" and res["contextId"] == "default-python", res
        listed = list_contexts(ctx, sid)
        assert list(listed) == ["default-python"], listed


# ---------------------------------------------------------------------------
# 2. Rich results.

def test_matplotlib_png_and_dataframe_html(ctx):
    with sandbox(ctx) as sid:
        events = ok_cell(ctx, sid, (
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(4, 3))\n"
            "ax.plot([1, 2, 3], [3, 1, 2])\n"
            "plt.show()\n"
            "print('after show')\n"))
        pngs = [e for e in results_of(events) if "png" in e]
        assert len(pngs) == 1, [{k: str(v)[:60] for k, v in e.items()} for e in events]
        w, h = png_size(pngs[0]["png"])
        assert w > 0 and h > 0, (w, h)
        assert pngs[0]["isMainResult"] is False, {k: v for k, v in pngs[0].items() if k != "png"}
        assert stdout_of(events) == "after show\n", events

        res = run_ok(ctx, sid, "import pandas as pd\npd.DataFrame({'name': ['a', 'b'], 'n': [1, 2]})")
        assert res["error"] is None, res
        (df,) = res["results"]
        assert df["isMainResult"] is True, df
        assert "<table" in df["html"] and "<td>a</td>" in df["html"], df
        assert "name" in df["text"] and "n" in df["text"] and "a" in df["text"], df


# ---------------------------------------------------------------------------
# 3. Errors.

def test_syntax_and_runtime_errors_name_the_cell_line(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        events = stream_cell(ctx, sid, "a = 1\nb = 2\nif a:\n    c = (\n", context_id=cid)
        err = events[-1]
        assert err["type"] == "error" and err["ename"] == "SyntaxError", events
        assert "never closed" in err["evalue"], err
        tb = "\n".join(err["traceback"])
        assert 'File "<cell-1>", line 4' in tb, tb
        assert err["execution_count"] == 1, err
        # Nothing of the cell ran.
        res = run_ok(ctx, sid, "'a' in dir()", context=cid)
        assert value(res) == "False", res

        events = stream_cell(ctx, sid, "def f(d):\n    return d['missing']\n\nprint('before')\nf({})\n",
                             context_id=cid)
        err = events[-1]
        assert stdout_of(events) == "before\n", events
        assert err["type"] == "error" and err["ename"] == "KeyError" and err["evalue"] == "'missing'", err
        tb = err["traceback"]
        assert tb[0].startswith("Traceback"), tb
        assert '  File "<cell-3>", line 5, in <module>' in tb, tb
        assert '  File "<cell-3>", line 2, in f' in tb, tb
        assert tb[-1] == "KeyError: 'missing'", tb
        assert not any("sbx_driver" in line for line in tb), tb
        assert err["execution_count"] == 3, err

        # /run-code: the same error as {name, value, message, traceback}.
        res = run_ok(ctx, sid, "x = 1\n\n1 / 0", context=cid)
        e = res["error"]
        assert e["name"] == "ZeroDivisionError" and e["value"] == e["message"] == "division by zero", e
        assert '  File "<cell-4>", line 3, in <module>' in e["traceback"], e
        assert res["results"] == [] and res["executionCount"] == 4, res


# ---------------------------------------------------------------------------
# 4. Timeouts.

def test_timeout_interrupts_and_keeps_state(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        ok_cell(ctx, sid, "kept = 'before the loop'", context_id=cid)
        t0 = time.monotonic()
        events = stream_cell(ctx, sid, "n = 0\nwhile True:\n    n += 1\n", context_id=cid, timeout_ms=400)
        elapsed = time.monotonic() - t0
        err = events[-1]
        assert err["type"] == "error" and err["ename"] == "TimeoutError", events
        assert "interrupted" in err["evalue"] and "kept" in err["evalue"], err
        assert "KeyboardInterrupt" in err["traceback"][-1], err
        assert any(f'  File "<cell-2>", line {n}, in <module>' in err["traceback"] for n in (2, 3)), err
        assert elapsed < 10, elapsed
        res = run_ok(ctx, sid, "(kept, n > 0)", context=cid)
        assert value(res) == "('before the loop', True)", res
        assert res["executionCount"] == 3, res


def test_timeout_kills_a_cell_that_ignores_sigint(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        ok_cell(ctx, sid, "kept = 1", context_id=cid)
        t0 = time.monotonic()
        res = run_ok(ctx, sid, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n",
                     context=cid, timeoutMs=300)
        elapsed = time.monotonic() - t0
        e = res["error"]
        assert e is not None and e["name"] == "TimeoutError", res
        assert "restarted" in e["value"] and "lost" in e["value"], e
        # Interrupted at 300 ms, killed 2 s later.
        assert 2.0 <= elapsed < 12, elapsed
        # State gone; the context works again.
        res = run_ok(ctx, sid, "kept", context=cid)
        assert res["error"] is not None and res["error"]["name"] == "NameError", res
        res = run_ok(ctx, sid, "6 * 7", context=cid)
        assert value(res) == "42", res
        assert list_contexts(ctx, sid)[cid]["state"] == "idle"


# ---------------------------------------------------------------------------
# 5. The OOM killer (a stack of its own: 256 MiB a sandbox, the allocating
# cell far above the other processes, node included, when it is reached).

HOG = "hog = []\nwhile True:\n    hog.append(b'x' * (8 << 20))\n"


def test_oom_kills_only_the_context_which_restarts(ctx):
    st = extra_stack(ctx, 6, {"SANDBOXD_MEMORY_MB": "256"})
    try:
        st.start()
        c = Context(st)
        sid = new_id()
        status, got = c.json("PUT", f"/v1/sandboxes/{sid}")
        assert status == 201 and got["limits"]["memoryMB"] == 256, got
        a = new_context(c, sid)["contextId"]
        b = new_context(c, sid)["contextId"]
        js = new_context(c, sid, language="javascript")["contextId"]
        assert value(run_ok(c, sid, "keep = 'a'\nkeep", context=a)) == "'a'"
        assert value(run_ok(c, sid, "keep = 'b'\nkeep", context=b)) == "'b'"
        assert value(run_ok(c, sid, "var keep = 'js'; keep", context=js)) == "'js'"

        events = stream_cell(c, sid, "print('allocating')\n" + HOG, context_id=a, timeout_ms=60000)
        err = events[-1]
        assert err["type"] == "error" and err["ename"] == "OutOfMemoryError", events
        assert "out-of-memory" in err["evalue"] and "state" in err["evalue"], err
        assert stdout_of(events) == "allocating\n", events
        assert list_contexts(c, sid)[a]["state"] == "stopped"

        # The other contexts kept their state; commands run.
        assert value(run_ok(c, sid, "keep", context=b)) == "'b'"
        assert value(run_ok(c, sid, "keep", context=js)) == "'js'"
        status, res = c.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "echo still here"})
        assert status == 200 and res["stdout"] == "still here\n", res
        # The killed context starts again at its next cell, without its state.
        res = run_ok(c, sid, "keep", context=a)
        assert res["error"] is not None and res["error"]["name"] == "NameError", res
        res = run_ok(c, sid, "2 ** 10", context=a)
        assert value(res) == "1024" and res["executionCount"] == 2, res
        # The listing counts as the new driver does.
        assert list_contexts(c, sid)[a]["executionCount"] == 2
        assert list_contexts(c, sid)[a]["state"] == "idle"
        # A SIGKILL that is not the OOM killer's (the cell's own, with no
        # out-of-memory kill counted since the last one was reported) is not
        # called one.
        res = run_ok(c, sid, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", context=a)
        assert res["error"]["name"] == "ContextDied" and "signal 9" in res["error"]["value"], res
        assert value(run_ok(c, sid, "keep", context=b)) == "'b'"
        delete_sandbox(c, sid)
    finally:
        assert st.stop() == 0


def test_oom_of_a_command_is_not_blamed_on_a_later_kill(ctx):
    """OutOfMemoryError is a cell's own: an OOM kill of a command earlier in
    the sandbox does not make a later, unrelated SIGKILL of a driver (here
    the cell's own) an OutOfMemoryError."""
    st = extra_stack(ctx, 7, {"SANDBOXD_MEMORY_MB": "128"})
    try:
        st.start()
        c = Context(st)
        sid = new_id()
        suicide = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
        res = run_ok(c, sid, suicide)
        assert res["error"]["name"] == "ContextDied" and "signal 9" in res["error"]["value"], res
        # A command that the OOM killer ends.
        status, res = c.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                             {"command": "python3 -c \"$HOG\"; echo rc=$?", "env": {"HOG": HOG},
                              "sessionId": NO_SESSION})
        assert status == 200 and res["stdout"] == "rc=137\n", res
        # The same self-kill as before: still not an OOM.
        res = run_ok(c, sid, suicide)
        assert res["error"]["name"] == "ContextDied", \
            f"a cell's own SIGKILL, after a command's OOM kill, was reported as: {res['error']}"
        # While a cell's own OOM still is one.
        events = stream_cell(c, sid, HOG, timeout_ms=60000)
        assert events[-1]["type"] == "error" and events[-1]["ename"] == "OutOfMemoryError", events
        delete_sandbox(c, sid)
    finally:
        assert st.stop() == 0


# ---------------------------------------------------------------------------
# 6. Contexts: isolation, cwd, env.

def test_contexts_are_isolated_with_own_cwd_and_env(ctx):
    with sandbox(ctx) as sid:
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                               {"command": "mkdir -p /workspace/proj/sub /tmp/scratch"})
        assert status == 200 and res["exitCode"] == 0, res
        a = new_context(ctx, sid, language="python", cwd="/workspace/proj",
                        env_vars={"PROJECT": "alpha", "SHARED": "from-a"})
        assert a["cwd"] == "/workspace/proj" and a["language"] == "python", a
        b = new_context(ctx, sid, language="python3", cwd="proj/sub", envVars={"SHARED": "from-b"})
        assert b["cwd"] == "/workspace/proj/sub" and b["language"] == "python", b
        c = new_context(ctx, sid, language="py", cwd="/tmp/scratch")
        a, b, c = a["contextId"], b["contextId"], c["contextId"]
        assert len({a, b, c}) == 3

        probe = "import os\n(os.getcwd(), os.environ.get('PROJECT'), os.environ.get('SHARED'), os.environ['HOME'])"
        assert value(run_ok(ctx, sid, probe, context=a)) == "('/workspace/proj', 'alpha', 'from-a', '/workspace')"
        assert value(run_ok(ctx, sid, probe, context=b)) == "('/workspace/proj/sub', None, 'from-b', '/workspace')"
        assert value(run_ok(ctx, sid, probe, context=c)) == "('/tmp/scratch', None, None, '/workspace')"
        # A subprocess of the cell inherits the context's environment.
        assert stdout_of(ok_cell(ctx, sid, "import subprocess\nsubprocess.run(['sh', '-c', 'echo $PROJECT; pwd'])",
                                 context_id=a)) == "alpha\n/workspace/proj\n"

        # A variable of one context does not exist in another.
        assert value(run_ok(ctx, sid, "secret = 'only in a'\nsecret", context=a)) == "'only in a'"
        for other in (b, c):
            res = run_ok(ctx, sid, "secret", context=other)
            assert res["error"] and res["error"]["name"] == "NameError", res
        # Nor in the default context, nor is a module imported in a.
        run_ok(ctx, sid, "import json as imported_in_a", context=a)
        res = run_ok(ctx, sid, "imported_in_a")
        assert res["error"] and res["error"]["name"] == "NameError" and res["contextId"] == "default-python", res
        # Files are shared: the sandbox's filesystem is one.
        run_ok(ctx, sid, "open('note.txt', 'w').write('from a')", context=a)
        assert value(run_ok(ctx, sid, "open('/workspace/proj/note.txt').read()", context=c)) == "'from a'"

        # A cwd the driver cannot enter: 400, and no context is left.
        before = set(list_contexts(ctx, sid))
        for cwd in ("/workspace/no/such/dir", "/workspace/proj/note.txt"):
            status, res = api(ctx, sid, "contexts", {"language": "python", "cwd": cwd})
            assert_error(status, res, 400, "VALIDATION_FAILED")
            assert cwd in res["message"], res
        assert set(list_contexts(ctx, sid)) == before


# ---------------------------------------------------------------------------
# 7. JavaScript and TypeScript.

def test_javascript_context(ctx):
    with sandbox(ctx) as sid:
        res = new_context(ctx, sid, language="javascript", env_vars={"JS_VAR": "from-env"})
        assert res["language"] == "javascript", res
        cid = res["contextId"]
        ev = ok_cell(ctx, sid, "let x = 1; x", context_id=cid)
        assert main_text(ev) == "1" and ev[-1]["execution_count"] == 1, ev
        # A top-level let declared again in a later cell.
        ev = ok_cell(ctx, sid, "let x = 20; const y = 1; x + y", context_id=cid)
        assert main_text(ev) == "21", ev
        ev = ok_cell(ctx, sid, "const y = 2; x + y", context_id=cid)
        assert main_text(ev) == "22" and ev[-1]["execution_count"] == 3, ev
        # Top-level await, console.log before the value.
        ev = ok_cell(ctx, sid, "console.log('before');\nconst v = await new Promise(r => setTimeout(() => r(x * 2), 50));\n"
                               "console.log('after', v);\nv + 2", context_id=cid)
        assert merged(ev)[:-1] == [("stdout", "before\nafter 40\n"), ("result", "42")], ev
        ev = ok_cell(ctx, sid, "process.env.JS_VAR + ' ' + process.cwd()", context_id=cid)
        assert main_text(ev) == "'from-env /workspace'", ev
        # An error with the cell's line.
        ev = stream_cell(ctx, sid, "const a = 1;\nnull.boom;\n", context_id=cid)
        err = ev[-1]
        assert err["type"] == "error" and err["ename"] == "TypeError", ev
        assert any("<cell-6>:2" in line for line in err["traceback"]), err
        # Output streams live: the first line arrives while the cell waits
        # (inside the sandbox) for the test to let it go.
        code = ("const { execFileSync, spawn } = require('child_process');\n"
                "execFileSync('mkfifo', ['/workspace/go-js']);\nconsole.log('first');\n"
                "const got = await new Promise(done => {\n"
                "  const cat = spawn('cat', ['/workspace/go-js']); let out = '';\n"
                "  const t = setTimeout(() => cat.kill(), 20000);\n"
                "  cat.stdout.on('data', d => { out += d; });\n"
                "  cat.on('close', () => { clearTimeout(t); done(out); }); });\n"
                "console.log(got ? 'released' : 'gave-up');\nx")
        with Stream(ctx, sid, {"context_id": cid, "code": code}) as s:
            first = s.next()
            assert first == {**first, "type": "stdout", "text": "first\n"}, first
            release(ctx, sid, "js")
            ev = s.rest()
        assert stdout_of(ev) == "first\nreleased\n" and main_text(ev) == "20", ev


def test_typescript_context(ctx):
    """A 'typescript' context runs the JavaScript driver with its types
    stripped (SBX_DRIVER_LANGUAGE=typescript)."""
    with sandbox(ctx) as sid:
        res = new_context(ctx, sid, language="ts")
        assert res["language"] == "typescript", res
        cid = res["contextId"]
        res = run_ok(ctx, sid, "const n: number = 2; n * 21", context=cid)
        assert res["error"] is None, res["error"]
        assert value(res) == "42", res
        res = run_ok(ctx, sid, "interface Point { x: number; y: number }\n"
                               "function norm1(p: Point): number { return Math.abs(p.x) + Math.abs(p.y); }\n"
                               "const p: Point = { x: 3, y: -4 };\nnorm1(p)", context=cid)
        assert value(res) == "7", res
        # State carries over, as in JavaScript.
        assert value(run_ok(ctx, sid, "n + norm1({ x: 1, y: 1 } as Point)", context=cid)) == "4"
        # The language's default context is a TypeScript one.
        res = run_ok(ctx, sid, "let s: string = 'ts'; s", language="typescript")
        assert value(res) == "'ts'" and res["contextId"] == "default-typescript", res


# ---------------------------------------------------------------------------
# 8. stdin, live output.

def test_stdin_is_at_eof_and_output_streams_live(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        t0 = time.monotonic()
        events = stream_cell(ctx, sid, "import sys, subprocess\n"
                                       "print(repr(sys.stdin.read()))\n"
                                       "print(subprocess.run(['cat'], capture_output=True, timeout=5).stdout)\n"
                                       "input('name? ')\n", context_id=cid, timeout_ms=20000)
        elapsed = time.monotonic() - t0
        err = events[-1]
        assert err["type"] == "error" and err["ename"] == "EOFError", events
        assert stdout_of(events) == "''\nb''\n", events
        assert elapsed < 5, f"input() took {elapsed:.1f} s"

        # The first line arrives while the cell still runs: the cell waits
        # (inside the sandbox) until the test, having read it, lets it go.
        with Stream(ctx, sid, {"context_id": cid, "code": waiting_cell_py("py")}) as s:
            first = s.next()
            assert first["type"] == "stdout" and first["text"] == "first\n", first
            assert not s.ended
            # Meanwhile the context is busy.
            assert list_contexts(ctx, sid)[cid]["state"] == "busy"
            release(ctx, sid, "py")
            events = s.rest()
        assert stdout_of(events) == "first\nreleased\n" and events[-1]["type"] == "execution_complete", events


# ---------------------------------------------------------------------------
# 9. Listing, deleting, errors, capacity.

def test_list_delete_and_request_errors(ctx):
    with sandbox(ctx) as sid:
        assert list_contexts(ctx, sid) == {}
        py = new_context(ctx, sid, cwd="/tmp")
        js = new_context(ctx, sid, language="node")
        assert js["language"] == "javascript", js
        ok_cell(ctx, sid, "1", context_id=py["contextId"])
        listed = list_contexts(ctx, sid)
        assert set(listed) == {py["contextId"], js["contextId"]}, listed
        p, j = listed[py["contextId"]], listed[js["contextId"]]
        assert (p["language"], p["cwd"], p["state"], p["executionCount"]) == ("python", "/tmp", "idle", 1), p
        assert (j["language"], j["cwd"], j["state"], j["executionCount"]) == ("javascript", "/workspace", "idle", 0), j
        for c in (p, j):
            assert c["createdAt"].endswith("Z") and c["lastUsed"].endswith("Z") and c["lastUsed"] >= c["createdAt"], c

        status, res = api(ctx, sid, f"contexts/{py['contextId']}", method="DELETE")
        assert status == 200 and res["success"] is True and res["contextId"] == py["contextId"], res
        assert set(list_contexts(ctx, sid)) == {js["contextId"]}
        # A cell on it: 404 before any stream, on both routes.
        with Stream(ctx, sid, {"context_id": py["contextId"], "code": "1"}) as s:
            assert s.status == 404 and s.ctype.startswith("application/json"), (s.status, s.ctype)
            assert_error(s.status, s.body(), 404, "CONTEXT_NOT_FOUND")
        status, res = run_code(ctx, sid, {"code": "1", "context": py["contextId"]})
        assert_error(status, res, 404, "CONTEXT_NOT_FOUND")
        # Deleting it again, or one never made.
        for cid in (py["contextId"], "no-such-context", "default-python"):
            status, res = api(ctx, sid, f"contexts/{cid}", method="DELETE")
            assert_error(status, res, 404, "CONTEXT_NOT_FOUND")
        status, res = run_code(ctx, sid, {"code": "1", "context": "bad id!"})
        assert_error(status, res, 404, "CONTEXT_NOT_FOUND")

        # Bad requests.
        for lang in ("ruby", "", 3, "Python"):
            status, res = api(ctx, sid, "contexts", {"language": lang})
            assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "contexts", {"language": "python", "env_vars": {"A": 1}})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "execute/code", {"code": "1", "language": "cobol"})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "execute/code", {"language": "python"})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = run_code(ctx, sid, {"code": "1", "language": "python", "timeout": 5})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        assert res["context"].get("field") == "timeout", res
        status, res = run_code(ctx, sid, {"code": "1", "context_id": py["contextId"]})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        assert res["context"].get("field") == "context_id", res
        status, res = run_code(ctx, sid, {"code": "1", "timeoutMs": 0})
        assert_error(status, res, 400, "VALIDATION_FAILED")
        # None of these made a context.
        assert set(list_contexts(ctx, sid)) == {js["contextId"]}

        # Deleting a context while a cell runs in it ends the cell.
        cid = js["contextId"]
        code = ("const fs = require('fs');\nconsole.log('first');\n"
                "for (let i = 0; i < 1000 && !fs.existsSync('/workspace/go-never'); i++)\n"
                "  await new Promise(r => setTimeout(r, 20));\n")
        with Stream(ctx, sid, {"context_id": cid, "code": code}) as s:
            assert s.next()["text"] == "first\n"
            status, res = api(ctx, sid, f"contexts/{cid}", method="DELETE")
            assert status == 200, res
            events = s.rest()
        assert events[-1]["type"] == "error" and events[-1]["ename"] == "ContextDeleted", events
        assert list_contexts(ctx, sid) == {}


def test_sixteen_contexts_at_most(ctx):
    with sandbox(ctx) as sid:
        made = [new_context(ctx, sid)["contextId"] for _ in range(16)]
        assert len(set(made)) == 16 and set(list_contexts(ctx, sid)) == set(made)
        status, res = api(ctx, sid, "contexts", {"language": "python"})
        assert_error(status, res, 503, "CAPACITY_EXCEEDED")
        # The default context counts as one too.
        status, res = run_code(ctx, sid, {"code": "1"})
        assert_error(status, res, 503, "CAPACITY_EXCEEDED")
        assert len(list_contexts(ctx, sid)) == 16
        # Every one of them works.
        for i, cid in enumerate(made):
            assert value(run_ok(ctx, sid, f"{i} * 2", context=cid)) == str(i * 2)
        # Deleting one makes room for one.
        status, res = api(ctx, sid, f"contexts/{made[3]}", method="DELETE")
        assert status == 200, res
        new = new_context(ctx, sid)["contextId"]
        assert value(run_ok(ctx, sid, "'new'", context=new)) == "'new'"
        status, res = api(ctx, sid, "contexts", {"language": "python"})
        assert_error(status, res, 503, "CAPACITY_EXCEEDED")


def test_context_deleted_while_a_cell_waits_stays_deleted(ctx):
    """A cell waiting for a busy context that is deleted meanwhile is told
    the context is gone (404), and does not bring it back from its kept
    definition (which a cell may do for a context that ended with its
    agent)."""
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        ok_cell(ctx, sid, "kept = 1", context_id=cid)
        with Stream(ctx, sid, {"context_id": cid, "code": waiting_cell_py("never")}) as busy:
            assert busy.next()["text"] == "first\n"
            # Sent, its answer not awaited: queued behind the busy cell (or,
            # if it comes late, after the delete: either way the context is
            # gone for it).
            queued = ctx.stack.connection()
            try:
                queued.request("POST", f"/v1/sandboxes/{sid}/api/execute/code",
                               body=json.dumps({"context_id": cid, "code": "kept"}),
                               headers={"Content-Type": "application/json"})
                status, res = api(ctx, sid, f"contexts/{cid}", method="DELETE")
                assert status == 200, res
                resp = queued.getresponse()
                assert_error(resp.status, json.loads(resp.read()), 404, "CONTEXT_NOT_FOUND")
            finally:
                queued.close()
            events = busy.rest()
        assert events[-1]["type"] == "error" and events[-1]["ename"] == "ContextDeleted", events
        assert list_contexts(ctx, sid) == {}
        status, res = run_code(ctx, sid, {"code": "1", "context": cid})
        assert_error(status, res, 404, "CONTEXT_NOT_FOUND")
        assert list_contexts(ctx, sid) == {}


def test_cell_closing_its_output_restarts_the_context(ctx):
    """A cell that closes its stdout or stderr leaves a driver that can run
    no further cell (its output would be lost): the next cell starts a new
    one, says so, and runs; it never hangs."""
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        for code in ("import os\nkept = 1\nos.close(1)", "import os\nkept = 1\nos.closerange(1, 3)"):
            res = run_ok(ctx, sid, code, context=cid, timeoutMs=10000)
            assert res["error"] is None, res
            t0 = time.monotonic()
            res = run_ok(ctx, sid, "print('hi')\n'kept' in dir()", context=cid, timeoutMs=10000)
            assert time.monotonic() - t0 < 8, "the next cell waited for its timeout"
            assert value(res) == "False", res
            assert "".join(res["logs"]["stdout"]) == "hi\n", res
            assert any("had closed its output or its channel to sandboxd" in e for e in res["logs"]["stderr"]), res
        assert list_contexts(ctx, sid)[cid]["state"] == "idle"


# ---------------------------------------------------------------------------
# 10. A client that goes away mid-cell.

def test_client_gone_mid_cell_interrupts_and_keeps_state(ctx):
    with sandbox(ctx) as sid:
        cid = new_context(ctx, sid)["contextId"]
        ok_cell(ctx, sid, "kept = 'still here'\nloops = 0", context_id=cid)
        s = Stream(ctx, sid, {"context_id": cid, "timeout_ms": 600000,
                              "code": "import sys\nsys.stdout.write('spinning\\n')\nwhile True:\n    loops += 1\n"})
        try:
            first = s.next()
            assert first["type"] == "stdout" and first["text"] == "spinning\n", first
        finally:
            s.close()
        # The next cell waits for the interrupted one to end, then runs.
        t0 = time.monotonic()
        res = run_ok(ctx, sid, "(kept, loops > 0)", context=cid, timeoutMs=20000)
        assert value(res) == "('still here', True)", res
        assert res["executionCount"] == 3, res
        assert time.monotonic() - t0 < 10
        assert list_contexts(ctx, sid)[cid]["state"] == "idle"


# ---------------------------------------------------------------------------
# 11. The output cap (a stack of its own: 64 KiB a cell).

def test_output_cap_truncates_and_the_stream_ends(ctx):
    cap = 65536
    st = extra_stack(ctx, 8, {"SANDBOXD_CELL_OUTPUT_MAX_BYTES": str(cap)})
    try:
        st.start()
        c = Context(st)
        sid = new_id()
        cid = new_context(c, sid)["contextId"]
        run_ok(c, sid, "kept = 5", context=cid)
        # 4 MiB printed at once, then more after a flush: all past the cap.
        with Stream(c, sid, {"context_id": cid, "code": (
                "import sys\nsys.stdout.write('x' * (4 << 20))\nsys.stdout.flush()\n"
                "print('tail')\nsys.stderr.write('e' * (1 << 20))\nkept")}) as s:
            events = s.rest()
        end = events[-1]
        assert end["type"] == "execution_complete" and end.get("truncated") is True, end
        out = stdout_of(events)
        assert 0 < len(out) <= cap and set(out) == {"x"}, len(out)
        assert "tail" not in out
        err = stderr_of(events)
        assert "[sandboxd] this cell's output passed" in err and len(err) <= cap + 512, err[-300:]
        # The main result was still sent (it is small).
        assert main_text(events) == "5", [e for e in events if e["type"] != "stdout"]

        # A result larger than the cap is dropped, and /run-code says so too.
        res = run_ok(c, sid, "'y' * 200000", context=cid)
        assert res["truncated"] is True and res["error"] is None, {k: res[k] for k in ("truncated", "error")}
        assert res["results"] == [], len(json.dumps(res["results"]))
        assert any("[sandboxd] this cell's output passed" in x for x in res["logs"]["stderr"]), res["logs"]

        # The context goes on, its state kept, its next cell whole.
        res = run_ok(c, sid, "print('small')\nkept + 1", context=cid)
        assert value(res) == "6" and res["truncated"] is False and "".join(res["logs"]["stdout"]) == "small\n", res
        delete_sandbox(c, sid)
    finally:
        assert st.stop() == 0


# ---------------------------------------------------------------------------
# 12. Idle reaping (a stack of its own: contexts stop after 1 s unused).

def test_unused_context_is_stopped_and_says_so(ctx):
    st = extra_stack(ctx, 9, {"SANDBOXD_CONTEXT_IDLE_S": "1"})
    try:
        st.start()
        c = Context(st)
        sid = new_id()
        cid = new_context(c, sid)["contextId"]
        res = run_ok(c, sid, "kept = 'x'\nkept", context=cid)
        assert value(res) == "'x'", res
        # Polled with a deadline, not slept: stopped after about 1 s unused.
        t0 = time.monotonic()
        while True:
            state = list_contexts(c, sid)[cid]["state"]
            if state == "stopped":
                break
            assert state == "idle", state
            assert time.monotonic() - t0 < 15, "the context was not stopped within 15 s"
            os.sched_yield()
        assert time.monotonic() - t0 >= 0.3, "stopped at once, not after being unused"
        events = stream_cell(c, sid, "kept", context_id=cid)
        err = stderr_of(events)
        assert err.startswith("[sandboxd] this context was unused for 1 s"), events
        assert events[-1]["type"] == "error" and events[-1]["ename"] == "NameError", events
        assert list_contexts(c, sid)[cid]["state"] == "idle"
        # The notice is given once.
        events = ok_cell(c, sid, "kept = 'y'", context_id=cid)
        assert stderr_of(events) == "", events
        delete_sandbox(c, sid)
    finally:
        assert st.stop() == 0


# ---------------------------------------------------------------------------
# The master's side of cells.

def test_many_cells_never_wedge_the_master(ctx):
    """Each cell asks the master for the sandbox's OOM-kill count.  Answers a
    worker leaves unread pile up in its socket; once it was full, the master
    blocked in its send while holding the table's lock, and every request
    that needed the master (or the lock) hung.  One worker, so that all the
    cells' answers go to one socket, and more cells than a socket holds."""
    st = extra_stack(ctx, 10, {})
    st.workers = 1
    try:
        st.start()
        c = Context(st)
        # A wedged master shows as a request that never ends: 30 s, not the
        # stack's usual 700.
        c._conn = st.connection()
        c._conn.timeout = 30
        sid = new_id()
        cid = new_context(c, sid)["contextId"]
        for i in range(600):
            status, res = run_code(c, sid, {"code": f"{i} + 1", "context": cid})
            assert status == 200 and value(res) == str(i + 1), (i, status, res)
        # The master still answers: a new sandbox is made through it, and a
        # command in it runs.
        other = new_id()
        status, res = c.json("PUT", f"/v1/sandboxes/{other}")
        assert status == 201, res
        status, res = c.json("POST", f"/v1/sandboxes/{other}/api/execute", {"command": "echo ok"})
        assert status == 200 and res["stdout"] == "ok\n", res
        assert "answer lost" not in st.log_text(), "the master dropped answers to a worker"
    finally:
        st.stop()
