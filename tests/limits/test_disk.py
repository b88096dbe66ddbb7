"""The disk limit of a persistent sandbox: /workspace is a filesystem of its
own, as large as workspace_mb, so filling it fails writes with ENOSPC inside
the sandbox (and NO_SPACE through the file API) and never fills the host; the
sandbox stays usable once it frees space, a failed write through the API
leaves the file's old content whole, and another sandbox does not notice.
Runs its own sandboxd with a 16 MiB workspace."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import sandboxes  # noqa: E402
from stack import Stack  # noqa: E402
from context import Context  # noqa: E402
from sandboxes import delete_sandbox, new_id, sessionless  # noqa: E402

MIB = 1 << 20

# The commands of this test run outside any session.
execute = sessionless(sandboxes.execute)


def test_full_workspace_fails_inside_and_stays_usable(ctx):
    st = Stack(ctx.stack.build_dir, workers=2, uid_base=ctx.uid_base + 5 * ctx.uid_span, uid_slots=8,
               env={"SANDBOXD_WORKSPACE_MB": "16"})
    try:
        st.start()
        c = Context(st)
        a, b = new_id(), new_id()

        # From inside: the 17th MiB fails with ENOSPC, the host is not asked.
        res = execute(c, a, "head -c 40M /dev/zero > /workspace/big; echo rc=$?; df -k /workspace | tail -1")
        assert "No space left on device" in res["stderr"], res
        assert "rc=1" in res["stdout"], res
        size_kb = int(res["stdout"].splitlines()[-1].split()[1])
        assert 12 * 1024 <= size_kb <= 16 * 1024, f"/workspace is {size_kb} KiB: {res}"
        img = os.path.join(st.state_dir, "disks", a + ".img")
        assert os.stat(img).st_blocks * 512 <= 17 * MIB, os.stat(img)

        # Through the file API: NO_SPACE, and the old content stays whole.
        status, body = c.json("POST", f"/v1/sandboxes/{a}/api/write",
                              {"path": "more.txt", "content": "x" * MIB})
        assert status == 500 and body["code"] == "NO_SPACE", body
        assert execute(c, a, "rm /workspace/big && echo old > /workspace/keep.txt")["exitCode"] == 0
        status, _, data = c.request("PUT", f"/v1/sandboxes/{a}/files/keep.txt", os.urandom(20 * MIB))
        assert status == 500, (status, data[:300])
        status, _, data = c.request("GET", f"/v1/sandboxes/{a}/files/keep.txt")
        assert status == 200 and data == b"old\n", (status, data[:100])
        # Neither the failed file nor a temporary one is left behind.
        assert execute(c, a, "ls -A /workspace")["stdout"] == "keep.txt\n"

        # Space freed: usable again, up to the limit.
        res = execute(c, a, "head -c 8M /dev/urandom > /workspace/eight && wc -c < /workspace/eight")
        assert res["exitCode"] == 0 and res["stdout"] == f"{8 * MIB}\n", res

        # Another sandbox has a disk of its own.
        res = execute(c, b, "head -c 12M /dev/zero > /workspace/twelve && echo ok")
        assert res["stdout"] == "ok\n", res

        # Deleted: each disk goes with its sandbox.
        for sid in (a, b):
            delete_sandbox(c, sid)
        assert not os.path.exists(img), "the deleted sandbox's disk is still there"
        left = [n for n in os.listdir(os.path.join(st.state_dir, "disks"))
                if not n.startswith((".spare-", ".template-"))]
        assert left == [], left
    finally:
        assert st.stop() == 0
