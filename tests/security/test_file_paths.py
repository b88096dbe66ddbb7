"""Security probes of the file API of persistent sandboxes: paths that try to
leave the sandbox.

Sandboxed code plants symlinks in /workspace that point at host secrets
(/etc/shadow, /proc/1/environ), at the host through /proc/self/root or
"../../..", and at the host directory that holds ANOTHER sandbox's workspace
(state_dir/workspaces/OTHER).  Reading, listing, streaming, writing, moving
and deleting through them, and naming such paths directly, must never show
host data or the other sandbox's files, and must never change a file outside
the sandbox: the test checks the host files themselves (content and mtime)
from outside.  Files the API creates belong to the sandbox user: uid 1000
inside, the sandbox's mapped uid (never root) on the host.

Every secret is a random token chosen by the test, so a leak is told from a
coincidence; host files the test does not own (/etc/shadow, /etc/passwd,
/proc/1/environ) are compared with the host's actual content."""
import base64
import contextlib
import json
import os
import secrets
import shutil
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import sandboxes  # noqa: E402
from sandboxes import (api, new_sandboxes, open_stream, read_stream, sessionless, sse_events,  # noqa: E402
                       workspace_dir)

SERVICE_SECRET = b"do-not-leak-7f3a"  # SANDBOXD_TEST_SECRET, in sandboxd's environment (tests/lib/stack.py)


# ---------------------------------------------------------------------------
# Helpers of this file's own (the shared ones are in tests/lib/sandboxes.py).

# The commands of these tests run outside any session unless they name one.
output = sessionless(sandboxes.output)


@contextlib.contextmanager
def _host_canary():
    """A directory in the host's /tmp holding canary.txt with a random marker:
    (path of the file, marker bytes).  Removed at the end."""
    tok = secrets.token_hex(8)
    d = f"/tmp/sandboxd-files-canary-{tok}"
    os.mkdir(d)
    os.chmod(d, 0o755)
    path = os.path.join(d, "canary.txt")
    marker = f"host-canary-{tok}".encode()
    with open(path, "wb") as f:
        f.write(marker + b"\n")
    os.chmod(path, 0o644)
    try:
        yield path, marker
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _raw(ctx, method, sid, rel, body=None, encoded=False):
    """GET/PUT /v1/sandboxes/SID/files/REL; REL is URL-encoded here unless
    encoded says it already is (then it is sent exactly as given)."""
    enc = rel if encoded else urllib.parse.quote(rel)
    headers = {"Content-Type": "application/octet-stream"} if body is not None else None
    status, _, data = ctx.request(method, f"/v1/sandboxes/{sid}/files/{enc}", body, headers)
    return status, data


def _revealed(x):
    """Everything a response showed, as bytes: its text, and every base64
    "content"/"data" field decoded (a file read as binary)."""
    if isinstance(x, (bytes, bytearray)):
        blob = bytes(x)
        try:
            x = json.loads(blob)
        except ValueError:
            return blob
    else:
        blob = json.dumps(x, ensure_ascii=False).encode()
    parts = [blob]

    def walk(v):
        if isinstance(v, dict):
            for k, vv in v.items():
                if k in ("content", "data") and isinstance(vv, str):
                    try:
                        parts.append(base64.b64decode(vv, validate=True))
                    except ValueError:
                        pass
                walk(vv)
        elif isinstance(v, list):
            for vv in v:
                walk(vv)
    walk(x)
    return b"\n".join(parts)


def _assert_hidden(what, status, response, markers):
    """The response shows none of markers, and is not a server error."""
    shown = _revealed(response)
    for m in markers:
        assert m not in shown, f"{what}: answered {status} showing {m[:60]!r}: {shown[:600]!r}"
    assert status < 500, f"{what}: answered {status}: {shown[:600]!r}"


def _read_every_way(ctx, sid, path):
    """(label, status, response) of every route that shows a file's content."""
    got = []
    status, body = api(ctx, sid, "read", {"path": path})
    got.append((f"read {path!r}", status, body))
    status, body = api(ctx, sid, "read", {"path": path, "encoding": "base64"})
    got.append((f"read base64 {path!r}", status, body))
    status, _, body = read_stream(ctx, sid, {"path": path})
    got.append((f"read/stream {path!r}", status, body))
    if not path.startswith("/"):
        status, body = _raw(ctx, "GET", sid, path)
        got.append((f"GET /files/{path}", status, body))
    return got


