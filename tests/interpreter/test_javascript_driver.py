"""The JavaScript code-interpreter driver (drivers/javascript/sbx_driver.js),
run as sandboxd will run it: node -e "<source>", fd 0 /dev/null, fd 1/2 pipes
for the cell's raw output, fd 3 events out (NDJSON), fd 4 requests in, cwd
and HOME a scratch directory.  No sandboxd involved: `ctx` is ignored.

The harness (reading fd 1/2/3 with poll() and deadlines, fd 1/2 drained
before fd 3 is read, every event checked) is the Python driver test's: only
the process differs.  Nothing waits a fixed time: a cell that must be running
is known to be by what it printed."""
import fcntl
import importlib.util
import json
import os
import re
import signal
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_sbx_python_driver_harness",
                                               os.path.join(_HERE, "test_python_driver.py"))
harness = importlib.util.module_from_spec(_spec)      # its test_* stay out of this module's names
_spec.loader.exec_module(harness)

DRIVER = os.path.join(harness.ROOT, "drivers", "javascript", "sbx_driver.js")
NODE = "/usr/bin/node" if os.access("/usr/bin/node", os.X_OK) else "node"
_tb = harness._tb


class Driver(harness.Driver):
    """The harness's Driver, started as node -e "<sbx_driver.js>"."""

    def __init__(self):
        with open(DRIVER, encoding="ascii") as f:
            src = f.read()
        home = harness._scratch()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "LANG": "C.UTF-8"}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        ev_r, ev_w = os.pipe()
        req_r, req_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        src_fds = []
        for fd in (devnull, out_w, err_w, ev_w, req_r):
            src_fds.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100))
            os.close(fd)
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(src_fds)]
        argv = ["/usr/bin/env", "-C", home, NODE, "--experimental-vm-modules", "-e", src]
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            for fd in src_fds:
                os.close(fd)
        self.home = home
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
            assert self.ready == {"type": "ready", "language": "javascript", "pid": self.pid}, self.ready
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def interrupt_when(self, code, needle="started", timeout=10):
        """Starts code, waits for `needle` on stdout, sends SIGINT; the execution's events."""
        started = self.start(code)
        self.wait_output(needle, since=started[1])
        t0 = time.monotonic()
        os.kill(self.pid, signal.SIGINT)
        ex = self.collect(started, timeout=timeout)
        assert time.monotonic() - t0 < 5, "the interrupt took %.1fs" % (time.monotonic() - t0)
        return ex


def _texts(ex):
    return [r["data"]["text/plain"] for r in ex.results]


# ---------------------------------------------------------------------------


def test_js_driver_source_fits_one_argv_string(ctx):
    with open(DRIVER, "rb") as f:
        src = f.read()
    assert len(src) < 100 * 1024, "Linux limits one argv string to 128 KiB; the driver is %d bytes" % len(src)
    assert all(b < 128 for b in src) and b"\0" not in src, "the driver source must be plain ASCII"


def test_js_ready_ping_protocol_errors_and_exit_on_eof(ctx):
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
        d.send_raw(b"[1, 2]\n")
        assert d.next_event()["type"] == "protocol_error"
        d.send_raw(b"\n  \n")                   # blank lines are ignored
        d.send({"type": "execute", "id": "x", "code": 5})
        ex = d.collect(("x", len(d.out), len(d.err)))
        assert ex.error["name"] == "TypeError" and ex.end["execution_count"] == 1, ex.error
        assert d.value("40 + 2") == "42"
        # a request split over several writes, two requests in one write
        d.send_raw(b'{"type": "exe')
        d.send_raw(b'cute", "id": 50, "code": "6 * 7"}\n{"type": "ping", "id": 51}\n')
        ex = d.collect((50, len(d.out), len(d.err)))
        assert ex.text == "42" and d.next_event() == {"type": "pong", "id": 51}
        assert d.close() == 0, "the driver must exit 0 on EOF of its request fd" + d.tail()
        assert d.out == b"" and d.err == b"", "nothing of the protocol on fd 1/2" + d.tail()


