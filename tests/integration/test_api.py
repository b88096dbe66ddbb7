"""The HTTP contract of the foundation routes, through the real nginx config:
good runs in each language, and every kind of bad input with its status and
error code.  After the bad inputs, the service still serves."""
import json
import os
import socket
import ssl


def _assert_error(status, body, want_status, want_code):
    assert status == want_status, f"status {status}, want {want_status}: {body}"
    assert body.get("code") == want_code, f"code {body.get('code')}, want {want_code}: {body}"
    assert body.get("httpStatus") == want_status, body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("context"), dict), body
    assert body.get("timestamp", "").endswith("Z"), body


def test_healthz(ctx):
    status, body = ctx.json("GET", "/healthz")
    assert status == 200 and body["success"] is True and body["status"] == "healthy", body


def test_run_python(ctx):
    status, body = ctx.run("import sys\nprint('out', 6 * 7)\nprint('err', file=sys.stderr)")
    assert status == 200, body
    assert body["success"] is True and body["exitCode"] == 0, body
    assert body["output"] == "out 42\n" and body["errors"] == "err\n", body
    assert body["timedOut"] is False and body["truncated"] is False and body["oomKilled"] is False, body
    assert body["signal"] is None, body
    assert isinstance(body["executionTime"], int) and 0 <= body["executionTime"] < 30000, body
    assert body["timestamp"].endswith("Z"), body


def test_run_root_route_and_default_language(ctx):
    status, body = ctx.json("POST", "/", {"code": "print('root route')"})
    assert status == 200 and body["output"] == "root route\n", body


def test_run_javascript(ctx):
    status, body = ctx.run("console.log([1,2,3].map(x => x * 2).join(','))", "javascript")
    assert status == 200 and body["output"] == "2,4,6\n" and body["exitCode"] == 0, body


def test_run_bash(ctx):
    status, body = ctx.run("echo \"$((6*7)) $(id -u) $(pwd)\"; exit 3", "bash")
    assert status == 200, body
    assert body["output"] == "42 1000 /workspace\n", body
    assert body["exitCode"] == 3 and body["success"] is False, body


def test_language_aliases(ctx):
    for lang, code in (("python3", "print(1)"), ("js", "console.log(1)"), ("node", "console.log(1)")):
        status, body = ctx.run(code, lang)
        assert status == 200 and body["output"] == "1\n", (lang, body)


def test_python_exception_is_data(ctx):
    status, body = ctx.run("def f():\n    raise ValueError('boom')\nf()\n")
    assert status == 200 and body["exitCode"] == 1 and body["success"] is False, body
    assert "ValueError: boom" in body["errors"] and 'File "/tmp/main.py", line 2' in body["errors"], body


def test_signal_is_reported(ctx):
    status, body = ctx.run("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)")
    assert status == 200 and body["signal"] == 11 and body["exitCode"] == 139, body


def test_invalid_utf8_output_is_replaced(ctx):
    status, body = ctx.run("import sys\nsys.stdout.buffer.write(b'a\\xff\\xfeb\\x00c')")
    assert status == 200, body
    assert body["output"] == "a\ufffd\ufffdb\ufffdc", repr(body["output"])


def test_unicode_roundtrip(ctx):
    status, body = ctx.run("print('héllo ✓ 漢字 🙂')")
    assert status == 200 and body["output"] == "héllo ✓ 漢字 🙂\n", body


def test_stdin_is_empty(ctx):
    status, body = ctx.run("import sys\nprint(repr(sys.stdin.read()))", timeout=5000)
    assert status == 200 and body["output"] == "''\n", body


def test_malformed_json(ctx):
    status, body = ctx.json("POST", "/v1/run", "{\"code\": ", {"Content-Type": "application/json"})
    _assert_error(status, body, 400, "INVALID_JSON")


def test_json_not_an_object(ctx):
    status, body = ctx.json("POST", "/v1/run", "[1, 2]")
    _assert_error(status, body, 400, "INVALID_JSON")


def test_empty_body(ctx):
    status, body = ctx.json("POST", "/v1/run", b"")
    _assert_error(status, body, 400, "INVALID_JSON")


def test_missing_code(ctx):
    status, body = ctx.json("POST", "/v1/run", {"language": "python"})
    _assert_error(status, body, 400, "VALIDATION_FAILED")
    assert "code" in body["message"], body


