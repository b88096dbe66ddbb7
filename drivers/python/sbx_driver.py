"""sbx_driver: the persistent Python process behind one code-interpreter context.

Started by sandboxd as  python3 -u -c "<this file's source>"  (so nothing here
relies on __file__; keep the file ASCII and far below Linux's 128 KiB limit on
one argv string), with env PYTHONUNBUFFERED=1, PYTHONDONTWRITEBYTECODE=1,
MPLBACKEND=module://sbx_mpl, HOME=/workspace and cwd = the context's cwd.

File descriptors at start:
  0  /dev/null: input() raises EOFError at once, sys.stdin.read() returns ''.
  1  pipe to the parent: the cell's raw stdout (print, C code, subprocesses).
  2  pipe to the parent: the cell's raw stderr.
  3  events, driver -> parent: NDJSON, one JSON object a line, UTF-8, each
     line (newline included) shorter than 64 MiB.
  4  requests, parent -> driver: NDJSON.
Fds 3 and 4 belong to the driver: at start they are moved to 1020 and 1021
(lower if RLIMIT_NOFILE forbids), close-on-exec, and 3 and 4 are closed, so
user code and its subprocesses do not find the protocol at 3/4 (os.read(4)
fails with EBADF, os.write(3) cannot reach the parent).  Code that goes out
of its way to touch 1020/1021 can still break its own context.  Nothing of
the protocol is ever written to fd 1 or 2.

Events (fd 3):
  {"type":"ready","language":"python","pid":N}                   once, at start
  {"type":"result","id":I,"main":B,"data":{mime:value},"metadata":{...}}
  {"type":"error","id":I,"name":S,"value":S,"traceback":[line, ...]}  (<= 1;
     traceback: the lines of traceback.format_exception, no newlines)
  {"type":"end","id":I,"execution_count":N}                      always, last
  {"type":"pong"}                    (answer to ping; carries the ping's id if any)
  {"type":"protocol_error","message":S}    a request line that was not understood
An event that would reach 64 MiB is cut: a result loses its largest mime
types (listed in metadata["sbx/truncated"]) and text/plain is clipped to
1 Mi characters; long error strings are clipped likewise.
Requests (fd 4): {"type":"execute","id":I,"code":S}, {"type":"ping"};
end of file on fd 4 -> exit 0.  Requests are read between cells only (a
ping sent while a cell runs is answered after it).  sys.stdout and
sys.stderr (and C stdio when ctypes is loaded) are flushed before every
result, error and end event: a parent that drains fd 1/2 before reading each
event sees output in order.  Result events of display() called from other
threads carry the id of the current (or last) execution.

Cells: one namespace (the module sys.modules['__main__'], so pickle finds
user classes); the last expression's value is the main result and is stored
in `_` unless the cell ends with ';' (comments ignored); top-level await runs
on one persistent asyncio loop.  Tracebacks name the cell "<cell-N>" (N =
execution count, also in linecache) and never show driver frames.  A cell
that only fails to parse because of "%matplotlib ..." lines runs without them
(figures are always inline here); other IPython syntax is a SyntaxError.
A fork()ed child that returns from the cell exits quietly; exit() and
sys.exit() in a cell are errors (SystemExit), the context lives on.

SIGINT while user code runs (the cell, its display formatters, figure
rendering) raises KeyboardInterrupt, reported as an error; the namespace is
kept.  SIGINT anywhere else (between cells, while an event is written) is
absorbed.  A parent timeout should escalate to SIGKILL after a grace period
(user code can ignore SIGINT).

Rich output: display(*objs, raw=False, include=None, exclude=None,
metadata=None) is a builtin; mime bundles come from _repr_mimebundle_ and
the _repr_*_ methods (bytes -> base64), pandas DataFrames (text/html),
matplotlib figures (image/png, via the sbx_mpl backend: plt.show() emits and
closes every open figure; figures still open after a cell are emitted and
closed), JSON-clean dicts/lists (application/json), and text/plain always
(display(raw=True) sends its bundles as given).
Failing rich formatters are reported on stderr and left out; a failing
__repr__ is an error.  matplotlib, pandas and numpy are optional and never
imported by the driver itself.  MPLBACKEND=module://sbx_mpl is taken out of
os.environ (a child python could not import sbx_mpl) and applied only while
matplotlib itself is being imported in this process.
"""
import ast
import binascii
import builtins
import io
import json
import linecache
import os
import signal
import sys
import types
import _signal                                  # signal's functions without the enum wrapping
import _thread