def test_js_exit_on_eof_with_timers_pending_and_a_cell_queued(ctx):
    with Driver() as d:
        d.ok("setInterval(() => {}, 1000); undefined")
        started = d.start("let s = 0\nfor (let i = 0; i < 1e6; i++) s += i\ns")
        d.close(0)                               # EOF right behind the request: the cell still runs
        ex = d.collect(started)
        assert ex.text == "499999500000", ex.text
        assert d.wait(10) == 0, "exit 0 after the last request, timers or not" + d.tail()


def test_js_state_persists_and_execution_count(ctx):
    with Driver() as d:
        ex = d.ok("var x = 20\nfunction f(a) { return a + x }\nconst os = require('os')\nundefined")
        assert ex.results == [] and ex.end["execution_count"] == 1, ex.results
        assert d.value("x += 1\nf(1)") == "22"
        assert d.value("typeof os.cpus") == "'function'"
        ex = d.run("null.boom")
        assert ex.error["name"] == "TypeError"
        ex = d.ok("x")
        assert ex.text == "21" and ex.end["execution_count"] == 5, ex.end
        assert d.value("globalThis.x === x && global === globalThis") == "true"


def test_js_last_expression_values(ctx):
    with Driver() as d:
        assert d.value("6 * 7") == "42"
        assert d.value("'a' + 'b'") == "'ab'", "strings are shown as util.inspect shows them"
        assert d.value("let y = 3\ny * 2;") == "6", "a trailing ';' does not hide the value"
        assert d.value("y = 10") == "10", "an assignment's value (like Node's REPL)"
        for code in ("undefined", "let z = 1", "const c = 2, d = 3", "console.log('hi')", "", "// only a comment",
                     "function g() {}", "class K {}", "void 0"):
            ex = d.ok(code)
            assert ex.results == [], (code, ex.results)
        ex = d.ok("({a: [1, 2.5, 'x', null, true], b: {c: 'd'}})")
        assert ex.main["data"]["application/json"] == {"a": [1, 2.5, "x", None, True], "b": {"c": "d"}}, ex.main
        assert ex.text == "{ a: [ 1, 2.5, 'x', null, true ], b: { c: 'd' } }", ex.text
        ex = d.ok("{a: 1, b: 2}")
        assert ex.main["data"]["application/json"] == {"a": 1, "b": 2}, "a lone object literal is an object"
        ex = d.ok("[1, 2, 3].map(v => v * 2)")
        assert ex.main["data"] == {"text/plain": "[ 2, 4, 6 ]", "application/json": [2, 4, 6]}, ex.main
        assert d.ok("JSON.parse('[1, {\"k\": []}]')").main["data"]["application/json"] == [1, {"k": []}]
        assert d.ok("require('os').cpus().map(c => 1).slice(0, 1)").main["data"]["application/json"] == [1], \
            "arrays of the driver's realm are JSON too"
        for code in ("({u: undefined})", "[NaN]", "[1, , 3]", "new Map([[1, 2]])", "({d: new Date(0)})",
                     "({f() {}})", "[1n]", "new (class P {})()", "Object.create({inherited: 1})", "[-0]"):
            main = d.ok(code).main
            assert "application/json" not in main["data"], (code, main)
        deep = d.value("({l1: {l2: {l3: {l4: {l5: {l6: 1}}}}}})")
        assert "[Object]" in deep and "l5" in deep, deep
        assert d.value("Promise.resolve(5)") == "5", "a promise value is awaited"
        ex = d.run("Promise.reject(new RangeError('no'))")
        assert ex.error["name"] == "RangeError" and ex.error["value"] == "no", ex.error
        assert d.value("if (y > 5) { 'big' } else { 'small' }") == "'big'", "completion value of an if"
        assert d.value("'\\ud800 lone' + String.fromCodePoint(0x1F600)") == "'\\ud800 lone\U0001F600'"


