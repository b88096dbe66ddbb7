"""API keys: with keys configured, a request needs 'Authorization: Bearer
<key>'; without keys, only loopback clients are served.  Runs its own
sandboxd (same nginx config) with a key configured."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402
import fcgi  # noqa: E402

KEY = "test-key-0123456789abcdef"


def test_api_key_required_when_configured(ctx):
    st = Stack(ctx.stack.build_dir, workers=1, uid_base=ctx.uid_base + ctx.uid_span,
               uid_slots=8, env={"SANDBOXD_API_KEYS": KEY + ", second-key-abcdefghijkl"})
    try:
        st.start()
        c = Context(st)
        status, body = c.json("POST", "/v1/run", {"code": "print(1)"})
        assert status == 401 and body["code"] == "UNAUTHORIZED", body
        status, body = c.json("POST", "/v1/run", {"code": "print(1)"}, {"Authorization": "Bearer wrong-key-0123456789"})
        assert status == 401, body
        status, body = c.json("POST", "/v1/run", {"code": "print(1)"}, {"Authorization": "Bearer " + KEY[:-1]})
        assert status == 401, body
        status, body = c.json("POST", "/v1/run", {"code": "print(1)"}, {"Authorization": "Bearer " + KEY})
        assert status == 200 and body["output"] == "1\n", body
        status, body = c.json("POST", "/v1/run", {"code": "print(2)"}, {"Authorization": "Bearer second-key-abcdefghijkl"})
        assert status == 200 and body["output"] == "2\n", body
        # /healthz needs no key.
        status, body = c.json("GET", "/healthz")
        assert status == 200, body
        # Without a key, a large body is refused before sandboxd reads it.
        status, _, data = c.request("POST", "/v1/run", b"{" + b" " * (20 << 20) + b"}",
                                    {"Content-Type": "application/json"})
        assert status == 401 and json.loads(data)["code"] == "UNAUTHORIZED", (status, data[:200])
    finally:
        assert st.stop() == 0


def _memory_holds(pid, needle):
    """Whether needle appears anywhere in the readable memory of pid (we are root)."""
    with open(f"/proc/{pid}/maps") as f:
        regions = [line.split()[0:2] for line in f]
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for rng, perms in regions:
            if not perms.startswith("r"):
                continue
            lo, hi = (int(x, 16) for x in rng.split("-"))
            try:
                mem.seek(lo)
                if needle in mem.read(hi - lo):
                    return True
            except OSError:
                continue
    return False


def test_sandbox_init_holds_no_service_secrets(ctx):
    """A sandbox's init is sandbox-agent, exec'd: none of sandboxd's memory (its
    API keys) is inside a sandbox, not even in the init."""
    st = Stack(ctx.stack.build_dir, workers=1, uid_base=ctx.uid_base + 3 * ctx.uid_span,
               uid_slots=8, env={"SANDBOXD_API_KEYS": KEY})
    try:
        st.start()
        c = Context(st)
        status, body = c.json("POST", "/v1/run", {"code": "print(1)"}, {"Authorization": "Bearer " + KEY})
        assert status == 200, body
        inits = st.sandbox_pids(include_init=True)
        assert inits, "no warm sandbox init found"
        # The master itself holds the key: the probe can see it where it is.
        assert _memory_holds(st.sandboxd.pid, KEY.encode()), "probe broken: key not found in the master"
        for pid in inits:
            assert os.readlink(f"/proc/{pid}/exe").endswith("/sandbox-agent"), os.readlink(f"/proc/{pid}/exe")
            assert not _memory_holds(pid, KEY.encode()), f"sandbox init {pid} holds the API key"
    finally:
        assert st.stop() == 0


def _direct(ctx, remote_addr):
    body = json.dumps({"code": "print('direct')"}).encode()
    return fcgi.request(ctx.fcgi_socket, {
        "REQUEST_METHOD": "POST", "DOCUMENT_URI": "/v1/run", "REMOTE_ADDR": remote_addr,
        "CONTENT_TYPE": "application/json"}, body)


def test_no_keys_means_loopback_only(ctx):
    # Our own stack has no keys and we are on loopback: served.
    status, body = ctx.run("print('loopback')")
    assert status == 200 and body["output"] == "loopback\n", body
    # Headers cannot make a client look remote or local: nginx passes $remote_addr.
    status, body = ctx.json("POST", "/v1/run", {"code": "print(1)"},
                            {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"})
    assert status == 200, body
    # A client that nginx saw as remote (spoken to sandboxd's socket directly, as
    # nginx does) is refused; the same request from loopback is served.
    status, _, data = _direct(ctx, "203.0.113.9")
    assert status == 401 and json.loads(data)["code"] == "UNAUTHORIZED", (status, data)
    status, _, data = _direct(ctx, "::1")
    assert status == 200 and json.loads(data)["output"] == "direct\n", (status, data)


def test_fcgi_socket_is_not_world_accessible(ctx):
    import stat
    st = os.stat(ctx.fcgi_socket)
    assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    import grp
    assert grp.getgrgid(st.st_gid).gr_name == "www-data", st.st_gid
