"""No leaks: many create/exec/delete cycles of persistent sandboxes leave no
process, no file descriptor in the master, no table entry, no workspace, no
disk image, no mount, no loop device, no agent socket and no cgroup beyond
the per-slot ones that are kept by design."""
import os
import time
import uuid
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from sandboxes import mounts_under  # noqa: E402

CYCLES = 500


def _fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def _cgroups(ctx):
    """run-* cgroups under this instance's parent, in the pids hierarchy (v1)
    or the unified one (v2)."""
    out = set()
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        for dirpath, dirnames, _ in os.walk(root):
            if os.path.basename(dirpath).startswith("sandboxd-"):
                out.update(d for d in dirnames if d.startswith("run-"))
            if dirpath.count("/") > 8:
                dirnames[:] = []
    return out


def _loop_backing_files():
    out = []
    for dev in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{dev}/loop/backing_file") as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out


def test_create_exec_delete_cycles_leave_nothing(ctx):
    master = ctx.stack.sandboxd.pid
    status, lst = ctx.json("GET", "/v1/sandboxes")
    before_ids = {s["id"] for s in lst["sandboxes"]}
    fds_before = _fd_count(master)
    t0 = time.monotonic()
    for i in range(CYCLES):
        sid = f"leak-{uuid.uuid4().hex[:10]}"
        status, body = ctx.json("POST", f"/v1/sandboxes/{sid}/api/execute",
                                {"command": f"echo {i} > f; cat f"})
        assert status == 200 and body["stdout"] == f"{i}\n", (i, status, body)
        status, body = ctx.json("DELETE", f"/v1/sandboxes/{sid}")
        assert status == 200, body
    # Deletion finishes in the background (once the agent is reaped, its disk
    # is detached and unlinked); wait until the master has said so for every one.
    def leak_deleted():
        return sum(1 for line in ctx.stack.log_text().splitlines()
                   if "sandbox leak-" in line and line.endswith(" deleted"))

    deadline = time.monotonic() + 120
    while leak_deleted() < CYCLES:
        assert time.monotonic() < deadline, f"only {leak_deleted()} of {CYCLES} deleted"
        total = ctx.stack.log_text().count(" deleted\n")
        ctx.stack.wait_log(b" deleted\n", max(0.1, deadline - time.monotonic()), count=total + 1)
    assert leak_deleted() == CYCLES
    elapsed = time.monotonic() - t0

    status, lst = ctx.json("GET", "/v1/sandboxes")
    assert {s["id"] for s in lst["sandboxes"]} == before_ids, lst
    assert not ctx.host_sandbox_pids(), ctx.host_sandbox_pids()
    ws = os.listdir(os.path.join(ctx.state_dir, "workspaces"))
    assert not [w for w in ws if w.startswith("leak-")], ws
    disks = os.listdir(os.path.join(ctx.state_dir, "disks"))
    assert not [d for d in disks if d.startswith("leak-")], disks
    mounts = mounts_under(os.path.realpath(os.path.join(ctx.state_dir, "workspaces")))
    assert not [m for m in mounts if "/leak-" in m], mounts
    loops = [b for b in _loop_backing_files() if "/leak-" in b]
    assert not loops, loops
    socks = os.listdir(os.path.join(ctx.state_dir, "agents"))
    assert not socks or all(not s.startswith("leak") for s in socks), socks
    # The master's fds come back to where they were.
    assert _fd_count(master) <= fds_before, (fds_before, _fd_count(master))
    # Per-slot cgroups are kept and reused: bounded by the slots ever used at
    # once, not by the number of cycles.
    assert len(_cgroups(ctx)) <= ctx.stack.uid_slots, len(_cgroups(ctx))
    print(f"     {CYCLES} cycles in {elapsed:.1f} s")