def test_js_console_output_order_and_streams(ctx):
    with Driver() as d:
        ex = d.ok("console.log('a')\n1 + 1")
        assert ex.stdout == "a\n" and ex.text == "2"
        (res, before), (end, _) = ex.marks
        assert res["type"] == "result" and before == "a\n", ("stdout must reach the parent before the result", ex.marks)
        ex = d.ok("console.log('one')\ndisplay(1)\nconsole.log('two')\ndisplay({k: 2})\nconsole.log('three')")
        assert _texts(ex) == ["1", "{ k: 2 }"] and not any(r["main"] for r in ex.results), ex.results
        assert ex.results[1]["data"]["application/json"] == {"k": 2}
        assert ex.marks[0][1].startswith("one\n") and ex.marks[1][1].startswith("one\ntwo\n"), ex.marks
        assert ex.marks[2][1] == "one\ntwo\nthree\n", "everything printed is there before end"
        ex = d.ok("process.stdout.write('w1 ')\nconsole.info('info', {a: 1})\nconsole.error('e1')\n"
                  "process.stderr.write(Buffer.from('e2\\n'))\nconsole.warn('w', 2)\n"
                  "require('fs').writeSync(1, 'raw\\n')\nconsole.table([{a: 1}])\nundefined")
        assert ex.stdout.startswith("w1 info { a: 1 }\nraw\n") and "\u2502" in ex.stdout, ex.stdout
        assert ex.stderr == "e1\ne2\nw 2\n", ex.stderr
        # a big burst: every byte in order, before the value
        ex = d.ok("for (let i = 0; i < 2000; i++) console.log(i)\nprocess.stdout.write('x'.repeat(3000000))\n"
                  "process.stderr.write('y'.repeat(200000))\n'z'.length")
        assert ex.stdout == "".join("%d\n" % i for i in range(2000)) + "x" * 3000000, len(ex.stdout)
        assert ex.stderr == "y" * 200000 and ex.text == "1"
        assert ex.marks[0][1] == ex.stdout, "all of it before the result"
        # modules' console (the driver realm's global console) is synchronous too
        ex = d.ok("require('vm').runInThisContext('console.log(\"main realm\")')\n'after'")
        assert ex.marks[0][1] == "main realm\n", ex.marks
        assert d.value("process.stdout.isTTY") == "false"


def test_js_child_process_output(ctx):
    with Driver() as d:
        cp = "const cp = require('child_process')\n"
        ex = d.ok(cp + "cp.execSync('echo hi', {stdio: 'inherit'})\ncp.execSync('echo err >&2', {stdio: 'inherit'})\n"
                  "cp.spawnSync('sh', ['-c', 'echo sh-out; echo sh-err >&2'], {stdio: 'inherit'})\n'done'")
        assert ex.stdout == "hi\nsh-out\n" and ex.stderr == "err\nsh-err\n", (ex.stdout, ex.stderr)
        assert ex.marks[0][1] == "hi\nsh-out\n"
        assert d.value("cp.execSync('echo hi').toString()") == "'hi\\n'"
        ex = d.ok("await new Promise((res, rej) => cp.exec('echo async-child', (e, so) => e ? rej(e) : res(so)))")
        assert ex.text == "'async-child\\n'", ex.text
        # a child of the cell sees none of the protocol's pipes, nor fd 3/4 open
        ex = d.ok("cp.execSync('ls -l /proc/self/fd/', {stdio: 'inherit'})\nundefined")
        targets = dict(re.findall(r"\s(\d+) -> (\S+)", ex.stdout))
        assert targets.get("0") == "/dev/null" and "4" not in targets, ex.stdout
        protocol = {"pipe:[%d]" % os.fstat(fd).st_ino for fd in (d.ev_fd, d.req_fd)}
        assert not protocol & set(targets.values()), (protocol, ex.stdout)