def _assert_reads_hide(ctx, sid, paths, markers):
    for path in paths:
        for what, status, body in _read_every_way(ctx, sid, path):
            _assert_hidden(what, status, body, markers)


def _assert_lists_hide(ctx, sid, paths, markers, names=(), recursive=False):
    """list-files of each path shows none of markers and no entry named as in names."""
    for path in paths:
        status, body = api(ctx, sid, "list-files",
                           {"path": path, "options": {"recursive": recursive, "includeHidden": True}})
        _assert_hidden(f"list-files {path!r}", status, body, markers)
        if status == 200:
            listed = {f.get("name") for f in body.get("files", [])}
            assert not listed & set(names), f"list-files {path!r} shows {sorted(listed & set(names))}: {body}"


def _host_state(path):
    """(content, mtime_ns) of a host file, None if it does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data, os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def _tree_state(root):
    """{relative path: (kind, content or link text, mtime_ns)} of a host tree, links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read(), st.st_mtime_ns)
            else:
                out[rel] = ("dir", None, st.st_mtime_ns)
    return out


class _Victim:
    """Another sandbox with a secret file, written by its own code."""

    def __init__(self, ctx, sid):
        tok = secrets.token_hex(8)
        self.sid = sid
        self.name = f"secret-{tok}.txt"
        self.marker = f"other-sandbox-secret-{tok}".encode()
        m = self.marker.decode()
        output(ctx, sid, f"echo {m} > {self.name}; mkdir sub; echo {m} > sub/deep.txt")
        self.ws = workspace_dir(ctx, sid)
        self.path = os.path.join(self.ws, self.name)
        self.before = _tree_state(self.ws)
        assert self.before[self.name][1] == self.marker + b"\n", self.before

    def assert_untouched(self, ctx, what):
        after = _tree_state(self.ws)
        assert after == self.before, (f"{what}: the other sandbox's workspace changed on the host:\n"
                                      f"before {sorted(self.before)}\nafter  {sorted(after)}")
        assert output(ctx, self.sid, f"cat {self.name} sub/deep.txt") == (self.marker.decode() + "\n") * 2


def _assert_workspace_holds_no(ctx, sid, markers, what):
    """No regular file in sid's workspace (host side, links not followed)
    holds any of markers: nothing was copied in from outside."""
    for rel, (kind, data, _) in _tree_state(workspace_dir(ctx, sid)).items():
        if kind == "file":
            for m in markers:
                assert m not in data, f"{what}: {rel} in the workspace holds {m!r}"


def _host_env_markers(ctx, with_paths=True):
    """What of the host's environments a leak would show: sandboxd's secret and
    paths (not when the requests themselves name those paths: an error may
    echo them), and (where this host lets even root read it: not in every
    container) the host init's whole environment."""
    markers = [SERVICE_SECRET, b"SANDBOXD_"]
    if with_paths:
        markers += [ctx.state_dir.encode(), ctx.fcgi_socket.encode()]
    try:
        with open("/proc/1/environ", "rb") as f:
            env = f.read()
    except OSError:
        env = b""
    if len(env) >= 16:
        markers.append(env)
    return markers


def _host_only_lines(host_bytes, sandbox_bytes, min_len=12):
    sandbox_lines = set(sandbox_bytes.splitlines())
    return [ln for ln in host_bytes.splitlines() if len(ln) >= min_len and ln not in sandbox_lines]


# ---------------------------------------------------------------------------
# Links to host secrets.

