/* sbx_driver.js: the persistent Node.js process behind one JavaScript
code-interpreter context.  The same protocol as drivers/python/sbx_driver.py.

Started by sandboxd as  node --experimental-vm-modules -e "<this file's
source>"  (nothing here relies on __filename or on the file's path; keep the
file ASCII and far below Linux's 128 KiB limit on one argv string), Node 18
(Debian 12's) or later, no npm package (built-in modules only), with env
HOME=/workspace and cwd = the context's cwd.  The flag lets cells use import
declarations and import() in the vm context: Node 18 refuses a vm script's
dynamic import without it (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG).
A 'typescript' context runs this same driver with SBX_DRIVER_LANGUAGE=typescript
in its environment (read at start, then deleted from process.env; unset or
anything else: JavaScript): the driver strips each cell's types itself (see
"TypeScript" below).

File descriptors at start:
  0  /dev/null: fs.readFileSync(0) is ''; process.stdin is a new stream on
     fd 0 in every cell (so it ends at once in each, and a readline
     interface on it closes at once even when an earlier cell read stdin).
  1  pipe to the parent: the cell's raw stdout (console.log,
     process.stdout.write, child processes).
  2  pipe to the parent: the cell's raw stderr.
  3  events, driver -> parent: NDJSON, one JSON object a line, UTF-8, each
     line (newline included) shorter than 64 MiB.
  4  requests, parent -> driver: NDJSON.
Node cannot dup() an fd, but when fd 3 and 4 are pipes they are opened anew
through /proc/self/fd (which gives new close-on-exec descriptors at other
numbers) and 3 and 4 are closed: child processes never inherit the protocol,
and fs.writeSync(3, ...) / fs.readSync(4, ...) in a cell fail with EBADF (or
reach whatever the cell itself opened there, or a descriptor Node or
libuv opened later).  Code that looks for the pipes
in /proc/self/fd can still find them and break its own context.  Where
/proc is missing or the fds are not pipes, 3 and 4 are used as they are
(and child processes inherit them).  Nothing of the protocol is ever
written to fd 1 or 2.

Events (fd 3):
  {"type":"ready","language":"javascript"|"typescript","pid":N}  once, at start
  {"type":"result","id":I,"main":B,"data":{mime:value},"metadata":{...}}
  {"type":"error","id":I,"name":S,"value":S,"traceback":[line, ...]}  (<= 1)
  {"type":"end","id":I,"execution_count":N}                      always, last
  {"type":"pong"}                    (answer to ping; carries the ping's id if any)
  {"type":"protocol_error","message":S}    a request line that was not understood
An event that would reach 64 MiB is cut: a result loses its largest mime
types (listed in metadata["sbx/truncated"]) and text/plain is clipped to
1 Mi characters; long error strings are clipped likewise.
Requests (fd 4): {"type":"execute","id":I,"code":S}, {"type":"ping"}; end of
file on fd 4 -> exit 0 (after the running cell).  Requests are handled one at
a time (a ping sent while a cell runs is answered after it).

Output order: console (the context's and the driver realm's global one),
process.stdout and process.stderr write synchronously (fs.writeSync) to fd
1/2, and child processes write to the pipes themselves, so everything a
cell wrote is in the pipe before its next event: a parent that drains fd 1/2
before reading each event sees output in order.  Streams the cell makes on
its own (fs.createWriteStream('/dev/stdout'), new net.Socket({fd: 1})) are
asynchronous and not ordered.

Cells: one vm context for the driver's life.  Its globals: the JavaScript
built-ins of the context, plus console, process, require (resolving from the
cwd, so ./node_modules and $HOME/.node_modules work), module, exports,
__filename, __dirname, Buffer, timers, queueMicrotask, structuredClone, URL,
TextEncoder/TextDecoder, AbortController, Blob, atob/btoa, performance,
crypto, fetch and the other web globals Node has, global (= globalThis) and
display.  Objects made by Node's modules come from the driver's realm:
`require('fs').readdirSync('.') instanceof Array` is false (Array.isArray
is true), as in every vm-based REPL.
  The main result is the cell's completion value (as in Node's REPL: the
value of the last expression statement run; `x = 5` shows 5, `let x = 5`
shows nothing, undefined is never shown, null is).  There is no `_` (it
would clobber lodash).  Ordinary JavaScript rules apply, automatic
semicolon insertion included: a line that starts with ( or [ continues the
line before it.  A cell that is a lone object
literal (`{a: 1}`) is an object, not a block.  A value that is a promise is
awaited.  Cells may re-declare their top-level let, const and class: before
it runs, a cell is scanned by a small tokenizer (strings, template literals,
comments and regular expression literals are skipped) and its top-level
(bracket depth 0, statement start) declarations become global var bindings:
`let x = 1` -> `var x = 1`, `const f = ...` -> `var   f = ...` (so a const
can be reassigned), `class A {}` -> `var A = class A {};`.  A `/` after `)`
is taken for a division and after `}` for a regular expression (the usual
heuristic, wrong only for code like `if (x) /re/.test(s)`, which then keeps
its let/const as they are).  The cell is
first compiled unchanged, so its syntax errors are the real ones; a rewrite
that would not compile is dropped (the cell then runs as written).
  Top-level await and import declarations: a cell that does not compile
because of `await` (or `for await`) or of an `import ... from` statement
runs as the body of an async arrow function.  Its imports become
`var {a, default: b} = await import('m')` (dynamic import through Node's
own loader: built-ins, CommonJS and ES module packages); its top-level
var/let/const declarations become assignments to globals, its functions are
also stored on globalThis, its classes are assigned like above; the last
statement, when it is an expression, is returned (and so awaited when it is
a promise) - an `if` or a loop last gives no value there.  Limits of the
scanner: a top-level declaration it cannot see as one (such as `var` in a
for head of an async cell) stays local to that cell; line numbers are kept
exactly, columns only on lines it did not touch.
  TypeScript: before all of the above, a cell's type syntax is stripped by
a hand-written parser over the same tokens (no type checking, no typescript
package).  What it removes becomes spaces, every line break stays: lines and
columns are the cell's own (but on the lines of an enum and after the '{' of
a constructor with parameter properties).  Removed: annotations of
variables, parameters, returns and class fields (`x: T`, `x?: T`, `x!: T`,
`let x!: T`, destructuring ones), type parameters and type arguments
(`function f<T>`, `class C<T>`, `<T>(x: T) => x`, `f<T>(x)`, `new Map<K,
V>()`), `as T`, `as const`, `satisfies T`, non-null `x!`, `interface`,
`type X = ...`, `declare ...` (also `declare global/module/namespace {}`),
`import type`, `export type`, `{type X}` import/export specifiers,
`implements`, `abstract`, `public/private/protected/readonly/override/
declare` on members and parameters, abstract and declare members, index
signatures, overload signatures (no body), `this` parameters.  A removed
statement or member leaves a ';' in its first column, so automatic semicolon
insertion still ends the statement before it (a '/' right after `x!` is
a division).  Rewritten: `enum E {A, B = 5,
C = 'c'}` and `const enum` -> `var E = (function (E) {...})({})`, numeric
members mapped back (E[0] === 'A'), later values may name earlier members, a
new object at each run (no declaration merging); `constructor(private x: T)`
-> `this.x = x;` after the body's '{' (after the `super(...)` call in a
derived class); `import x = require('m')` -> `const x = require('m')`.
`export` stays a SyntaxError as in JavaScript, but on type-only
declarations.  Imports are not elided: a type imported without `type` is
undefined.  Not supported, a SyntaxError event "TypeScript not understood:
..." on the cell's line: `<T>expr` assertions (write `expr as T`), JSX,
namespaces and modules with a body, decorators.  Misread (JavaScript's
SyntaxError then): an arrow function with a return type as the middle
operand of a ternary, `c ? (a): T => b : d` (write `c ? ((a): T => b) : d`).
As in TypeScript,
`f<T>(x)` and `a < b > (c)` are calls with type arguments.  A cell the
tokenizer cannot finish (an unterminated string) is left as it is.
  Tracebacks name the cell "<cell-N>" (N = execution count), with the
cell's own line numbers, and never show the driver's frames nor Node's event
loop frames.  A SyntaxError gives ["<cell-N>:LINE", the line, a caret line,
"", "SyntaxError: message"].  A thrown value that is not an error gives the
name "Uncaught".  process.exit() in a cell (or in a module it calls) throws
an error named "ProcessExit"; the context lives on.

Rich output: a value is shown as a bundle {mime: data}: text/plain always
(util.inspect, depth 4, no colors), application/json for plain objects and
arrays whose JSON round-trips exactly, and whatever the object offers:
  obj[Symbol.for('sbx.mimebundle')]()  -> {mime: data}  (checked first), or
  obj._repr_mimebundle_()              -> {mime: data} or [bundle, metadata],
  obj._repr_html_(), _repr_markdown_(), _repr_svg_(), _repr_png_(),
  _repr_jpeg_(), _repr_latex_(), _repr_json_(), _repr_javascript_(),
  _repr_pdf_()                         -> data or [data, metadata].
Binary mime types (image/* but svg, application/pdf) take a Buffer /
Uint8Array / ArrayBuffer (sent base64) or base64 text; a failing rich method
is reported on stderr and left out; a failing inspect is the cell's error.
display(...values) shows each value as a result with main=false; also
display.html(s), display.markdown(s), display.svg(s), display.png(bytes),
display.json(v) and display.raw(bundle, metadata).

Signals and time: SIGINT while a cell's code runs synchronously (also while
its value is formatted, or compiled: from the moment its request is taken up)
interrupts it: an error named "Interrupted", the context's state kept.
SIGINT while a cell waits for a promise ends the cell at once with that
error; what it waited for keeps running.  A cell that
waits for a promise while nothing that could settle it is left (no ref'd
timer, I/O, child process or worker: the case where Node would exit with
"unsettled top-level await", e.g. readline's question() on the ended stdin)
ends after about a second with an error named "UnsettledPromise".  Code
that runs from a promise job or a timer (after an await, in a .then callback, in a
setTimeout) cannot be interrupted: a busy loop there needs the parent's
SIGKILL (it should always escalate to SIGKILL after a grace period).  SIGINT
between cells is absorbed.  A cell that adds its own process.on('SIGINT')
listener takes SIGINT away from the driver (libuv replaces Node's watchdog
handler): interrupts are not reliable in that context any more.  A cell ends when its code (and its value's
promise) settled; timers and intervals it made keep running across cells
and write to fd 1/2 whenever they fire.  Errors thrown there, and promise
rejections nobody handles, are reported on fd 2 and never end the driver.
*/
(function sbxDriver() {
  'use strict';
  const fs = require('fs');
  const vm = require('vm');
  const util = require('util');
  const path = require('path');
  const stream = require('stream');
  const net = require('net');
  const Module = require('module');
  const { Console } = require('console');

  const PID = process.pid;
  const LANGUAGE = process.env.SBX_DRIVER_LANGUAGE === 'typescript' ? 'typescript' : 'javascript';
  delete process.env.SBX_DRIVER_LANGUAGE;
  const MAX_LINE = 64 * 1024 * 1024 - 1;       // bytes of one event line, newline included
  const CALL_KEY = 'sbx.driver.call';          // Symbol.for() key of the guarded-call hook
  const INTERRUPTED = Symbol('sbx.interrupted');
  const UNSETTLED = Symbol('sbx.unsettled');
  const WAIT_POLL_MS = 25;                     // while a cell waits: SIGINT and dead-end checks
  const UNSETTLED_POLLS = 40;                  // a wait nothing can settle ends after about 1 s
  const INSPECT = { depth: 4, colors: false, maxArrayLength: 1000, maxStringLength: 1 << 20 };
  const REPRS = [
    ['text/html', '_repr_html_'],
    ['text/markdown', '_repr_markdown_'],
    ['image/svg+xml', '_repr_svg_'],
    ['image/png', '_repr_png_'],
    ['image/jpeg', '_repr_jpeg_'],
    ['text/latex', '_repr_latex_'],
    ['application/json', '_repr_json_'],
    ['application/javascript', '_repr_javascript_'],
    ['application/pdf', '_repr_pdf_'],
  ];
  const realExit = process.exit.bind(process);
  const sleepCell = new Int32Array(new SharedArrayBuffer(4));

  const S = {
    count: 0,             // execution count (one per execute request)
    currentId: null,      // id of the execution running (or last run)
    evFd: -1,
    reqFd: -1,
    pending: null,        // {buf, off}: an event line a termination cut short
    waitReject: null,     // rejects the wait of a cell that awaits a promise
    ctx: null,
    ctxGlobal: null,
    ctxObjectProto: null,
    callScript: null,
    driverFile: null,     // how the driver's own frames are named in stacks
    baseline: null,       // {resource type: count} of the driver's own (the request pipe)
    stdin: null,          // this cell's process.stdin
    cellLines: {},        // execution count -> number of lines of that cell
    wd: null,             // Node's SIGINT watchdog (contextify binding), kept started
  };

  function sleep(ms) {
    Atomics.wait(sleepCell, 0, 0, ms);
  }

  function fatal(msg, code) {
    try {
      fs.writeSync(2, 'sbx_driver: ' + msg + '\n');
    } catch (e) { /* nothing left to tell */ }
    realExit(code === undefined ? 3 : code);
  }

  /* Writes buf[off..] on fd; blocking or not (EAGAIN: wait 1 ms, again). */
  function writeSome(fd, buf, off) {
    try {
      return fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e && (e.code === 'EAGAIN' || e.code === 'EWOULDBLOCK')) {
        sleep(1);
        return 0;
      }
      if (e && e.code === 'EINTR') return 0;
      throw e;
    }
  }

  function writeAll(fd, buf) {
    let off = 0;
    while (off < buf.length) off += writeSome(fd, buf, off);
  }

  // -------------------------------------------------------------------------
  // Synchronous stdout / stderr

  function toBuffer(chunk, encoding) {
    if (typeof chunk === 'string') {
      return Buffer.from(chunk, Buffer.isEncoding(encoding) ? encoding : 'utf8');
    }
    if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const e = new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
    e.code = 'ERR_INVALID_ARG_TYPE';
    throw e;
  }

  class SyncWriter extends stream.Writable {
    constructor(fd) {
      super({ decodeStrings: false });
      this.fd = fd;
      this.isTTY = false;
      this._type = 'pipe';
      this._isStdio = true;
    }

    _write(chunk, encoding, cb) {
      this.write(chunk, encoding);
      cb();
    }

    write(chunk, encoding, cb) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      const buf = toBuffer(chunk, encoding);
      try {
        writeAll(this.fd, buf);
      } catch (e) { /* EPIPE, EBADF: the output is lost, the stream stays usable */ }
      if (typeof cb === 'function') process.nextTick(cb);
      return true;
    }

    hasColors() {
      return false;
    }

    getColorDepth() {
      return 1;
    }
  }

  const stdout = new SyncWriter(1);
  const stderr = new SyncWriter(2);
  const con = new Console({ stdout, stderr, ignoreErrors: true, colorMode: false });

  // -------------------------------------------------------------------------
  // Events out

  function clip(s, n) {
    s = typeof s === 'string' ? s : String(s);
    return s.length <= n ? s : s.slice(0, n) + '\n... [truncated by sbx_driver: ' + (s.length - n) + ' characters]';
  }

  function byteSize(v) {
    try {
      const s = JSON.stringify(v);
      return s === undefined ? 0 : Buffer.byteLength(s);
    } catch (e) {
      return MAX_LINE;
    }
  }

  /* An event whose line would reach 64 MiB, made to fit. */
  function shrink(ev) {
    ev = Object.assign({}, ev);
    if (ev.type === 'result') {
      const data = Object.assign({}, ev.data || {});
      const sizes = {};
      for (const k of Object.keys(data)) sizes[k] = byteSize(data[k]);
      const dropped = [];
      const budget = MAX_LINE - (8 << 20);
      const total = () => Object.values(sizes).reduce((a, b) => a + b, 0);
      for (const k of Object.keys(sizes).sort((a, b) => sizes[b] - sizes[a])) {
        if (total() <= budget) break;
        if (k === 'text/plain') continue;
        dropped.push(k);
        delete data[k];
        delete sizes[k];
      }
      if ((sizes['text/plain'] || 0) > budget) data['text/plain'] = clip(data['text/plain'], 1 << 20);
      ev.data = data;
      ev.metadata = { 'sbx/truncated': { dropped, reason: 'event larger than 64 MiB' } };
    } else {
      for (const k of Object.keys(ev)) {
        const v = ev[k];
        if (typeof v === 'string') ev[k] = clip(v, 1 << 20);
        else if (Array.isArray(v)) {
          let a = v.map((x) => clip(x, 4096));
          if (a.length > 1000) a = a.slice(0, 500).concat(['... [' + (a.length - 1000) + ' lines left out]'], a.slice(-500));
          ev[k] = a;
        } else if (v && typeof v === 'object') ev[k] = {};
      }
    }
    return ev;
  }

  function encode(ev) {
    for (let attempt = 0; attempt < 3; attempt++) {
      let line;
      try {
        line = Buffer.from(JSON.stringify(ev) + '\n', 'utf8');
      } catch (e) {                              // should not happen: values are checked
        if (attempt === 0 && ev.type === 'result') {
          ev = { type: 'result', id: ev.id, main: ev.main, data: {}, metadata: {} };
          ev.data['text/plain'] = '<result not serialisable: ' + (e && e.name) + '>';
        } else {
          ev = shrink(ev);
        }
        continue;
      }
      if (line.length <= MAX_LINE) return line;
      ev = shrink(ev);
    }
    const bare = { type: ev.type };
    if ('id' in ev) bare.id = ev.id;
    return Buffer.from(JSON.stringify(bare) + '\n');
  }

  /* Writes one event line.  A termination (SIGINT in a cell that called
  display()) can stop this loop between two partial writes: the rest of the
  line is written before anything else. */
  function finishPending() {
    const p = S.pending;
    while (p.off < p.buf.length) p.off += writeSome(S.evFd, p.buf, p.off);
    S.pending = null;
  }

  function emit(ev) {
    if (process.pid !== PID) return;
    const line = encode(ev);
    try {
      if (S.pending) finishPending();
      S.pending = { buf: line, off: 0 };
      finishPending();
    } catch (e) {
      fatal('the event channel is gone (' + (e && e.message) + ')');
    }
  }

  // -------------------------------------------------------------------------
  // Tracebacks

  function isDriverFrame(line) {
    if (!/^\s+at /.test(line)) return false;
    const cell = /<cell-(\d+)>:(\d+):\d+\)?\s*(\{\s*)?$/.exec(line);
    if (cell && S.cellLines[cell[1]] !== undefined && Number(cell[2]) > S.cellLines[cell[1]]) {
      return true;                            // the async wrapper's own call, after the cell's last line
    }
    return line.includes('(' + S.driverFile + ':') || line.includes('at ' + S.driverFile + ':') ||
      line.includes('<sbx-driver>') || line.includes('(node:vm:') || line.includes('at node:vm:') ||
      line.includes('node:internal/process/task_queues') || line.includes('node:internal/timers') ||
      line.includes('node:internal/vm') || line.includes('node:internal/process/execution') ||
      line.includes('node:internal/main/');
  }

  /* The stack lines without the driver's frames: below the frame that ran
  the cell (Script.runInContext) everything is the driver's or Node's. */
  function filterStack(lines) {
    const out = [];
    let below = false;
    for (const line of lines) {
      const frame = /^\s+at /.test(line);
      if (!frame) below = false;
      if (frame && /\bScript\.runIn(Context|ThisContext|NewContext)\b|\bsigintHandlersWrap\b/.test(line)) below = true;
      if (frame && (below || isDriverFrame(line))) {
        // inspect() puts the error's own properties after its last frame: " {"
        if (/ \{$/.test(line) && out.length && /^\s+at /.test(out[out.length - 1])) out[out.length - 1] += ' {';
        continue;
      }
      out.push(line);
    }
    while (out.length > 1 && out[out.length - 1] === '') out.pop();
    return out;
  }

  function safeString(f, fallback) {
    try {
      const s = f();
      return typeof s === 'string' ? s : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function errorLike(e) {
    if (util.types.isNativeError(e)) return true;
    return e !== null && typeof e === 'object' && safeString(() => e.stack, null) !== null &&
      safeString(() => e.message, null) !== null;
  }

  function interruptError(how) {
    const e = { message: 'Script execution was interrupted by SIGINT' + (how || '') };
    e[INTERRUPTED] = true;
    return e;
  }

  function errorEvent(e) {
    try {
      return errorEventOf(e);
    } catch (x) {
      return { type: 'error', id: S.currentId, name: 'Uncaught', value: '<unprintable value>',
        traceback: ['Uncaught <unprintable value>'] };
    }
  }

  function errorEventOf(e) {
    const id = S.currentId;
    if (e && (e[INTERRUPTED] || e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED')) {
      const value = e[INTERRUPTED] ? e.message : 'Script execution was interrupted by SIGINT';
      return { type: 'error', id, name: 'Interrupted', value,
        traceback: ['Interrupted: ' + value, '    at <cell-' + S.count + '>'] };
    }
    if (e && e[UNSETTLED]) {
      return { type: 'error', id, name: 'UnsettledPromise', value: e.message,
        traceback: ['UnsettledPromise: ' + e.message, '    at <cell-' + S.count + '>'] };
    }
    if (errorLike(e)) {
      const name = safeString(() => e.name, null) || safeString(() => e.constructor.name, 'Error');
      const value = safeString(() => e.message, '');
      let text = safeString(() => util.inspect(e, { depth: 3, colors: false }), null);
      if (text === null) text = safeString(() => e.stack, name + ': ' + value);
      return { type: 'error', id, name, value, traceback: filterStack(text.split('\n')) };
    }
    const shown = safeString(() => util.inspect(e, INSPECT), '<unprintable value>');
    return { type: 'error', id, name: 'Uncaught', value: shown, traceback: ['Uncaught ' + shown] };
  }

  /* A cell that does not compile: Node's header (file:line, the line, a
  caret) then "SyntaxError: message", no frame. */
  function syntaxErrorEvent(e) {
    const name = safeString(() => e.name, 'SyntaxError');
    const value = safeString(() => e.message, '');
    const lines = safeString(() => e.stack, '').split('\n');
    const at = lines.findIndex((l) => l.startsWith(name + ':'));
    const head = at > 0 ? lines.slice(0, at) : [];
    while (head.length && head[head.length - 1].trim() === '') head.pop();
    const tb = head.length ? head.concat(['', name + ': ' + value]) : [name + ': ' + value];
    return { type: 'error', id: S.currentId, name, value, traceback: tb };
  }

  function warn(obj, what, e) {
    const lines = errorEvent(e).traceback;
    let type = 'value';
    try {
      type = (obj && obj.constructor && obj.constructor.name) || typeof obj;
    } catch (x) { /* keep 'value' */ }
    try {
      stderr.write('[sbx] ' + what + ' of a ' + type + ' object failed; that format is left out:\n' + lines.join('\n') + '\n');
    } catch (x) { /* nothing */ }
  }

  // -------------------------------------------------------------------------
  // Mime bundles

  function isPlainObject(v) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
    const p = Object.getPrototypeOf(v);
    return p === null || p === Object.prototype || p === S.ctxObjectProto;
  }

  /* True when JSON.parse(JSON.stringify(v)) would be deeply equal to v. */
  function jsonClean(v, depth) {
    if (depth > 64) return false;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
    if (typeof v === 'number') return Number.isFinite(v) && !Object.is(v, -0);
    if (util.types.isProxy(v)) return false;
    if (Array.isArray(v)) {
      if (Object.getPrototypeOf(v) !== Array.prototype && !(S.ctxArrayProto && Object.getPrototypeOf(v) === S.ctxArrayProto)) return false;
      for (let i = 0; i < v.length; i++) {
        if (!(i in v) || !jsonClean(v[i], depth + 1)) return false;
      }
      return Object.keys(v).length === v.length && Object.getOwnPropertySymbols(v).length === 0;
    }
    if (!isPlainObject(v)) return false;
    if (Object.getOwnPropertySymbols(v).length) return false;
    for (const k of Object.getOwnPropertyNames(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      if (!d.enumerable || !('value' in d) || !jsonClean(d.value, depth + 1)) return false;
    }
    return true;
  }

  function jsonable(v) {
    try {
      return JSON.stringify(v) !== undefined;
    } catch (e) {
      return false;
    }
  }

  function isBinaryMime(mime) {
    return (mime.startsWith('image/') && mime !== 'image/svg+xml') || mime === 'application/pdf';
  }

  function bytesOf(v) {
    if (Buffer.isBuffer(v)) return v;
    if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (util.types.isAnyArrayBuffer(v)) return Buffer.from(v);
    return null;
  }

  function pngSize(b) {
    if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a &&
        b.toString('latin1', 12, 16) === 'IHDR') {
      return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
    }
    return null;
  }

  /* Stores v as data[mime] in its JSON form; false when left out. */
  function put(data, md, mime, v, obj, what) {
    if (isBinaryMime(mime)) {
      const b = bytesOf(v);
      if (b) {
        const size = mime === 'image/png' ? pngSize(b) : null;
        if (size && !(mime in md)) md[mime] = size;
        v = b.toString('base64');
      } else if (typeof v !== 'string') {
        warn(obj, what, new TypeError(mime + ' data must be bytes or base64 text, not ' + typeof v));
        return false;
      }
    } else if (mime === 'application/json' || mime.endsWith('+json')) {
      if (typeof v === 'string') {
        try {
          v = JSON.parse(v);
        } catch (e) {
          warn(obj, what, e);
          return false;
        }
      }
      if (!jsonable(v)) {
        warn(obj, what, new TypeError(mime + ' data is not JSON-serialisable'));
        return false;
      }
    } else if (bytesOf(v)) {
      v = bytesOf(v).toString('utf8');
    } else if (typeof v !== 'string' && !jsonable(v)) {
      v = String(v);
    }
    data[mime] = v;
    return true;
  }

  function method(obj, name) {
    try {
      const f = obj[name];
      return typeof f === 'function' ? f : null;
    } catch (e) {
      return null;
    }
  }

  function isPair(r) {
    return Array.isArray(r) && r.length === 2;
  }

  function bundle(obj) {
    const data = {};
    const md = {};
    let rich = obj !== null && typeof obj === 'object';
    if (rich) {
      try {                                   // objects (proxies) that claim every property
        rich = obj._ipython_canary_method_should_not_exist_ === undefined;
      } catch (e) {
        rich = false;
      }
    }
    if (rich) {
      for (const [key, label] of [[Symbol.for('sbx.mimebundle'), '[Symbol.for(\'sbx.mimebundle\')]'],
        ['_repr_mimebundle_', '_repr_mimebundle_']]) {
        const f = method(obj, key);
        if (!f) continue;
        let r;
        try {
          r = f.call(obj);
        } catch (e) {
          warn(obj, label, e);
          continue;
        }
        if (isPair(r)) {
          if (r[1] && typeof r[1] === 'object') Object.assign(md, r[1]);
          r = r[0];
        }
        if (r && typeof r === 'object') {
          for (const k of Object.keys(r)) {
            if (!(k in data)) put(data, md, k, r[k], obj, label);
          }
        }
      }
      for (const [mime, name] of REPRS) {
        if (mime in data) continue;
        const f = method(obj, name);
        if (!f) continue;
        let r;
        try {
          r = f.call(obj);
        } catch (e) {
          warn(obj, name, e);
          continue;
        }
        if (isPair(r) && !mime.endsWith('json')) {
          if (r[1]) md[mime] = r[1];
          r = r[0];
        }
        if (r !== undefined && r !== null) put(data, md, mime, r, obj, name);
      }
    }
    if (typeof data['text/plain'] !== 'string') data['text/plain'] = util.inspect(obj, INSPECT);
    if (!('application/json' in data) && (Array.isArray(obj) || isPlainObject(obj))) {
      let clean = false;
      try {
        clean = jsonClean(obj, 0);
      } catch (e) { /* getters, proxies: not JSON */ }
      if (clean) data['application/json'] = obj;
    }
    const meta = {};
    for (const k of Object.keys(md)) {
      if (k in data && jsonable(md[k])) meta[k] = md[k];
    }
    return [data, meta];
  }

  function result(data, md, main) {
    emit({ type: 'result', id: S.currentId, main: !!main, data, metadata: md });
  }

  function display(...values) {
    for (const v of values) {
      const [data, md] = bundle(v);
      result(data, md, false);
    }
  }

  function rawBundle(b, metadata) {
    if (b === null || typeof b !== 'object' || Array.isArray(b)) {
      throw new TypeError('display.raw() takes an object of mime type -> data');
    }
    const data = {};
    const md = {};
    for (const k of Object.keys(b)) put(data, md, k, b[k], b, 'display.raw()');
    if (metadata && typeof metadata === 'object') {
      for (const k of Object.keys(metadata)) {
        if (jsonable(metadata[k])) md[k] = metadata[k];
      }
    }
    result(data, md, false);
  }

  display.raw = rawBundle;
  display.html = (s) => rawBundle({ 'text/html': String(s), 'text/plain': '<HTML>' });
  display.markdown = (s) => rawBundle({ 'text/markdown': String(s), 'text/plain': String(s) });
  display.svg = (s) => rawBundle({ 'image/svg+xml': String(s), 'text/plain': '<SVG>' });
  display.png = (b) => rawBundle({ 'image/png': b, 'text/plain': '<PNG image>' });
  display.json = (v) => rawBundle({ 'application/json': v, 'text/plain': util.inspect(v, INSPECT) });

  // -------------------------------------------------------------------------
  // Tokenizer: just enough JavaScript to find top-level statements.
  // Token: {t: type, v: text, s: start, e: end, nl: line break before, d: depth}
  // t: 'name', 'num', 'str', 'tmpl' (a template or its tail), 'tmplhead'
  // (up to a '${'), 'regex', 'punct', 'priv'.  d: bracket depth outside the
  // token (for a closing bracket: after it closed).

  const PUNCTS = ['>>>=', '...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??=', '=>', '==',
    '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '<<',
    '>>', '**'];
  const BEFORE_EXPR = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw',
    'case', 'do', 'else', 'yield', 'await', 'extends']);
  const NUM_RE = /(?:0[xXoObB][0-9a-fA-F_]*n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?[\d_]+)?n?)/y;
  const ID_RE = /(?:[\w$\u0080-\uffff]|\\u\{?[0-9a-fA-F]+\}?)+/y;

  function isLineEnd(c) {
    return c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
  }

  function isSpace(c) {
    return c === 32 || c === 9 || c === 11 || c === 12 || c === 0xa0 || c === 0xfeff ||
      (c > 127 && /\s/.test(String.fromCharCode(c)));
  }

  function canEndExpr(p) {
    if (!p) return false;
    switch (p.t) {
      case 'num': case 'str': case 'tmpl': case 'regex': case 'priv':
        return true;
      case 'name':
        return !BEFORE_EXPR.has(p.v);
      case 'punct':
        return p.v === ')' || p.v === ']' || p.v === '}' || p.v === '++' || p.v === '--';
      default:
        return false;
    }
  }

  function regexAllowed(p, pp, ts) {
    if (!p) return true;
    if (ts && p.v === '!' && !p.nl && canEndExpr(pp)) return false;   // TypeScript's x! / 2
    if (p.t === 'name') return BEFORE_EXPR.has(p.v);
    if (p.t === 'punct') return !(p.v === ')' || p.v === ']' || p.v === '++' || p.v === '--');
    return p.t === 'tmplhead';
  }

  function tokenize(src, ts) {
    const toks = [];
    const stack = [];
    const n = src.length;
    let i = 0;
    let nl = false;
    let ok = true;
    if (src.startsWith('#!')) {
      while (i < n && !isLineEnd(src.charCodeAt(i))) i++;
    }
    const push = (t, s, e, d) => {
      toks.push({ t, v: src.slice(s, e), s, e, nl, d });
      nl = false;
    };
    /* A template from j (just after '`' or '}'); returns [end, opensSubstitution]. */
    const templatePart = (j) => {
      while (j < n) {
        const c = src.charCodeAt(j);
        if (c === 92) j += 2;
        else if (c === 96) return [j + 1, false];
        else if (c === 36 && src.charCodeAt(j + 1) === 123) return [j + 2, true];
        else j++;
      }
      ok = false;
      return [n, false];
    };
    while (i < n) {
      const c = src.charCodeAt(i);
      if (isLineEnd(c)) {
        nl = true;
        i++;
        continue;
      }
      if (isSpace(c)) {
        i++;
        continue;
      }
      const d = stack.length;
      const prev = toks.length ? toks[toks.length - 1] : null;
      if (c === 47) {                           // '/'
        const c2 = src.charCodeAt(i + 1);
        if (c2 === 47) {
          while (i < n && !isLineEnd(src.charCodeAt(i))) i++;
          continue;
        }
        if (c2 === 42) {
          const end = src.indexOf('*/', i + 2);
          const stop = end < 0 ? n : end + 2;
          if (end < 0) ok = false;
          if (/[\n\r\u2028\u2029]/.test(src.slice(i, stop))) nl = true;
          i = stop;
          continue;
        }
        if (regexAllowed(prev, toks[toks.length - 2], ts)) {
          let j = i + 1;
          let cls = false;
          while (j < n) {
            const r = src.charCodeAt(j);
            if (isLineEnd(r)) {
              ok = false;
              break;
            }
            if (r === 92) j += 2;
            else if (r === 91) { cls = true; j++; } else if (r === 93) { cls = false; j++; } else if (r === 47 && !cls) { j++; break; } else j++;
          }
          ID_RE.lastIndex = j;
          if (ID_RE.test(src)) j = ID_RE.lastIndex;
          push('regex', i, j, d);
          i = j;
          continue;
        }
      }
      if (c === 39 || c === 34) {               // ' "
        let j = i + 1;
        while (j < n) {
          const r = src.charCodeAt(j);
          if (r === 92) j += src.charCodeAt(j + 1) === 13 && src.charCodeAt(j + 2) === 10 ? 3 : 2;
          else if (r === c) { j++; break; } else if (r === 10 || r === 13) { ok = false; break; } else j++;
        }
        push('str', i, Math.min(j, n), d);
        i = j;
        continue;
      }
      if (c === 96) {                           // `
        const [end, open] = templatePart(i + 1);
        push(open ? 'tmplhead' : 'tmpl', i, end, d);
        if (open) stack.push('${');
        i = end;
        continue;
      }
      if (c === 125 && stack[stack.length - 1] === '${') {   // } ending a substitution
        stack.pop();
        const [end, open] = templatePart(i + 1);
        push(open ? 'tmplhead' : 'tmpl', i, end, stack.length);
        if (open) stack.push('${');
        i = end;
        continue;
      }
      if ((c >= 48 && c <= 57) || (c === 46 && src.charCodeAt(i + 1) >= 48 && src.charCodeAt(i + 1) <= 57)) {
        NUM_RE.lastIndex = i;
        let j = NUM_RE.test(src) ? NUM_RE.lastIndex : i + 1;
        ID_RE.lastIndex = j;                    // 1_000n, 0b101, garbage: one token
        if (ID_RE.test(src)) j = ID_RE.lastIndex;
        push('num', i, j, d);
        i = j;
        continue;
      }
      if (c === 35 || c === 92 || c === 36 || c === 95 || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c > 127) {
        ID_RE.lastIndex = c === 35 ? i + 1 : i;
        const j = ID_RE.test(src) ? ID_RE.lastIndex : i + 1;
        push(c === 35 ? 'priv' : 'name', i, j, d);
        i = j;
        continue;
      }
      let p = null;
      for (const q of PUNCTS) {
        if (src.startsWith(q, i)) {
          p = q;
          break;
        }
      }
      if (p === '?.' && /[0-9]/.test(src.charAt(i + 2))) p = null;
      if (p === null) p = src.charAt(i);
      if (p === '(' || p === '[' || p === '{') {
        push('punct', i, i + 1, d);
        stack.push(p);
      } else if (p === ')' || p === ']' || p === '}') {
        if (stack.length) stack.pop();
        else ok = false;
        push('punct', i, i + 1, stack.length);
      } else {
        push('punct', i, i + p.length, d);
      }
      i += p.length;
    }
    return { toks, ok: ok && stack.length === 0 };
  }

  function isP(tok, v) {
    return !!tok && tok.t === 'punct' && tok.v === v;
  }

  function isName(tok, v) {
    return !!tok && tok.t === 'name' && (v === undefined || tok.v === v);
  }

  /* Token i (at depth 0) starts a statement. */
  function stmtStart(toks, i) {
    if (i === 0) return true;
    const p = toks[i - 1];
    if (isP(p, ';') || isP(p, '}')) return true;
    return toks[i].nl && canEndExpr(p);
  }

  /* Token t ends the expression before it when a line break precedes it
  (automatic semicolon insertion). */
  function startsNewStatement(t) {
    if (t.t === 'tmpl' || t.t === 'tmplhead') return false;
    if (t.t === 'name') return t.v !== 'in' && t.v !== 'instanceof';
    if (t.t === 'punct') return t.v === '{' || t.v === '!' || t.v === '~' || t.v === '++' || t.v === '--';
    return true;
  }

  /* Index of the token ending an initializer that starts at k: a ',' or ';'
  at depth 0, or a statement that starts after a line break. */
  function skipExpr(toks, k) {
    const start = k;
    for (; k < toks.length; k++) {
      const t = toks[k];
      if (t.d !== 0) continue;
      if (isP(t, ',') || isP(t, ';')) return k;
      if (k > start && t.nl && canEndExpr(toks[k - 1]) && startsNewStatement(t)) return k;
    }
    return k;
  }

  function matchClose(toks, j) {
    const d = toks[j].d;
    for (let k = j + 1; k < toks.length; k++) {
      if (toks[k].d === d && toks[k].t === 'punct' && (toks[k].v === ')' || toks[k].v === ']' || toks[k].v === '}')) return k;
    }
    return toks.length - 1;
  }

  /* Skips a default value inside a pattern at depth `inner`. */
  function skipDefault(toks, k, inner) {
    for (; k < toks.length; k++) {
      const t = toks[k];
      if (t.d === inner && isP(t, ',')) return k;
      if (t.d === inner - 1 && (isP(t, '}') || isP(t, ']'))) return k;
    }
    return k;
  }

  /* Collects the names a destructuring pattern binds; returns the index
  after its closing bracket. */
  function patternNames(toks, j, names) {
    const close = matchClose(toks, j);
    const inner = toks[j].d + 1;
    const target = (k) => {
      if (isP(toks[k], '{') || isP(toks[k], '[')) return patternNames(toks, k, names);
      if (isName(toks[k])) names.push(toks[k].v);
      return k + 1;
    };
    let k = j + 1;
    while (k < close) {
      const before = k;
      if (isP(toks[k], ',')) {
        k++;
        continue;
      }
      if (isP(toks[k], '...')) k = target(k + 1);
      else if (isP(toks[j], '[')) k = target(k);
      else {
        const key = toks[k];
        k = isP(key, '[') ? matchClose(toks, k) + 1 : k + 1;
        if (isP(toks[k], ':') && toks[k].d === inner) k = target(k + 1);
        else if (isName(key)) names.push(key.v);
      }
      if (isP(toks[k], '=') && toks[k].d === inner) k = skipDefault(toks, k + 1, inner);
      if (k < close && !isP(toks[k], ',')) k = skipDefault(toks, k, inner);
      if (k <= before) k = before + 1;
    }
    return close + 1;
  }

  /* A var/let/const declaration whose keyword is token i: {names, uninit
  (token indices of identifiers bound without an initializer), end}. */
  function declaration(toks, i) {
    const names = [];
    const uninit = [];
    let j = i + 1;
    for (;;) {
      const b = toks[j];
      let k;
      if (isName(b)) {
        names.push(b.v);
        k = j + 1;
      } else if (isP(b, '[') || isP(b, '{')) {
        k = patternNames(toks, j, names);
      } else {
        return { names, uninit, end: j };
      }
      if (isP(toks[k], '=') && toks[k].d === 0) k = skipExpr(toks, k + 1);
      else if (isName(b)) uninit.push(j);
      if (isP(toks[k], ',') && toks[k].d === 0) {
        j = k + 1;
        continue;
      }
      return { names, uninit, end: k };
    }
  }

  const LEX_NEXT = (t) => isName(t) || isP(t, '[') || isP(t, '{');

  /* The top-level declarations of a cell. */
  function declarations(toks, withVar) {
    const out = [];
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      if (t.d !== 0 || t.t !== 'name') continue;
      const next = toks[i + 1];
      if ((t.v === 'let' || t.v === 'const') && LEX_NEXT(next) && !isName(next, 'in') && !isName(next, 'instanceof') &&
          stmtStart(toks, i)) {
        out.push(Object.assign({ kind: t.v, i }, declaration(toks, i)));
      } else if (withVar && t.v === 'var' && LEX_NEXT(next) &&
          (stmtStart(toks, i) || (!t.nl && (isP(toks[i - 1], ')') || isName(toks[i - 1], 'else'))))) {
        out.push(Object.assign({ kind: 'var', i }, declaration(toks, i)));
      } else if (t.v === 'class' && isName(next) && next.v !== 'extends' && stmtStart(toks, i)) {
        let k = i + 2;
        while (k < toks.length && !(isP(toks[k], '{') && toks[k].d === 0)) k++;
        if (k < toks.length) out.push({ kind: 'class', i, names: [next.v], close: matchClose(toks, k) });
      } else if (withVar && (t.v === 'function' || (t.v === 'async' && isName(next, 'function') && !next.nl)) &&
          stmtStart(toks, i)) {
        let k = t.v === 'async' ? i + 2 : i + 1;
        if (isP(toks[k], '*')) k++;
        if (isName(toks[k])) out.push({ kind: 'function', i, names: [toks[k].v] });
      }
    }
    return out;
  }

  function applyEdits(src, edits) {
    edits.sort((a, b) => b.pos - a.pos || b.order - a.order);
    let out = src;
    for (const ed of edits) out = out.slice(0, ed.pos) + ed.ins + out.slice(ed.pos + (ed.del || 0));
    return out;
  }

  /* Synchronous cells: top-level let/const/class become global vars. */
  function rewriteSync(src) {
    const { toks, ok } = tokenize(src);
    if (!ok) return null;
    const edits = [];
    for (const dcl of declarations(toks, false)) {
      const t = toks[dcl.i];
      if (dcl.kind === 'class') {
        edits.push({ pos: t.s, ins: 'var ' + dcl.names[0] + ' = ', order: 0 });
        edits.push({ pos: toks[dcl.close].e, ins: ';', order: 0 });
      } else {
        edits.push({ pos: t.s, del: t.v.length, ins: t.v === 'let' ? 'var' : 'var  ', order: 0 });
        if (dcl.kind === 'let') {
          for (const u of dcl.uninit) edits.push({ pos: toks[u].e, ins: ' = void 0', order: 0 });
        }
      }
    }
    return edits.length ? applyEdits(src, edits) : src;
  }

  /* import declarations -> `var ... = await import(...)`, line count kept. */
  function rewriteImports(src) {
    const { toks, ok } = tokenize(src);
    if (!ok) return src;
    const edits = [];
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i];
      if (t.d !== 0 || !isName(t, 'import') || isP(toks[i + 1], '(') || isP(toks[i + 1], '.') || !stmtStart(toks, i)) continue;
      let k = i + 1;
      let def = null;
      let ns = null;
      const specs = [];
      let mod;
      if (toks[k] && toks[k].t === 'str') {
        mod = toks[k];
      } else {
        if (isName(toks[k]) && !isName(toks[k], 'from')) {
          def = toks[k].v;
          k++;
          if (isP(toks[k], ',')) k++;
        } else if (isName(toks[k], 'from') && isName(toks[k + 1], 'from')) {
          def = 'from';
          k++;
        }
        if (isP(toks[k], '*') && isName(toks[k + 1], 'as') && isName(toks[k + 2])) {
          ns = toks[k + 2].v;
          k += 3;
        } else if (isP(toks[k], '{')) {
          const close = matchClose(toks, k);
          k++;
          while (k < close) {
            const a = toks[k];
            if (isP(a, ',')) {
              k++;
              continue;
            }
            const key = a.v;
            if (isName(toks[k + 1], 'as') && toks[k + 2]) {
              specs.push(key + ': ' + toks[k + 2].v);
              k += 3;
            } else {
              specs.push(key);
              k++;
            }
          }
          k = close + 1;
        }
        if (!isName(toks[k], 'from') || !toks[k + 1] || toks[k + 1].t !== 'str') continue;
        mod = toks[k + 1];
      }
      let end = mod.e;
      let after = toks.indexOf(mod) + 1;
      if (isP(toks[after], ';')) end = toks[after].e;
      const imp = 'await import(' + mod.v + ')';
      let text;
      if (ns) text = 'var ' + ns + ' = ' + imp + (def ? ', ' + def + ' = ' + ns + '.default' : '') + ';';
      else if (def || specs.length) {
        text = 'var {' + (def ? 'default: ' + def + (specs.length ? ', ' : '') : '') + specs.join(', ') + '} = ' + imp + ';';
      } else text = imp + ';';
      const lines = src.slice(t.s, end).split(/\r\n|[\n\r\u2028\u2029]/).length - 1;
      edits.push({ pos: t.s, del: end - t.s, ins: text + '\n'.repeat(lines), order: 0 });
      i = after - 1;
    }
    return edits.length ? applyEdits(src, edits) : src;
  }

  const NOT_EXPR = new Set(['function', 'class', 'let', 'const', 'var', 'if', 'for', 'while', 'do', 'try',
    'switch', 'return', 'throw', 'break', 'continue', 'import', 'export', 'debugger', 'with', 'else', 'catch',
    'finally', 'case', 'default']);

  function compiles(src) {
    try {
      new vm.Script(src, { filename: '<sbx-driver>' });
      return true;
    } catch (e) {
      return false;
    }
  }

  /* Async cells: the body of an async arrow; declarations go to globals,
  the last expression statement is returned.  Returns the script source
  (its first line is the driver's prelude) or null. */
  function rewriteAsync(src, withReturn) {
    const { toks, ok } = tokenize(src);
    if (!ok) return null;
    const dcls = declarations(toks, true);
    const edits = [];
    const names = new Set();
    const fns = [];
    const converted = new Set();
    const inside = new Set();
    for (const dcl of dcls) {
      const t = toks[dcl.i];
      if (dcl.kind === 'function') {
        fns.push(dcl.names[0]);
        continue;
      }
      for (const nm of dcl.names) names.add(nm);
      converted.add(dcl.i);
      for (let k = dcl.i + 1; k < (dcl.kind === 'class' ? dcl.close + 1 : dcl.end); k++) inside.add(k);
      if (dcl.kind === 'class') {
        edits.push({ pos: t.s, ins: dcl.names[0] + ' = ', order: 0 });
        edits.push({ pos: toks[dcl.close].e, ins: ';', order: 0 });
      } else {
        // `let {a} = o, b` -> `0 , {a} = o, b`: one expression statement
        edits.push({ pos: t.s, del: t.v.length, ins: t.v === 'const' ? '0 ,  ' : '0 ,', order: 0 });
        if (dcl.kind === 'let') {
          for (const u of dcl.uninit) edits.push({ pos: toks[u].e, ins: ' = void 0', order: 0 });
        }
      }
    }
    // The last statement, when it is an expression: the longest suffix after
    // the last top-level ';' that compiles as one expression.
    let last = toks.length - 1;
    let endTok = toks.length;
    if (last >= 0 && isP(toks[last], ';') && toks[last].d === 0) endTok = last;
    let from = 0;
    for (let k = endTok - 1; k >= 0; k--) {
      if (toks[k].d === 0 && isP(toks[k], ';')) {
        from = k + 1;
        break;
      }
    }
    let ret = -1;
    for (let c = from; withReturn && c < endTok; c++) {
      const t = toks[c];
      if (t.d !== 0 || converted.has(c) || inside.has(c)) continue;
      if (!(c === from || isP(toks[c - 1], '}') || (t.nl && canEndExpr(toks[c - 1]) && startsNewStatement(t)))) continue;
      if ((t.t === 'name' && NOT_EXPR.has(t.v)) || isP(t, '{') || isP(t, ';')) continue;
      if (isName(t, 'async') && isName(toks[c + 1], 'function')) continue;
      const suffix = src.slice(t.s, toks[endTok - 1].e);
      if (compiles('(async () => (\n' + suffix + '\n))')) {
        ret = c;
        break;
      }
    }
    if (ret >= 0) {
      edits.push({ pos: toks[ret].s, ins: 'return (', order: 1 });
      edits.push({ pos: toks[endTok - 1].e, ins: '\n)', order: -1 });
    }
    const body = applyEdits(src, edits);
    const decl = names.size ? 'var ' + Array.from(names).join(', ') + '; ' : '';
    const hoist = fns.map((f) => 'globalThis.' + f + ' = ' + f + '; ').join('');
    return decl + '(async () => { ' + hoist + '\n' + body + '\n})()';
  }

  // -------------------------------------------------------------------------
  // TypeScript: a cell's type syntax becomes spaces (line breaks kept), its
  // enums and parameter properties are rewritten in place.  A small parser
  // over the tokenizer's tokens: frames for the brackets (block, object,
  // params, class, ...), a skipper for types.

  const TS_MODS = /^(public|private|protected|readonly|abstract|override|declare)$/;
  const CLASS_MODS = /^(public|private|protected|readonly|abstract|override|declare|static|async|get|set|accessor)$/;
  const PARAM_MODS = /^(public|private|protected|readonly|override)$/;
  const SEMI = { t: 'punct', v: ';' };

  function stripTypes(src) {
    const tk = tokenize(src, true);
    if (!tk.ok) return src;                   // unterminated: JavaScript's own error says where
    const T = [];
    for (const t of tk.toks) {                // '>>', '>=': one '>' each, for type arguments
      if (t.t === 'punct' && /^>[>=]/.test(t.v)) {
        for (let k = 0; k < t.v.length; k++) {
          T.push({ t: 'punct', v: t.v[k], s: t.s + k, e: t.s + k + 1, nl: t.nl && !k, d: t.d });
        }
      } else T.push(t);
    }
    const n = T.length;
    const M = [];                             // opening token -> its closing token
    const opened = [];
    for (let k = 0; k < n; k++) {
      const t = T[k];
      const c = t.t === 'punct' ? t.v : t.t[0] === 't' ? t.v[0] : '';
      if (c === ')' || c === ']' || c === '}') M[opened.pop()] = k;
      if (c === '(' || c === '[' || c === '{' || t.t === 'tmplhead') opened.push(k);
    }
    const buf = src.split('');
    const fail = (what, k) => {
      const e = new Error('TypeScript not understood: ' + (/^[a-z]/.test(what) ? 'expected ' : '') + what);
      e.tsPos = k >= 0 && k < n ? T[k].s : src.length;
      throw e;
    };
    const need = (k, what, at) => (k < 0 ? fail(what, at) : k);
    const pu = (k, v) => isP(T[k], v);
    const nm = (k, v) => isName(T[k], v);
    const close = (k) => (M[k] === undefined ? n : M[k]);
    const blankT = (a, b) => {                // tokens a .. b-1
      b = Math.min(b, n);
      for (let p = T[a].s; b > a && p < T[b - 1].e; p++) if (!isLineEnd(src.charCodeAt(p))) buf[p] = ' ';
    };
    const drop = (a, b) => {                  // a statement or class member: ';' and spaces
      blankT(a, b);
      buf[T[a].s] = ';';
    };

    // Types: each returns the index after the type, or -1.
    function list(k) {                        // <A, B extends C = D>
      if (!pu(k, '<')) return -1;
      for (k++; !pu(k, '>');) {
        if (nm(k) && /^(const|in|out)$/.test(T[k].v) && nm(k + 1)) k++;
        k = ty(k);
        if (k >= 0 && nm(k, 'extends')) k = ty(k + 1);
        if (k >= 0 && pu(k, '=')) k = ty(k + 1);
        if (k < 0) return -1;
        if (pu(k, ',')) k++;
        else if (!pu(k, '>')) return -1;
      }
      return k + 1;
    }
    function operand(k) {
      while (nm(k) && /^(keyof|unique|readonly|infer|typeof|abstract)$/.test(T[k].v) && T[k + 1] &&
          (T[k + 1].t === 'name' || /^[[{(]$/.test(T[k + 1].v))) k++;
      if (nm(k, 'new') && (pu(k + 1, '(') || pu(k + 1, '<'))) k++;
      const t = T[k];
      if (!t) return -1;
      if (t.t === 'name') {
        k++;
        if (t.v === 'import' && pu(k, '(')) k = close(k) + 1;
        while (pu(k, '.') && nm(k + 1)) k += 2;
        if (pu(k, '<') && !T[k].nl) k = list(k);
      } else if (t.t === 'str' || t.t === 'num' || t.t === 'tmpl') k++;
      else if (t.t === 'tmplhead') {
        while (T[k] && T[k].t === 'tmplhead') k = close(k);
        k++;
      } else if (isP(t, '-') && T[k + 1] && T[k + 1].t === 'num') k += 2;
      else if (isP(t, '{') || isP(t, '[')) k = close(k) + 1;
      else if (isP(t, '(') || isP(t, '<')) {  // (A), (a: A) => B, <T>(a: T) => B
        if (isP(t, '<')) k = list(k);
        if (!pu(k, '(')) return -1;
        k = close(k) + 1;
        if (pu(k, '=>')) return ret(k + 1);
        if (isP(t, '<')) return -1;
      } else return -1;
      while (k >= 0 && pu(k, '[') && !T[k].nl) k = close(k) + 1;
      return k;
    }
    function union(k) {
      if (pu(k, '|') || pu(k, '&')) k++;
      for (;;) {
        k = operand(k);
        if (k < 0 || !(pu(k, '|') || pu(k, '&'))) return k;
        k++;
      }
    }
    function ty(k) {
      k = union(k);
      if (k >= 0 && nm(k, 'extends')) {       // A extends B ? C : D
        const b = union(k + 1);
        const x = pu(b, '?') ? ty(b + 1) : -1;
        if (pu(x, ':')) return ty(x + 1);
      }
      return k;
    }
    function ret(k) {                         // a return type: also `x is T`, `asserts x [is T]`
      if (nm(k, 'asserts') && nm(k + 1) && !nm(k + 1, 'is')) {
        if (!nm(k + 2, 'is')) return k + 2;
        k++;
      }
      if (nm(k) && nm(k + 1, 'is')) k += 2;
      return ty(k);
    }

    const st = [{ k: 'block', q: 0 }];        // q: ternary '?' waiting for their ':'
    let P = null;                             // the last token JavaScript keeps
    let body = null;                          // the params whose body the next '{' opens
    const ends = () => canEndExpr(P) && !P.ctl;
    const push = (k, f, i) => {
      st.push(Object.assign({ k, q: 0 }, f));
      P = T[i];
      return i + 1;
    };
    const endMember = (F, j) => {
      if (F.drop) drop(F.m0, j);
      F.ms = 'start';
      F.drop = false;
      F.q = 0;
    };
    const arrowAt = (c, F) => pu(c + 1, '=>') || (pu(c + 1, ':') && !F.q && pu(ret(c + 2), '=>'));

    function closed(F, i) {
      P = T[i];
      if (F.k === 'class' && F.ms !== 'start') endMember(F, i);
      if (F.ctl) P = Object.assign({ ctl: true }, P);
      if (F.k !== 'params') {
        if (F.then) F.then();
        return i + 1;
      }
      let j = i + 1;
      if (!F.katch && pu(j, ':')) {
        const r = need(ret(j + 1), 'a return type', j + 1);
        blankT(j, r);
        j = r;
      }
      if (F.arrow) return j;
      if (pu(j, '{')) body = F;
      else if (F.sig !== undefined) {         // no body: an overload signature, or abstract
        if (pu(j, ';')) j++;
        drop(F.sig, j);
        P = SEMI;
        if (F.then) F.then();
      }
      return j;
    }

    function tsDecl(k, start) {
      const a = T[k];
      const b = T[k + 1];
      if (!isName(a) || !b || b.nl) return -1;
      const v = a.v;
      let j = k + 2;
      if (v === 'interface' && isName(b)) {
        if (pu(j, '<')) j = list(j);
        if (nm(j, 'extends')) do j = ty(j + 1); while (pu(j, ','));
        if (!pu(j, '{')) fail('an interface', k);
        j = close(j) + 1;
      } else if (v === 'type' && isName(b) && (pu(j, '=') || pu(j, '<'))) {
        if (pu(j, '<')) j = list(j);
        if (!pu(j, '=')) fail('a type alias', k);
        j = need(ty(j + 1), 'a type', j + 1);
      } else if (v === 'declare' &&
          /^(const|let|var|function|class|enum|module|namespace|global|abstract|type|interface)$/.test(b.v)) {
        if (b.v === 'type' || b.v === 'interface') return tsDecl(k + 1, start);
        if (/^(const|let|var)$/.test(b.v)) {
          do {
            j = pu(j, '{') || pu(j, '[') ? close(j) + 1 : j + 1;
            if (pu(j, ':')) j = need(ty(j + 1), 'a type', j + 1);
            if (pu(j, '=')) for (j++; j < n && !(T[j].d === a.d && (pu(j, ',') || pu(j, ';') || T[j].nl)); j++);
          } while (pu(j, ',') && ++j);
        } else if (b.v === 'function') {
          if (nm(j)) j++;
          if (pu(j, '<')) j = list(j);
          if (!pu(j, '(')) fail('a declared function', k);
          j = close(j) + 1;
          if (pu(j, ':')) j = need(ret(j + 1), 'a return type', j + 1);
        } else {                              // class, enum, module, namespace, global
          while (j < n && !pu(j, '{') && !pu(j, ';') && !T[j].nl) j = pu(j, '<') ? Math.max(list(j), j + 1) : j + 1;
          if (pu(j, '{')) j = close(j) + 1;
        }
      } else if ((v === 'namespace' || v === 'module') && (isName(b) || b.t === 'str') && (pu(j, '{') || pu(j, '.'))) {
        fail("'" + v + "' blocks are not supported (declare " + v + ' is removed)', k);
      } else if (v === 'abstract' && isName(b, 'class')) {
        blankT(k, k + 1);
        return k + 1;
      } else if (v === 'enum' && isName(b)) return enumDecl(k, k);
      else if (v === 'const' && isName(b, 'enum') && nm(k + 2)) return enumDecl(k, k + 1);
      else return -1;
      if (pu(j, ';')) j++;
      drop(start, j);
      P = SEMI;
      return j;
    }

    /* enum E {A, B = 5, C = 'c'} -> var E = (function (E) {...; return E; })({});
    the members on their own lines, numeric ones mapped back (E[0] === 'A'). */
    function enumDecl(start, e) {
      const name = T[e + 1].v;
      let j = e + 2;
      if (!pu(j, '{')) fail('an enum', e);
      const end = close(j);
      let last = T[start].s;
      let out = 'var ' + name + ' = (function (' + name + ') { ';
      const lines = (to) => {
        out += (src.slice(last, to).match(/\r\n?|[\n\u2028\u2029]/g) || []).join('');
        last = to;
      };
      let prev = null;
      for (j++; j < end;) {
        if (pu(j, ',')) {
          j++;
          continue;
        }
        const m = T[j];
        if (m.t !== 'name' && m.t !== 'str') fail('an enum member', j);
        lines(m.s);
        const key = m.t === 'str' ? m.v : JSON.stringify(m.v);
        let x = j + 1;
        let val;
        let num = null;
        let str = false;
        if (pu(x, '=')) {
          const v0 = x + 1;
          for (x = v0; x < end && !(pu(x, ',') && T[x].d === m.d); x++);
          if (x === v0) fail('an enum member value', x);
          val = src.slice(T[v0].s, T[x - 1].e);
          last = T[x - 1].e;
          if (x === v0 + 1) {
            str = T[v0].t === 'str' || T[v0].t === 'tmpl';
            if (T[v0].t === 'num') num = Number(val);
          }
        } else if (prev && prev.str) fail('a value for this enum member (the one before it is a string)', j);
        else {
          num = prev ? (prev.num === null ? null : prev.num + 1) : 0;
          val = num === null ? name + '[' + prev.key + '] + 1' : String(num);
        }
        if (!Number.isFinite(num)) num = null;
        let local = m.t === 'name' && m.v !== name;  // later values may name earlier members
        try {
          if (local) new Function('var ' + m.v);
        } catch (err) {
          local = false;
        }
        const at = name + '[' + key + ']';
        out += (local ? 'var ' + m.v + ' = ' : '') + at + ' = ' + val + '; ' +
          (str ? '' : 'if (typeof ' + at + ' !== "string") ' + name + '[' + at + '] = ' + key + '; ');
        prev = { key, num, str };
        j = x;
      }
      lines(T[end].s);
      buf[T[start].s] = out + 'return ' + name + '; })({});';
      for (let p = T[start].s + 1; p < T[end].e; p++) buf[p] = '';
      P = T[end];
      return end + 1;
    }

    function specs(b) {                       // {a, type B, type C as D}: blanks the types, counts the rest
      let left = 0;
      for (let x = b + 1; x < close(b);) {
        let y = x + 1;
        if (nm(x, 'type') && T[y] && /^(name|str)$/.test(T[y].t) &&
            !(nm(y, 'as') && /^[,}]$/.test(T[y + 2] ? T[y + 2].v : ''))) {
          y++;
          if (nm(y, 'as')) y += 2;
          if (pu(y, ',')) y++;
          blankT(x, y);
        } else if (!pu(x, ',')) {
          left++;
          if (nm(y, 'as')) y += 2;
        }
        x = y;
      }
      return left;
    }

    function member(F, i) {                   // a class body, but in a field's initializer
      const t = T[i];
      if (F.ms === 'start') {
        if (pu(i, ';')) {
          P = t;
          return i + 1;
        }
        F.m0 = i;
        let k = i;
        for (;;) {
          const a = T[k];
          const b = T[k + 1];
          if (isName(a, 'static') && isP(b, '{')) return push('block', { then: () => { F.ms = 'start'; } }, k + 1);
          if (!isName(a) || !CLASS_MODS.test(a.v) || !b ||
              !(/^(name|str|num|priv)$/.test(b.t) || isP(b, '[') || isP(b, '*'))) break;
          if (TS_MODS.test(a.v)) {
            blankT(k, k + 1);
            if (a.v === 'abstract' || a.v === 'declare') F.drop = true;
          }
          k++;
        }
        if (pu(k, '*')) k++;
        if (pu(k, '[') && nm(k + 1) && pu(k + 2, ':')) {  // an index signature
          let j = close(k) + 1;
          if (pu(j, ':')) j = need(ty(j + 1), 'a type', j + 1);
          if (pu(j, ';')) j++;
          drop(i, j);
          F.drop = false;
          return j;
        }
        F.ms = 'key';
        if (pu(k, '[')) return push('bracket', {}, k);
        if (!T[k] || !/^(name|str|num|priv)$/.test(T[k].t)) fail('a class member (decorators are not supported)', k);
        F.ctor = nm(k, 'constructor');
        P = T[k];
        return k + 1;
      }
      if (F.ms === 'key') {
        if ((pu(i, '?') || pu(i, '!')) && !t.nl) {
          blankT(i, i + 1);
          return i + 1;
        }
        if (pu(i, '<')) {
          const j = need(list(i), 'type parameters', i);
          blankT(i, j);
          return j;
        }
        if (pu(i, '(')) {
          F.ms = 'method';
          return push('params', { ps: 's', sig: F.m0, props: F.ctor ? [] : null, ext: F.ext,
            then: () => { F.ms = 'start'; F.drop = false; } }, i);
        }
        F.ms = 'type';
        if (pu(i, ':')) {
          const j = need(ty(i + 1), 'a type', i + 1);
          blankT(i, j);
          return j;
        }
      }
      if (F.ms === 'type' && pu(i, '=')) {
        F.ms = 'init';
        P = t;
        return i + 1;
      }
      if (pu(i, ';')) {
        endMember(F, i + 1);
        P = t;
        return i + 1;
      }
      endMember(F, i);
      return i;
    }

    function param(F, i) {                    // a parameter's binding, '?', type
      const t = T[i];
      if (F.ps === 's') {
        if (t.t === 'name' && PARAM_MODS.test(t.v) && (nm(i + 1) || pu(i + 1, '{') || pu(i + 1, '['))) {
          blankT(i, i + 1);
          F.pp = true;
          return i + 1;
        }
        if (nm(i, 'this') && pu(i + 1, ':')) {
          let j = need(ty(i + 2), 'a type', i + 2);
          if (pu(j, ',')) j++;
          blankT(i, j);
          return j;
        }
        if (pu(i, '...')) {
          P = t;
          return i + 1;
        }
        F.ps = 'a';
        if (t.t === 'name') {
          if (F.pp && F.props) F.props.push(t.v);
          P = t;
          return i + 1;
        }
        if (pu(i, '{') || pu(i, '[')) return push(t.v === '{' ? 'object' : 'bracket', {}, i);
        return -1;
      }
      if ((pu(i, '?') || pu(i, ':')) && !F.q) {
        const j = pu(i, '?') ? i + 1 : need(ty(i + 1), 'a type', i + 1);
        blankT(i, j);
        return j;
      }
      if (pu(i, '=') || pu(i, ',')) {
        F.ps = t.v === '=' ? 'd' : 's';
        F.pp = false;
        P = t;
        return i + 1;
      }
      return -1;
    }

    function decl(F, i) {                     // after let/const/var
      const t = T[i];
      if (F.decl === 'b') {
        F.decl = 'a';
        if (t.t === 'name') {
          P = t;
          return i + 1;
        }
        if (pu(i, '{') || pu(i, '[')) return push(t.v === '{' ? 'object' : 'bracket', {}, i);
      } else if (F.decl === 'a') {
        if ((pu(i, '!') && !t.nl) || pu(i, ':')) {
          const j = pu(i, '!') ? i + 1 : need(ty(i + 1), 'a type', i + 1);
          blankT(i, j);
          return j;
        }
        if (pu(i, '=') || pu(i, ',')) {
          F.decl = t.v === '=' ? 'i' : 'b';
          P = t;
          return i + 1;
        }
      } else if (pu(i, ',')) {
        F.decl = 'b';
        P = t;
        return i + 1;
      } else if (!pu(i, ';') && !(t.nl && ends() && startsNewStatement(t))) return -1;
      F.decl = 0;
      return -1;
    }

    function expr(F, i) {
      const t = T[i];
      const c = t.t === 'punct' ? t.v : '';
      if (t.t === 'name' && !isP(P, '.') && !isP(P, '?.') &&
          !(F.k === 'object' && /^[:,}(=]$/.test(T[i + 1] ? T[i + 1].v : ''))) {
        const r = tsDecl(i, i);
        if (r >= 0) return r;
        const v = t.v;
        if ((v === 'let' || v === 'const' || v === 'var') && (nm(i + 1) || pu(i + 1, '{') || pu(i + 1, '['))) {
          F.decl = 'b';
          P = t;
          return i + 1;
        }
        if (v === 'function') {
          let k = i + 1;
          if (pu(k, '*')) k++;
          if (nm(k)) k++;
          if (pu(k, '<')) {
            const j = need(list(k), 'type parameters', k);
            blankT(k, j);
            k = j;
          }
          let s = i;
          if (nm(s - 1, 'async')) s--;
          if (nm(s - 1, 'default')) s--;
          if (nm(s - 1, 'export')) s--;
          if (pu(k, '(')) return push('params', { ps: 's', sig: s }, k);
        }
        if (v === 'class' && (nm(i + 1) || pu(i + 1, '{'))) {
          let k = i + 1;
          if (nm(k) && !/^(extends|implements)$/.test(T[k].v)) k++;
          if (pu(k, '<')) {
            const j = need(list(k), 'type parameters', k);
            blankT(k, j);
            k = j;
          }
          const ext = nm(k, 'extends');
          for (; k < n && !(pu(k, '{') && T[k].d === t.d); k++) {
            let j = -1;
            if (nm(k, 'implements')) for (j = k; j < n && !(pu(j, '{') && T[j].d === t.d); j++);
            else if (pu(k, '<') && T[k].d === t.d) j = list(k);
            if (j > 0) {
              blankT(k, j);
              k = j - 1;
            }
          }
          if (k >= n) fail('a class', i);
          return push('class', { ms: 'start', ext }, k);
        }
        if (v === 'import' && !pu(i + 1, '(') && !pu(i + 1, '.')) {
          let k = i + 1;
          if (nm(k) && pu(k + 1, '=')) {      // import x = require('x')
            buf[t.s] = 'const ';
            for (let p = t.s + 1; p < t.e; p++) buf[p] = '';
            P = t;
            return i + 1;
          }
          let e = k;
          while (e < n && T[e].t !== 'str') e++;
          if (e >= n) fail('a module name', i);
          const end = pu(e + 1, ';') ? e + 2 : e + 1;
          let types = nm(k, 'type') && !pu(k + 1, ',') && !(nm(k + 1, 'from') && !nm(k + 2, 'from'));
          let b = k;
          while (b < e && !pu(b, '{')) b++;
          if (!types && b < e) types = !specs(b) && b === k;
          if (types) {
            drop(i, end);
            P = SEMI;
            return end;
          }
          P = T[e];
          return e + 1;
        }
        if (v === 'export') {
          const r2 = tsDecl(i + 1, i);
          if (r2 >= 0) return r2;
          let k = i + 1;
          const types = nm(k, 'type') && (pu(k + 1, '{') || pu(k + 1, '*'));
          if (types) k++;
          if (pu(k, '{') || pu(k, '*')) {     // export {a as b} [from 'm'], export * from 'm'
            if (pu(k, '{')) specs(k);
            let e = pu(k, '{') ? close(k) + 1 : k + 1;
            if (pu(k, '*')) while (e < n && T[e].t !== 'str') e++;
            else if (nm(e, 'from')) e++;
            if (T[e] && T[e].t === 'str') e++;
            if (pu(e, ';')) e++;
            if (types) drop(i, e);
            P = types ? SEMI : T[e - 1];
            return e;
          }
        }
        if ((v === 'as' || v === 'satisfies') && ends() && !t.nl) {
          const j = v === 'as' && nm(i + 1, 'const') ? i + 2 : ty(i + 1);
          if (j > 0) {
            blankT(i, j);
            return j;
          }
        }
      } else if (c === '(') {
        const cl = close(i);
        const f = { ps: 's' };
        if (isName(P, 'catch')) f.katch = true;
        else if ((!ends() || isName(P, 'async')) && arrowAt(cl, F)) f.arrow = true;
        else if (!(F.k === 'object' && P && (/^(name|str|num)$/.test(P.t) || isP(P, ']')) &&
            (pu(cl + 1, '{') || (pu(cl + 1, ':') && !F.q && pu(ret(cl + 2), '{'))))) {
          const ctl = (isName(P) && /^(if|for|while|with|switch)$/.test(P.v)) || (isName(P, 'await') && nm(i - 2, 'for'));
          return push('paren', { ctl }, i);
        }
        return push('params', f, i);
      } else if (c === '{') {
        const blk = isP(P, '=>') || (F.k === 'block' && (!P || P.ctl || (P.t === 'punct' && /^[;{}]$/.test(P.v)) ||
          (isP(P, ':') && !P.tern && !F.decl) || (t.nl && ends() && !F.decl) ||
          (isName(P) && /^(else|do|try|finally)$/.test(P.v))));
        return push(blk ? 'block' : 'object', {}, i);
      } else if (c === '[') return push('bracket', {}, i);
      else if (t.t === 'tmplhead') return push('tmpl', {}, i);
      else if (c === '?') F.q++;
      else if (c === ':' && F.q) {
        F.q--;
        P = Object.assign({ tern: true }, t);
        return i + 1;
      } else if (c === ';') F.q = 0;
      else if (c === '!' && ends() && !t.nl) {  // x!
        blankT(i, i + 1);
        return i + 1;
      } else if (c === '<') {
        const j = list(i);
        if (ends()) {
          const a = T[j];
          if (j > 0 && (!a || a.nl || a.t === 'tmpl' || a.t === 'tmplhead' ||
              (a.t === 'punct' && /^([()\]};,.]|\?\.)$/.test(a.v)))) {
            blankT(i, j);                     // f<T>(x), new Map<K, V>()
            return j;
          }
        } else {
          if (j > 0 && pu(j, '(') && arrowAt(close(j), F)) {
            blankT(i, j);                     // <T>(x: T) => x
            return j;
          }
          fail('<T>expr type assertions are not supported, write expr as T (nor is JSX)', i);
        }
      }
      P = t;
      return i + 1;
    }

    let i = 0;
    while (i < n) {
      const t = T[i];
      const F = st[st.length - 1];
      const B = body;
      body = null;
      const c = t.t === 'punct' ? t.v : t.t[0] === 't' ? t.v[0] : '';
      if (c === ')' || c === ']' || c === '}') {
        if (st.length > 1) st.pop();
        i = t.t === 'tmplhead' ? push('tmpl', {}, i) : closed(F, i);
      } else if (c === '{' && B) {            // a function's body
        i = push('block', { then: B.then }, i);
        if (B.props && B.props.length) {     // constructor(private x) -> this.x = x
          const text = B.props.map((p) => 'this.' + p + ' = ' + p + ';').join(' ');
          let at = i - 1;
          for (let k = i; B.ext && k < close(i - 1); k++) {
            if (nm(k, 'super') && pu(k + 1, '(') && T[k].d === t.d + 1) {
              at = close(k + 1);
              break;
            }
          }
          buf[T[at].e - 1] += (at === i - 1 ? ' ' : '; ') + text;
        }
      } else if (F.k === 'class' && F.ms === 'init' && c === ';') {
        endMember(F, i + 1);
        P = t;
        i++;
      } else if (F.k === 'class' && (F.ms !== 'init' || (t.nl && ends() && (startsNewStatement(t) ||
          (c === '[' && nm(i + 1) && pu(i + 2, ':')))))) {
        if (F.ms === 'init') endMember(F, i);
        i = member(F, i);
      } else {
        let k = -1;
        if (F.k === 'params' && F.ps !== 'd') k = param(F, i);
        else if (F.k === 'params' && c === ',' && !F.q) F.ps = 's';
        else if (F.decl) k = decl(F, i);
        i = k >= 0 ? k : expr(F, i);
      }
    }
    return buf.join('');
  }

  /* A cell whose types could not be stripped: a SyntaxError at that place. */
  function tsErrorEvent(code, e, n) {
    const ours = e && typeof e.tsPos === 'number';
    const pos = ours ? e.tsPos : 0;
    const value = ours ? e.message :
      'TypeScript not understood: the type stripper failed (' + safeString(() => e.message, '?') + ')';
    const before = code.slice(0, pos).split(/\r\n|[\n\r\u2028\u2029]/);
    const col = before[before.length - 1].length;
    return { type: 'error', id: S.currentId, name: 'SyntaxError', value,
      traceback: ['<cell-' + n + '>:' + before.length, code.split(/\r\n|[\n\r\u2028\u2029]/)[before.length - 1],
        ' '.repeat(col) + '^', '', 'SyntaxError: ' + value] };
  }

  // -------------------------------------------------------------------------
  // Compiling a cell

  const LOADER = (vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER) || ((spec) => import(spec));

  function script(src, n, lineOffset) {
    return new vm.Script(src, { filename: '<cell-' + n + '>', lineOffset: lineOffset || 0,
      importModuleDynamically: LOADER });
  }

  function asyncRelated(e) {
    const m = safeString(() => e.message, '');
    return /\bawait\b|reserved word|import statement outside a module|Cannot use import/.test(m);
  }

  function hasAwait(src) {
    try {
      return tokenize(src).toks.some((t) => isName(t, 'await'));
    } catch (e) {
      return false;
    }
  }

  /* {script, async} or {error: event}. */
  function prepare(code, n) {
    let plain = code;
    let first = null;
    const trimmed = code.trim();
    if (trimmed.startsWith('{') && !trimmed.endsWith(';')) {   // a lone object literal
      try {
        return { script: script('(' + code + '\n)', n), async: false };
      } catch (e) { /* a block after all */ }
    }
    try {
      script(plain, n);
    } catch (e) {
      first = e;
    }
    if (first === null) {
      let rewritten = null;
      try {
        rewritten = rewriteSync(plain);
      } catch (e) { /* the scanner failed: run the cell as written */ }
      if (rewritten !== null && rewritten !== plain) {
        try {
          return { script: script(rewritten, n), async: false };
        } catch (e) { /* a rewrite that does not compile is dropped */ }
      }
      return { script: script(plain, n), async: false };
    }
    if (!asyncRelated(first) && !hasAwait(code)) return { error: syntaxErrorEvent(first) };
    let body = code;
    try {
      body = rewriteImports(code);
    } catch (e) { /* keep the imports: the check below reports them */ }
    try {                                     // the cell's own syntax errors, as an async body
      script('(async () => {\n' + body + '\n})', n, -1);
    } catch (e) {
      return { error: syntaxErrorEvent(e) };
    }
    for (const withReturn of [true, false]) {
      let wrapped = null;
      try {
        wrapped = rewriteAsync(body, withReturn);
      } catch (e) { /* below */ }
      if (wrapped !== null) {
        try {
          return { script: script(wrapped, n, -1), async: true };
        } catch (e) { /* below */ }
      }
    }
    try {                                     // the scanner failed: no value, local declarations
      return { script: script('(async () => {\n' + body + '\n})()', n, -1), async: true };
    } catch (e) {
      return { error: syntaxErrorEvent(e) };
    }
  }

  // -------------------------------------------------------------------------
  // Running a cell

  /* Runs fn under breakOnSigint.  A SIGINT that came while no run was
  going on (after the cell's code, before its value is formatted; while it
  compiled) is only pending: it is taken once this run's watchdog is
  registered, so none falls between two runs. */
  function runGuarded(fn) {
    S.ctxGlobal[Symbol.for(CALL_KEY)] = () => {
      if (sigintPending()) throw interruptError();
      return fn();
    };
    try {
      return S.callScript.runInContext(S.ctx, { breakOnSigint: true, displayErrors: false });
    } finally {
      S.ctxGlobal[Symbol.for(CALL_KEY)] = undefined;
    }
  }

  /* Nothing but the driver's own handles keeps the event loop alive: no
  timer, I/O, child process or worker could settle what the cell waits for
  (Node itself would exit: "unsettled top-level await"). */
  function idle() {
    if (!S.baseline || typeof process.getActiveResourcesInfo !== 'function') return false;
    const left = Object.assign({}, S.baseline);
    for (const r of process.getActiveResourcesInfo()) {
      if (!left[r]) return false;
      left[r] -= 1;
    }
    return true;
  }

  /* A SIGINT arrived while no code of a cell ran (the watchdog kept it). */
  function sigintPending() {
    if (!S.wd) return false;
    try {
      if (!S.wd.watchdogHasPendingSigint()) return false;
      S.wd.startSigintWatchdog();             // a nested start/stop clears the pending flag
      S.wd.stopSigintWatchdog();
    } catch (e) {
      return false;
    }
    return true;
  }

  function waitFor(value) {
    let poll = null;
    return new Promise((resolve, reject) => {
      S.waitReject = reject;
      Promise.resolve(value).then(resolve, reject);
      let idleFor = 0;
      poll = setInterval(() => {
        if (sigintPending()) {
          reject(interruptError(' while the cell waited for a promise (what it waited for keeps running)'));
          return;
        }
        idleFor = idle() ? idleFor + 1 : 0;
        if (idleFor >= UNSETTLED_POLLS) {
          const e = { message: 'the cell awaits a promise that nothing left running can settle (no timer, I/O, ' +
            'child process or worker is pending; stdin is /dev/null, so input ends at once)' };
          e[UNSETTLED] = true;
          reject(e);
        }
      }, WAIT_POLL_MS);
      poll.unref();
    }).finally(() => {
      clearInterval(poll);
      S.waitReject = null;
    });
  }

  function isThenable(v) {
    return util.types.isPromise(v);
  }

  function turn() {
    return new Promise((resolve) => setImmediate(resolve));
  }

  function checkStdFds() {
    for (const fd of [0, 1, 2]) {
      try {
        fs.fstatSync(fd);
      } catch (e) {
        try {
          const nfd = fs.openSync('/dev/null', fd === 0 ? 'r' : 'w');
          if (nfd !== fd) fs.closeSync(nfd);
        } catch (x) { /* nothing */ }
      }
    }
  }

  async function runCell(code, n) {
    if (typeof code !== 'string') {
      const m = "execute request without a 'code' string";
      return { type: 'error', id: S.currentId, name: 'TypeError', value: m, traceback: ['TypeError: ' + m] };
    }
    S.cellLines[n] = code.split(/\r\n|[\n\r\u2028\u2029]/).length;
    let src = code;
    if (LANGUAGE === 'typescript') {
      try {
        src = stripTypes(code);
      } catch (e) {
        return tsErrorEvent(code, e, n);
      }
    }
    const prep = prepare(src, n);
    if (prep.error) {
      const tb = prep.error.traceback;       // the cell's own line, not the stripped one
      const at = src !== code && /^<cell-\d+>:(\d+)$/.exec(tb[0]);
      if (at && tb.length > 1) tb[1] = code.split(/\r\n|[\n\r\u2028\u2029]/)[at[1] - 1];
      return prep.error;
    }
    let value;
    try {
      value = runGuarded(() => prep.script.runInContext(S.ctx, { breakOnSigint: true, displayErrors: false }));
      if (prep.async || isThenable(value)) value = await waitFor(value);
    } catch (e) {
      return errorEvent(e);
    }
    if (value === undefined) return null;
    try {
      const [data, md] = runGuarded(() => bundle(value));
      result(data, md, true);
    } catch (e) {
      return errorEvent(e);
    }
    return null;
  }

  async function execute(req) {
    const rid = req.id === undefined ? null : req.id;
    S.count += 1;
    S.stdin = null;
    sigintPending();                          // a SIGINT between cells is absorbed
    const n = S.count;
    S.currentId = rid;
    let err = null;
    try {
      err = await runCell(req.code, n);
    } catch (e) {                               // a driver failure, or an interrupt in driver code
      err = errorEvent(e);
    }
    if (err) emit(err);
    try {
      await turn();                             // the cell's own promise jobs and ticks first
    } catch (e) { /* nothing */ }
    checkStdFds();
    S.stdin = null;
    emit({ type: 'end', id: rid, execution_count: n });
  }

  // -------------------------------------------------------------------------
  // Requests

  async function handle(line) {
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      emit({ type: 'protocol_error', message: 'request is not JSON: ' + e.message });
      return;
    }
    const kind = req !== null && typeof req === 'object' && !Array.isArray(req) ? req.type : undefined;
    if (kind === 'execute') {
      await execute(req);
    } else if (kind === 'ping') {
      const ev = { type: 'pong' };
      if ('id' in req) ev.id = req.id;
      emit(ev);
    } else {
      emit({ type: 'protocol_error', message: 'unknown request type ' + JSON.stringify(kind === undefined ? null : kind) });
    }
  }

  function serve() {
    const queue = [];
    let chunks = [];
    let busy = false;
    let eof = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      while (queue.length) {
        const line = queue.shift();
        try {
          await handle(line);
        } catch (e) {                           // last resort: the driver keeps serving
          try {
            emit({ type: 'protocol_error', message: 'driver failure: ' + (e && e.name) + ': ' + (e && e.message) });
          } catch (x) { /* nothing */ }
        }
      }
      busy = false;
      if (eof) realExit(0);
    };
    const take = (buf) => {
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(10, start);
        if (nl < 0) break;
        chunks.push(buf.subarray(start, nl));
        const line = Buffer.concat(chunks).toString('utf8');
        chunks = [];
        if (line.trim()) queue.push(line);
        start = nl + 1;
      }
      if (start < buf.length) chunks.push(Buffer.from(buf.subarray(start)));
    };
    const finish = () => {
      if (eof) return;
      eof = true;
      const rest = Buffer.concat(chunks).toString('utf8');
      chunks = [];
      if (rest.trim()) queue.push(rest);
      pump();
    };
    let st = null;
    try {
      st = fs.fstatSync(S.reqFd);
    } catch (e) {
      fatal('the request channel is gone (' + e.message + ')');
    }
    let src;
    if (st.isFIFO() || st.isSocket()) src = new net.Socket({ fd: S.reqFd, readable: true, writable: false });
    else src = fs.createReadStream(null, { fd: S.reqFd, autoClose: false });
    src.on('data', (buf) => {
      take(buf);
      pump();
    });
    src.on('end', finish);
    src.on('close', finish);
    src.on('error', (e) => fatal('the request channel is gone (' + e.message + ')'));
  }

  // -------------------------------------------------------------------------
  // Start

  function reopen(fd, write) {
    try {
      if (!fs.fstatSync(fd).isFIFO()) return fd;
      const p = '/proc/self/fd/' + fd;
      const c = fs.constants;
      if (write) {
        // a FIFO opened for writing without a reader would block: probe first
        fs.closeSync(fs.openSync(p, c.O_WRONLY | c.O_NONBLOCK));
        return fs.openSync(p, c.O_WRONLY);
      }
      return fs.openSync(p, c.O_RDONLY | c.O_NONBLOCK);
    } catch (e) {
      if (e && e.code === 'ENXIO') fatal('nobody reads the event pipe');
      return fd;
    }
  }

  /* SIGINT: vm's breakOnSigint starts Node's SIGINT watchdog for each run
  and stops it after, and in between SIGINT has its default action (the
  process dies) for a few microseconds; a SIGINT sent often enough lands
  there.  So the watchdog (the one the REPL uses) is started once and never
  stopped: each run's start/stop nests inside it, Node's SIGINT handler stays
  installed, and a SIGINT while no cell code runs only sets a pending flag
  (read while a cell waits for a promise, dropped at the next run).  Without
  the binding: a process SIGINT listener, and that small window. */
  function startWatchdog() {
    try {
      const noWarn = process.noDeprecation;
      process.noDeprecation = true;
      let b;
      try {
        b = process.binding('contextify');
      } finally {
        process.noDeprecation = noWarn;
      }
      if (b && typeof b.startSigintWatchdog === 'function' && typeof b.stopSigintWatchdog === 'function' &&
          typeof b.watchdogHasPendingSigint === 'function' && b.startSigintWatchdog()) {
        S.wd = b;
      }
    } catch (e) {
      S.wd = null;
    }
  }

  function driverFile() {
    const line = new Error().stack.split('\n')[1] || '';
    const m = /\((.*):\d+:\d+\)\s*$/.exec(line) || /at (.*):\d+:\d+\s*$/.exec(line);
    return m ? m[1] : '[eval]';
  }

  function makeContext() {
    const cwd = process.cwd();
    const filename = path.join(cwd, '<cell>');
    const req = Module.createRequire(filename);
    const mod = new Module(filename, null);
    mod.filename = filename;
    mod.paths = Module._nodeModulePaths(cwd);
    const sandbox = {};
    const names = ['Buffer', 'process', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
      'setImmediate', 'clearImmediate', 'queueMicrotask', 'structuredClone', 'URL', 'URLSearchParams',
      'TextEncoder', 'TextDecoder', 'AbortController', 'AbortSignal', 'Event', 'EventTarget', 'CustomEvent',
      'MessageChannel', 'MessagePort', 'MessageEvent', 'BroadcastChannel', 'Blob', 'File', 'atob', 'btoa',
      'performance', 'fetch', 'Headers', 'Request', 'Response', 'FormData', 'WebSocket', 'crypto', 'Crypto',
      'CryptoKey', 'SubtleCrypto', 'DOMException', 'ReadableStream', 'WritableStream', 'TransformStream',
      'ReadableStreamDefaultReader', 'TextEncoderStream', 'TextDecoderStream', 'CompressionStream',
      'DecompressionStream', 'ByteLengthQueuingStrategy', 'CountQueuingStrategy', 'navigator', 'PerformanceObserver'];
    for (const k of names) {
      try {
        if (globalThis[k] !== undefined) sandbox[k] = globalThis[k];
      } catch (e) { /* a lazy global that failed to load */ }
    }
    Object.assign(sandbox, { console: con, require: req, module: mod, exports: mod.exports,
      __filename: filename, __dirname: cwd, display });
    const ctx = vm.createContext(sandbox, { name: 'sbx context' });
    S.ctx = ctx;
    S.ctxGlobal = vm.runInContext('globalThis', ctx);
    S.ctxObjectProto = vm.runInContext('Object.prototype', ctx);
    S.ctxArrayProto = vm.runInContext('Array.prototype', ctx);
    vm.runInContext('var global = globalThis; Error.stackTraceLimit = 30;', ctx);
    Object.defineProperty(S.ctxGlobal, Symbol.for(CALL_KEY), { value: undefined, writable: true, enumerable: false });
    S.callScript = new vm.Script('globalThis[Symbol.for("' + CALL_KEY + '")]()', { filename: '<sbx-driver>' });
  }

  function setup() {
    for (const fd of [3, 4]) {
      try {
        fs.fstatSync(fd);
      } catch (e) {
        fatal('fd 3 (events out) and fd 4 (requests in) must be open', 2);
      }
    }
    S.driverFile = driverFile();
    S.evFd = reopen(3, true);
    S.reqFd = reopen(4, false);
    serve();                                  // libuv's first stream takes an fd of its own:
    S.baseline = {};                          // not 3 or 4, they are closed after
    for (const r of process.getActiveResourcesInfo ? process.getActiveResourcesInfo() : []) {
      S.baseline[r] = (S.baseline[r] || 0) + 1;
    }
    if (S.evFd !== 3) fs.closeSync(3);
    if (S.reqFd !== 4) fs.closeSync(4);

    Object.defineProperty(process, 'stdin', { configurable: true, enumerable: true,
      get() {
        if (!S.stdin) {
          S.stdin = new fs.ReadStream(null, { fd: 0, autoClose: false });
          S.stdin.isTTY = false;
        }
        return S.stdin;
      },
      set(v) {
        S.stdin = v;
      } });
    for (const [name, s] of [['stdout', stdout], ['stderr', stderr]]) {
      Object.defineProperty(process, name, { value: s, writable: true, configurable: true, enumerable: true });
    }
    Object.defineProperty(globalThis, 'console', { value: con, writable: true, configurable: true, enumerable: false });
    const emitWarning = process.emitWarning;
    process.emitWarning = function (w, ...rest) {
      const m = typeof w === 'string' ? w : (w && w.message);
      if (typeof m === 'string' && m.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return undefined;
      return emitWarning.call(this, w, ...rest);
    };
    process.exit = function exit(code) {
      const e = new Error('process.exit(' + (code === undefined ? '' : util.inspect(code)) +
        ') was called: the code interpreter context keeps running');
      e.name = 'ProcessExit';
      throw e;
    };
    startWatchdog();
    if (!S.wd) {
      process.on('SIGINT', () => {
        const r = S.waitReject;
        if (r) {
          S.waitReject = null;
          r(interruptError(' while the cell waited for a promise (what it waited for keeps running)'));
        }
      });
    }
    process.on('uncaughtException', (e) => {
      const tb = errorEvent(e).traceback;
      stderr.write('[sbx] uncaught exception outside a cell\'s code:\n' + tb.join('\n') + '\n');
    });
    process.on('unhandledRejection', (e) => {
      const tb = errorEvent(e).traceback;
      stderr.write('[sbx] unhandled promise rejection:\n' + tb.join('\n') + '\n');
    });
    makeContext();
  }

  setup();
  emit({ type: 'ready', language: LANGUAGE, pid: PID });
}());