def test_js_redeclaring_let_const_class(ctx):
    with Driver() as d:
        for _ in range(3):
            assert d.value("let x = 1\nx") == "1"
            assert d.value("const f = () => 2\nf()") == "2"
            d.ok("class A {\n  constructor() { this.v = 3 }\n  get w() { return this.v * 2 }\n}")
            assert d.value("new A().w") == "6"
            assert d.value("class B extends A { get w() { return super.w + 1 } }\nnew B().w") == "7"
            assert d.value("let {p, q: [r, s = 4], ...rest} = {p: 1, q: [2], t: 5}, u;\n[p, r, s, rest, u]") \
                == "[ 1, 2, 4, { t: 5 }, undefined ]"
        assert d.value("x = 5; x") == "5", "a const re-declared as var"
        assert d.ok("let x\nx").results == [], "a re-run `let x` is undefined again"
        assert d.value("typeof x") == "'undefined'"
        # only top-level declarations move: block scopes stay block scopes
        assert d.value("let k = 'outer'\n{ let k = 'inner' }\nfor (let k = 0; k < 2; k++) {}\nk") == "'outer'"
        assert d.value("if (true) { const blockOnly = 1 }\ntypeof blockOnly") == "'undefined'"
        # strings, templates, comments and regexes that look like declarations are left alone
        code = ("let s1 = 'let a = 1', s2 = `const b = ${'class C {}'} ${`let d`}`, /* let e = 1 */ r = /let f9 = [/]/g\n"
                "// const g = 1\n"
                "const h = s1.length / 2 / 1;\n"
                "[s1, s2, r.source, h, typeof a, typeof b, typeof C, typeof e, typeof f9, typeof g]")
        for _ in range(2):
            assert d.value(code) == ("[\n  'let a = 1',\n  'const b = class C {} let d',\n  'let f9 = [/]',\n  4.5,\n"
                                     "  'undefined',\n  'undefined',\n  'undefined',\n  'undefined',\n  'undefined',\n"
                                     "  'undefined'\n]"), d.value(code)
        # names declared in earlier cells are globals everywhere later
        d.ok("const counter = {n: 0}\nfunction bump() { counter.n++ }")
        assert d.value("bump(); bump(); counter.n") == "2"
        # a real redeclaration inside one cell is still a SyntaxError
        ex = d.run("let dup = 1\nlet dup = 2")
        assert ex.error["name"] == "SyntaxError" and "dup" in ex.error["value"], ex.error
        ex = d.run("const noInit")
        assert ex.error["name"] == "SyntaxError", ex.error


def test_js_top_level_await(ctx):
    with Driver() as d:
        assert d.value("await new Promise(r => setTimeout(r, 10)); 42") == "42"
        assert d.value("const t0 = Date.now()\nawait new Promise(r => setTimeout(r, 10))\nDate.now() - t0 >= 9") == "true"
        for _ in range(2):                       # re-run: declarations of an async cell are globals
            assert d.value("let a1 = await Promise.resolve(1)\nconst {b1, c1 = 3} = await Promise.resolve({b1: 2})\n"
                           "var d1\nclass E1 {}\nasync function f1(v) { await null; return v * 2 }\n"
                           "a1 + b1 + c1 + await f1(5)") == "16"
        assert d.value("[a1, b1, c1, typeof E1, typeof f1, d1]") == "[ 1, 2, 3, 'function', 'function', undefined ]"
        assert d.value("await f1(21)") == "42", "an async cell's functions stay usable"
        assert d.value("main()\nasync function main() { return 'hoisted' }\nawait main()") == "'hoisted'"
        assert d.value("await null\nlet last = 7\nlast * 6;") == "42"
        assert d.ok("await null\nlet onlyDecl = 1").results == []
        assert d.ok("await null\nif (onlyDecl) { 'no value from an if' }").results == []
        assert d.value("const arr = []\nfor await (const v of (async function* () { yield 1; yield 2 })()) arr.push(v)\n"
                       "arr") == "[ 1, 2 ]"
        assert d.value("await Promise.all([1, 2].map(async v => v + 1))") == "[ 2, 3 ]"
        d.ok("var later = new Promise(r => setTimeout(() => r('from an earlier cell'), 5))")
        assert d.value("await later") == "'from an earlier cell'"
        assert d.value("(await Promise.resolve({v: 1})).v\n+ 1") == "2", "no ASI before a binary operator"
        ex = d.run("async function g() {\n  await null\n  throw new Error('boom')\n}\n\nawait g()")
        assert ex.error["name"] == "Error" and ex.error["value"] == "boom", ex.error
        tb = _tb(ex)
        assert "at g (<cell-%d>:3:9)" % ex.end["execution_count"] in tb, tb
        assert "sbx_driver" not in tb and "[eval]" not in tb and "node:internal" not in tb, tb
        ex = d.run("await null\nconsole.log('printed')\nundefinedName + 1")
        assert ex.error["name"] == "ReferenceError" and ex.stdout == "printed\n", ex.error
        assert ":3:1" in _tb(ex), _tb(ex)