_G = globals()
_PID = os.getpid()
_MAIN_TID = _thread.get_ident()
_LOCK = _thread.allocate_lock()
_EV_FD = -1
_REQ_FD = -1
_MAX_LINE = 64 * 1024 * 1024 - 1           # bytes of one event line, newline included
_CO_COROUTINE = 0x80                      # inspect.CO_COROUTINE, without importing inspect
_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_MPL_MODULE = "sbx_mpl"
_MPL_BACKEND = "module://" + _MPL_MODULE
_REPRS = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("text/latex", "_repr_latex_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
    ("application/pdf", "_repr_pdf_"),
)


class _State:
    count = 0                 # execution count (one per execute request)
    current_id = None         # id of the execution running (or last run)
    shown = set()             # id() of figures displayed during the current cell
    sigints = 0               # SIGINTs absorbed by the deferring handler
    loop = None               # the persistent asyncio loop, made on first top-level await
    libc = None               # ctypes handle for fflush(NULL); False once it failed
    mpl_default = None        # backend to give matplotlib at its import, or None
    held = b""                # an encoded event line that goes out with the next one


_S = _State()
_NS = {}                      # the user namespace (set up in _setup)


# ---------------------------------------------------------------------------
# Signals


def _on_sigint(signum, frame):
    """SIGINT outside user code: absorbed (counted, never raised)."""
    _S.sigints += 1


_SIGINT = int(signal.SIGINT)


def _restore_sigint():
    try:
        _signal.signal(_SIGINT, _on_sigint)
    except (ValueError, OSError):
        pass


class _UserMode:
    """Around user code: SIGINT raises KeyboardInterrupt there."""

    def __enter__(self):
        _signal.signal(_SIGINT, signal.default_int_handler)

    def __exit__(self, *exc):
        _restore_sigint()
        return False


# ---------------------------------------------------------------------------
# Events out