def test_symlink_to_etc_shadow_reveals_and_changes_nothing(ctx):
    with open("/etc/shadow", "rb") as f:
        shadow = f.read()
    shadow_state = _host_state("/etc/shadow")
    markers = [shadow] + [ln for ln in shadow.splitlines() if len(ln) >= 12]
    assert len(markers) > 1, "the host's /etc/shadow has no line to look for"
    with new_sandboxes(ctx, 1) as (sid,):
        output(ctx, sid, "ln -s /etc/shadow shadowlink; mkdir d; ln -s /etc d/etclink; ln -s ../shadowlink d/rel")
        _assert_reads_hide(ctx, sid, ["shadowlink", "d/etclink/shadow", "d/rel"], markers)
        _assert_lists_hide(ctx, sid, ["d/etclink"], markers, names=("shadow", "gshadow", "sudoers"))
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/list-files", {"path": "."})
        _assert_hidden("list-files .", status, body, markers)
        if status == 200:
            link = [f for f in body["files"] if f["name"] == "shadowlink"]
            assert link and link[0]["type"] == "symlink" and link[0]["size"] != len(shadow), body
        # Writing, moving and deleting through the links.
        for path in ("shadowlink", "d/etclink/shadow", "d/rel"):
            status, body = api(ctx, sid, "write", {"path": path, "content": "pwned::0:0::\n"})
            assert status < 500, body
        _raw(ctx, "PUT", sid, "shadowlink", b"pwned-raw::0:0::\n")
        api(ctx, sid, "rename", {"oldPath": "d/etclink/shadow", "newPath": "stolen"})
        api(ctx, sid, "delete", {"path": "d/etclink/shadow"})
        api(ctx, sid, "delete", {"path": "d", "recursive": True})
        api(ctx, sid, "delete", {"path": "shadowlink"})
        assert _host_state("/etc/shadow") == shadow_state, "the host's /etc/shadow changed"
        _assert_workspace_holds_no(ctx, sid, markers[1:], "after the writes through /etc/shadow links")


def test_symlink_to_proc_environ_reveals_no_host_environment(ctx):
    markers = _host_env_markers(ctx)
    with new_sandboxes(ctx, 1) as (sid,):
        output(ctx, sid, "ln -s /proc/1/environ initenv; ln -s /proc/self/environ selfenv; "
                         "ln -s /proc/thread-self/environ threadenv; ln -s /proc/1 init")
        _assert_reads_hide(ctx, sid, ["initenv", "selfenv", "threadenv", "init/environ", "init/cmdline",
                                      "/proc/1/environ", "/proc/self/environ", "/proc/1/cmdline",
                                      "/proc/self/cmdline"], markers)
        _assert_lists_hide(ctx, sid, ["init", "/proc/self"], markers)


def test_symlink_through_proc_self_root_stays_in_the_sandbox(ctx):
    with open("/etc/passwd", "rb") as f:
        host_passwd = f.read()
    with _host_canary() as (canary, canary_marker), new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        canary_state = _host_state(canary)
        sandbox_passwd = output(ctx, sid, "cat /etc/passwd").encode()
        assert sandbox_passwd != host_passwd, "the sandbox's /etc/passwd is the host's"
        markers = [canary_marker, other.marker] + _host_only_lines(host_passwd, sandbox_passwd)
        output(ctx, sid, "ln -s /proc/self/root rootlink; ln -s /proc/1/root initroot")
        paths = []
        for link in ("rootlink", "initroot"):
            paths += [f"{link}{canary}", f"{link}/etc/passwd", f"{link}{other.path}",
                      f"{link}{other.ws}/sub/deep.txt"]
        _assert_reads_hide(ctx, sid, paths, markers)
        canary_dir = os.path.basename(os.path.dirname(canary))
        _assert_lists_hide(ctx, sid, ["rootlink/tmp", "initroot/tmp", f"rootlink{other.ws}"],
                           markers, names=(canary_dir, other.name))
        # Writes and the like through the links change nothing on the host.
        new_host_file = f"/tmp/sandboxd-files-new-{secrets.token_hex(6)}"
        for op, body in (("write", {"path": f"rootlink{canary}", "content": "pwned"}),
                         ("write", {"path": f"rootlink{new_host_file}", "content": "pwned"}),
                         ("write", {"path": f"initroot{other.path}", "content": "pwned"}),
                         ("mkdir", {"path": f"rootlink{new_host_file}.d", "recursive": True}),
                         ("rename", {"oldPath": f"rootlink{canary}", "newPath": "stolen.txt"}),
                         ("move", {"sourcePath": f"rootlink{other.path}", "destinationPath": "stolen2.txt"}),
                         ("delete", {"path": f"rootlink{canary}"}),
                         ("delete", {"path": f"rootlink{other.ws}", "recursive": True})):
            status, res = api(ctx, sid, op, body)
            assert status < 500, (op, body, res)
        assert _host_state(canary) == canary_state, "the host's canary changed"
        assert not os.path.lexists(new_host_file) and not os.path.lexists(new_host_file + ".d"), \
            "a write through /proc/self/root reached the host's /tmp"
        other.assert_untouched(ctx, "through /proc/self/root")
        _assert_workspace_holds_no(ctx, sid, [canary_marker, other.marker], "through /proc/self/root")


