"""Probes from inside a code-interpreter cell (a context's driver process in a
persistent sandbox), through the real stack (POST .../run-code and
.../api/execute/code):

- the cell's process has no capability, no_new_privs and the seccomp filter,
  runs as uid 1000; the driver's init (pid 1 of the context's pid namespace)
  keeps CAP_KILL alone, and the cell cannot signal it: os.kill(1, SIGKILL)
  fails and the context answers its next cell, its state kept;
- /proc shows only the context's own pid namespace: neither the sandbox's
  agent (checked from the host: another pid namespace) nor another context's
  processes;
- the driver's protocol (fds 3 and 4 at start) is not open at 3/4 in the
  cell's process, and a subprocess of the cell gets fds 0-2 only;
- a cell that writes garbage and fake events on its driver's event pipe
  (found in /proc/self/fd) may break its own context, never sandboxd: the
  workers live on, other contexts keep their state, the context can be
  deleted and made again; and what it writes there cannot forge lines of
  sandboxd's log;
- a line on the event pipe built to be costly to parse (12 MiB of "[],")
  costs the worker that reads it little memory (its peak is measured);
- and, as a worker could do if an attacker took one over: a symlink where
  the worker keeps a sandbox's context definitions does not lead sandboxd's
  master (root) to empty the directory it points to.

Nothing waits a fixed time on the host."""
import json
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from sandboxes import agent_pid, api, delete_sandbox, sandbox  # noqa: E402


# ---------------------------------------------------------------------------
# Helpers.

def _context(ctx, sid, language="python"):
    status, res = api(ctx, sid, "contexts", {"language": language})
    assert status == 200 and res.get("success") is True, (status, res)
    return res["contextId"]


def _cell(ctx, sid, cid, code, timeout_ms=30000):
    """A /run-code cell -> its body; the call must succeed (the cell may fail)."""
    status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/run-code",
                           {"code": code, "context": cid, "timeoutMs": timeout_ms})
    assert status == 200 and res.get("success") is True, (status, res)
    return res


def _probe(ctx, sid, cid, code):
    """A cell that prints one JSON line last -> that line, decoded."""
    res = _cell(ctx, sid, cid, code)
    assert res["error"] is None, res["error"]
    out = "".join(res["logs"]["stdout"]).strip().splitlines()
    assert out, res
    return json.loads(out[-1])


def _value(res):
    assert res["error"] is None, res["error"]
    (main,) = [r for r in res["results"] if r.get("isMainResult")]
    return main["text"]


def _stream(ctx, sid, body):
    """A whole /api/execute/code stream -> its events; it must end with a
    terminal event."""
    conn = ctx.stack.connection()
    try:
        conn.request("POST", f"/v1/sandboxes/{sid}/api/execute/code", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read()[:500])
        events, data = [], []
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                events.append(json.loads("\n".join(data)))
                data = []
                if events[-1]["type"] in ("execution_complete", "error"):
                    break
    finally:
        conn.close()
    assert events and events[-1]["type"] in ("execution_complete", "error"), \
        f"the stream ended without a terminal event: {[e['type'] for e in events]}"
    return events


# The event pipe: the one pipe above fd 1000 open for writing (the driver
# moves fds 3/4 to 1020/1021, close-on-exec).
FIND_EVENT_PIPE = r'''
import os
def _event_pipe():
    found = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd <= 1000:
            continue
        try:
            target = os.readlink("/proc/self/fd/%d" % fd)
        except OSError:
            continue
        if target.startswith("pipe:"):
            with open("/proc/self/fdinfo/%d" % fd) as f:
                flags = int(f.read().split("flags:")[1].split()[0], 8)
            found[fd] = flags & 3
    writers = [fd for fd, acc in found.items() if acc == os.O_WRONLY]
    assert len(writers) == 1 and len(found) == 2, found
    return writers[0]
EV = _event_pipe()
def put(data):
    view = memoryview(data)
    while view:
        view = view[os.write(EV, view):]
'''


# ---------------------------------------------------------------------------
# Capabilities, identity, the init.

IDENTITY = r'''
import json, os
def status(path):
    return {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open(path)}
init, me = status("/proc/1/status"), status("/proc/self/status")
keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Uid", "Gid")
print(json.dumps({"init": {k: init[k] for k in keys + ("Name", "PPid")},
                  "me": {k: me[k] for k in keys + ("Pid",)}}))
'''