def _fatal(msg, code=3):
    try:
        os.write(2, ("sbx_driver: %s\n" % msg).encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _flush_std():
    seen = set()
    for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if s is None or id(s) in seen:
            continue
        seen.add(id(s))
        try:
            s.flush()
        except Exception:
            pass
    if _S.libc is not False and "ctypes" in sys.modules:
        try:                                    # C stdio of extensions (printf)
            if _S.libc is None:
                import ctypes
                _S.libc = ctypes.CDLL(None)
            _S.libc.fflush(None)
        except Exception:
            _S.libc = False


def _dumps(ev):
    return json.dumps(ev, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _clip(s, n):
    if not isinstance(s, str):
        s = str(s)
    return s if len(s) <= n else s[:n] + "\n... [truncated by sbx_driver: %d characters]" % (len(s) - n)


def _shrink(ev):
    """An event whose line would reach 64 MiB, made to fit."""
    ev = dict(ev)
    if ev.get("type") == "result":
        data = dict(ev.get("data") or {})
        sizes = {}
        for k, v in data.items():
            try:
                sizes[k] = len(_dumps(v).encode("utf-8", "replace"))
            except Exception:
                sizes[k] = _MAX_LINE
        dropped = []
        budget = _MAX_LINE - (8 << 20)
        for k in sorted(sizes, key=sizes.get, reverse=True):
            if sum(sizes.values()) <= budget:
                break
            if k == "text/plain":
                continue
            dropped.append(k)
            del data[k], sizes[k]
        if sizes.get("text/plain", 0) > budget:
            data["text/plain"] = _clip(data["text/plain"], 1 << 20)
        ev["data"] = data
        ev["metadata"] = {"sbx/truncated": {"dropped": dropped, "reason": "event larger than 64 MiB"}}
    else:
        for k, v in list(ev.items()):
            if isinstance(v, str):
                ev[k] = _clip(v, 1 << 20)
            elif isinstance(v, list):
                v = [_clip(x, 4096) for x in v]
                ev[k] = v if len(v) <= 1000 else v[:500] + ["... [%d lines left out]" % (len(v) - 1000)] + v[-500:]
            elif isinstance(v, dict):
                ev[k] = {}
    return ev


def _encode(ev):
    for attempt in range(3):
        try:
            line = (_dumps(ev) + "\n").encode("utf-8", "replace")
        except Exception as e:                  # should not happen: values are checked
            ev = {k: ev[k] for k in ("type", "id", "main", "execution_count") if k in ev}
            if ev.get("type") == "result":
                ev["data"] = {"text/plain": "<result not serialisable: %s>" % type(e).__name__}
                ev["metadata"] = {}
            continue
        if len(line) <= _MAX_LINE:
            return line
        ev = _shrink(ev)
    return (_dumps({k: ev[k] for k in ("type", "id") if k in ev}) + "\n").encode()


def _write_all(fd, data):
    mv = memoryview(data)
    while mv:
        n = os.write(fd, mv)
        mv = mv[n:]


def _emit(ev, flush=True, hold=False):
    """Writes one event line on the event fd.  A SIGINT arriving while the
    line is written is held back (a line is never cut); if the caller is user
    code, it is delivered again afterwards.  With hold (a cell's main result,
    which its "end" follows soon) the line waits for the next event's write:
    one write, one wake-up of the parent, for both."""
    if os.getpid() != _PID:                     # a fork()ed child never speaks the protocol
        return
    if flush:
        _flush_std()
    line = _encode(ev)
    if hold and _thread.get_ident() == _MAIN_TID:
        _S.held += line
        return
    swapped = False
    if _thread.get_ident() == _MAIN_TID:
        line, _S.held = _S.held + line, b""
        cur = _signal.getsignal(_SIGINT)
        if cur is not _on_sigint and (callable(cur) or cur in (signal.SIG_IGN, signal.SIG_DFL)):
            before = _S.sigints
            _signal.signal(_SIGINT, _on_sigint)
            swapped = True
    try:
        with _LOCK:
            _write_all(_EV_FD, line)
    except OSError as e:
        _fatal("the event channel is gone (%s)" % e)
    finally:
        if swapped:
            _signal.signal(_SIGINT, cur)
            if _S.sigints != before:
                signal.raise_signal(signal.SIGINT)


# ---------------------------------------------------------------------------
# Tracebacks


def _is_driver(tb):
    return tb.tb_frame.f_globals is _G


def _tb_lines(e):
    """traceback.format_exception lines of e without the driver's frames
    (nor the asyncio frames between the driver and the cell)."""
    import traceback
    frames = []
    t = e.__traceback__
    while t is not None:
        frames.append(t)
        t = t.tb_next
    start = None
    for i, t in enumerate(frames):
        if t.tb_frame.f_code.co_filename.startswith("<cell-"):
            start = i
            break
    if start is None:
        stack = getattr(e, "_sbx_stack", None)  # interrupted while an async cell waited
        if stack:
            e.__traceback__ = None
            return (["Traceback (most recent call last):"] + "".join(stack.format()).splitlines()
                    + "".join(traceback.format_exception_only(type(e), e)).splitlines())
        start = 0
        while start < len(frames) and _is_driver(frames[start]):
            start += 1
    kept = [t for t in frames[start:] if not _is_driver(t)]
    for a, b in zip(kept, kept[1:]):
        a.tb_next = b
    if kept:
        kept[-1].tb_next = None
    tb = kept[0] if kept else None
    e.__traceback__ = tb
    return "".join(traceback.format_exception(type(e), e, tb)).splitlines()


def _error_event(e, only=False):
    """The error event of exception e; only=True: a cell that did not compile
    (format_exception_only: no frame of the driver or of ast/compile)."""
    name = type(e).__name__
    try:
        value = str(e)
    except Exception:
        value = "<exception str() failed>"
    try:
        if only:
            import traceback
            tb = "".join(traceback.format_exception_only(type(e), e)).splitlines()
            e.__traceback__ = None
        else:
            tb = _tb_lines(e)
    except Exception:
        tb = ["%s: %s" % (name, value)]
    sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
    return {"type": "error", "id": _S.current_id, "name": name, "value": value, "traceback": tb}


def _warn(obj, what, e):
    """A failing rich formatter: said on the cell's stderr, format left out."""
    try:
        lines = _tb_lines(e)
        sys.stderr.write("[sbx] %s of a %s object raised %s; that format is left out:\n%s\n"
                         % (what, type(obj).__name__, type(e).__name__, "\n".join(lines)))
    except Exception:
        pass


# ---------------------------------------------------------------------------
# Mime bundles


def _jsonable(v):
    try:
        json.dumps(v, allow_nan=False)
        return True
    except Exception:
        return False


def _png_size(b):
    if len(b) >= 24 and b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR":
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    return None


def _b64(b):
    return binascii.b2a_base64(bytes(b), newline=False).decode("ascii")


def _is_binary(mime):
    return (mime.startswith("image/") and mime != "image/svg+xml") or mime == "application/pdf"


def _put(data, md, mime, v, obj, what):
    """Stores v as data[mime], in its JSON form (False when left out)."""
    if _is_binary(mime):
        if isinstance(v, (bytes, bytearray, memoryview)):
            size = _png_size(bytes(v[:24])) if mime == "image/png" else None
            if size and mime not in md:
                md[mime] = {"width": size[0], "height": size[1]}
            v = _b64(v)
        elif not isinstance(v, str):
            _warn(obj, what, TypeError("%s data must be bytes or base64 text, not %s" % (mime, type(v).__name__)))
            return False
    elif mime == "application/json" or mime.endswith("+json"):
        if isinstance(v, (str, bytes)):
            try:
                v = json.loads(v)
            except ValueError as e:
                _warn(obj, what, e)
                return False
        if not _jsonable(v):
            _warn(obj, what, TypeError("%s data is not JSON-serialisable" % mime))
            return False
    elif isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8", "replace")
    elif not isinstance(v, str) and not _jsonable(v):
        v = str(v)
    data[mime] = v
    return True


def _method(obj, name):
    try:
        f = getattr(obj, name, None)
    except Exception:
        return None
    return f if callable(f) else None


def _plain(obj):
    r = repr(obj)
    if type(obj) in (dict, list, tuple, set, frozenset) and 79 < len(r) < 500000:
        try:
            import pprint
            r = pprint.pformat(obj, width=79, sort_dicts=False)
        except Exception:
            pass
    return r


def _figure_class():
    mf = sys.modules.get("matplotlib.figure")
    return getattr(mf, "Figure", None) if mf is not None else None


def _figure_has_content(fig):
    return any(getattr(fig, a, None) for a in ("axes", "lines", "images", "texts", "patches", "artists", "legends", "subfigs"))


def _figure_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _bundle(obj, include=None, exclude=None):
    data, md = {}, {}
    try:                                        # classes, and objects that claim every attribute
        rich = not isinstance(obj, type) and not hasattr(obj, "_ipython_canary_method_should_not_exist_")
    except Exception:
        rich = False
    if rich:
        f = _method(obj, "_repr_mimebundle_")
        if f is not None:
            try:
                r = f(include=include, exclude=exclude)
            except Exception as e:
                _warn(obj, "_repr_mimebundle_", e)
                r = None
            if isinstance(r, tuple) and len(r) == 2:
                r, m = r
                if isinstance(m, dict):
                    md.update((str(k), v) for k, v in m.items())
            if isinstance(r, dict):
                for k, v in r.items():
                    _put(data, md, str(k), v, obj, "_repr_mimebundle_")
        for mime, attr in _REPRS:
            if mime in data:
                continue
            f = _method(obj, attr)
            if f is None:
                continue
            try:
                r = f()
            except Exception as e:
                _warn(obj, attr, e)
                continue
            if isinstance(r, tuple) and len(r) == 2:
                r, m = r
                if m:
                    md[mime] = m
            if r is not None:
                _put(data, md, mime, r, obj, attr)
    fig_cls = _figure_class()
    if fig_cls is not None and isinstance(obj, fig_cls):
        _S.shown.add(id(obj))
        if "image/png" not in data:
            try:
                png = _figure_png(obj)
            except Exception as e:
                _warn(obj, "savefig(format='png')", e)
            else:
                _put(data, md, "image/png", png, obj, "savefig")
    pd = sys.modules.get("pandas")
    if pd is not None and "text/html" not in data:
        df_cls = getattr(pd, "DataFrame", None)
        if isinstance(df_cls, type) and isinstance(obj, df_cls):
            try:
                data["text/html"] = obj.to_html()
            except Exception as e:
                _warn(obj, "to_html", e)
    if "text/plain" not in data or not isinstance(data["text/plain"], str):
        data["text/plain"] = _plain(obj)    # a failing __repr__ is the caller's error
    if "application/json" not in data and isinstance(obj, (dict, list)):
        try:
            if json.loads(json.dumps(obj, allow_nan=False)) == obj:
                data["application/json"] = obj
        except Exception:
            pass
    if include is not None:
        data = {k: v for k, v in data.items() if k in include or k == "text/plain"}
    if exclude is not None:
        data = {k: v for k, v in data.items() if k not in exclude or k == "text/plain"}
    md = {k: v for k, v in md.items() if k in data and _jsonable(v)}
    return data, md


def _result(data, md, main, hold=False):
    _emit({"type": "result", "id": _S.current_id, "main": bool(main), "data": data, "metadata": md},
          hold=hold)


def display(*objs, include=None, exclude=None, metadata=None, raw=False, **kwargs):
    """Shows each object as a rich result (main=false) of the running cell.

    raw=True: each object is already a {mime: data} dict.  metadata: a dict
    merged into the result's metadata.  display_id/transient/clear are
    accepted and ignored."""
    for obj in objs:
        if raw:
            if not isinstance(obj, dict):
                raise TypeError("display(raw=True) takes dicts of mime type -> data, not %s" % type(obj).__name__)
            data, md = {}, {}
            for k, v in obj.items():
                _put(data, md, str(k), v, obj, "display(raw=True)")
        else:
            data, md = _bundle(obj, include, exclude)
        if isinstance(metadata, dict):
            md.update((str(k), v) for k, v in metadata.items() if _jsonable(v))
        _result(data, md, False)


def _no_input(prompt=""):
    raise EOFError("input(): the code interpreter has no stdin (it is /dev/null), so there is "
                   "nothing to read; put the data in the code instead")


# ---------------------------------------------------------------------------
# matplotlib: the sbx_mpl backend and the end-of-cell flush


def _build_mpl_backend(mod):
    from matplotlib.backend_bases import FigureManagerBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    class FigureManager(FigureManagerBase):
        def show(self):                         # Figure.show()
            display(self.canvas.figure)

    class FigureCanvas(FigureCanvasAgg):
        manager_class = FigureManager

    def show(*, block=None):
        """plt.show(): every open figure becomes a result, then all are closed."""
        plt = sys.modules.get("matplotlib.pyplot")
        from matplotlib._pylab_helpers import Gcf
        try:
            for m in Gcf.get_all_fig_managers():
                _show_figure(m.canvas.figure)
        finally:
            if plt is not None:
                plt.close("all")

    mod.FigureCanvas = FigureCanvas
    mod.FigureManager = FigureManager
    mod.show = show
    mod.backend_version = "sbx"


def _show_figure(fig):
    """An open pyplot figure as a result, unless empty or it failed to render
    (the failure is on stderr)."""
    if _figure_has_content(fig):
        data, md = _bundle(fig)
        if "image/png" in data:
            _result(data, md, False)


def _flush_figures():
    """Figures still open after a cell and not displayed in it: shown, then
    every figure is closed (the inline backend's close_figures behaviour)."""
    plt = sys.modules.get("matplotlib.pyplot")
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if plt is None or helpers is None:
        return
    managers = helpers.Gcf.get_all_fig_managers()
    if not managers:
        return
    try:
        for m in managers:
            if id(m.canvas.figure) not in _S.shown:
                _show_figure(m.canvas.figure)
    finally:
        plt.close("all")


class _Finder:
    """sys.meta_path entry: builds sbx_mpl when it is imported, and gives
    matplotlib its default backend while matplotlib itself is imported."""

    busy = False

    def find_spec(self, name, path=None, target=None):
        if name == _MPL_MODULE:
            from importlib.machinery import ModuleSpec
            return ModuleSpec(name, self, origin="sbx_driver")
        if name != "matplotlib" or self.busy or not _S.mpl_default:
            return None
        self.busy = True
        try:
            spec = None
            for f in sys.meta_path:
                fs = getattr(f, "find_spec", None) if f is not self else None
                if fs is not None:
                    spec = fs(name, path, target)
                    if spec is not None:
                        break
        finally:
            self.busy = False
        real = getattr(getattr(spec, "loader", None), "exec_module", None)
        if real is None:
            return spec

        def exec_module(module):
            had = "MPLBACKEND" in os.environ
            if not had:
                os.environ["MPLBACKEND"] = _S.mpl_default
            try:
                real(module)
            finally:
                if not had:
                    os.environ.pop("MPLBACKEND", None)
        try:
            spec.loader.exec_module = exec_module
        except (AttributeError, TypeError):
            pass
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        _build_mpl_backend(module)


# ---------------------------------------------------------------------------
# Cells


def _quiet(code):
    """True when the cell's last token (comments aside) is ';'."""
    if ";" not in code:
        return False
    import tokenize
    last = None
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type not in skip:
                last = tok
    except Exception:
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"


def _compile(code, fn):
    """[(code object, is_last_expression)] of a cell; raises SyntaxError.
    A cell that only fails to parse because of IPython's "%matplotlib ..."
    line magic (a no-op here: figures are always inline) runs without it."""
    try:
        tree = ast.parse(code, fn)
    except SyntaxError:
        import re
        alt = re.sub(r"(?m)^[ \t]*%matplotlib\b.*$", "", code)
        if alt == code:
            raise
        tree = ast.parse(alt, fn)
        code = alt
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr) and not _quiet(code):
        last = tree.body.pop()
    out = []
    if tree.body or last is None:
        out.append((compile(tree, fn, "exec", flags=_FLAGS, dont_inherit=True), False))
    if last is not None:
        out.append((compile(ast.Expression(last.value), fn, "eval", flags=_FLAGS, dont_inherit=True), True))
    return out


def _loop():
    import asyncio
    if _S.loop is None or _S.loop.is_closed():
        _S.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_S.loop)
    return _S.loop