def test_js_import_declarations(ctx):
    with Driver() as d:
        for _ in range(2):
            ex = d.ok("import fs from 'fs'\nimport {join, basename as bn} from 'node:path'\nimport * as os from 'os'\n"
                      "import 'util'\n[typeof fs.readFileSync, join('a', 'b'), bn('/x/y'), typeof os.cpus]")
            assert ex.text == "[ 'function', 'a/b', 'y', 'function' ]", ex.text
        assert d.value("const m = await import('node:util')\ntypeof m.inspect") == "'function'"
        # an ES module package in the cwd's node_modules
        pkg = os.path.join(harness._scratch(), "node_modules", "sbx-esm-demo")
        os.makedirs(pkg, exist_ok=True)
        with open(os.path.join(pkg, "package.json"), "w") as f:
            json.dump({"name": "sbx-esm-demo", "type": "module", "exports": "./index.js"}, f)
        with open(os.path.join(pkg, "index.js"), "w") as f:
            f.write("export const answer = 42;\nexport default function hello(n) { return 'hello ' + n; }\n")
        assert d.value("import hello, {answer} from 'sbx-esm-demo'\nhello(answer)") == "'hello 42'"
        ex = d.run("import {x} from 'no-such-module-here'")
        assert ex.error is not None and "no-such-module-here" in ex.error["value"], ex.error


def test_js_require_builtins_and_cwd_modules(ctx):
    with Driver() as d:
        assert d.value("const fs = require('fs'), os = require('os'), path = require('path')\n"
                       "fs.writeFileSync('hello.txt', 'hi there')\nfs.readFileSync('hello.txt', 'utf8')") == "'hi there'"
        assert d.value("os.homedir() === process.cwd() && process.env.HOME === process.cwd()") == "true"
        assert d.value("path.basename(__filename) + ' ' + (__dirname === process.cwd())") == "'<cell> true'"
        pkg = os.path.join(harness._scratch(), "node_modules", "sbx-cjs-demo")
        os.makedirs(pkg, exist_ok=True)
        with open(os.path.join(pkg, "index.js"), "w") as f:
            f.write("module.exports = { twice: (v) => v * 2 };\n")
        assert d.value("require('sbx-cjs-demo').twice(21)") == "42"
        assert d.value("typeof fetch + ' ' + typeof structuredClone + ' ' + typeof TextEncoder + ' ' + typeof URL")\
            == "'function function function function'"
        assert d.value("[typeof setTimeout, typeof Buffer, typeof crypto.randomUUID, typeof AbortController]") \
            == "[ 'function', 'function', 'function', 'function' ]"
        assert d.value("Array.isArray(fs.readdirSync('.'))") == "true"


def test_js_runtime_error_traceback_has_cell_lines(ctx):
    with Driver() as d:
        d.ok("function f(a) {\n  const b = a * 2\n  return b.nope.deeper\n}")
        ex = d.run("var x = 1\nf(x)\nx = 2")
        assert ex.error["name"] == "TypeError" and "reading 'deeper'" in ex.error["value"], ex.error
        tb = ex.error["traceback"]
        assert tb[0].startswith("TypeError: Cannot read properties of undefined"), tb
        assert "    at f (<cell-1>:3:17)" in tb and "    at <cell-2>:2:1" in tb, tb
        assert not any("[eval]" in l or "node:vm" in l or "node:internal" in l or "runInContext" in l for l in tb), tb
        assert d.value("x") == "1", "state up to the failing line is kept"
        ex = d.run("class E extends Error { constructor(m) { super(m); this.name = 'E' } }\n\nthrow new E('custom')")
        assert ex.error["name"] == "E" and ex.error["value"] == "custom"
        assert "<cell-4>:3:7" in _tb(ex), _tb(ex)
        ex = d.run("throw 5")
        assert ex.error["name"] == "Uncaught" and ex.error["value"] == "5", ex.error
        ex = d.run("require('fs').readFileSync('/no/such/file')")
        assert ex.error["name"] == "Error" and "ENOENT" in ex.error["value"], ex.error
        assert "code: 'ENOENT'" in _tb(ex) and "<cell-6>:1" in _tb(ex), _tb(ex)
        ex = d.run("process.exit(3)")
        assert ex.error["name"] == "ProcessExit" and "3" in ex.error["value"], ex.error
        ex = d.run("function r() { return r() }\nr()")
        assert ex.error["name"] == "RangeError", ex.error
        d.ping()
        assert d.value("'alive'") == "'alive'"