def test_cell_has_no_capability_and_its_init_only_cap_kill(ctx):
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        got = _probe(ctx, sid, cid, IDENTITY)
        init, me = got["init"], got["me"]
        # The driver's init: pid 1 of its own pid namespace, CAP_KILL alone.
        assert init["PPid"] == "0", init
        assert init["CapEff"] == "0000000000000020", init
        assert int(init["CapPrm"], 16) == 0x20 and int(init["CapInh"], 16) == 0, init
        assert int(init["CapAmb"], 16) == 0, init
        assert init["NoNewPrivs"] == "1" and init["Seccomp"] == "2", init
        # The cell: uid 1000, nothing.
        for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(me[k], 16) == 0, (k, me)
        assert me["NoNewPrivs"] == "1" and me["Seccomp"] == "2", me
        assert me["Uid"].split() == ["1000"] * 4 and me["Gid"].split() == ["1000"] * 4, me
        assert me["Pid"] != "1", me

        # The same in a JavaScript context's process.
        js = _context(ctx, sid, "javascript")
        res = _cell(ctx, sid, js, "const st = Object.fromEntries(require('fs').readFileSync('/proc/self/status', 'utf8')"
                                  ".trim().split('\\n').map(l => [l.split(':')[0], l.split(':').slice(1).join(':').trim()]));\n"
                                  "[st.CapEff, st.CapPrm, st.CapBnd, st.NoNewPrivs, st.Seccomp, process.getuid()].join(' ')")
        assert _value(res) == "'0000000000000000 0000000000000000 0000000000000000 1 2 1000'", res


def test_cell_cannot_signal_its_init(ctx):
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        _cell(ctx, sid, cid, "kept = 'alive'")
        got = _probe(ctx, sid, cid, r'''
import errno, json, os, signal
out = {}
for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP, signal.SIGHUP):
    try:
        os.kill(1, sig)
        out[sig.name] = "sent"
    except OSError as e:
        out[sig.name] = errno.errorcode[e.errno]
print(json.dumps(out))
''')
        assert got == {k: "EPERM" for k in ("SIGKILL", "SIGTERM", "SIGINT", "SIGSTOP", "SIGHUP")}, got
        # The context lives on, its state kept.
        res = _cell(ctx, sid, cid, "kept")
        assert _value(res) == "'alive'", res
        status, res = api(ctx, sid, "contexts", method="GET")
        (c,) = res["contexts"]
        assert c["state"] == "idle", c


# ---------------------------------------------------------------------------
# What /proc shows.

PIDS = r'''
import json, os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
cmds = {}
for p in pids:
    try:
        with open("/proc/%d/cmdline" % p, "rb") as f:
            cmds[p] = f.read().replace(b"\0", b" ").decode("latin1").strip()
    except OSError:
        cmds[p] = None
print(json.dumps({"pids": pids, "me": os.getpid(), "ns": os.readlink("/proc/self/ns/pid"), "cmds": cmds,
                  "children": [c.pid for c in globals().get("kids", [])]}))
'''


def test_cell_sees_only_its_own_pid_namespace(ctx):
    marker = "424242." + str(secrets.randbelow(10 ** 6))
    with sandbox(ctx) as sid:
        a, b = _context(ctx, sid), _context(ctx, sid)
        # a keeps a child running, with an argv of its own.
        # (cat waits on its stdin, a pipe the cell keeps open.)
        _cell(ctx, sid, a, f"import subprocess\nkids = [subprocess.Popen(['cat', '-', '{marker}'], stdin=subprocess.PIPE)]")
        # A command of the sandbox runs too (cat waits to open a FIFO).
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                               {"command": f"mkfifo /tmp/hold-{marker} && (cat /tmp/hold-{marker} {marker}1 > /dev/null 2>&1 &)",
                                "sessionId": "probe"})
        assert status == 200 and res["exitCode"] == 0, res
        got_a = _probe(ctx, sid, a, PIDS)
        got_b = _probe(ctx, sid, b, PIDS)

        # a sees its init, itself and its child; b its init and itself.
        assert got_a["pids"] == sorted([1, got_a["me"]] + got_a["children"]), got_a
        assert len(got_a["children"]) == 1 and f"cat - {marker}" in got_a["cmds"][str(got_a["children"][0])], got_a
        assert got_b["pids"] == sorted([1, got_b["me"]]), got_b
        assert not any(marker in (c or "") for c in got_b["cmds"].values()), got_b
        assert not any(f"{marker}1" in (c or "") for c in got_a["cmds"].values()), got_a
        # Each context is a pid namespace of its own...
        assert got_a["ns"] != got_b["ns"], (got_a["ns"], got_b["ns"])
        # ... which is not the agent's (seen from the host).
        agent_ns = os.readlink(f"/proc/{agent_pid(ctx, sid)}/ns/pid")
        assert agent_ns not in (got_a["ns"], got_b["ns"]), (agent_ns, got_a["ns"], got_b["ns"])
        _cell(ctx, sid, a, "kids[0].kill(); kids[0].wait()")