def _run_coro(coro):
    import asyncio
    loop = _loop()
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except BaseException as e:
        if not task.done():                     # interrupted: the cell must not resume later
            try:                                # where the cell was waiting, for the traceback
                import traceback
                e._sbx_stack = traceback.StackSummary.extract((f, f.f_lineno) for f in task.get_stack())
            except Exception:
                pass
            task.cancel()
            try:
                loop.run_until_complete(asyncio.wait([task], timeout=2))
            except BaseException:
                pass
        if task.done() and not task.cancelled():
            task.exception()                    # retrieved: no "never retrieved" log later
        raise


def _run(codes):
    value, has = None, False
    for code, is_expr in codes:
        r = eval(code, _NS)
        if code.co_flags & _CO_COROUTINE:
            r = _run_coro(r)
        if is_expr:
            value, has = r, True
    return value, has


def _child_exit(exc):
    """A fork()ed child that ran to the end of the cell: it leaves quietly."""
    code = 0
    try:
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        elif exc is not None:
            code = 1
            import traceback
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        _flush_std()
    finally:
        os._exit(code)


def _check_std_fds():
    """User code may close fd 0/1/2: /dev/null goes there so the fd numbers
    are not reused by whatever is opened next."""
    for fd, mode in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
        try:
            os.fstat(fd)
        except OSError:
            try:
                nfd = os.open(os.devnull, mode)
                if nfd != fd:
                    os.dup2(nfd, fd)
                    os.close(nfd)
                else:
                    os.set_inheritable(fd, True)
            except OSError:
                pass


