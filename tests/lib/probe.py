"""Helpers of the suites that attack a real sandbox through POST /v1/run
(tests/security, tests/limits): running code and reading its result, checking
that the service recovered after an attack, and watching sandbox processes on
the host.

Nothing here sleeps to wait.  Processes that must exit are waited for on their
pidfds; processes that must appear, or do something, are seen through the
kernel's process events connector (ProcEvents): a fork, an exec, a uid change
and a prctl(PR_SET_NAME) are each an event.
"""
import errno
import json
import os
import select
import socket
import struct
import time


# ---------------------------------------------------------------------------
# Running code.

def short(body, limit=700):
    """A response body for an assertion message, long outputs cut in the middle."""
    if not isinstance(body, dict):
        return repr(body)[:limit]
    b = dict(body)
    for k in ("output", "errors"):
        if isinstance(b.get(k), str) and len(b[k]) > limit:
            b[k] = b[k][:200] + f"...<{len(b[k])} chars>..." + b[k][-limit:]
    return repr(b)


RESULT_KEYS = ("success", "output", "errors", "exitCode", "executionTime", "timedOut", "truncated", "oomKilled")


def run_code(ctx, code, language="python", timeout=5000):
    """One POST /v1/run that must be answered 200 with a complete result;
    returns (body, seconds the request took)."""
    t0 = time.monotonic()
    status, body = ctx.run(code, language=language, timeout=timeout)
    elapsed = time.monotonic() - t0
    assert status == 200 and isinstance(body, dict), f"POST /v1/run answered HTTP {status}: {short(body)}"
    for k in RESULT_KEYS:
        assert k in body, f"response lacks {k!r}: {short(body)}"
    return body, elapsed


def last_json(body, what):
    """The JSON object the program printed as the last line of its stdout."""
    lines = [ln for ln in (body.get("output") or "").splitlines() if ln.strip()]
    try:
        r = json.loads(lines[-1])
        if isinstance(r, dict):
            return r
    except (IndexError, ValueError):
        pass
    raise AssertionError(f"{what}: the program did not print its result line: {short(body)}")


# ---------------------------------------------------------------------------
# Sandbox processes on the host.

def uid_of(pid):
    """Real uid of a host process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def in_sandbox_range(ctx, uid):
    return uid is not None and ctx.uid_base <= uid < ctx.uid_base + ctx.uid_span


def scan_sandbox(ctx):
    """Non-waiting scan of the host's /proc: {pid: real uid} of the processes
    in the sandbox uid range (sandbox inits included)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            uid = uid_of(name)
            if in_sandbox_range(ctx, uid):
                out[int(name)] = uid
    return out


def describe_pids(pids):
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")[:120]
            out.append(f"pid {pid} [{st.get('Name')}, state {st.get('State')}, uid {st.get('Uid')}, "
                       f"ppid {st.get('PPid')}] {cmd}")
        except OSError:
            out.append(f"pid {pid} (gone)")
    return "; ".join(out[:20]) + (f"; ... {len(out)} in all" if len(out) > 20 else "")


def baseline(ctx):
    """Sandbox user processes on the host before an attack (normally none)."""
    return set(ctx.host_sandbox_pids())