# ---------------------------------------------------------------------------
# The protocol's fds.

FDS = r'''
import errno, json, os, subprocess
out = {}
for fd in (3, 4):
    try:
        os.fstat(fd)
        out[str(fd)] = "open: " + os.readlink("/proc/self/fd/%d" % fd)
    except OSError as e:
        out[str(fd)] = errno.errorcode[e.errno]
child = ("import os\nfds = []\nfor fd in range(4096):\n    try:\n        os.fstat(fd)\n"
         "        fds.append(fd)\n    except OSError:\n        pass\nprint(fds)")
# close_fds=False: only close-on-exec keeps the protocol from the child.
out["child"] = subprocess.run(["python3", "-c", child], close_fds=False, capture_output=True,
                              text=True).stdout.strip()
# The shell's own fds ("; true": it forks ls, and waits, holding only its own).
ls = subprocess.run("ls /proc/$$/fd; true", shell=True, close_fds=False, capture_output=True, text=True)
out["shell"] = " ".join(sorted(ls.stdout.split(), key=int))
print(json.dumps(out))
'''


def test_protocol_fds_are_not_in_the_cell_nor_its_children(ctx):
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        got = _probe(ctx, sid, cid, FDS)
        assert got == {"3": "EBADF", "4": "EBADF", "child": "[0, 1, 2]", "shell": "0 1 2"}, got
        # A JavaScript cell's children get 0-2 only too.
        js = _context(ctx, sid, "javascript")
        res = _cell(ctx, sid, js, "require('child_process').execFileSync('sh', ['-c', 'ls /proc/$$/fd; true'], "
                                  "{stdio: ['ignore', 'pipe', 'inherit']}).toString().split(/\\s+/).filter(Boolean)"
                                  ".map(Number).sort((a, b) => a - b).join(' ')")
        assert _value(res) == "'0 1 2'", res


def test_javascript_cell_has_no_protocol_fds_at_3_and_4(ctx):
    """The JavaScript driver's header: when fds 3 and 4 are pipes, they are
    opened anew through /proc/self/fd and 3 and 4 are closed, so that
    fs.writeSync(3, ...) in a cell fails with EBADF (or reaches what Node
    opened there since), never the driver's event pipe.  An event written at
    fd 3 must not become a result of the cell."""
    with sandbox(ctx) as sid:
        js = _context(ctx, sid, "javascript")
        fake = json.dumps({"type": "result", "data": {"text/plain": "written at fd 3"}}) + "\n"
        res = _cell(ctx, sid, js, "const fs = require('fs');\nlet r;\n"
                                  f"try {{ fs.writeSync(3, {json.dumps(fake)}); r = 'written'; }}"
                                  " catch (e) { r = e.code; }\nr")
        assert res["error"] is None, res["error"]
        texts = [r.get("text") for r in res["results"]]
        assert "written at fd 3" not in texts, \
            f"a JavaScript cell wrote an event of its driver's protocol at fd 3: {res['results']}"


# ---------------------------------------------------------------------------
# Garbage on the event pipe.

JUNK = FIND_EVENT_PIPE + r'''
junk = [
    b"\x00\xff\xfe garbage \x80\x81\n",
    b'{"type":\n',
    b'{"type":"result"}\n',
    b'{"type":"result","data":"not an object","main":"yes"}\n',
    b'{"type":"result","data":{"text/plain":["a"],"image/png":123,"application/json":{"x":[1]},"x/y":null},'
    b'"metadata":[]}\n',
    b'{"type":"error","name":5,"value":null,"traceback":"not a list"}\n',
    b'{"type":"error","name":"Fake","value":"fake","traceback":[1,{"a":2},"line"]}\n',
    b'{"type":"end"}\n',
    b'{"type":"end","id":"nope","execution_count":"x"}\n',
    b'{"type":"end","id":-1}\n',
    b'{"type":"end","id":1e400}\n',
    b'{"type":"end","id":18446744073709551616}\n',
    b'{"type":"ready","language":"python","pid":1}\n',
    b'{"type":"pong","id":[]}\n',
    b'{"type":"stdout","text":"fake"}\n',
    b'{"type":"execution_complete","execution_count":99}\n',
    b'"a string"\n', b"null\n", b"12345\n", b"[]\n", b"\n\n\n",
    b"[" * 100000 + b"]" * 100000 + b"\n",
    b'{"a":' * 50000 + b"1" + b"}" * 50000 + b"\n",
    b'{"type":"result","data":{"text/plain":"' + b"A" * (2 << 20) + b'"}}\n',
    b"x" * (3 << 20) + b"\n",
]
for j in junk:
    put(j)
print("wrote", len(junk))
'''