def test_symlink_up_the_tree_stays_in_the_sandbox(ctx):
    with open("/etc/passwd", "rb") as f:
        host_passwd = f.read()
    with _host_canary() as (canary, canary_marker), new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        canary_state = _host_state(canary)
        sandbox_passwd = output(ctx, sid, "cat /etc/passwd").encode()
        markers = [canary_marker, other.marker] + _host_only_lines(host_passwd, sandbox_passwd)
        output(ctx, sid, "ln -s ../../.. up; mkdir -p a/b/c; ln -s ../../../../../../../../.. a/b/c/up")
        paths = []
        for link in ("up", "a/b/c/up"):
            paths += [f"{link}{canary}", f"{link}/etc/passwd", f"{link}{other.path}"]
        _assert_reads_hide(ctx, sid, paths, markers)
        for what, status, body in _read_every_way(ctx, sid, "up/etc/passwd"):
            if status == 200 and isinstance(body, dict) and body.get("encoding") == "utf-8":
                assert body["content"].encode() != host_passwd, what
        canary_dir = os.path.basename(os.path.dirname(canary))
        _assert_lists_hide(ctx, sid, ["up/tmp", "a/b/c/up/tmp", f"up{other.ws}"], markers,
                           names=(canary_dir, other.name))
        new_host_file = f"/tmp/sandboxd-files-new-{secrets.token_hex(6)}"
        for op, body in (("write", {"path": f"up{canary}", "content": "pwned"}),
                         ("write", {"path": f"a/b/c/up{new_host_file}", "content": "pwned"}),
                         ("write", {"path": f"up{other.path}", "content": "pwned"}),
                         ("write", {"path": f"up{other.ws}/planted.txt", "content": "pwned"}),
                         ("delete", {"path": f"up{canary}"}),
                         ("delete", {"path": f"up{other.ws}/sub", "recursive": True})):
            status, res = api(ctx, sid, op, body)
            assert status < 500, (op, body, res)
        assert _host_state(canary) == canary_state, "the host's canary changed"
        assert not os.path.lexists(new_host_file), "a write through ../../.. reached the host's /tmp"
        other.assert_untouched(ctx, "through ../../..")