def wait_exited(pids, deadline):
    """Waits on a pidfd each until every process of pids has exited, or until
    deadline (a time.monotonic() value)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:          # already gone
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)


def wait_no_new_sandbox_pids(ctx, base, when, limit=2.0):
    """Fails unless every sandbox user process that is not in base is gone
    within limit seconds (sandboxd tears a sandbox down before it answers;
    the kernel may take a moment to release a killed task)."""
    deadline = time.monotonic() + limit
    while True:
        left = sorted(set(ctx.stack.sandbox_pids()) - base)
        if not left:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{len(left)} sandbox processes still on the host {when}: {describe_pids(left)}")
        wait_exited(left, deadline)
        # An exited process stays in /proc until its parent (the sandbox's
        # init) reaps it, right after: let it run instead of spinning.
        os.sched_yield()


def check_recovered(ctx, base, what):
    """After an attack: no sandbox process of it is left on the host, GET
    /healthz is 200, and the next run prints 42 (and leaves nothing either)."""
    wait_no_new_sandbox_pids(ctx, base, f"after {what}")
    assert ctx.healthy(), f"GET /healthz is not 200 after {what}"
    status, body = ctx.run("print(42)")
    assert status == 200 and isinstance(body, dict) and body.get("output") == "42\n", (
        f"the next run after {what} failed: HTTP {status}, {short(body)}")
    wait_no_new_sandbox_pids(ctx, base, f"after the run that followed {what}")


# ---------------------------------------------------------------------------
# Process events.

def fd_ready(fd):
    """Whether fd is readable right now (e.g. an eventfd that was written)."""
    return bool(select.select([fd], [], [], 0)[0])


class ProcEvents:
    """The kernel's process events connector (netlink; root only): every fork,
    exec, uid change, name change and exit on the host, in order, as they
    happen.  Events are queued from subscription on, so none is missed
    between opening this and waiting; a queue overflow is counted in lost.

    read() gives (what, tgid, data) tuples: FORK (a new process, not a new
    thread: data["parent"]), EXEC, UID (data["ruid"], data["euid"], host uids),
    COMM (data["comm"]: the process named itself with prctl(PR_SET_NAME)) and
    EXIT (of a whole process)."""
    FORK, EXEC, UID, COMM, EXIT = 0x1, 0x2, 0x4, 0x200, 0x80000000
    _NETLINK_CONNECTOR = 11
    _CN_IDX_PROC, _CN_VAL_PROC = 1, 1
    _MCAST_LISTEN, _MCAST_IGNORE = 1, 2
    _SO_RCVBUFFORCE = 33

    def __init__(self, rcvbuf=8 << 20):
        self.lost = 0
        self._pending = []      # read, not yet handed out (wait_comm stops at its match)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self._NETLINK_CONNECTOR)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, self._SO_RCVBUFFORCE, rcvbuf)
            self.sock.bind((0, 1 << (self._CN_IDX_PROC - 1)))
            self._control(self._MCAST_LISTEN)
        except BaseException:
            self.sock.close()
            raise

    def _control(self, op):
        data = struct.pack("=I", op)
        cn = struct.pack("=IIIIHH", self._CN_IDX_PROC, self._CN_VAL_PROC, 0, 0, len(data), 0) + data
        self.sock.send(struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)    # NLMSG_DONE

    def close(self):
        if self.sock.fileno() >= 0:
            try:
                self._control(self._MCAST_IGNORE)
            except OSError:
                pass
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self, timeout=None, wake_fd=None):
        """The events queued so far, after waiting up to timeout seconds (None:
        without limit) for one to arrive or for wake_fd to become readable."""
        out, self._pending = self._pending, []
        if not out:
            fds = [self.sock] if wake_fd is None else [self.sock, wake_fd]
            select.select(fds, [], [], timeout)
        while True:
            try:
                buf = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.lost += 1
                continue
            out.extend(self._parse(buf))

    def _parse(self, buf):
        out = []
        off = 0
        while off + 16 <= len(buf):
            (length,) = struct.unpack_from("=I", buf, off)
            if length < 16:
                break
            msg = buf[off + 16:off + length]
            off += (length + 3) & ~3
            # cn_msg (20 bytes), then proc_event: what, cpu, timestamp, data.
            if len(msg) < 36 + 8 or struct.unpack_from("=I", msg, 0)[0] != self._CN_IDX_PROC:
                continue
            (what,) = struct.unpack_from("=I", msg, 20)
            d = 36
            if what == self.FORK and len(msg) >= d + 16:
                _, ptgid, cpid, ctgid = struct.unpack_from("=iiii", msg, d)
                if cpid == ctgid:
                    out.append((what, ctgid, {"parent": ptgid}))
            elif what == self.EXEC:
                _, tgid = struct.unpack_from("=ii", msg, d)
                out.append((what, tgid, {}))
            elif what == self.UID and len(msg) >= d + 16:
                _, tgid, ruid, euid = struct.unpack_from("=iiII", msg, d)
                out.append((what, tgid, {"ruid": ruid, "euid": euid}))
            elif what == self.COMM and len(msg) >= d + 24:
                _, tgid = struct.unpack_from("=ii", msg, d)
                comm = msg[d + 8:d + 24].split(b"\0", 1)[0].decode("utf-8", "replace")
                out.append((what, tgid, {"comm": comm}))
            elif what == self.EXIT:
                pid, tgid = struct.unpack_from("=ii", msg, d)
                if pid == tgid:
                    out.append((what, tgid, {}))
        return out

    def wait_comm(self, comm, deadline, wake_fd=None):
        """The pid of the first process that names itself comm, or None at the
        deadline (a time.monotonic() value) or once wake_fd is readable."""
        while True:
            left = deadline - time.monotonic()
            # Checked before draining: whatever happened before the wake-up
            # (or the deadline) is in this last drain.
            last = left <= 0 or (wake_fd is not None and fd_ready(wake_fd))
            events = self.read(0 if last else left, wake_fd)
            for i, (what, tgid, data) in enumerate(events):
                if what == self.COMM and data["comm"] == comm:
                    self._pending = events[i + 1:]
                    return tgid
            if last:
                return None
