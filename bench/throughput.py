#!/usr/bin/env python3
"""Exec throughput with a C load generator: wrk (Debian's) POSTs
{"command": "true"} to /v1/sandboxes/{id}/api/execute over HTTPS, C
connections spread over S running sandboxes, for D seconds, on the same two
cores as nginx, sandboxd and the sandboxes.

  bench/throughput.py [--connections 16] [--sandboxes 8] [--seconds 10] [--workers 8]
                      [--session ID]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402

LUA = r'''
local n = 0
setup = function(thread) end
request = function()
  n = n + 1
  local id = "tp-" .. (n %% %d)
  return wrk.format("POST", "/v1/sandboxes/" .. id .. "/api/execute",
                    {["Content-Type"] = "application/json"}, '%s')
end
response = function(status, headers, body)
  if status ~= 200 then errors = (errors or 0) + 1 end
end
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--sandboxes", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--session", default=None,
                    help='sessionId of every exec (default: none given, the "default" session; '
                         '"__DISABLE_SESSION__" for none)')
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    stack = Stack(os.path.abspath(args.build_dir), workers=args.workers, uid_base=1500000000,
                  uid_slots=64)
    stack.start()
    try:
        ctx = Context(stack)
        for i in range(args.sandboxes):
            status, body = ctx.json("PUT", f"/v1/sandboxes/tp-{i}", {"keepAlive": True})
            assert status == 201, body
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            body = {"command": "true"}
            if args.session is not None:
                body["sessionId"] = args.session
            f.write(LUA % (args.sandboxes, json.dumps(body)))
            script = f.name
        r = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                            "-s", script, f"https://127.0.0.1:{stack.https_port}"],
                           capture_output=True, text=True)
        os.unlink(script)
        print(f"workers={args.workers} connections={args.connections} sandboxes={args.sandboxes} "
              f"cpus={os.cpu_count()}")
        print(r.stdout)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
        assert not non2xx, "errors during the run"
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
