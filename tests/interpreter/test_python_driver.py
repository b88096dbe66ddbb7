"""The Python code-interpreter driver (drivers/python/sbx_driver.py), run as
sandboxd will run it: python3 -u -c "<source>", fd 0 /dev/null, fd 1/2 pipes
for the cell's raw output, fd 3 events out (NDJSON), fd 4 requests in, cwd
and HOME a scratch directory.  No sandboxd involved: `ctx` is ignored.

The harness reads fd 1/2/3 together with poll() and a deadline, and drains
fd 1/2 before it reads fd 3, as the C parent will, so a result's place in the
output is checked.  Every event line must be a JSON object; nothing waits a
fixed time: a cell that must be running is known to be by what it printed."""
import atexit
import base64
import fcntl
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "drivers", "python", "sbx_driver.py")
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
MAX_LINE = 64 * 1024 * 1024
_home = []


def _scratch():
    """One HOME/cwd for the file's drivers (matplotlib's font cache is built once)."""
    if not _home:
        d = tempfile.mkdtemp(prefix="sbx-driver-test-")
        atexit.register(shutil.rmtree, d, True)
        _home.append(d)
    return _home[0]


class Exec:
    def __init__(self):
        self.results = []
        self.error = None
        self.end = None
        self.stdout = ""
        self.stderr = ""
        self.marks = []          # (event, stdout text read before the event)

    @property
    def main(self):
        mains = [r for r in self.results if r["main"]]
        assert len(mains) <= 1, self.results
        return mains[0] if mains else None

    @property
    def text(self):
        return self.main["data"]["text/plain"] if self.main else None

    def ok(self):
        assert self.error is None, "\n".join(self.error["traceback"]) + "\nstderr: " + self.stderr
        return self