def test_garbage_on_the_event_pipe_harms_only_its_context(ctx):
    workers = sorted(ctx.stack.worker_pids())
    assert workers, "no worker found"
    with sandbox(ctx) as sid, sandbox(ctx) as other:
        victim, bystander = _context(ctx, sid), _context(ctx, sid)
        far = _context(ctx, other)
        _cell(ctx, sid, bystander, "kept = 'bystander'")
        _cell(ctx, other, far, "kept = 'far'")

        # Garbage and fake events, newline-terminated: the cell ends (the
        # driver's real "end" comes after them).
        t0 = time.monotonic()
        events = _stream(ctx, sid, {"context_id": victim, "code": JUNK, "timeout_ms": 30000})
        assert time.monotonic() - t0 < 30, "the cell did not end"
        # A line left unterminated: the driver's "end" is glued to it; the
        # cell still ends, at its timeout at the latest.
        t0 = time.monotonic()
        events = _stream(ctx, sid, {"context_id": victim, "timeout_ms": 1000,
                                    "code": FIND_EVENT_PIPE + "put(b'{\"type\":\"result\",\"data\":{\"text/plain\":\"unterminated')"})
        assert time.monotonic() - t0 < 15, ("the cell did not end", events)

        # sandboxd and its workers are as they were.
        assert ctx.stack.sandboxd.poll() is None, "sandboxd died"
        assert sorted(ctx.stack.worker_pids()) == workers, (workers, ctx.stack.worker_pids())
        assert ctx.healthy()
        # Other contexts, in this sandbox and another, kept their state.
        assert _value(_cell(ctx, sid, bystander, "kept")) == "'bystander'"
        assert _value(_cell(ctx, other, far, "kept")) == "'far'"
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "echo fine"})
        assert status == 200 and res["stdout"] == "fine\n", res
        # The broken context can be deleted, and a new one works.
        status, res = api(ctx, sid, f"contexts/{victim}", method="DELETE")
        assert status == 200 and res["contextId"] == victim, res
        fresh = _context(ctx, sid)
        assert _value(_cell(ctx, sid, fresh, "6 * 7")) == "42"
        status, res = api(ctx, sid, "contexts", method="GET")
        assert sorted(c["id"] for c in res["contexts"]) == sorted([bystander, fresh]), res
        assert sorted(ctx.stack.worker_pids()) == workers, (workers, ctx.stack.worker_pids())


def test_event_pipe_cannot_forge_sandboxd_log_lines(ctx):
    """sandboxd logs the message of a driver's protocol_error event; the
    event pipe is the cell's to write, so that text is the sandbox's.  It
    must not become lines of sandboxd's log of its own (a newline in it
    would let a cell write, say, 'sandbox X deleted' for a sandbox that is
    not)."""
    tag = "FORGED-" + secrets.token_hex(4)
    forged = f"{tag} 2026-01-01T00:00:00.000Z sandboxd[1] info: sandbox t-forged deleted"
    line = json.dumps({"type": "protocol_error", "message": "x\n" + forged}) + "\n"
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        res = _cell(ctx, sid, cid, FIND_EVENT_PIPE + f"put({line.encode()!r})\nprint('done')")
        assert "".join(res["logs"]["stdout"]) == "done\n", res
        ctx.stack.wait_log(tag.encode(), 10)
        bad = [ln for ln in ctx.stack.log_text().splitlines() if ln.startswith(tag)]
        assert not bad, f"a cell wrote a line of sandboxd's log: {bad}"


def _peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0])


def _reset_peaks(ctx):
    """Resets the workers' peak RSS (clear_refs 5) -> their PIDs."""
    workers = ctx.stack.worker_pids()
    assert workers, "no worker found"
    for pid in workers:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    return workers