def test_js_syntax_error(ctx):
    with Driver() as d:
        d.ok("var a = 1")
        ex = d.run("var b = 2\nvar c = (3 +* 4)\nvar d = 5")
        assert ex.error["name"] == "SyntaxError", ex.error
        tb = ex.error["traceback"]
        assert tb[0] == "<cell-2>:2" and tb[1] == "var c = (3 +* 4)" and tb[-1].startswith("SyntaxError: "), tb
        assert "^" in tb[2] and not any(" at " in l for l in tb), tb
        assert ex.end["execution_count"] == 2
        assert d.value("[typeof b, a]") == "[ 'undefined', 1 ]", "nothing of a cell that does not compile runs"
        # in an async cell: still the cell's own line
        ex = d.run("await null\n\nlet q = ;")
        assert ex.error["name"] == "SyntaxError" and ex.error["traceback"][0] == "<cell-4>:3", ex.error
        ex = d.run("function f() {\n  await 1\n}")
        assert ex.error["name"] == "SyntaxError" and "await" in ex.error["value"], ex.error
        assert ex.error["traceback"][0] == "<cell-5>:2", ex.error
        ex = d.run("eval('1 +')")                # raised at run time: a frame of the cell
        assert ex.error["name"] == "SyntaxError" and "<cell-6>:1" in _tb(ex), _tb(ex)
        ex = d.run("export const e = 1")
        assert ex.error["name"] == "SyntaxError", ex.error
        assert d.value("a") == "1"


def test_js_interrupt_keeps_state(ctx):
    with Driver() as d:
        for loop in ("while (true) {}", "for (;;) { Math.random() }"):
            ex = d.interrupt_when("var x = 21\nconsole.log('started')\n" + loop + "\nx = 0")
            assert ex.error["name"] == "Interrupted", ex.error
            assert d.value("x") == "21", "state set before the loop survives"
        # the synchronous start of an async cell can be interrupted too
        ex = d.interrupt_when("let y = 1\nawait null\ny = 2\nconsole.log('started')\n"
                              "await new Promise(r => setTimeout(r, 1e8))")
        assert ex.error["name"] == "Interrupted" and "waited" in ex.error["value"], ex.error
        assert d.value("y") == "2"
        ex = d.interrupt_when("console.log('started')\nwhile (true) {}\nawait null")
        assert ex.error["name"] == "Interrupted", ex.error
        # a value whose inspection loops forever
        ex = d.interrupt_when("const util = require('util')\nconsole.log('started');\n"
                              "({[util.inspect.custom]() { for (;;) {} }})")
        assert ex.error["name"] == "Interrupted", ex.error
        d.ping()
        assert d.value("x + y") == "23"


