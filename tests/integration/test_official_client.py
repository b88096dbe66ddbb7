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