def test_symlink_to_another_sandboxs_workspace(ctx):
    with new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        output(ctx, sid, f"ln -s {other.ws} otherdir; ln -s {other.path} otherfile; mkdir nest; "
                         f"ln -s {other.ws}/ nest/w; echo mine > here.txt")
        # Reads: never the other sandbox's content.
        _assert_reads_hide(ctx, sid, ["otherfile", f"otherdir/{other.name}", f"nest/w/{other.name}",
                                      "otherdir/sub/deep.txt", other.path, f"{other.ws}/sub/deep.txt"],
                           [other.marker])
        # Listings: never its files' names.
        _assert_lists_hide(ctx, sid, ["otherdir", "nest/w", other.ws, "otherdir/sub"],
                           [other.marker, other.name.encode()], names=(other.name, "deep.txt"))
        # (Here the links themselves are listed: their own text may name the
        # target, so only entries found through them count.)
        _assert_lists_hide(ctx, sid, ["nest", "."], [other.marker], names=(other.name, "deep.txt"),
                           recursive=True)
        # exists must not confirm the other sandbox's files either.
        for path in (f"otherdir/{other.name}", "otherdir/sub", other.path):
            status, res = api(ctx, sid, "exists", {"path": path})
            assert status < 500 and res.get("exists") is not True, (path, res)
        # Changes through the links, and naming the host path directly.
        for op, body in (("write", {"path": "otherfile", "content": "pwned"}),
                         ("write", {"path": f"otherdir/{other.name}", "content": "pwned"}),
                         ("write", {"path": "otherdir/planted.txt", "content": "pwned"}),
                         ("write", {"path": f"{other.ws}/planted-abs.txt", "content": "pwned"}),
                         ("write", {"path": "nest/w/sub/deep.txt", "content": "pwned"}),
                         ("mkdir", {"path": "otherdir/newdir"}),
                         ("mkdir", {"path": f"{other.ws}/newdir-abs", "recursive": True}),
                         ("rename", {"oldPath": f"otherdir/{other.name}", "newPath": "stolen.txt"}),
                         ("move", {"sourcePath": "otherdir/sub", "destinationPath": "stolen-dir"}),
                         ("move", {"sourcePath": "here.txt", "destinationPath": "otherdir/dropped.txt"}),
                         ("move", {"sourcePath": "otherfile", "destinationPath": "moved-link"}),
                         ("delete", {"path": f"otherdir/{other.name}"}),
                         ("delete", {"path": "otherdir/sub", "recursive": True}),
                         ("delete", {"path": f"{other.ws}/sub", "recursive": True}),
                         ("delete", {"path": "nest", "recursive": True}),
                         ("delete", {"path": "otherdir", "recursive": True})):
            status, res = api(ctx, sid, op, body)
            assert status < 500, (op, body, res)
            _assert_hidden(f"{op} {body}", status, res, [other.marker])
        for rel, data in (("otherfile", b"pwned-raw"), ("otherdir/planted-raw.txt", b"pwned-raw")):
            status, res = _raw(ctx, "PUT", sid, rel, data)
            assert status < 500, (rel, res)
        other.assert_untouched(ctx, "through links to its host path")
        _assert_workspace_holds_no(ctx, sid, [other.marker], "through links to the other workspace")


def test_symlink_swapped_during_requests_reveals_nothing(ctx):
    """A link flipped as fast as the sandbox can between a file of its own and
    paths out of it, while the API reads and writes it: a check-then-use race
    must not open the outside target."""
    with _host_canary() as (canary, canary_marker), new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        canary_state = _host_state(canary)
        cmd = (f"echo benign > benign.txt; echo flipping; i=0; "
               f"while [ ! -e /tmp/stop-race ] && [ $i -lt 20000 ]; do ln -sfn benign.txt race; "
               f"ln -sfn {other.path} race; ln -sfn /proc/self/root{canary} race; ln -sfn {other.ws} race; "
               f"i=$((i+1)); done; echo stopped")
        conn, resp = open_stream(ctx, sid, {"command": cmd, "sessionId": "racer", "timeoutMs": 120000})
        try:
            assert resp.status == 200, resp.read()[:300]
            events = sse_events(resp)
            ev = next(events)
            assert ev["type"] == "start", ev
            ev = next(events)
            assert ev.get("data") == "flipping\n", ev
            markers = [other.marker, canary_marker]
            for i in range(40):
                for path in ("race", "race/sub/deep.txt"):
                    status, body = api(ctx, sid, "read", {"path": path})
                    _assert_hidden(f"read {path} #{i}", status, body, markers)
                status, body = _raw(ctx, "GET", sid, "race")
                _assert_hidden(f"GET race #{i}", status, body, markers)
                status, body = api(ctx, sid, "list-files", {"path": "race"})
                _assert_hidden(f"list race #{i}", status, body, markers)
                if status == 200:
                    names = {f.get("name") for f in body.get("files", [])}
                    assert other.name not in names and "sub" not in names, body
                if i % 2 == 0:
                    status, body = api(ctx, sid, "write", {"path": "race", "content": "pwned"})
                    assert status < 500, body
                    status, body = api(ctx, sid, "write", {"path": "race/planted.txt", "content": "pwned"})
                    assert status < 500, body
            assert output(ctx, sid, "touch /tmp/stop-race") == ""
            rest = list(events)
            assert rest and rest[-1]["type"] == "complete", rest
        finally:
            conn.close()
        assert _host_state(canary) == canary_state, "the host's canary changed"
        other.assert_untouched(ctx, "through a swapped link")
        _assert_workspace_holds_no(ctx, sid, [other.marker, canary_marker], "through a swapped link")


# ---------------------------------------------------------------------------
# Paths named directly.