class Driver:
    """One driver process and the parent's ends of its five fds."""

    def __init__(self):
        with open(DRIVER, encoding="ascii") as f:
            src = f.read()
        home = _scratch()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "module://sbx_mpl", "HOME": home,
               "LANG": "C.UTF-8"}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ev_r, ev_w = os.pipe()
        req_r, req_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # The child's ends first go above 100, so no dup2 below clobbers another source.
        src_fds = []
        for fd in (devnull, out_w, err_w, ev_w, req_r):
            src_fds.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100))
            os.close(fd)
        # posix_spawn's dup2 actions put the pipes at exactly 0-4, as the C parent
        # will (Popen's pass_fds keeps fd numbers: it cannot move a pipe to 3/4
        # without preexec_fn); env -C gives the cwd, which posix_spawn cannot.
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(src_fds)]
        argv = ["/usr/bin/env", "-C", home, PYTHON, "-u", "-c", src]
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            for fd in src_fds:
                os.close(fd)
        self.pidfd = os.pidfd_open(self.pid)
        self.status = None
        self.out_fd, self.err_fd, self.ev_fd, self.req_fd = out_r, err_r, ev_r, req_w
        for fd in (out_r, err_r, ev_r):
            os.set_blocking(fd, False)
        self.out, self.err, self.evbuf = bytearray(), bytearray(), bytearray()
        self.eof = set()
        self.events = []
        self.next_id = 1
        try:
            self.ready = self.next_event(15)
            assert self.ready == {"type": "ready", "language": "python", "pid": self.pid}, self.ready
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    # -- reading ------------------------------------------------------------

    def _drain(self, fd, buf):
        while fd not in self.eof:
            try:
                b = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            if not b:
                self.eof.add(fd)
                return
            buf += b

    def _pump(self, timeout):
        """Waits up to timeout for any fd; fd 1/2 are drained before fd 3 is read."""
        fds = [fd for fd in (self.out_fd, self.err_fd, self.ev_fd) if fd not in self.eof]
        if not fds:
            return
        p = select.poll()
        for fd in fds:
            p.register(fd, select.POLLIN)
        ready = {fd for fd, _ in p.poll(max(0, timeout) * 1000)}
        if self.ev_fd in ready:
            self._drain(self.out_fd, self.out)
            self._drain(self.err_fd, self.err)
            try:
                b = os.read(self.ev_fd, 1 << 20)
                if b:
                    self.evbuf += b
                else:
                    self.eof.add(self.ev_fd)
            except BlockingIOError:
                pass
        if self.out_fd in ready:
            self._drain(self.out_fd, self.out)
        if self.err_fd in ready:
            self._drain(self.err_fd, self.err)

    def tail(self):
        return "\n--- driver stdout (tail) ---\n%s\n--- driver stderr (tail) ---\n%s" % (
            self.out[-1500:].decode(errors="replace"), self.err[-3000:].decode(errors="replace"))

    def next_event(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            nl = self.evbuf.find(b"\n")
            if nl >= 0:
                line = bytes(self.evbuf[:nl])
                del self.evbuf[:nl + 1]
                assert len(line) + 1 < MAX_LINE, "event line of %d bytes" % len(line)
                try:
                    ev = json.loads(line.decode("utf-8"))
                except ValueError:
                    raise AssertionError("event line is not JSON: %r" % line[:300] + self.tail())
                assert isinstance(ev, dict) and isinstance(ev.get("type"), str), ev
                self.events.append((ev, len(self.out)))
                return ev
            if self.ev_fd in self.eof:
                raise AssertionError("the driver closed its event fd (exit %r)" % self.wait(5) + self.tail())
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no event within %ss" % timeout + self.tail())
            self._pump(left)

    def wait_output(self, needle, since=0, timeout=10, stream="out"):
        """Waits until `needle` shows in stdout (or stderr) after offset `since`."""
        buf = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        while needle.encode() not in buf[since:]:
            left = deadline - time.monotonic()
            assert left > 0, "%r not printed within %ss" % (needle, timeout) + self.tail()
            self._pump(left)

    # -- writing ------------------------------------------------------------

    def send(self, obj):
        self.send_raw((json.dumps(obj) + "\n").encode())

    def send_raw(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.req_fd, view):]

    def start(self, code):
        rid = self.next_id
        self.next_id += 1
        self.send({"type": "execute", "id": rid, "code": code})
        return rid, len(self.out), len(self.err)

    def collect(self, started, timeout=20):
        """The events of one execution, checked: results, at most one error, end."""
        rid, o0, e0 = started
        ex = Exec()
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(max(0.01, deadline - time.monotonic()))
            assert ev.get("id") == rid, ("event of another execution", rid, ev)
            assert ex.end is None
            if ev["type"] == "result":
                assert ex.error is None, ("result after the error", ev)
                assert isinstance(ev["main"], bool) and isinstance(ev["data"], dict), ev
                assert isinstance(ev["metadata"], dict), ev
                ex.results.append(ev)
            elif ev["type"] == "error":
                assert ex.error is None, ("two errors", ev)
                assert isinstance(ev["name"], str) and isinstance(ev["value"], str), ev
                assert isinstance(ev["traceback"], list) and all(isinstance(x, str) for x in ev["traceback"]), ev
                ex.error = ev
            elif ev["type"] == "end":
                assert isinstance(ev["execution_count"], int), ev
                ex.end = ev
                ex.stdout = self.out[o0:].decode()
                ex.stderr = self.err[e0:].decode()
                for e, at in self.events[-(len(ex.results) + (ex.error is not None) + 1):]:
                    ex.marks.append((e, self.out[o0:at].decode()))
                return ex
            else:
                raise AssertionError("unexpected event during an execution: %r" % ev)

    def run(self, code, timeout=20):
        return self.collect(self.start(code), timeout)

    def ok(self, code, timeout=20):
        return self.run(code, timeout).ok()

    def value(self, code):
        """The text/plain of the cell's main result."""
        ex = self.ok(code)
        assert ex.main is not None, ("no main result", code, ex.results, ex.stdout, ex.stderr)
        return ex.text

    def ping(self):
        self.send({"type": "ping"})
        ev = self.next_event()
        assert ev == {"type": "pong"}, ev

    # -- end ------------------------------------------------------------------

    def wait(self, timeout):
        if self.status is None:
            p = select.poll()
            p.register(self.pidfd, select.POLLIN)
            if not p.poll(timeout * 1000):
                return None
            _, st = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def close(self, timeout=10):
        """EOF on fd 4 -> the driver exits; returns its exit code."""
        if self.req_fd >= 0:
            os.close(self.req_fd)
            self.req_fd = -1
        return self.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(0)
        if self.wait(5 if exc[0] is None else 0) is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait(10)
        for fd in (self.out_fd, self.err_fd, self.ev_fd, self.pidfd):
            os.close(fd)
        return False


def _tb(ex):
    return "\n".join(ex.error["traceback"])