def _run_cell(code, n):
    """Runs one cell; results are emitted as they come; returns the error
    event or None."""
    _S.shown = set()
    fn = "<cell-%d>" % n
    if not isinstance(code, str):
        return {"type": "error", "id": _S.current_id, "name": "TypeError",
                "value": "execute request without a 'code' string",
                "traceback": ["TypeError: execute request without a 'code' string"]}
    linecache.cache[fn] = (len(code), None, code.splitlines(True), fn)
    try:
        codes = _compile(code, fn)
    except Exception as e:                      # SyntaxError, ValueError (NUL), RecursionError
        return _error_event(e, only=True)
    err = None
    try:
        with _UserMode():
            value, has = _run(codes)
    except BaseException as e:
        _restore_sigint()
        if os.getpid() != _PID:
            _child_exit(e)
        err = _error_event(e)
    else:
        if os.getpid() != _PID:
            _child_exit(None)
        if has and value is not None:
            _NS["_"] = value
            try:
                with _UserMode():
                    data, md = _bundle(value)
                    _result(data, md, True, hold=True)
            except BaseException as e:
                _restore_sigint()
                err = _error_event(e)
    try:
        with _UserMode():
            _flush_figures()
    except BaseException as e:
        _restore_sigint()
        if err is None:
            err = _error_event(e)
    _check_std_fds()
    return err