def test_direct_host_paths_are_the_sandboxs_own(ctx):
    with open("/etc/passwd", "rb") as f:
        host_passwd = f.read()
    with open("/etc/shadow", "rb") as f:
        host_shadow = f.read()
    with _host_canary() as (canary, canary_marker), new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        sandbox_passwd = output(ctx, sid, "cat /etc/passwd").encode()
        markers = ([canary_marker, other.marker, host_shadow] + _host_env_markers(ctx, with_paths=False)
                   + [ln for ln in host_shadow.splitlines() if len(ln) >= 12]
                   + _host_only_lines(host_passwd, sandbox_passwd))
        paths = ["/etc/shadow", "/proc/1/environ", "/etc/passwd", "../../../etc/passwd", "/../../../etc/passwd",
                 "../../../../../../../../etc/shadow", "/workspace/../../../etc/shadow", canary,
                 f"../../..{canary}", f"/proc/self/root{canary}", f"/proc/1/root{canary}", other.path,
                 f"../../..{other.path}", f"../{other_sid}/{other.name}", f"/workspace/../workspace/../..{other.path}"]
        _assert_reads_hide(ctx, sid, paths, markers)
        # Whatever /etc/passwd is read as, it is not the host's.
        for path in ("/etc/passwd", "../../../etc/passwd", "/../../../etc/passwd"):
            status, body = api(ctx, sid, "read", {"path": path})
            assert status != 200 or body["content"].encode() != host_passwd, (path, body)
        # Raw GETs with encoded traversal.
        for enc in ("..%2F..%2F..%2Fetc%2Fpasswd", "..%2f..%2f..%2fetc%2fshadow", "%2e%2e/%2e%2e/%2e%2e/etc/shadow",
                    "%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fshadow", "..%2F..%2F.." + urllib.parse.quote(canary, safe=""),
                    "%2Fetc%2Fshadow", urllib.parse.quote(f"../{other_sid}/{other.name}", safe="")):
            status, body = _raw(ctx, "GET", sid, enc, encoded=True)
            _assert_hidden(f"GET /files/{enc}", status, body, markers)
            assert status != 200 or body != host_passwd, enc
        canary_dir = os.path.basename(os.path.dirname(canary))
        _assert_lists_hide(ctx, sid, ["/tmp", "../../../tmp", os.path.dirname(other.ws), other.ws,
                                      f"../{other_sid}"], markers, names=(canary_dir, other.name, other_sid))
        other.assert_untouched(ctx, "after direct reads")


def test_writes_outside_land_in_the_sandbox(ctx):
    """/../../tmp/X is the sandbox's /tmp/X, not the host's; writes naming host
    paths never create them on the host."""
    with new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        tok = secrets.token_hex(6)
        names = [f"sbx-probe-{tok}-{i}" for i in range(4)]
        status, res = api(ctx, sid, "write", {"path": f"/../../tmp/{names[0]}", "content": "zero\n"})
        assert status == 200 and res["success"] is True, res
        status, res = api(ctx, sid, "write", {"path": f"../../../../tmp/{names[1]}", "content": "one\n"})
        assert status == 200 and res["success"] is True, res
        assert output(ctx, sid, f"cat /tmp/{names[0]} /tmp/{names[1]}") == "zero\none\n"
        status, res = _raw(ctx, "PUT", sid, f"..%2F..%2F..%2Ftmp%2F{names[2]}", b"two\n", encoded=True)
        assert status < 500, res
        status, res = api(ctx, sid, "mkdir", {"path": f"/../../tmp/{names[3]}", "recursive": True})
        assert status == 200, res
        for name in names:
            assert not os.path.lexists(f"/tmp/{name}"), f"/tmp/{name} was made on the host"
        # The host path of the other sandbox's workspace, named outright.
        for path in (f"{other.ws}/planted.txt", f"../../..{other.ws}/planted.txt", f"/../..{other.path}"):
            status, res = api(ctx, sid, "write", {"path": path, "content": "pwned"})
            assert status < 500, (path, res)
        other.assert_untouched(ctx, "after writes naming its host path")
        state_entries = set(os.listdir(ctx.state_dir))
        status, res = api(ctx, sid, "write", {"path": f"{ctx.state_dir}/planted.txt", "content": "pwned"})
        assert status < 500 and set(os.listdir(ctx.state_dir)) == state_entries, res