def test_code_wrong_type(ctx):
    status, body = ctx.json("POST", "/v1/run", {"code": 42})
    _assert_error(status, body, 400, "VALIDATION_FAILED")


def test_unknown_language(ctx):
    status, body = ctx.json("POST", "/v1/run", {"code": "x", "language": "cobol"})
    _assert_error(status, body, 400, "VALIDATION_FAILED")
    assert "cobol" in body["message"] and "python" in body["message"], body


def test_unknown_field(ctx):
    status, body = ctx.json("POST", "/v1/run", {"code": "print(1)", "memory": 10})
    _assert_error(status, body, 400, "VALIDATION_FAILED")
    assert "memory" in body["message"], body


def test_bad_timeouts(ctx):
    for t in (0, -5, 600001, 1.5, "100"):
        status, body = ctx.json("POST", "/v1/run", {"code": "print(1)", "timeout": t})
        _assert_error(status, body, 400, "VALIDATION_FAILED")


def test_duplicate_keys_refused(ctx):
    status, body = ctx.json("POST", "/v1/run", '{"code": "print(1)", "code": "print(2)"}')
    _assert_error(status, body, 400, "INVALID_JSON")


def test_too_large_by_nginx(ctx):
    big = json.dumps({"code": "#" * (33 * 1024 * 1024)})
    status, _, data = ctx.request("POST", "/v1/run", big, {"Content-Type": "application/json"})
    body = json.loads(data)
    _assert_error(status, body, 413, "PAYLOAD_TOO_LARGE")


def test_wrong_method(ctx):
    status, headers, data = ctx.request("GET", "/v1/run")
    body = json.loads(data)
    _assert_error(status, body, 405, "METHOD_NOT_ALLOWED")
    assert headers.get("allow") == "POST", headers


def test_unknown_route(ctx):
    status, body = ctx.json("GET", "/nope")
    _assert_error(status, body, 404, "NOT_FOUND")


def test_invalid_sandbox_id(ctx):
    for bad in ("UPPER", "-lead", "trail-", "a_b", "x" * 64, "admin"):
        status, body = ctx.json("GET", f"/v1/sandboxes/{bad}")
        _assert_error(status, body, 400, "INVALID_SANDBOX_ID")


def test_plain_http_listener_serves_too(ctx):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", ctx.http_port, timeout=30)
    c.request("GET", "/healthz")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["status"] == "healthy"
    c.close()


def test_tls_rejects_old_protocols(ctx):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    tls.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        tls.minimum_version = ssl.TLSVersion.TLSv1
    except ValueError:
        pass
    with socket.create_connection(("127.0.0.1", ctx.api_port), timeout=10) as raw:
        try:
            with tls.wrap_socket(raw, server_hostname="localhost"):
                raise AssertionError("a TLS 1.1 handshake succeeded")
        except ssl.SSLError:
            pass


def test_service_still_serves_after_bad_input(ctx):
    assert ctx.healthy()
    status, body = ctx.run("print('still here')")
    assert status == 200 and body["output"] == "still here\n", body


def test_concurrent_runs(ctx):
    """Eight runs at once on four workers: all complete, each with its own output."""
    import concurrent.futures
    import sys
    sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests/lib")
    from context import Context

    def one(i):
        c = Context(ctx.stack)
        return c.run(f"import time\ntime.sleep(0.2)\nprint({i})")

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(one, range(8)))
    for i, (status, body) in enumerate(results):
        assert status == 200 and body["output"] == f"{i}\n", (i, status, body)


def test_user_tools_are_present(ctx):
    """What user code expects to find: python and python3, node, bash, coreutils,
    and Python's scientific stack."""
    status, body = ctx.run(
        "set -e\n"
        "python -c 'import sys; print(sys.version_info[0])'\n"
        "python3 -c 'import numpy, pandas, matplotlib; print(\"sci\")'\n"
        "node -e 'console.log(\"node\")'\n"
        "ls / | sort | head -1 | wc -l\n"
        "echo abc | tr a-c x-z\n", "bash", timeout=20000)
    assert status == 200 and body["exitCode"] == 0, body
    assert body["output"] == "3\nsci\nnode\n1\nxyz\n", body