def _execute(req):
    rid = req.get("id")
    _S.count += 1
    n = _S.count
    _S.current_id = rid
    err = None
    try:
        err = _run_cell(req.get("code"), n)
    except BaseException as e:                  # a KeyboardInterrupt that hit driver code
        _restore_sigint()
        err = _error_event(e)
    _restore_sigint()
    if err is not None:
        _emit(err)
    _emit({"type": "end", "id": rid, "execution_count": n})


def _handle(line):
    try:
        req = json.loads(line)
    except ValueError as e:
        _emit({"type": "protocol_error", "message": "request is not JSON: %s" % e}, flush=False)
        return
    kind = req.get("type") if isinstance(req, dict) else None
    if kind == "execute":
        _execute(req)
    elif kind == "ping":
        ev = {"type": "pong"}
        if "id" in req:
            ev["id"] = req["id"]
        _emit(ev, flush=False)
    else:
        _emit({"type": "protocol_error", "message": "unknown request type %r" % (kind,)}, flush=False)


def _serve():
    buf = bytearray()
    start = 0
    while True:
        nl = buf.find(b"\n", start)
        if nl < 0:
            start = len(buf)
            try:
                chunk = os.read(_REQ_FD, 1 << 20)
            except OSError as e:
                _fatal("the request channel is gone (%s)" % e)
            if not chunk:
                if bytes(buf).strip():
                    _safe_handle(bytes(buf))
                return
            buf += chunk
            continue
        line = bytes(buf[:nl])
        del buf[:nl + 1]
        start = 0
        if line.strip():
            _safe_handle(line)