def test_api_files_belong_to_the_sandbox_user(ctx):
    with new_sandboxes(ctx, 1) as (sid,):
        ws = workspace_dir(ctx, sid)
        assert output(ctx, sid, "true") == ""
        ws_owner = os.stat(ws).st_uid
        assert ws_owner != 0 and ctx.uid_base <= ws_owner < ctx.uid_base + ctx.uid_span, ws_owner
        ok = []
        ok.append(api(ctx, sid, "write", {"path": "w.txt", "content": "x"}))
        ok.append(api(ctx, sid, "write", {"path": "b.bin", "content": "AAEC", "encoding": "base64"}))
        ok.append(api(ctx, sid, "mkdir", {"path": "d/e", "recursive": True}))
        ok.append(api(ctx, sid, "write", {"path": "sub.txt", "content": "x"}))
        ok.append(api(ctx, sid, "rename", {"oldPath": "sub.txt", "newPath": "d/renamed.txt"}))
        status, data = _raw(ctx, "PUT", sid, "raw.bin", b"\0raw")
        ok.append((status, json.loads(data)))
        for status, res in ok:
            assert status == 200 and res["success"] is True, res
        rels = ["w.txt", "b.bin", "d", "d/e", "d/renamed.txt", "raw.bin"]
        assert output(ctx, sid, "stat -c %u:%g " + " ".join(rels)) == "1000:1000\n" * len(rels)
        for rel in rels:
            st = os.lstat(os.path.join(ws, rel))
            assert st.st_uid == ws_owner and st.st_uid != 0 and st.st_gid != 0, (rel, st.st_uid, st.st_gid)
        # Nothing else appeared in the workspace (no temporary file left as root).
        left = {rel for rel in _tree_state(ws)}
        assert left == set(rels), left


def test_recursive_delete_does_not_follow_links(ctx):
    with _host_canary() as (canary, _marker), new_sandboxes(ctx, 2) as (sid, other_sid):
        other = _Victim(ctx, other_sid)
        canary_state = _host_state(canary)
        canary_dir = os.path.dirname(canary)
        output(ctx, sid, f"mkdir -p trap/deep; ln -s {other.ws} trap/other; ln -s / trap/root; "
                         f"ln -s {canary_dir} trap/deep/canary; ln -s /proc/self/root trap/deep/self; "
                         f"ln -s ../../.. trap/deep/up; ln -s /usr rootusr; ln -s {other.ws} otherws")
        for path in ("trap", "rootusr", "otherws"):
            status, res = api(ctx, sid, "delete", {"path": path, "recursive": True})
            assert status == 200 and res["success"] is True, (path, res)
            assert not os.path.lexists(os.path.join(workspace_dir(ctx, sid), path)), path
        assert _host_state(canary) == canary_state, "the host's canary changed"
        other.assert_untouched(ctx, "after a recursive delete of links to it")
        assert output(ctx, sid, "[ -x /usr/bin/python3 ] && echo usr-intact") == "usr-intact\n"
        assert os.path.exists("/etc/passwd")


def test_malformed_paths_are_refused_cleanly(ctx):
    with new_sandboxes(ctx, 1) as (sid,):
        output(ctx, sid, "echo x > ok.txt")
        for path in ("", "a\u0000b", "x" * 5000, "/" + "a/" * 3000, "ok.txt\u0000.png"):
            for route in ("read", "write", "list-files", "mkdir", "delete"):
                body = {"path": path, "content": "x"} if route == "write" else {"path": path}
                status, res = api(ctx, sid, route, body)
                assert 400 <= status < 500, (route, path[:40], status, res)
            # exists may answer that such a path does not exist.
            status, res = api(ctx, sid, "exists", {"path": path})
            assert 400 <= status < 500 or (status == 200 and res["exists"] is False), (path[:40], status, res)
        for enc in ("a%00b", "ok.txt%00.png", "%C0%AE%C0%AE/%C0%AE%C0%AE/etc/passwd", "x" * 5000):
            status, body = _raw(ctx, "GET", sid, enc, encoded=True)
            assert 400 <= status < 500, (enc[:40], status, body[:300])
        assert ctx.healthy()
        assert output(ctx, sid, "cat ok.txt") == "x\n"
