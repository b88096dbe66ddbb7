"""What every test function receives: a client of the running stack."""
import http.client
import json
import os
import select
import time


class Context:
    def __init__(self, stack):
        self.stack = stack
        self.uid_base = stack.uid_base
        self.uid_span = stack.uid_span
        self.state_dir = stack.state_dir
        self.fcgi_socket = stack.fcgi_socket
        self.api_port = stack.https_port
        self.http_port = stack.http_port
        self._conn = None

    def request(self, method, path, body=None, headers=None):
        """One HTTPS request through nginx -> (status, headers lower-cased, body bytes)."""
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = self.stack.connection()
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                resp = self._conn.getresponse()
                data = resp.read()
                h = {k.lower(): v for k, v in resp.getheaders()}
                if h.get("connection", "").lower() == "close":
                    self._conn.close()
                    self._conn = None
                return resp.status, h, data
            except (http.client.HTTPException, ConnectionError, OSError):
                # A kept-alive connection that nginx closed: retry once on a new one.
                self._conn.close()
                self._conn = None
                if attempt:
                    raise

    def json(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        try:
            return status, json.loads(data)
        except ValueError:
            raise AssertionError(f"{method} {path}: {status} with a body that is not JSON: {data[:300]!r}")

    def run(self, code, language="python", timeout=None):
        body = {"code": code, "language": language}
        if timeout is not None:
            body["timeout"] = timeout
        return self.json("POST", "/v1/run", body)

    def run_on_new_connection(self, code, language="python", timeout=None):
        """run() on a connection of its own, closed afterwards: safe to call from
        several threads at once (run() shares this context's one keep-alive
        connection).  No retry: a fresh connection that fails is a failure.  A
        body that is not JSON comes back as {"raw": its first 500 bytes}."""
        body = {"code": code, "language": language}
        if timeout is not None:
            body["timeout"] = timeout
        return self.post_on_new_connection("/v1/run", body)

    def post_on_new_connection(self, path, body):
        """One POST of a JSON body to path, as run_on_new_connection() (on a
        connection of its own, no retry) -> (status, the body decoded)."""
        conn = self.stack.connection()
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

    def healthy(self):
        status, _, _ = self.request("GET", "/healthz")
        return status == 200

    def host_sandbox_pids(self, settle_s=2.0):
        """Sandbox processes left on the host.  Teardown is synchronous in sandboxd,
        but a killed task may take a moment to be released by the kernel, so this
        waits (on pidfds, for at most settle_s) for the ones it finds to exit."""
        deadline = time.monotonic() + settle_s
        for pid in self.stack.sandbox_pids():
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(fd)
        return self.stack.sandbox_pids()