def test_js_sigint_outside_cells_is_absorbed(ctx):
    with Driver() as d:
        for _ in range(5):
            os.kill(d.pid, signal.SIGINT)
        d.ping()
        assert d.value("let z = 1\nz") == "1"
        # SIGINTs while many events are written: every line stays whole,
        # the cell is interrupted or finishes, the driver lives on.
        started = d.start("for (let i = 0; i < 3000; i++) display(i)\n'done'")
        n = 0
        while True:
            ev = d.next_event(20)
            assert ev["id"] == started[0], ev
            n += 1
            if n % 25 == 0:
                os.kill(d.pid, signal.SIGINT)
            if ev["type"] == "error":
                assert ev["name"] == "Interrupted", ev
            if ev["type"] == "end":
                break
        for i in range(100):
            started = d.start("z = %d\nconsole.log('p')\ndisplay(z);\n[z]" % i)
            while True:
                ev = d.next_event(10)
                os.kill(d.pid, signal.SIGINT)
                assert ev["id"] == started[0] and ev["type"] in ("result", "error", "end"), ev
                if ev["type"] == "error":
                    assert ev["name"] == "Interrupted", ev
                if ev["type"] == "end":
                    break
        d.ping()
        assert d.value("z >= 0") == "true"


def test_js_stdin_never_hangs(ctx):
    with Driver() as d:
        t0 = time.monotonic()
        assert d.value("require('fs').readFileSync(0, 'utf8')") == "''"
        assert d.value("await new Promise(r => { let s = ''; process.stdin.on('data', c => s += c)"
                       ".on('end', () => r(s)) })") == "''"
        for _ in range(2):                       # also after an earlier cell's stdin ended
            assert d.value("const rl = require('readline').createInterface({input: process.stdin})\n"
                           "const lines = []\nfor await (const l of rl) lines.push(l)\nlines") == "[]"
        # a wait nothing can settle (readline's question() on the ended stdin) ends by itself
        ex = d.run("const rlp = require('readline/promises').createInterface({input: process.stdin})\n"
                   "await rlp.question('name? ')")
        assert ex.error["name"] == "UnsettledPromise" and "stdin" in ex.error["value"], ex.error
        ex = d.run("await rlp.question('again? ')")   # the interface has closed by now
        assert ex.error["value"] == "readline was closed", ex.error
        assert ex.error["traceback"][-2:] == ["  code: 'ERR_USE_AFTER_CLOSE'", "}"], ex.error
        assert ex.error["traceback"][-3].endswith("at <cell-%d>:1:19 {" % ex.end["execution_count"]), ex.error
        ex = d.run("await new Promise(() => {})")
        assert ex.error["name"] == "UnsettledPromise", ex.error
        assert d.value("await new Promise(r => setTimeout(r, 1500, 'a slow timer is not a dead end'))") \
            == "'a slow timer is not a dead end'"
        assert d.value("require('child_process').execSync('cat', {encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit']})") \
            == "''"
        assert time.monotonic() - t0 < 10


def test_js_protocol_fds_are_out_of_reach(ctx):
    with Driver() as d:
        ex = d.ok("const fs = require('fs')\nconst res = []\nfor (const fd of [3, 4]) {\n"
                  "  try { fs.fstatSync(fd); res.push('open') } catch (e) { res.push(e.code) }\n}\nres")
        assert ex.text == "[ 'EBADF', 'EBADF' ]", "fd 3 and 4 are closed in the driver: %s" % ex.text
        ex = d.run("fs.writeSync(3, '{\"type\":\"end\",\"id\":1}\\n')")
        assert ex.error is not None and "EBADF" in ex.error["value"], ex.error
        ex = d.run("fs.readSync(4, Buffer.alloc(10))")
        assert ex.error is not None and "EBADF" in ex.error["value"], ex.error
        # a file the cell opens gets fd 3 and is the cell's own
        assert d.value("const mine = fs.openSync('mine.txt', 'w')\nfs.writeSync(mine, 'x')\nfs.closeSync(mine)\nmine") == "3"
        d.ping()


def test_js_uncaught_errors_outside_cells_do_not_kill_the_driver(ctx):
    with Driver() as d:
        ex = d.ok("setTimeout(() => { console.log('timer ran'); throw new Error('late boom') }, 1)\n"
                  "Promise.reject(new Error('nobody catches me'))\n'ok'")
        assert ex.text == "'ok'"
        d.wait_output("late boom", stream="err")
        d.wait_output("timer ran")
        assert "nobody catches me" in d.err.decode(), d.tail()
        d.ping()
        assert d.value("1 + 1") == "2"
        ex = d.ok("setTimeout(() => console.log('tick from the past'), 1); undefined")
        d.wait_output("tick from the past")
        assert d.value("'still here'") == "'still here'"


