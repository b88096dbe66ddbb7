"""The official client: the npm package @cloudflare/sandbox's SandboxClient
(HTTP transport, baseUrl https://HOST/v1/sandboxes/ID, an Authorization
header in defaultHeaders) runs commands against the real stack, through a
small loader hook that stands in for `cloudflare:workers` in Node
(tests/client/)."""
import json
import os
import shutil
import subprocess

CLIENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "client")


def _run_client(ctx, script, sid):
    node = shutil.which("node")
    assert node, "node is not installed"
    assert os.path.isdir(os.path.join(CLIENT, "node_modules", "@cloudflare", "sandbox")), \
        "tests/client/node_modules is missing: dev.sh installs it with npm ci"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_EXTRA_CA_CERTS": ctx.stack.cert}
    r = subprocess.run([node, "--import", "./register.mjs", script,
                        f"https://localhost:{ctx.api_port}/v1/sandboxes/{sid}"],
                       cwd=CLIENT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert "error" not in out, out["error"]
    return out


def test_sandbox_client_commands(ctx):
    sid = "sdk-" + os.urandom(4).hex()
    out = _run_client(ctx, "commands.mjs", sid)
    assert out["execute"] == {"success": False, "exitCode": 3, "stdout": "hello\n", "stderr": "oops\n"}, out
    assert out["cwd"] == "from-cwd/tmp\n", out
    types = [e["type"] for e in out["events"]]
    assert types[0] == "start" and types[-1] == "complete", types
    assert out["events"][-1]["exitCode"] == 4, out["events"]
    assert [e["data"] for e in out["events"] if e["type"] == "stdout"] == ["one\n"], out["events"]
    assert [e["data"] for e in out["events"] if e["type"] == "stderr"] == ["two\n"], out["events"]
    ctx.json("DELETE", f"/v1/sandboxes/{sid}")


def test_sandbox_client_sessions_and_files(ctx):
    sid = "sdk-" + os.urandom(4).hex()
    out = _run_client(ctx, "sessions-files.mjs", sid)
    assert out["ping"] == "pong" and out["version"] not in ("", "unknown"), out
    assert out["created"] is True and out["deleted"] is True, out
    assert out["work"] == "/tmp/sub 2 hi\n", out
    assert out["other"] == "/workspace [] []\n", out
    assert out["mkdir"] is True, out
    assert out["text"] == {"content": "héllo\n", "encoding": "utf-8", "isBinary": False,
                           "mimeType": "text/plain", "size": len("héllo\n".encode())}, out
    assert out["bin"] == {"content": "AAEC/w==", "encoding": "base64", "isBinary": True}, out
    assert out["streamed"] == {"content": "héllo\n", "mimeType": "text/plain"}, out
    assert out["streamedBin"] == [0, 1, 2, 255], out
    assert out["exists"] == [True, False], out
    assert sorted(out["listed"]) == [["dir", "directory"], ["dir/bytes.bin", "file"],
                                     ["dir/deep", "directory"], ["moved.txt", "file"]], out
    f = out["listedFile"]
    assert f["absolutePath"] == "/workspace/moved.txt" and f["size"] == len("héllo\n".encode()), f
    assert f["mode"] == "rw-r--r--" and f["permissions"]["writable"] is True, f
    assert out["afterDelete"] is False, out
    assert out["missing"]["code"] == "FILE_NOT_FOUND", out
    ctx.json("DELETE", f"/v1/sandboxes/{sid}")


def test_sandbox_client_code_interpreter(ctx):
    import base64
    import struct
    sid = "sdk-" + os.urandom(4).hex()
    out = _run_client(ctx, "interpreter.mjs", sid)
    py, js = out["created"]
    assert (py["language"], py["cwd"], py["createdAt"]) == ("python", "/workspace", True), py
    assert (js["language"], js["cwd"], js["createdAt"]) == ("javascript", "/tmp", True), js
    assert len(py["id"]) == 36 and py["id"] != js["id"], out["created"]

    def nothing_but(cell, **want):
        got = {k: cell[k] for k in ("stdout", "stderr", "results", "errors")}
        base = {"stdout": "", "stderr": "", "results": [], "errors": []}
        base.update(want)
        return got == base

    text = {"html": None, "png": None, "json": None, "formats": ["text"]}
    assert nothing_but(out["pyState"], stdout="hi from-sdk\n"), out["pyState"]
    assert nothing_but(out["pyValue"], results=[{"text": "42", **text}]), out["pyValue"]
    # onError: name, message, traceback (with the cell's line).
    assert out["pyError"]["calls"] == ["error"], out["pyError"]
    (err,) = out["pyError"]["errors"]
    assert err["name"] == "ValueError" and err["message"] == "bad value", err
    assert '  File "<cell-3>", line 2, in <module>' in err["traceback"], err
    assert err["traceback"][-1] == "ValueError: bad value", err
    # The timeout given to runCodeStream() interrupts the cell; state is kept.
    (err,) = out["pyTimeout"]["errors"]
    assert err["name"] == "TimeoutError" and "300 ms" in err["message"], err
    assert nothing_but(out["pyAfterTimeout"], results=[{"text": "20", **text}]), out["pyAfterTimeout"]
    # A chart through onResult: a real PNG.
    assert out["pyPng"]["calls"] == ["result"] and not out["pyPng"]["errors"], out["pyPng"]
    (fig,) = out["pyPng"]["results"]
    assert "png" in fig["formats"], fig["formats"]
    raw = base64.b64decode(fig["png"], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR", raw[:16]
    width, height = struct.unpack(">II", raw[16:24])
    assert width > 0 and height > 0, (width, height)
    assert out["pyJson"]["results"] == [{"text": "{'a': [1, 2]}", "html": None, "png": None,
                                         "json": {"a": [1, 2]}, "formats": ["text", "json"]}], out["pyJson"]

    # JavaScript: cwd, console.log before the value, let declared again, await.
    assert out["js1"]["calls"] == ["stdout", "result"], out["js1"]
    assert nothing_but(out["js1"], stdout="cwd /tmp\n", results=[{"text": "1", **text}]), out["js1"]
    assert nothing_but(out["js2"], results=[{"text": "42", **text}]), out["js2"]
    (err,) = out["jsError"]["errors"]
    assert err["name"] == "RangeError" and err["message"] == "out of range", err
    assert any("<cell-3>:2" in line for line in err["traceback"]), err

    # listCodeContexts, deleteCodeContext, and what a deleted context gives.
    assert sorted(map(tuple, (c.values() for c in out["listed"]))) == sorted(
        [(py["id"], "python", "/workspace"), (js["id"], "javascript", "/tmp")]), out["listed"]
    assert out["listedAfterDelete"] == [py["id"]], out
    assert out["deleteAgain"]["code"] == "CONTEXT_NOT_FOUND" and out["deleteAgain"]["status"] == 404, out
    assert out["cellOnDeleted"]["code"] == "CONTEXT_NOT_FOUND", out
    assert out["listedAtEnd"] == 0, out
    ctx.json("DELETE", f"/v1/sandboxes/{sid}")