def _png(b64):
    png = base64.b64decode(b64, validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n", png[:16]
    assert png[12:16] == b"IHDR", png[:32]
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# ---------------------------------------------------------------------------


def test_driver_source_fits_one_argv_string(ctx):
    with open(DRIVER, "rb") as f:
        src = f.read()
    assert len(src) < 100 * 1024, "Linux limits one argv string to 128 KiB; the driver is %d bytes" % len(src)
    assert all(b < 128 for b in src) and b"\0" not in src, "the driver source must be plain ASCII"
    compile(src, "sbx_driver.py", "exec")


def test_ready_ping_protocol_errors_and_exit_on_eof(ctx):
    with Driver() as d:
        d.ping()
        d.send({"type": "ping", "id": 7})
        assert d.next_event() == {"type": "pong", "id": 7}
        d.send_raw(b"this is not json\n")
        ev = d.next_event()
        assert ev["type"] == "protocol_error" and "JSON" in ev["message"], ev
        d.send({"type": "frobnicate"})
        ev = d.next_event()
        assert ev["type"] == "protocol_error" and "frobnicate" in ev["message"], ev
        d.send_raw(b"\n  \n")                   # blank lines are ignored
        d.send({"type": "execute", "id": "x", "code": 5})
        ex = d.collect(("x", len(d.out), len(d.err)))
        assert ex.error["name"] == "TypeError" and ex.end["execution_count"] == 1, ex.error
        assert d.value("40 + 2") == "42"
        assert d.close() == 0, "the driver must exit 0 on EOF of its request fd" + d.tail()
        assert d.out == b"" and d.err == b"", "nothing of the protocol on fd 1/2" + d.tail()


def test_state_persists_and_execution_count(ctx):
    with Driver() as d:
        ex = d.ok("x = 20\ndef f(a):\n    return a + x\nimport math")
        assert ex.results == [] and ex.end["execution_count"] == 1, ex.results
        assert d.value("x += 1\nf(1)") == "22"
        assert d.value("math.floor(2.5)") == "2"
        ex = d.run("1/0")
        assert ex.error["name"] == "ZeroDivisionError"
        ex = d.ok("x")
        assert ex.text == "21" and ex.end["execution_count"] == 5, ex.end
        # user classes live in __main__, so pickle finds them
        assert d.value("class P:\n    pass\nimport pickle\ntype(pickle.loads(pickle.dumps(P()))).__name__") == "'P'"


def test_last_expression_semicolon_and_underscore(ctx):
    with Driver() as d:
        assert d.value("6 * 7") == "42"
        assert d.value("_ + 1") == "43"
        for code in ("1 + 1;", "1 + 1;  # a comment", "1 + 1 ;\n\n# trailing comment\n", "x = 3; x;"):
            ex = d.ok(code)
            assert ex.results == [], (code, ex.results)
        assert d.value("_") == "43", "a suppressed value does not replace _"
        assert d.value("x = 3; x") == "3"
        assert d.value("'a;'") == "'a;'"
        assert d.value("1 + 1  # ;") == "2"
        assert d.value("if True:\n    y = 5\ny") == "5"
        assert d.ok("y = 6").results == [], "an assignment has no value"
        assert d.ok("None").results == [], "None is not shown"
        assert d.ok("print('hi')").results == []
        assert d.ok("").results == [] and d.ok("# only a comment").results == []
        big = d.value("{'k%d' % i: list(range(3)) for i in range(12)}")
        assert big.count("\n") >= 11 and big.startswith("{'k0': [0, 1, 2],"), big


def test_output_order_and_streams(ctx):
    with Driver() as d:
        ex = d.ok("print('a')\n1 + 1")
        assert ex.stdout == "a\n" and ex.text == "2"
        (res, before), (end, _) = ex.marks
        assert res["type"] == "result" and before == "a\n", ("stdout must reach the parent before the result", ex.marks)
        ex = d.ok("print('one')\ndisplay(1)\nprint('two')\ndisplay(2)\nprint('three')")
        assert [r["data"]["text/plain"] for r in ex.results] == ["1", "2"] and not any(r["main"] for r in ex.results)
        assert ex.marks[0][1].startswith("one\n") and ex.marks[1][1].startswith("one\ntwo\n"), ex.marks
        assert ex.marks[2][1] == "one\ntwo\nthree\n", "everything printed is there before end"
        ex = d.ok("import os, subprocess, sys\nos.write(1, b'raw\\n')\nsubprocess.run(['echo', 'sub'])\n"
                  "print('err', file=sys.stderr)\nos.write(2, b'raw2\\n')\n"
                  "subprocess.run(['sh', '-c', 'echo sherr >&2'])\nNone")
        assert ex.stdout == "raw\nsub\n", ex.stdout
        assert ex.stderr == "err\nraw2\nsherr\n", ex.stderr
        ex = d.ok("import ctypes\nlibc = ctypes.CDLL(None)\nlibc.printf(b'from C\\n')\n'after'")
        assert ex.marks[0][1] == "from C\n", ("C stdio is flushed before the result", ex.marks)


def test_many_lines_of_output(ctx):
    with Driver() as d:
        ex = d.ok("for i in range(1000):\n    print(i)")
        assert ex.stdout == "".join("%d\n" % i for i in range(1000))
        ex = d.ok("import sys\nsys.stdout.write('x' * 3_000_000)\nsys.stderr.write('y' * 200_000)\nlen('z')")
        assert ex.stdout == "x" * 3_000_000 and ex.stderr == "y" * 200_000 and ex.text == "1"


def test_runtime_error_traceback_has_cell_lines(ctx):
    with Driver() as d:
        d.ok("def f(a):\n    b = a * 2\n    return b / 0\n")
        ex = d.run("x = 1\nf(x)\nx = 2")
        assert ex.error["name"] == "ZeroDivisionError" and ex.error["value"] == "division by zero", ex.error
        tb = _tb(ex)
        assert tb.startswith("Traceback (most recent call last):"), tb
        assert 'File "<cell-2>", line 2, in <module>' in tb and "    f(x)" in tb, tb
        assert 'File "<cell-1>", line 3, in f' in tb and "    return b / 0" in tb, tb
        assert tb.rstrip().endswith("ZeroDivisionError: division by zero"), tb
        assert "<string>" not in tb and "sbx_driver" not in tb and "_run" not in tb, "driver frames leaked:\n" + tb
        assert d.value("x") == "1", "state up to the failing line is kept"
        ex = d.run("class E(Exception):\n    pass\n\nraise E('custom')")
        assert ex.error["name"] == "E" and ex.error["value"] == "custom"
        assert 'File "<cell-4>", line 4, in <module>' in _tb(ex), _tb(ex)
        ex = d.run("import json\njson.loads('{')")
        assert ex.error["name"] == "JSONDecodeError" and "json/decoder.py" in _tb(ex), _tb(ex)
        ex = d.run("import sys\nsys.exit(3)")
        assert ex.error["name"] == "SystemExit" and ex.error["value"] == "3", ex.error
        d.ping()
        ex = d.run("def r():\n    return r()\nr()")
        assert ex.error["name"] == "RecursionError", ex.error
        assert d.value("'alive'") == "'alive'"


def test_syntax_error(ctx):
    with Driver() as d:
        d.ok("a = 1")
        ex = d.run("b = 2\nc = (3 +* 4)\nd = 5")
        assert ex.error["name"] == "SyntaxError", ex.error
        tb = _tb(ex)
        assert 'File "<cell-2>", line 2' in tb and "c = (3 +* 4)" in tb, tb
        assert "Traceback" not in tb and "ast.py" not in tb and "<string>" not in tb, tb
        assert ex.end["execution_count"] == 2
        assert d.value("'b' in globals(), a") == "(False, 1)", "nothing of a cell that does not compile runs"
        ex = d.run("if True:\nprint(1)")
        assert ex.error["name"] == "IndentationError", ex.error
        ex = d.run("x = 'a\0b'\n")
        assert ex.error is not None and "Traceback" not in _tb(ex), ex.error
        ex = d.run("compile('1 +', 'inner', 'exec')")   # raised at run time: a full traceback
        assert ex.error["name"] == "SyntaxError" and 'File "<cell-6>", line 1' in _tb(ex), _tb(ex)
        assert d.value("a") == "1"


def test_interrupt_keeps_state(ctx):
    with Driver() as d:
        for loop in ("while True:\n    pass", "import time\nwhile True:\n    time.sleep(30)"):
            started = d.start("x = 21\nprint('started', flush=True)\n" + loop + "\nx = 0")
            d.wait_output("started", since=started[1])
            t0 = time.monotonic()
            os.kill(d.pid, signal.SIGINT)
            ex = d.collect(started, timeout=10)
            assert time.monotonic() - t0 < 5
            assert ex.error["name"] == "KeyboardInterrupt", ex.error
            tb = _tb(ex)
            assert re.search(r'File "<cell-\d+>", line [2-5], in <module>', tb) and "<string>" not in tb, tb
            assert d.value("x") == "21", "state set before the loop survives"
        # "started" is printed by a loop callback, once the cell waits in its await
        started = d.start("import asyncio\nloop = asyncio.get_running_loop()\n"
                          "loop.call_soon(lambda: print('started', flush=True))\nawait asyncio.sleep(30)\n'not reached'")
        d.wait_output("started", since=started[1])
        os.kill(d.pid, signal.SIGINT)
        ex = d.collect(started, timeout=10)
        assert ex.error["name"] == "KeyboardInterrupt", ex.error
        assert re.search(r'File "<cell-\d+>", line (4, in <module>\n    await asyncio.sleep\(30\)|3, in <lambda>)',
                         _tb(ex)), _tb(ex)
        assert "base_events" not in _tb(ex), _tb(ex)
        assert d.value("await asyncio.sleep(0, 'loop still usable')") == "'loop still usable'"


def test_sigint_outside_user_code_is_absorbed(ctx):
    with Driver() as d:
        for _ in range(5):                      # idle driver
            os.kill(d.pid, signal.SIGINT)
        d.ping()
        assert d.value("y = 1\ny") == "1"
        # SIGINTs while the driver writes many events: every line stays whole,
        # the cell is interrupted or finishes, the driver lives on.
        started = d.start("for i in range(3000):\n    display(i)\n'done'")
        ex, n = Exec(), 0
        while ex.end is None:
            ev = d.next_event(20)
            assert ev["id"] == started[0], ev
            n += 1
            if n % 25 == 0:
                os.kill(d.pid, signal.SIGINT)
            if ev["type"] == "error":
                ex.error = ev
            elif ev["type"] == "end":
                ex.end = ev
        assert ex.error is None or ex.error["name"] == "KeyboardInterrupt", ex.error
        for _ in range(5):
            os.kill(d.pid, signal.SIGINT)
        d.ping()
        assert d.value("y + 1") == "2"
        # one SIGINT after every event of 300 short cells: they land in user
        # code, between cells and while events are written; each cell still
        # ends once, with a result or a KeyboardInterrupt.
        for i in range(300):
            started = d.start("z = %d\nprint('p')\ndisplay(z)\n[z]" % i)
            while True:
                ev = d.next_event(10)
                os.kill(d.pid, signal.SIGINT)
                assert ev["id"] == started[0] and ev["type"] in ("result", "error", "end"), ev
                if ev["type"] == "error":
                    assert ev["name"] == "KeyboardInterrupt", ev
                if ev["type"] == "end":
                    break
        d.ping()
        assert d.value("z >= 0") == "True"


def test_stdin_never_hangs(ctx):
    with Driver() as d:
        t0 = time.monotonic()
        ex = d.run("name = input('your name? ')")
        assert ex.error["name"] == "EOFError" and "stdin" in ex.error["value"], ex.error
        assert 'File "<cell-1>", line 1' in _tb(ex) and "<string>" not in _tb(ex), _tb(ex)
        assert d.value("import sys\nsys.stdin.read(), sys.stdin.readline()") == "('', '')"
        assert d.value("import subprocess\nsubprocess.run(['cat'], capture_output=True).stdout") == "b''"
        assert time.monotonic() - t0 < 5


def test_top_level_await(ctx):
    with Driver() as d:
        assert d.value("import asyncio\nawait asyncio.sleep(0.01)\n42") == "42"
        assert d.value("async def f(v):\n    await asyncio.sleep(0)\n    return v * 2\nawait f(4)") == "8"
        d.ok("t = asyncio.get_event_loop().create_task(asyncio.sleep(0, 'from an earlier cell'))")
        assert d.value("await t") == "'from an earlier cell'", "one persistent loop"
        assert d.value("await asyncio.gather(f(1), f(2))") == "[2, 4]"
        assert d.value("asyncio.run(f(5))") == "10", "asyncio.run in a cell without await"
        assert d.value("await f(6)") == "12", "the loop survives asyncio.run"
        ex = d.run("async def g():\n    await asyncio.sleep(0)\n    raise ValueError('boom')\n\nawait g()")
        assert ex.error["name"] == "ValueError", ex.error
        tb = _tb(ex)
        assert 'File "<cell-8>", line 5, in <module>' in tb and 'File "<cell-8>", line 3, in g' in tb, tb
        assert "asyncio" not in tb and "<string>" not in tb, tb


def test_protocol_fds_are_out_of_reach(ctx):
    with Driver() as d:
        ex = d.ok("import os\nres = []\nfor fd in (3, 4):\n    try:\n        os.fstat(fd)\n"
                  "        res.append('open')\n    except OSError as e:\n        res.append(e.errno)\nres")
        assert ex.text == "[9, 9]", "fd 3 and 4 are closed in the driver: %s" % ex.text
        ex = d.run("import os\nos.read(4, 100)")
        assert ex.error["name"] == "OSError" and "Bad file descriptor" in ex.error["value"], ex.error
        ex = d.run("os.write(3, b'{\"type\":\"end\",\"id\":1}\\ngarbage\\n')")
        assert ex.error["name"] == "OSError", ex.error
        # a subprocess inherits neither protocol pipe (even with close_fds=False)
        child = ("import os\nfds = [int(f) for f in os.listdir('/proc/self/fd')]\n"
                 "print(sorted(os.stat('/proc/self/fd/%d' % fd).st_ino for fd in fds"
                 " if os.path.exists('/proc/self/fd/%d' % fd)))")
        ex = d.ok("import subprocess, sys\nr = subprocess.run([sys.executable, '-c', %r], close_fds=False,"
                  " capture_output=True, text=True)\nseen = eval(r.stdout)\n"
                  "[ino for ino in (os.fstat(1020).st_ino, os.fstat(1021).st_ino) if ino in seen], len(seen) >= 3" % child)
        assert ex.text == "([], True)", ex.text
        assert d.value("import fcntl\nfds = [int(f) for f in os.listdir('/proc/self/fd')]\n"
                       "[(fd, fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for fd in fds if fd >= 1000]") \
            == "[(1020, 1), (1021, 1)]"
        d.ping()


def test_closing_stdout_does_not_hurt_the_driver(ctx):
    with Driver() as d:
        ex = d.run("import os\nos.close(1)\nprint('lost')")
        assert ex.error is not None and ex.error["name"] == "OSError", ex.error
        assert d.value("f = open('f.txt', 'w')\nf.fileno() > 2") == "True", "fd 1 is not reused by open()"
        assert d.ok("print('to /dev/null now')\nos.write(1, b'x')").results[0]["data"]["text/plain"] == "1"
        d.ping()


def test_fork_child_leaves_quietly(ctx):
    with Driver() as d:
        ex = d.ok("import os\npid = os.fork()\nif pid == 0:\n    print('child', flush=True)\n    display('from child')\n"
                  "else:\n    os.waitpid(pid, 0)\n    print('parent')\npid > 0")
        assert ex.stdout == "child\nparent\n" and [r["data"]["text/plain"] for r in ex.results] == ["True"], ex.results
        d.ping()
        assert d.value("1") == "1"


def test_rich_reprs(ctx):
    with Driver() as d:
        d.ok("""
class H:
    def _repr_html_(self):
        return '<b>bold</b>'
    def __repr__(self):
        return 'H()'

class J:
    def _repr_json_(self):
        return {'a': [1, 2, {'b': None}]}

class Many:
    def _repr_markdown_(self):
        return '# title', {'note': 'md meta'}
    def _repr_svg_(self):
        return b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    def _repr_png_(self):
        return b'\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR\\x00\\x00\\x00\\x03\\x00\\x00\\x00\\x02rest'
    def _repr_latex_(self):
        return r'$x^2$'
    def _repr_javascript_(self):
        return 'console.log(1)'
    def _repr_pdf_(self):
        return b'%PDF-1.4'
    def _repr_jpeg_(self):
        return None

class B:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return {'text/plain': 'bundle text', 'application/vnd.custom+json': {'k': 1}, 'text/html': '<i>i</i>'}, {'text/html': {'isolated': True}}
    def _repr_html_(self):
        return 'not used: the bundle wins'

class Liar:
    def __getattr__(self, name):
        return lambda *a, **k: 'liar'
    def __repr__(self):
        return 'Liar()'
""")
        ex = d.ok("H()")
        assert ex.main["data"] == {"text/html": "<b>bold</b>", "text/plain": "H()"}, ex.main
        ex = d.ok("J()")
        assert ex.main["data"]["application/json"] == {"a": [1, 2, {"b": None}]}, ex.main
        assert ex.main["data"]["text/plain"].startswith("<__main__.J object at"), ex.main
        data = d.ok("Many()").main["data"]
        md = d.events[-2][0]["metadata"]
        assert data["text/markdown"] == "# title" and md["text/markdown"] == {"note": "md meta"}, (data, md)
        assert data["image/svg+xml"] == '<svg xmlns="http://www.w3.org/2000/svg"/>'
        assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG") and md["image/png"] == {"width": 3, "height": 2}
        assert data["text/latex"] == "$x^2$" and data["application/javascript"] == "console.log(1)"
        assert base64.b64decode(data["application/pdf"]) == b"%PDF-1.4" and "image/jpeg" not in data
        ex = d.ok("B()")
        assert ex.main["data"] == {"text/plain": "bundle text", "application/vnd.custom+json": {"k": 1},
                                   "text/html": "<i>i</i>"}, ex.main
        assert ex.main["metadata"] == {"text/html": {"isolated": True}}, ex.main
        assert d.ok("Liar()").main["data"] == {"text/plain": "Liar()"}, "objects that fake every attribute"
        assert d.ok("H").main["data"].keys() == {"text/plain"}, "a class is not rendered with its methods"
        # JSON for clean dicts/lists only
        ex = d.ok("{'a': [1, 2.5, 'x', None, True]}")
        assert ex.main["data"]["application/json"] == {"a": [1, 2.5, "x", None, True]}
        for code in ("{1: 'int key'}", "[float('nan')]", "[(1, 2)]", "[object()]", "{'a': {1, 2}}"):
            assert "application/json" not in d.ok(code).main["data"], code
        # display(): several objects, raw bundles, metadata, include/exclude
        ex = d.ok("display(H(), 'text', raw=False)\ndisplay({'text/html': '<p>raw</p>', 'image/png': b'\\x89PNG'}, raw=True)\n"
                  "display(H(), metadata={'tag': 1}, exclude=['text/html'])")
        r = ex.results
        assert len(r) == 4 and not any(x["main"] for x in r), r
        assert r[0]["data"]["text/html"] == "<b>bold</b>" and r[1]["data"] == {"text/plain": "'text'"}
        assert r[2]["data"] == {"text/html": "<p>raw</p>", "image/png": base64.b64encode(b"\x89PNG").decode()}
        assert r[3]["data"] == {"text/plain": "H()"} and r[3]["metadata"] == {"tag": 1}, r[3]
        ex = d.ok("'\\udcff lone surrogate' + chr(0x1F600)")
        assert ex.text == "'\\udcff lone surrogate\U0001F600'", ex.text


def test_formatter_errors_do_not_kill_the_driver(ctx):
    with Driver() as d:
        d.ok("class BadHtml:\n    def _repr_html_(self):\n        raise ValueError('html broke')\n"
             "    def __repr__(self):\n        return 'BadHtml()'\n"
             "class BadRepr:\n    def __repr__(self):\n        raise RuntimeError('repr broke')\n"
             "class BadBundle:\n    def _repr_mimebundle_(self, **kw):\n        return {'image/png': 12}\n"
             "class NaNJson:\n    def _repr_json_(self):\n        return {'x': float('nan')}\n")
        ex = d.ok("BadHtml()")
        assert ex.main["data"] == {"text/plain": "BadHtml()"}, ex.main
        assert "ValueError: html broke" in ex.stderr and "_repr_html_" in ex.stderr, ex.stderr
        assert 'File "<cell-1>", line 3, in _repr_html_' in ex.stderr and "<string>" not in ex.stderr, ex.stderr
        ex = d.run("BadRepr()")
        assert ex.error["name"] == "RuntimeError" and ex.error["value"] == "repr broke", ex.error
        assert 'line 8, in __repr__' in _tb(ex) and "<string>" not in _tb(ex), _tb(ex)
        ex = d.run("display(BadRepr())")
        assert ex.error["name"] == "RuntimeError" and 'File "<cell-4>", line 1' in _tb(ex), _tb(ex)
        ex = d.ok("BadBundle()")
        assert "image/png" not in ex.main["data"] and "TypeError" in ex.stderr, (ex.main, ex.stderr)
        ex = d.ok("NaNJson()")
        assert "application/json" not in ex.main["data"], ex.main
        ex = d.run("display({'text/html': 1}, raw=5)\ndisplay(1, raw=True)")
        assert ex.error["name"] == "TypeError", ex.error
        d.ping()
        assert d.value("'still here'") == "'still here'"


def test_nothing_heavy_for_one_plus_one(ctx):
    with Driver() as d:
        assert d.value("1 + 1") == "2"
        assert d.value("import sys\nsorted(m for m in ('matplotlib', 'pandas', 'numpy', 'asyncio', 'IPython') "
                       "if m in sys.modules)") == "[]"


def test_matplotlib_figures_as_png(ctx):
    with Driver() as d:
        ex = d.ok("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 1, 9])\nplt.title('t')\nplt.show()\n"
                  "print('after show', len(plt.get_fignums()))")
        assert len(ex.results) == 1 and not ex.results[0]["main"], ex.results
        data, md = ex.results[0]["data"], ex.results[0]["metadata"]
        w, h = _png(data["image/png"])
        assert 200 < w < 1000 and 200 < h < 800 and md["image/png"] == {"width": w, "height": h}, (w, h, md)
        assert data["text/plain"].startswith("<Figure size 640x480 with 1 Axes"), data["text/plain"]
        assert ex.stdout == "after show 0\n", ex.stdout
        assert "non-GUI" not in ex.stderr and "Warning" not in ex.stderr, ex.stderr
        # never shown: emitted after the main result, then closed
        ex = d.ok("fig, ax = plt.subplots(figsize=(4, 3))\nax.bar(['a', 'b'], [1, 2])")
        assert ex.results[0]["main"] and ex.text == "<BarContainer object of 2 artists>", ex.results
        assert len(ex.results) == 2 and not ex.results[1]["main"], ex.results
        w, h = _png(ex.results[1]["data"]["image/png"])
        assert 250 < w <= 400 and 200 < h <= 300, (w, h)
        assert d.value("plt.get_fignums()") == "[]"
        ex = d.ok("fig")                         # a closed figure still renders, once
        assert len(ex.results) == 1 and ex.text == "<Figure size 400x300 with 1 Axes>", ex.results
        _png(ex.main["data"]["image/png"])
        ex = d.ok("f2 = plt.figure()\nplt.plot([1])\ndisplay(f2)\nprint('x')")
        assert len(ex.results) == 1, "a displayed figure is not flushed again"
        assert d.ok("plt.figure()\nNone").results == [], "an empty figure is not shown"
        ex = d.ok("fig = plt.figure()\nfig.add_subplot().plot([1, 2])\nfig.show()")
        assert len(ex.results) == 1 and "image/png" in ex.results[0]["data"] and "Warning" not in ex.stderr
        ex = d.run("plt.plot([1, 2])\nraise ValueError('after plotting')")
        assert len(ex.results) == 1 and ex.error["name"] == "ValueError", "figures first, then the error"
        ex = d.run("plt.title('$\\\\notacommand$')\nplt.plot([1])\nNone")
        assert ex.error is None and ex.results == [] and "savefig" in ex.stderr, (ex.results, ex.stderr)
        assert d.value("import matplotlib\nmatplotlib.get_backend()") == "'module://sbx_mpl'"
        ex = d.ok("%matplotlib inline\nplt.plot([1, 2])\nNone")      # IPython's line magic is tolerated
        assert len(ex.results) == 1 and "image/png" in ex.results[0]["data"], ex.results
        # a child python does not inherit a backend it could not import
        ex = d.ok("import os, subprocess, sys\nprint(os.environ.get('MPLBACKEND'))\n"
                  "subprocess.run([sys.executable, '-c', 'import matplotlib.pyplot as plt; plt.plot([1]); "
                  "print(plt.get_backend())'], check=True)\nNone", timeout=60)
        assert ex.stdout == "None\nagg\n", ex.stdout + ex.stderr


def test_dataframe_as_html(ctx):
    with Driver() as d:
        ex = d.ok("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\ndf")
        data = ex.main["data"]
        assert "<table" in data["text/html"] and "<td>x</td>" in data["text/html"], data
        assert data["text/plain"].split() == ["a", "b", "0", "1", "x", "1", "2", "y"], data["text/plain"]
        ex = d.ok("df['a']")
        assert "text/html" not in ex.main["data"] and "Name: a" in ex.text, ex.main
        ex = d.ok("display(df.head(1))\npd.DataFrame({'a': [1, 2], 'c': [3, 4]}).plot(x='a', y='c')")
        assert "<table" in ex.results[0]["data"]["text/html"] and ex.results[1]["main"], ex.results
        assert len(ex.results) == 3 and "image/png" in ex.results[2]["data"], ex.results


def test_huge_result_is_cut_to_fit_one_line(ctx):
    with Driver() as d:
        ex = d.ok("display({'text/plain': 'small', 'text/html': 'h' * (65 << 20)}, raw=True)\n"
                  "s = 'y' * (66 << 20)\ns", timeout=60)
        r0, r1 = ex.results
        assert r0["data"] == {"text/plain": "small"} and r0["metadata"]["sbx/truncated"]["dropped"] == ["text/html"]
        assert r1["main"] and r1["data"]["text/plain"].startswith("'yyy") and len(r1["data"]["text/plain"]) < 2 << 20
        assert "truncated" in r1["data"]["text/plain"][-100:]
        d.ping()