def test_js_rich_output_and_display(ctx):
    with Driver() as d:
        d.ok("""
class H { _repr_html_() { return '<b>bold</b>' } }
class Sym { [Symbol.for('sbx.mimebundle')]() { return {'text/html': '<i>i</i>', 'text/plain': 'Sym!',
  'application/vnd.custom+json': {k: 1}, 'image/png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10, 0, 0, 0, 13,
  0x49, 0x48, 0x44, 0x52, 0, 0, 0, 3, 0, 0, 0, 2])} } }
class Bad { _repr_html_() { throw new Error('html broke') } }
class MdMeta { _repr_markdown_() { return ['# t', {note: 'md meta'}] } }
const liar = new Proxy({}, {get: (t, k) => k === Symbol.toPrimitive || k === 'constructor' ? undefined : () => 'liar'})
""")
        ex = d.ok("new H()")
        assert ex.main["data"] == {"text/html": "<b>bold</b>", "text/plain": "H {}"}, ex.main
        ex = d.ok("new Sym()")
        data = ex.main["data"]
        assert data["text/plain"] == "Sym!" and data["text/html"] == "<i>i</i>", data
        assert data["application/vnd.custom+json"] == {"k": 1} and data["image/png"].startswith("iVBORw0KGgo"), data
        assert ex.main["metadata"] == {"image/png": {"width": 3, "height": 2}}, ex.main
        ex = d.ok("new Bad()")
        assert ex.main["data"] == {"text/plain": "Bad {}"} and "html broke" in ex.stderr, (ex.main, ex.stderr)
        ex = d.ok("new MdMeta()")
        assert ex.main["data"]["text/markdown"] == "# t" and ex.main["metadata"] == {"text/markdown": {"note": "md meta"}}
        assert "text/html" not in d.ok("liar").main["data"], "a proxy that claims every property is not rich"
        ex = d.ok("display(new H(), 'text', [1])\ndisplay.html('<p>x</p>')\ndisplay.markdown('*m*')\n"
                  "display.raw({'text/plain': 'raw', 'image/png': new Uint8Array([1, 2])}, {tag: 1})\ndisplay.json({j: [1]})")
        r = ex.results
        assert len(r) == 7 and not any(x["main"] for x in r), r
        assert r[0]["data"]["text/html"] == "<b>bold</b>" and r[1]["data"] == {"text/plain": "'text'"}
        assert r[2]["data"] == {"text/plain": "[ 1 ]", "application/json": [1]}
        assert r[3]["data"]["text/html"] == "<p>x</p>" and r[4]["data"]["text/markdown"] == "*m*"
        assert r[5]["data"] == {"text/plain": "raw", "image/png": "AQI="} and r[5]["metadata"] == {"tag": 1}, r[5]
        assert r[6]["data"]["application/json"] == {"j": [1]}
        ex = d.run("display.raw(5)")
        assert ex.error["name"] == "TypeError", ex.error
        ex = d.run("({[require('util').inspect.custom]() { throw new Error('inspect broke') }})")
        assert ex.error["value"] == "inspect broke", "a failing inspect is the cell's error"
        d.ping()


def test_js_huge_result_is_cut_to_fit_one_line(ctx):
    with Driver() as d:
        ex = d.ok("display.raw({'text/plain': 'small', 'text/html': 'h'.repeat(65 << 20)})\n"
                  "const s = 'y'.repeat(66 << 20)\ns", timeout=60)
        r0, r1 = ex.results
        assert r0["data"] == {"text/plain": "small"} and r0["metadata"]["sbx/truncated"]["dropped"] == ["text/html"]
        text = r1["data"]["text/plain"]
        assert r1["main"] and text.startswith("'yyy") and len(text) < 2 << 20 and "more characters" in text[-100:]
        ex = d.ok("display.raw({'text/plain': 'p'.repeat(66 << 20)})", timeout=60)
        text = ex.results[0]["data"]["text/plain"]
        assert len(text) < 2 << 20 and "truncated" in text[-100:], text[-100:]
        d.ping()