def _peaks(ctx, workers):
    """The workers' peak RSS since _reset_peaks(), in KiB; none may have
    been replaced meanwhile (a new one's peak would say nothing)."""
    assert sorted(ctx.stack.worker_pids()) == sorted(workers)
    return {pid: _peak_rss_kib(pid) for pid in workers}


def test_costly_event_line_costs_the_worker_little_memory(ctx):
    """12 MiB of '[],' in one result event would take a JSON parser some
    550 MiB (an array of ~140 bytes for every 3): the worker must not parse
    it.  The workers' peak RSS is reset (clear_refs 5) and read after."""
    workers = _reset_peaks(ctx)
    code = FIND_EVENT_PIPE + (
        "n = (12 << 20) // 3\n"
        "put(b'{\"type\":\"result\",\"data\":{\"application/json\":[' + b'[],' * n + b'[]]}}\\n')\n"
        "'after'")
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        res = _cell(ctx, sid, cid, code)
        peaks = _peaks(ctx, workers)
        assert max(peaks.values()) < 96 * 1024, f"a worker's peak RSS (KiB): {peaks}"
        # Dropped, and said so.
        assert _value(res) == "'after'", res
        assert res["truncated"] is True, {k: res[k] for k in ("truncated", "error")}
        assert any("results held more than 131072 JSON values" in e
                   for e in res["logs"]["stderr"]), res["logs"]["stderr"]
        # The context goes on.
        assert _value(_cell(ctx, sid, cid, "6 * 7")) == "42"


def test_many_costly_result_lines_cost_the_worker_little_memory(ctx):
    """Each line under the per-line bound, together 14 MiB of '{},' in 80
    result events: run-code keeps its results until the answer goes, and
    kept whole they would take the worker over a gigabyte (~230 bytes an
    object).  The results kept are bounded as a whole."""
    workers = _reset_peaks(ctx)
    code = FIND_EVENT_PIPE + (
        "line = b'{\"type\":\"result\",\"data\":{\"application/json\":[' + b'{},' * 60000 + b'{}]}}\\n'\n"
        "for _ in range(80):\n"
        "    put(line)\n"
        "'after'")
    with sandbox(ctx) as sid:
        cid = _context(ctx, sid)
        res = _cell(ctx, sid, cid, code, timeout_ms=60000)
        peaks = _peaks(ctx, workers)
        assert max(peaks.values()) < 128 * 1024, f"a worker's peak RSS (KiB): {peaks}"
        # Some kept, the rest dropped, and said so; the cell's value is there.
        kept = [r for r in res["results"] if "json" in r]
        assert 1 <= len(kept) < 80, (len(kept), [sorted(r) for r in res["results"]], res["logs"]["stderr"])
        assert _value(res) == "'after'", res["results"][-1]
        assert res["truncated"] is True, {k: res[k] for k in ("truncated", "error")}
        assert any("results held more than 131072 JSON values" in e
                   for e in res["logs"]["stderr"]), res["logs"]["stderr"]
        assert _value(_cell(ctx, sid, cid, "6 * 7")) == "42"


def test_symlink_for_a_sandboxs_contexts_is_not_followed(ctx):
    """STATE/contexts/<id> is the workers' (they keep context definitions
    there); the master empties and removes it when the sandbox goes or its
    ID is used anew.  A worker taken over could put a symlink there: the
    master, root, must remove the link, not empty its target."""
    top = os.path.join(ctx.stack.state_dir, "contexts")
    wuid, wgid = os.stat(top).st_uid, os.stat(top).st_gid
    assert wuid != 0, "contexts/ should be the workers'"
    victim = os.path.join(ctx.stack.dir, "victim-" + secrets.token_hex(4))
    os.mkdir(victim, 0o700)
    for name in ("a", "secret.conf"):
        with open(os.path.join(victim, name), "w") as f:
            f.write("root's\n")
    with sandbox(ctx) as sid:
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "true"})
        assert status == 200 and res["exitCode"] == 0, res
        link = os.path.join(top, sid)
        if os.path.isdir(link) and not os.path.islink(link):
            for name in os.listdir(link):
                os.unlink(os.path.join(link, name))
            os.rmdir(link)
        os.symlink(victim, link)
        os.lchown(link, wuid, wgid)
        delete_sandbox(ctx, sid)
        # The same ID again: made anew, its old definitions forgotten first.
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute", {"command": "true"})
        assert status == 200 and res["exitCode"] == 0, res
        assert sorted(os.listdir(victim)) == ["a", "secret.conf"], os.listdir(victim)
        assert not os.path.islink(link), "the symlink is still there"