def _safe_handle(line):
    try:
        _handle(line)
    except BaseException as e:                  # last resort: the driver keeps serving
        _restore_sigint()
        try:
            _emit({"type": "protocol_error", "message": "driver failure: %s: %s" % (type(e).__name__, e)})
        except BaseException:
            pass


# ---------------------------------------------------------------------------
# Start


def _move_fd(fd, want):
    import fcntl
    for base in (want, 256, 10):
        try:
            return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, base)
        except OSError:
            continue
    _fatal("cannot duplicate fd %d" % fd)


def _setup():
    global _EV_FD, _REQ_FD, _NS
    for fd in (3, 4):
        try:
            os.fstat(fd)
        except OSError:
            _fatal("fd 3 (events out) and fd 4 (requests in) must be open", 2)
    _EV_FD = _move_fd(3, 1020)
    _REQ_FD = _move_fd(4, 1021)
    os.close(3)
    os.close(4)
    os.set_blocking(_EV_FD, True)
    os.set_blocking(_REQ_FD, True)
    signal.signal(signal.SIGINT, _on_sigint)

    mpl = os.environ.get("MPLBACKEND")
    if not mpl or mpl == _MPL_BACKEND:
        os.environ.pop("MPLBACKEND", None)
        _S.mpl_default = _MPL_BACKEND
    sys.meta_path.insert(0, _Finder())

    mod = types.ModuleType("__main__")
    mod.__dict__["__builtins__"] = builtins
    _G["_DRIVER_MODULE"] = sys.modules.get("__main__")   # keeps the driver's module alive
    sys.modules["__main__"] = mod
    _NS = mod.__dict__
    builtins.input = _no_input
    builtins.display = display


def main():
    _setup()
    _emit({"type": "ready", "language": "python", "pid": _PID}, flush=False)
    _serve()
    _flush_std()
    os._exit(0)


if __name__ == "__main__":
    main()