def test_run_of_a_client_that_goes_away_is_killed(ctx):
    """A one-shot run whose client disconnects is killed at once, not at its
    timeout (10 minutes here)."""
    import os
    import select
    conn = ctx.stack.connection()
    conn.request("POST", "/v1/run", body=json.dumps({"code": "import time\ntime.sleep(300)",
                                                     "timeout": 600000}),
                 headers={"Content-Type": "application/json"})
    fds = [os.pidfd_open(p) for p in ctx.stack.wait_sandbox_running()]
    conn.close()
    for fd in fds:
        r, _, _ = select.select([fd], [], [], 10)
        assert r, "the run outlived its client"
        os.close(fd)
    status, body = ctx.run("print('next')")
    assert status == 200 and body["output"] == "next\n", body


def test_openapi_document_is_served(ctx):
    """GET /v1/openapi.json serves docs/openapi.json, compiled into sandboxd."""
    status, headers, data = ctx.request("GET", "/v1/openapi.json")
    assert status == 200 and headers.get("content-type", "").startswith("application/json"), status
    doc = json.loads(data)
    assert doc["openapi"].startswith("3.1") and "/v1/run" in doc["paths"], list(doc)
    assert "/v1/sandboxes/{id}/api/execute" in doc["paths"], list(doc["paths"])
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "docs", "openapi.json"), "rb") as f:
        assert json.loads(f.read()) == doc


def test_openapi_paths_are_the_routes_served(ctx):
    """Every path and method of docs/openapi.json is a route sandboxd serves
    (never the router's 404 or a 405), and every other method on it is a 405
    that names exactly the documented methods in Allow: the document cannot
    drift from the code in either direction without this failing."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "docs", "openapi.json")) as f:
        doc = json.load(f)
    sid = "t-" + os.urandom(6).hex()
    methods = ("GET", "PUT", "POST", "DELETE")
    for path, item in doc["paths"].items():
        url = path.replace("{id}", sid).replace("{path}", "openapi-probe.txt")
        documented = {m.upper() for m in item if m.upper() in methods}
        for m in methods:
            body = b"{}" if m in ("POST", "PUT") else None
            if path == "/v1/sandboxes/{id}" and m == "DELETE":
                continue  # no sandbox to delete yet; DELETE is checked below
            status, headers, data = ctx.request(m, url, body, {"Content-Type": "application/json"})
            if m in documented:
                assert status != 405, (m, path, status, data[:200])
                if status == 404:
                    code = json.loads(data)["code"]
                    assert code != "NOT_FOUND", (m, path, data[:200])
            else:
                assert status == 405, (m, path, status, data[:200])
                allow = {a.strip() for a in headers.get("allow", "").split(",") if a.strip()}
                assert documented <= allow, (m, path, allow, documented)
    # And the other way round: a route of the contract (API.md) that the
    # document leaves out is one sandboxd does not serve yet.
    contract = [("POST", "/v1/sandboxes/{id}/ports"), ("GET", "/v1/sandboxes/{id}/ports"),
                ("DELETE", "/v1/sandboxes/{id}/ports/8080"), ("POST", "/v1/sandboxes/{id}/api/process/start"),
                ("GET", "/v1/sandboxes/{id}/api/process/list"), ("POST", "/v1/sandboxes/{id}/api/port-watch"),
                ("POST", "/v1/sandboxes/{id}/api/git/checkout"), ("POST", "/v1/sandboxes/{id}/api/contexts"),
                ("GET", "/v1/sandboxes/{id}/api/contexts"), ("POST", "/v1/sandboxes/{id}/api/execute/code"),
                ("POST", "/v1/sandboxes/{id}/run-code"), ("GET", "/v1/sandboxes/{id}/api/ping"),
                ("GET", "/v1/sandboxes/{id}/api/version"), ("POST", "/execute"), ("POST", "/run")]
    for m, path in contract:
        if path in doc["paths"] and m.lower() in doc["paths"][path]:
            continue
        status, _, data = ctx.request(m, path.replace("{id}", sid), b"{}" if m == "POST" else None,
                                      {"Content-Type": "application/json"})
        assert status == 404 and json.loads(data)["code"] == "NOT_FOUND", (m, path, status, data[:200])
    status, body = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
    assert status == 200, body
    ctx.stack.wait_log(f"sandbox {sid} deleted".encode(), 30)
