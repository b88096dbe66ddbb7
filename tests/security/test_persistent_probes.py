"""Probes from inside a persistent sandbox's command: what the code runs
has no capability, no_new_privs set and the seccomp filter on (inherited
from the sandbox's agent, which loaded it once); the calls the agent's filter
leaves it for each command's namespaces (mount(), clone() with CLONE_NEWPID
and CLONE_NEWNS) still fail for the command, as do user namespaces, setns()
and unshare() of any namespace."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from sandboxes import NO_SESSION, delete_sandbox, new_id  # noqa: E402

PROBE = r'''
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
SYS_clone, SYS_unshare, SYS_setns, SYS_mount = 56, 272, 308, 165
CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x20000000, 0x10000000, 0x40000000
SIGCHLD = 17

def call(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    if r == 0:
        # A child of clone(): it must not go on as a copy of us.
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
        return "created"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

os.makedirs("/tmp/m", exist_ok=True)
st = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in open("/proc/self/status")}
print(json.dumps({
    "mount": libc.mount(b"none", b"/tmp/m", b"tmpfs", 0, None) == 0 or errno.errorcode[ctypes.get_errno()],
    "clone_newpid_newns": call(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0),
    "clone_newuser": call(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
    "clone_newuser_newpid": call(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0),
    "clone_newnet": call(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0),
    "unshare_newns": call(SYS_unshare, CLONE_NEWNS),
    "unshare_newuser": call(SYS_unshare, CLONE_NEWUSER),
    "setns": call(SYS_setns, 0, 0),
    "seccomp": st["Seccomp"], "nnp": st["NoNewPrivs"], "capeff": st["CapEff"],
    "capbnd": st["CapBnd"], "uid": st["Uid"].split()[0],
}))
'''


def test_commands_cannot_use_what_the_agent_may(ctx):
    sid = new_id()
    for session in ("default", NO_SESSION):
        status, res = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                               {"command": "python3 -c \"$P\"", "env": {"P": PROBE},
                                "sessionId": session})
        assert status == 200 and res["exitCode"] == 0, res
        got = json.loads(res["stdout"])
        assert got["mount"] == "EPERM", got
        for k in ("clone_newpid_newns", "clone_newuser", "clone_newuser_newpid", "clone_newnet",
                  "unshare_newns", "unshare_newuser", "setns"):
            assert got[k] == "EPERM", (k, got)
        assert got["seccomp"] == "2" and got["nnp"] == "1", got
        assert int(got["capeff"], 16) == 0 and int(got["capbnd"], 16) == 0, got
        assert got["uid"] == "1000", got
    delete_sandbox(ctx, sid)
