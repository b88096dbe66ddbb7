"""Security probes: real attacks from inside a real sandbox, through POST /v1/run.

Every probe is Python code that tries the attack itself (raw syscalls through
ctypes, sockets, files under /proc, /dev, ...) and prints one JSON line as the
last line of its stdout, tagged with a nonce chosen by the test.  The test
fails if that line is missing (the probe did not run to its end) and asserts
on the observed errno values, which always differ from what an unconfined
process would see on this host.  Catalogue rows are those of
docs: isolation-and-attacks.md section 2 (B, C, D, F, G1/G2).

After every attack: no sandbox process is left on the host, GET /healthz is
200, and a follow-up run prints 42.
"""
import json
import os
import re
import secrets
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from probe import (ProcEvents, baseline, check_recovered, fd_ready, in_sandbox_range, last_json,  # noqa: E402
                   run_code, scan_sandbox, short, uid_of, wait_no_new_sandbox_pids)

# ---------------------------------------------------------------------------
# Code prepended to every probe.  It runs inside the sandbox (python3 3.11).

_PRELUDE = r'''
import ctypes, errno, json, os, sys
NONCE = "@NONCE@"
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

def ename(e):
    return errno.errorcode.get(e, "errno%d" % e)

def _arg(a):
    if a is None:
        return ctypes.c_void_p(None)
    if isinstance(a, str):
        a = a.encode()
    if isinstance(a, bytes):
        return ctypes.c_char_p(a)
    return ctypes.c_ulong(int(a) & 0xFFFFFFFFFFFFFFFF)

def sc(nr, *args):
    """Raw syscall: ("ok", return value) or (errno name, -1)."""
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    if r == -1:
        return ename(ctypes.get_errno()), -1
    return "ok", r

def addr(obj):
    return ctypes.addressof(obj)

def isolated(fn):
    """fn() in a forked child, so that a call that unexpectedly succeeds (or a
    seccomp kill) cannot change the probe process.  Returns fn's JSON value, or
    how the child ended."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            out = json.dumps(fn())
        except BaseException as e:
            out = json.dumps("exception %s: %s" % (type(e).__name__, e))
        try:
            os.write(wfd, out.encode())
        finally:
            os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        return "killed by signal %d" % os.WTERMSIG(st)
    if not data:
        return "no result (exit %d)" % os.waitstatus_to_exitcode(st)
    return json.loads(data)

def try_open(path, flags, mode=0o600):
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        return ename(e.errno)
    os.close(fd)
    return "ok"

def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError as e:
        return "error:" + ename(e.errno)

def proc_status():
    out = {}
    for line in read_text("/proc/self/status").splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out

def emit(obj):
    obj = dict(obj)
    obj["nonce"] = NONCE
    sys.stdout.write("\n" + json.dumps(obj) + "\n")
    sys.stdout.flush()
'''

DENIED = {"EPERM"}
# Kernel features this host may be built without: ENOSYS from the kernel is as
# contained as EPERM from the filter (this VM has no module support).
DENIED_OR_ABSENT = {"EPERM", "ENOSYS"}
NO_SOCKET = {"EAFNOSUPPORT", "EPERM"}

FORBIDDEN_ENV_WORDS = ("KEY", "SECRET", "TOKEN", "PASSW", "CREDENTIAL", "AUTH", "COOKIE", "SESSION")
ALLOWED_ENV = {
    "PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TERM", "TZ",
    "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "SHLVL", "_", "TMPDIR", "TMP", "TEMP",
    "HOSTNAME", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONHASHSEED", "PYTHONNOUSERSITE",
    "PYTHONSAFEPATH", "PYTHONPATH", "NODE_OPTIONS", "NODE_PATH", "NODE_ENV", "NODE_NO_WARNINGS",
    "MPLBACKEND", "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "DEBIAN_FRONTEND", "SANDBOX", "CI",
}


# ---------------------------------------------------------------------------
# Host-side helpers.

def _probe(ctx, body, timeout=15000, **params):
    """Runs PRELUDE + body in a fresh sandbox; returns the dict the probe emitted."""
    nonce = secrets.token_hex(8)
    code = (_PRELUDE.replace("@NONCE@", nonce)
            + "PARAMS = json.loads(%r)\n" % json.dumps(params) + body)
    resp, _ = run_code(ctx, code, timeout=timeout)
    out = resp.get("output") or ""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    result = None
    if lines:
        try:
            result = json.loads(lines[-1])
        except ValueError:
            result = None
    if not isinstance(result, dict) or result.get("nonce") != nonce:
        raise AssertionError(
            "the probe did not run to its end (no result line): "
            f"exitCode={resp.get('exitCode')} timedOut={resp.get('timedOut')} "
            f"signal={resp.get('signal')} oomKilled={resp.get('oomKilled')}\n"
            f"stdout tail: {out[-800:]!r}\nstderr tail: {(resp.get('errors') or '')[-2000:]!r}")
    assert resp.get("exitCode") == 0 and resp.get("success") is True, (
        f"probe printed its result but did not exit cleanly: {short(resp)}")
    return result


def _expect(results, expected, what):
    """expected: {name: set of acceptable values}.  All mismatches in one message."""
    bad = []
    for name, allowed in expected.items():
        got = results.get(name, "<missing>")
        if got not in allowed:
            bad.append(f"{name}: got {got!r}, expected one of {sorted(allowed)}")
    assert not bad, f"{what}:\n  " + "\n  ".join(bad) + f"\nall results: {json.dumps(results, sort_keys=True)}"


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _host_uid_of(uid_map, inside=1000):
    for line in (uid_map or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            a, b, n = map(int, parts)
            if a <= inside < a + n:
                return b + inside - a
    return None


def _status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def _assert_confined_status(st, what):
    """st: /proc/self/status fields of sandboxed code."""
    problems = []
    for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        try:
            if int(st.get(k, "x"), 16) != 0:
                problems.append(f"{k}={st.get(k)}")
        except ValueError:
            problems.append(f"{k} missing ({st.get(k)!r})")
    if st.get("NoNewPrivs") != "1":
        problems.append(f"NoNewPrivs={st.get('NoNewPrivs')!r}")
    if st.get("Seccomp") != "2":
        problems.append(f"Seccomp={st.get('Seccomp')!r} (2 = filter mode)")
    uids = (st.get("Uid") or "").split()
    if uids != ["1000"] * 4:
        problems.append(f"Uid (real, effective, saved, fs)={uids}")
    gids = (st.get("Gid") or "").split()
    if len(gids) != 4 or "0" in gids:
        problems.append(f"Gid={gids}")
    assert not problems, f"{what}: " + ", ".join(problems)


# ---------------------------------------------------------------------------
# G1, G2: identity, capabilities, no_new_privs, seccomp.

def test_g1_g2_identity_uid1000_no_caps_nnp_seccomp(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
emit({
    "resuid": os.getresuid(), "resgid": os.getresgid(), "groups": os.getgroups(),
    "pid": os.getpid(), "status": proc_status(),
    "uid_map": read_text("/proc/self/uid_map"), "gid_map": read_text("/proc/self/gid_map"),
})
''')
    st = r["status"]
    _assert_confined_status(st, "python in the sandbox")
    assert r["resuid"] == [1000, 1000, 1000], f"user code must run as uid 1000: getresuid()={r['resuid']}"
    assert 0 not in r["resgid"] and len(set(r["resgid"])) == 1, f"getresgid()={r['resgid']}"
    assert 0 not in r["groups"], f"supplementary groups include 0: {r['groups']}"
    assert r["pid"] != 1, "user code must not be pid 1 (pid 1 is the sandbox init)"
    filters = st.get("Seccomp_filters")
    assert filters is None or int(filters) >= 1, f"Seccomp_filters={filters}"
    # uid_map seen from inside is relative to the parent user namespace, which
    # may be an intermediate one: the host uid is checked from the host side in
    # test_b01 (the running sandbox's processes, read in the host's /proc).
    rows = [ln.split() for ln in r["uid_map"].splitlines() if ln.strip()]
    assert rows and all(len(x) == 3 and x[0].isdigit() for x in rows), (
        f"no user namespace: uid_map {r['uid_map']!r}")
    assert rows != [["0", "0", "4294967295"]], f"the initial user namespace: uid_map {r['uid_map']!r}"
    assert _host_uid_of(r["uid_map"]) is not None, f"uid 1000 is not mapped: {r['uid_map']!r}"
    check_recovered(ctx, base, "the identity probe")


def test_g1_g2_identity_same_for_bash_and_javascript(ctx):
    base = baseline(ctx)
    # bash: a builtin read loop, so the status read is bash's own.
    bash = r'''
while IFS= read -r line; do
  case "$line" in Uid:*|Gid:*|Cap*|NoNewPrivs:*|Seccomp:*) echo "$line";; esac
done < /proc/self/status
echo "marker-$((6*7))"
'''
    body, _ = run_code(ctx, bash, language="bash", timeout=10000)
    out = body.get("output") or ""
    assert "marker-42" in out, f"bash probe did not run: {short(body)}"
    _assert_confined_status(_status_fields(out), "bash in the sandbox")

    js = r'''
const fs = require("fs");
const s = fs.readFileSync("/proc/self/status", "utf8");
console.log(JSON.stringify({status: s, uid: process.getuid(), euid: process.geteuid(), marker: 6 * 7}));
'''
    body, _ = run_code(ctx, js, language="javascript", timeout=10000)
    r = last_json(body, "javascript probe")
    assert r.get("marker") == 42, f"javascript probe did not run: {short(body)}"
    assert r["uid"] == 1000 and r["euid"] == 1000, f"node runs as uid {r['uid']}/{r['euid']}"
    _assert_confined_status(_status_fields(r["status"]), "node in the sandbox")
    check_recovered(ctx, base, "the bash/javascript identity probes")


# ---------------------------------------------------------------------------
# D14: environment.

def _service_env_values(ctx):
    """Values of SANDBOXD_* variables of this stack's sandboxd processes on the
    host (they must never reach sandboxed code).  Only processes named
    sandboxd whose environment names this stack's state dir are read."""
    values = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or _comm(name) != "sandboxd":
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = [e.decode("utf-8", "replace") for e in f.read().split(b"\0") if b"=" in e]
        except OSError:
            continue
        pairs = dict(e.split("=", 1) for e in env)
        if pairs.get("SANDBOXD_STATE_DIR") != ctx.state_dir:
            continue
        values.update(v for k, v in pairs.items() if k.startswith("SANDBOXD") and len(v) >= 12)
    return values


def _check_env(env, service_values, what):
    problems = []
    for k, v in env.items():
        up = k.upper()
        if up.startswith("SANDBOXD") or any(w in up for w in FORBIDDEN_ENV_WORDS):
            problems.append(f"forbidden variable {k}={v[:60]!r}")
        elif not (k in ALLOWED_ENV or up.startswith(("LC_", "PYTHON", "NODE_", "XDG_"))):
            problems.append(f"variable {k} is not in the allowlist")
        for s in service_values:
            if s in v:
                problems.append(f"{k} carries the service's value {s[:40]!r}")
        for host_path in ("/work/", "/root"):
            if host_path in v:
                problems.append(f"{k}={v[:80]!r} names a host path")
    assert "PATH" in env, f"{what}: no PATH at all (did the probe see the real environment?): {env}"
    assert len(env) <= 30, f"{what}: {len(env)} variables: {sorted(env)}"
    assert not problems, f"{what}: " + "; ".join(problems) + f"\nenvironment: {env}"


def test_d14_environment_is_clean(ctx):
    base = baseline(ctx)
    service_values = _service_env_values(ctx)
    r = _probe(ctx, r'''
pid1 = None
try:
    with open("/proc/1/environ", "rb") as f:
        pid1 = [e.decode("utf-8", "replace") for e in f.read().split(b"\0") if e]
except OSError as e:
    pid1 = "error:" + ename(e.errno)
emit({"env": dict(os.environ), "pid1_environ": pid1})
''')
    _check_env(r["env"], service_values, "python environment")
    pid1 = r["pid1_environ"]
    if isinstance(pid1, list):   # readable: it must not hold the service's secrets either
        env1 = dict(e.split("=", 1) if "=" in e else (e, "") for e in pid1)
        bad = [k for k in env1 if k.upper().startswith("SANDBOXD")
               or any(w in k.upper() for w in FORBIDDEN_ENV_WORDS)
               or any(s in env1[k] for s in service_values)]
        assert not bad, f"/proc/1/environ (sandbox init) is readable and holds {bad}: {pid1}"

    status, body = ctx.run('env; echo "marker-$((6*7))"', language="bash", timeout=10000)
    assert status == 200 and "marker-42" in (body.get("output") or ""), f"bash env run: {short(body)}"
    env = {}
    for line in body["output"].splitlines():
        if "=" in line and not line.startswith("marker-"):
            k, v = line.split("=", 1)
            env[k] = v
    _check_env(env, service_values, "bash environment")
    check_recovered(ctx, base, "the environment probe")


# ---------------------------------------------------------------------------
# B11: inherited file descriptors; stdin.

def test_b11_only_fds_0_1_2_and_stdin_is_dev_null(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import fcntl, resource, re, stat
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
limit = soft if 0 < soft < (1 << 20) else (1 << 20)
open_fds = []
for fd in range(limit):
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        continue
    open_fds.append(fd)
# The listing itself holds a directory fd on /proc/<pid>/fd: leave it out.
listed = {}
for name in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink("/proc/self/fd/" + name)
    except OSError as e:
        if e.errno == errno.ENOENT:      # closed since the listing: the listing's own fd
            continue
        target = "error:" + ename(e.errno)
    if re.fullmatch(r"/proc/(self|\d+)/fd", target):
        continue
    listed[name] = target
st0 = os.fstat(0)
emit({"open_fds": open_fds, "listed": listed, "nofile": [soft, hard],
      "stdin_rdev": [os.major(st0.st_rdev), os.minor(st0.st_rdev)] if stat.S_ISCHR(st0.st_mode) else None,
      "stdin_read": os.read(0, 16).decode("latin-1")})
''')
    assert r["open_fds"] == [0, 1, 2], (
        f"fds open in sandboxed code (fcntl scan up to RLIMIT_NOFILE {r['nofile']}): {r['open_fds']}; "
        f"/proc/self/fd: {r['listed']}")
    assert sorted(r["listed"], key=int) == ["0", "1", "2"], f"/proc/self/fd lists {r['listed']}"
    assert r["listed"]["0"] == "/dev/null" and r["stdin_rdev"] == [1, 3], (
        f"stdin must be /dev/null: link {r['listed']['0']!r}, device {r['stdin_rdev']}")
    assert r["stdin_read"] == "", f"reading stdin returned {r['stdin_read']!r}, expected EOF"
    check_recovered(ctx, base, "the fd probe")


# ---------------------------------------------------------------------------
# D1: host files are not in the mount tree.

def _project_dir():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_d1_host_files_are_absent(ctx):
    base = baseline(ctx)
    canary = f"/tmp/sandboxd-probe-canary-{secrets.token_hex(6)}"
    with open(canary, "w") as f:
        f.write("host /tmp must not be the sandbox /tmp\n")
    try:
        must_be_absent = sorted({
            "/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", ctx.state_dir, ctx.fcgi_socket,
            os.path.dirname(ctx.fcgi_socket), _project_dir(), canary, "/sys/kernel", "/dev/kmsg", "/dev/mem",
            "/var/run/docker.sock", "/run/docker.sock", "/run/systemd", "/var/lib/sandboxd",
        })
        absent_or_empty = ["/root", "/home", "/boot", "/mnt", "/media", "/srv", "/opt", "/var/log", "/work"]
        r = _probe(ctx, r'''
import stat
def look(p):
    try:
        st = os.lstat(p)
    except OSError as e:
        return {"exists": False, "errno": ename(e.errno)}
    out = {"exists": True, "mode": oct(st.st_mode)}
    if stat.S_ISDIR(st.st_mode):
        try:
            out["entries"] = sorted(os.listdir(p))[:40]
        except OSError as e:
            out["list_error"] = ename(e.errno)
    return out
emit({"paths": {p: look(p) for p in PARAMS["absent"] + PARAMS["absent_or_empty"]},
      "shadow_open": try_open("/etc/shadow", os.O_RDONLY),
      "root_dir": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc")),
      "usr_python": os.path.exists("/usr/bin/python3")})
''', absent=must_be_absent, absent_or_empty=absent_or_empty)
    finally:
        os.unlink(canary)
    assert r["usr_python"], f"the probe cannot see /usr/bin/python3: {r['root_dir']}"
    assert r["shadow_open"] == "ENOENT", f"open(/etc/shadow) gave {r['shadow_open']} (must be ENOENT, not EACCES)"
    present = {p: r["paths"][p] for p in must_be_absent if r["paths"][p]["exists"]}
    assert not present, f"host paths visible inside the sandbox: {present}"
    nonempty = {p: r["paths"][p] for p in absent_or_empty
                if r["paths"][p]["exists"] and (r["paths"][p].get("entries") or "list_error" in r["paths"][p])}
    assert not nonempty, f"host directories with content inside the sandbox: {nonempty}"
    etc_leaks = sorted(set(r["etc"]) & {"shadow", "gshadow", "sudoers", "sudoers.d", "ssh", "machine-id",
                                        "ssl/private", "environment", "crontab", "nginx", "sandboxd"})
    assert not etc_leaks, f"/etc inside the sandbox has host files {etc_leaks}; /etc = {r['etc']}"
    check_recovered(ctx, base, "the host-files probe")


# ---------------------------------------------------------------------------
# D2, B1 (visibility), B12, B13, D5: /proc shows only the sandbox.

def _mount_relative(path):
    """path relative to the mount it lives on (what mountinfo's root field shows)."""
    p = os.path.realpath(path)
    m = p
    while m != "/" and not os.path.ismount(m):
        m = os.path.dirname(m)
    rel = p[len(m):] if m != "/" else p
    return rel if rel.startswith("/") else "/" + rel


def test_d2_proc_shows_only_the_sandbox(ctx):
    base = baseline(ctx)
    host_pids = [os.getpid(), os.getppid()]
    with open("/proc/1/cmdline", "rb") as f:
        host_pid1 = f.read().decode("utf-8", "replace")
    r = _probe(ctx, r'''
pids = sorted(int(x) for x in os.listdir("/proc") if x.isdigit())
kills = {}
for hp in PARAMS["host_pids"]:
    if hp in pids:
        continue
    try:
        os.kill(hp, 0)
        kills[str(hp)] = "ok"
    except OSError as e:
        kills[str(hp)] = ename(e.errno)
try:
    exe1 = os.readlink("/proc/1/exe")
except OSError as e:
    exe1 = "error:" + ename(e.errno)
comms = {str(p): read_text("/proc/%d/comm" % p).strip() for p in pids}
emit({"pids": pids, "self": os.getpid(), "kills": kills, "comms": comms,
      "pid1_cmdline": read_text("/proc/1/cmdline"),
      "pid1_exe": exe1, "pid1_exe_write": try_open("/proc/1/exe", os.O_WRONLY),
      "self_exe_write": try_open("/proc/self/exe", os.O_WRONLY),
      "mountinfo": read_text("/proc/self/mountinfo"),
      "net_unix": read_text("/proc/net/unix")})
''', host_pids=host_pids)
    pids = r["pids"]
    assert 1 in pids and r["self"] in pids, f"/proc lists {pids}, self {r['self']}"
    assert r["self"] != 1 and r["self"] < 1000, f"probe pid {r['self']}: not a fresh pid namespace"
    assert len(pids) <= 16, f"/proc inside shows {len(pids)} processes (host pids visible?): {r['comms']}"
    assert r["pid1_cmdline"] != host_pid1, f"pid 1 inside is the host's pid 1: {host_pid1!r}"
    bad_kills = {p: e for p, e in r["kills"].items() if e != "ESRCH"}
    assert not bad_kills, f"host pids reachable with kill(pid, 0) from inside (must be ESRCH): {bad_kills}"
    assert r["pid1_exe_write"] != "ok" and r["self_exe_write"] != "ok", (
        f"/proc/1/exe or /proc/self/exe opened for writing: {r['pid1_exe_write']}, {r['self_exe_write']}")
    mi = r["mountinfo"]
    assert mi and not mi.startswith("error:"), f"/proc/self/mountinfo unreadable: {mi[:200]!r}"
    leaks = [p for p in {ctx.state_dir, _mount_relative(ctx.state_dir), os.path.dirname(ctx.fcgi_socket)}
             if len(p) >= 8 and p in mi]
    assert not leaks, f"/proc/self/mountinfo shows host paths {leaks}:\n{mi}"
    fstypes = set()
    for line in mi.splitlines():
        right = line.split(" - ", 1)
        if len(right) == 2 and right[1].split():
            fstypes.add(right[1].split()[0])
    assert not fstypes & {"cgroup", "cgroup2", "sysfs", "debugfs", "securityfs", "bpf", "tracefs",
                          "configfs", "fusectl", "pstore"}, f"host kernel filesystems mounted inside: {fstypes}"
    assert ctx.fcgi_socket not in r["net_unix"], f"/proc/net/unix inside lists the FastCGI socket:\n{r['net_unix']}"
    check_recovered(ctx, base, "the /proc probe")


# ---------------------------------------------------------------------------
# D3, D4: /proc/sys read-only, no writable kernel knobs.

def test_d3_d4_proc_sys_read_only(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
# Open for writing only: nothing is ever written.
targets = ["/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
           "/proc/sys/vm/drop_caches", "/proc/sys/kernel/sysrq", "/proc/sys/fs/protected_symlinks",
           "/proc/sys/user/max_user_namespaces", "/proc/sysrq-trigger", "/proc/sys/kernel/domainname"]
opens = {t: try_open(t, os.O_WRONLY) for t in targets}
mounts = []
for line in read_text("/proc/self/mountinfo").splitlines():
    f = line.split()
    if len(f) > 5:
        mounts.append([f[4], f[5]])
kallsyms = read_text("/proc/kallsyms", 1 << 16)
nonzero = 0
if not kallsyms.startswith("error:"):
    for line in kallsyms.splitlines()[:500]:
        a = line.split(" ", 1)[0]
        if a.strip("0"):
            nonzero += 1
emit({"opens": opens, "mounts": mounts, "kallsyms_nonzero": nonzero,
      "kcore": try_open("/proc/kcore", os.O_RDONLY),
      "hostname_read": read_text("/proc/sys/kernel/hostname")})
''')
    assert not r["hostname_read"].startswith("error:"), f"/proc/sys not readable at all: {r['hostname_read']}"
    assert r["opens"]["/proc/sys/kernel/hostname"] != "ENOENT", f"/proc/sys/kernel/hostname missing: {r['opens']}"
    bad = {t: e for t, e in r["opens"].items() if e not in {"EROFS", "EACCES", "EPERM", "ENOENT"}}
    assert not bad, f"kernel knobs openable for writing from inside: {bad} (all: {r['opens']})"
    # The effective mount for /proc/sys is the last one whose mount point is
    # /proc/sys or a parent of it; it must be read-only.
    best = None
    for mp, opts in r["mounts"]:
        if mp == "/proc/sys" or "/proc/sys".startswith(mp.rstrip("/") + "/") or mp == "/":
            if best is None or len(mp) >= len(best[0]):
                best = (mp, opts)
    assert best and "ro" in best[1].split(","), f"/proc/sys is on mount {best} which is not read-only: {r['mounts']}"
    assert r["kallsyms_nonzero"] == 0, f"/proc/kallsyms shows {r['kallsyms_nonzero']} real kernel addresses"
    assert r["kcore"] != "ok", "/proc/kcore is readable"
    check_recovered(ctx, base, "the /proc/sys probe")


# ---------------------------------------------------------------------------
# D6: no /sys.

def test_d6_sys_absent_or_empty(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
out = {"exists": os.path.lexists("/sys")}
if os.path.isdir("/sys"):
    out["entries"] = sorted(os.listdir("/sys"))
for p in ("/sys/kernel/uevent_helper", "/sys/fs/cgroup", "/sys/class/net", "/sys/firmware"):
    out[p] = os.path.lexists(p)
emit(out)
''')
    assert not r["exists"] or r.get("entries") == [], f"/sys inside the sandbox has {r.get('entries')}"
    assert not any(r[p] for p in ("/sys/kernel/uevent_helper", "/sys/fs/cgroup", "/sys/class/net",
                                  "/sys/firmware")), f"sysfs paths visible: {r}"
    check_recovered(ctx, base, "the /sys probe")


# ---------------------------------------------------------------------------
# D7, B10: minimal /dev.

ALLOWED_DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                     "urandom": (1, 9), "tty": (5, 0), "ptmx": (5, 2)}
ALLOWED_DEV_LINKS = {"fd", "stdin", "stdout", "stderr", "core", "ptmx"}
ALLOWED_DEV_DIRS = {"pts", "shm", "mqueue"}


def test_d7_dev_has_only_the_allowed_nodes(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import stat
def kind(p):
    st = os.lstat(p)
    m = st.st_mode
    if stat.S_ISLNK(m):
        return {"kind": "link", "target": os.readlink(p)}
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        return {"kind": "chr" if stat.S_ISCHR(m) else "blk", "dev": [os.major(st.st_rdev), os.minor(st.st_rdev)]}
    return {"kind": "dir" if stat.S_ISDIR(m) else "sock" if stat.S_ISSOCK(m) else "fifo" if stat.S_ISFIFO(m) else "file"}
dev = {n: kind("/dev/" + n) for n in os.listdir("/dev")}
pts = {n: kind("/dev/pts/" + n) for n in os.listdir("/dev/pts")} if os.path.isdir("/dev/pts") else None
emit({"dev": dev, "pts": pts, "dev_null_write": try_open("/dev/null", os.O_WRONLY),
      "tty_open": try_open("/dev/tty", os.O_RDWR)})
''')
    dev = r["dev"]
    problems = []
    for name in ("null", "zero", "full", "random", "urandom"):
        if dev.get(name, {}).get("dev") != list(ALLOWED_DEV_NODES[name]):
            problems.append(f"/dev/{name} missing or wrong: {dev.get(name)}")
    for name, k in dev.items():
        if k["kind"] in ("chr", "blk"):
            if k["kind"] == "blk" or tuple(k["dev"]) != ALLOWED_DEV_NODES.get(name):
                problems.append(f"/dev/{name} is a {k['kind']} device {k['dev']}")
        elif k["kind"] == "link":
            if name not in ALLOWED_DEV_LINKS:
                problems.append(f"/dev/{name} -> {k['target']} is not expected")
        elif k["kind"] == "dir":
            if name not in ALLOWED_DEV_DIRS:
                problems.append(f"/dev/{name}/ is not expected")
        else:
            problems.append(f"/dev/{name} is a {k['kind']}")
    for name, k in (r["pts"] or {}).items():
        if name == "ptmx":
            if k.get("dev") != [5, 2]:
                problems.append(f"/dev/pts/ptmx is {k}")
        elif not name.isdigit() or k["kind"] != "chr":
            problems.append(f"/dev/pts/{name} is {k}")
    # The probe has opened no pty yet: a fresh devpts instance is empty.
    host_ptys = [n for n in (r["pts"] or {}) if n.isdigit()]
    if host_ptys:
        problems.append(f"/dev/pts shows ptys nobody in the sandbox opened: {host_ptys}")
    assert r["dev_null_write"] == "ok", f"/dev/null not writable: {r['dev_null_write']}"
    assert r["tty_open"] != "ok", "/dev/tty opened: sandboxed code has a controlling terminal"
    assert not problems, (f"unexpected /dev content ({len(problems)} problems):\n  " + "\n  ".join(problems[:25])
                          + f"\n/dev: {sorted(dev)}")
    check_recovered(ctx, base, "the /dev probe")


# ---------------------------------------------------------------------------
# D8: setuid binaries give nothing.

def test_d8_setuid_binaries_do_not_grant_root(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import stat, subprocess
cands = ["/usr/bin/su", "/usr/bin/mount", "/usr/bin/passwd", "/usr/bin/newgrp", "/usr/bin/chsh",
         "/usr/bin/gpasswd", "/usr/bin/sudo", "/usr/bin/umount", "/usr/bin/chfn", "/usr/bin/pkexec"]
runs = {}
for c in cands:
    try:
        st = os.stat(c)
    except OSError:
        continue
    if not st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        runs[c] = "not setuid"
        continue
    p = subprocess.Popen([c, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    # Not reaped yet: /proc/<pid>/status still shows the credentials the
    # program ran with (running or zombie).
    uids = gids = None
    for line in read_text("/proc/%d/status" % p.pid).splitlines():
        if line.startswith("Uid:"):
            uids = line.split()[1:]
        if line.startswith("Gid:"):
            gids = line.split()[1:]
    runs[c] = {"uids": uids, "gids": gids, "rc": p.wait(), "out": (out + err)[:120].decode("utf-8", "replace")}
d = "/tmp/mnt-" + NONCE
os.mkdir(d)
try:
    mount_attempt = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", d], capture_output=True).returncode
except OSError as e:
    mount_attempt = "exec " + ename(e.errno)
st = proc_status()
emit({"runs": runs, "nnp": st.get("NoNewPrivs"), "euid": os.geteuid(),
      "mount_attempt": mount_attempt})
''')
    assert r["nnp"] == "1" and r["euid"] == 1000, f"NoNewPrivs={r['nnp']} euid={r['euid']}"
    ran = {c: v for c, v in r["runs"].items() if isinstance(v, dict)}
    assert ran, f"no setuid binary found to try (host /usr has su and mount setuid): {r['runs']}"
    bad = {c: v for c, v in ran.items() if v["uids"] != ["1000"] * 4 or v["gids"] is None or "0" in v["gids"]}
    assert not bad, f"setuid binaries ran with other credentials than uid 1000: {bad}"
    assert r["mount_attempt"] != 0, "setuid mount(8) mounted a tmpfs as uid 1000"
    check_recovered(ctx, base, "the setuid probe")


# ---------------------------------------------------------------------------
# D9: system directories are read-only mounts.

def test_d9_system_dirs_read_only(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import glob
name = "sbx-probe-" + NONCE
creat = os.O_WRONLY | os.O_CREAT | os.O_EXCL
def try_mkdir(p):
    try:
        os.mkdir(p)
    except OSError as e:
        return ename(e.errno)
    return "ok"
def try_utime(p):
    try:
        os.utime(p, None)
    except OSError as e:
        return ename(e.errno)
    return "ok"
pylib = sorted(glob.glob("/usr/lib/python3*"))
res = {
    "create /usr": try_open("/usr/" + name, creat),
    "create /usr/bin": try_open("/usr/bin/" + name, creat),
    "create /usr/lib/python3": try_open(pylib[0] + "/" + name, creat) if pylib else "no python lib",
    "mkdir /usr/local": try_mkdir("/usr/local/" + name),
    "utime /usr/bin/python3": try_utime("/usr/bin/python3"),
    "create /bin": try_open("/bin/" + name, creat),
    "create /etc": try_open("/etc/" + name, creat),
    "create /": try_open("/" + name, creat),
    "create /tmp": try_open("/tmp/" + name, creat),
    "create /workspace": try_open("/workspace/" + name, creat),
}
emit({"res": res})
''')
    _expect(r["res"], {
        "create /usr": {"EROFS"}, "create /usr/bin": {"EROFS"}, "create /usr/lib/python3": {"EROFS"},
        "mkdir /usr/local": {"EROFS"}, "utime /usr/bin/python3": {"EROFS"},
        "create /bin": {"EROFS", "ENOENT"},   # /bin may be absent or a link into /usr
        "create /etc": {"EROFS", "EACCES"},
        "create /tmp": {"ok"}, "create /workspace": {"ok"},
    }, "writes to system directories (EROFS = read-only mount; /tmp and /workspace must work)")
    check_recovered(ctx, base, "the read-only probe")


# ---------------------------------------------------------------------------
# D10, D11, F3: IPC, /dev/shm, abstract and path unix sockets are private.

def _sysv_shm_create(key):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(ctypes.c_int(key), ctypes.c_size_t(4096), ctypes.c_int(0o1000 | 0o2000 | 0o600))
    if shmid < 0:
        raise OSError(ctypes.get_errno(), "shmget on the host")
    return shmid


def _sysv_shm_remove(shmid):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(0), ctypes.c_void_p(None))   # IPC_RMID


def _sysv_shm_remove_key_on_host(key):
    """If a sandbox's segment landed in the host's IPC namespace, remove it;
    returns whether there was one."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(ctypes.c_int(key), ctypes.c_size_t(0), ctypes.c_int(0))
    if shmid < 0:
        return False
    _sysv_shm_remove(shmid)
    return True


def test_d10_d11_ipc_shm_and_unix_sockets_are_private(ctx):
    base = baseline(ctx)
    tok = secrets.token_hex(6)
    key = 0x5B000000 | secrets.randbelow(1 << 24)
    shmid = _sysv_shm_create(key)
    shm_canary = f"/dev/shm/sandboxd-probe-{tok}"
    with open(shm_canary, "w") as f:
        f.write("host /dev/shm\n")
    abstract = f"sandboxd-probe-{tok}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind("\0" + abstract)
        listener.listen(8)
        r = _probe(ctx, r'''
import socket
def uconnect(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(a)
        return "connected"
    except OSError as e:
        return ename(e.errno)
    finally:
        s.close()
inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
inner.bind("\0inner-" + NONCE)
inner.listen(1)
shmget = sc(29, PARAMS["key"], 0, 0)[0]
emit({"host_abstract": uconnect("\0" + PARAMS["abstract"]),
      "own_abstract": uconnect("\0inner-" + NONCE),
      "fcgi": uconnect(PARAMS["fcgi"]),
      "shmget_host_key": shmget,
      "sysvipc_shm": read_text("/proc/sysvipc/shm"),
      "host_dev_shm_file": os.path.lexists(PARAMS["shm_canary"]),
      "net_unix": read_text("/proc/net/unix")})
''', key=key, abstract=abstract, fcgi=ctx.fcgi_socket, shm_canary=shm_canary)
    finally:
        listener.close()
        os.unlink(shm_canary)
        _sysv_shm_remove(shmid)
    assert r["own_abstract"] == "connected", f"unix sockets do not work inside at all: {r['own_abstract']}"
    assert r["host_abstract"] in {"ECONNREFUSED", "ENOENT"}, (
        f"connect to the host's abstract socket @{abstract}: {r['host_abstract']} (shared network namespace?)")
    assert "@" + abstract not in r["net_unix"], "host abstract socket listed in /proc/net/unix inside"
    assert r["fcgi"] == "ENOENT", f"connect to the FastCGI socket path {ctx.fcgi_socket}: {r['fcgi']}"
    assert r["shmget_host_key"] in {"ENOENT", "EPERM", "ENOSYS"}, (
        f"shmget of the host's SysV segment key {key:#x}: {r['shmget_host_key']} (shared IPC namespace?)")
    keys = set()
    for line in r["sysvipc_shm"].splitlines()[1:]:
        f = line.split()
        if f and f[0].lstrip("-").isdigit():
            keys.add(int(f[0]))
    assert key not in keys, f"host SysV segment visible in /proc/sysvipc/shm:\n{r['sysvipc_shm']}"
    assert r["host_dev_shm_file"] is False, f"host file {shm_canary} visible in the sandbox's /dev/shm"
    check_recovered(ctx, base, "the IPC probe")


# ---------------------------------------------------------------------------
# D13, C20: hostname.

def test_d13_hostname_is_not_the_hosts(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import socket
emit({"gethostname": socket.gethostname(), "nodename": os.uname().nodename,
      "etc_hostname": read_text("/etc/hostname").strip()})
''')
    host = socket.gethostname()
    assert r["gethostname"] and r["gethostname"] == r["nodename"], f"hostname inside: {r}"
    assert r["gethostname"] != host, f"the sandbox has the host's hostname {host!r}"
    assert r["etc_hostname"] != host, f"/etc/hostname inside is the host's ({host!r})"
    check_recovered(ctx, base, "the hostname probe")


# ---------------------------------------------------------------------------
# G5, G6, D10: runs do not share /tmp, /workspace, /dev/shm, SysV IPC.

def test_g6_runs_do_not_see_each_others_files(ctx):
    base = baseline(ctx)
    tok = secrets.token_hex(8)
    key = 0x5C000000 | secrets.randbelow(1 << 24)
    dirs = ["/tmp", "/workspace", "/dev/shm", "/var/tmp"]
    try:
        first, second = _two_runs_with_markers(ctx, tok, key, dirs)
    finally:
        leaked = _sysv_shm_remove_key_on_host(key)
        on_host = [os.path.join(d, "sbx-marker-" + tok) for d in dirs
                   if os.path.lexists(os.path.join(d, "sbx-marker-" + tok))]
        for path in on_host:
            os.unlink(path)
    assert not on_host, f"the first run's markers landed on the host: {on_host}"
    assert not leaked, f"the first run's SysV segment {key:#x} was created in the host's IPC namespace"
    assert first["made"]["/tmp"] is True and first["made"]["/workspace"] is True, (
        f"the first run could not write its markers: {first['made']}")
    seen = {d: v for d, v in second["seen"].items() if v}
    assert not seen, f"the second run sees the first run's files in {seen}; listings: {second['listing']}"
    if first["shm"] == "ok":
        assert second["shm"] == "ENOENT", f"SysV segment {key:#x} of the first run reachable: {second['shm']}"
    assert first["add_key"] in DENIED and second["request_key"] in DENIED, (
        f"kernel keyring reachable across runs: add_key {first['add_key']}, request_key {second['request_key']}")
    check_recovered(ctx, base, "the cross-run probe")


def _two_runs_with_markers(ctx, tok, key, dirs):
    first = _probe(ctx, r'''
made = {}
for d in PARAMS["dirs"]:
    p = os.path.join(d, "sbx-marker-" + PARAMS["tok"])
    try:
        with open(p, "w") as f:
            f.write(PARAMS["tok"])
        with open(p) as f:
            made[d] = f.read() == PARAMS["tok"]
    except OSError as e:
        made[d] = ename(e.errno)
emit({"made": made, "cwd": os.getcwd(),
      "shm": sc(29, PARAMS["key"], 4096, 0o1000 | 0o666)[0],
      "add_key": sc(248, "user", "sbx-" + PARAMS["tok"], b"x", 1, -4)[0]})
''', tok=tok, key=key, dirs=dirs)
    second = _probe(ctx, r'''
seen = {d: os.path.lexists(os.path.join(d, "sbx-marker-" + PARAMS["tok"])) for d in PARAMS["dirs"]}
listing = {}
for d in PARAMS["dirs"]:
    try:
        listing[d] = sorted(os.listdir(d))[:30]
    except OSError as e:
        listing[d] = ename(e.errno)
emit({"seen": seen, "listing": listing, "shm": sc(29, PARAMS["key"], 0, 0)[0],
      "request_key": sc(249, "user", "sbx-" + PARAMS["tok"], None, 0)[0]})
''', tok=tok, key=key, dirs=dirs)
    return first, second


# ---------------------------------------------------------------------------
# C1: namespaces.

def test_c01_namespace_creation_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
SIGCHLD = 17
NEWNS, NEWCGROUP, NEWUTS, NEWIPC = 0x20000, 0x02000000, 0x04000000, 0x08000000
NEWUSER, NEWPID, NEWNET, NEWTIME = 0x10000000, 0x20000000, 0x40000000, 0x80
def reap(name, r):
    if name == "ok":
        if r == 0:          # the child of a clone that should not have worked
            os._exit(0)
        os.waitpid(r, 0)
    return name
def do_clone(flags):
    return reap(*sc(56, flags | SIGCHLD, 0, 0, 0, 0))
def do_clone3(flags):
    args = (ctypes.c_uint64 * 8)(flags, 0, 0, 0, SIGCHLD, 0, 0, 0)
    return reap(*sc(435, addr(args), 64))
def do_setns(path, nstype):
    fd = os.open(path, os.O_RDONLY)
    return sc(308, fd, nstype)[0]
res = {}
for label, flags in [("user", NEWUSER), ("user|mnt", NEWUSER | NEWNS), ("user|net", NEWUSER | NEWNET),
                     ("mnt", NEWNS), ("net", NEWNET), ("pid", NEWPID), ("ipc", NEWIPC), ("uts", NEWUTS),
                     ("cgroup", NEWCGROUP), ("time", NEWTIME)]:
    res["unshare " + label] = isolated(lambda f=flags: sc(272, f)[0])
for label, flags in [("user", NEWUSER), ("user|pid", NEWUSER | NEWPID), ("net", NEWNET)]:
    res["clone " + label] = isolated(lambda f=flags: do_clone(f))
res["clone3 plain"] = isolated(lambda: do_clone3(0))
res["clone3 user"] = isolated(lambda: do_clone3(NEWUSER))
for ns, t in [("user", NEWUSER), ("mnt", NEWNS), ("net", NEWNET), ("uts", NEWUTS)]:
    res["setns own " + ns] = isolated(lambda ns=ns, t=t: do_setns("/proc/self/ns/" + ns, t))
res["control: clone without ns flags"] = isolated(lambda: do_clone(0))
emit({"res": res, "max_user_namespaces": read_text("/proc/sys/user/max_user_namespaces").strip()})
''')
    userns = {"EPERM", "ENOSPC"}   # ENOSPC: user.max_user_namespaces=0 inside
    exp = {k: (userns if "user" in k else DENIED) for k in r["res"] if k.startswith(("unshare", "clone "))}
    exp.update({"clone3 plain": {"ENOSYS"}, "clone3 user": {"ENOSYS"},
                "setns own user": DENIED, "setns own mnt": DENIED, "setns own net": DENIED,
                "setns own uts": DENIED, "control: clone without ns flags": {"ok"}})
    _expect(r["res"], exp, "C1 namespace syscalls (clone3 must be ENOSYS so libc falls back to clone)")
    check_recovered(ctx, base, "the namespace probe")


# ---------------------------------------------------------------------------
# C2, D5: mounts.

def test_c02_mount_family_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
d = "/tmp/mnt-" + NONCE
os.mkdir(d)
MS_BIND, MS_REMOUNT, MS_RDONLY = 4096, 32, 1
AT_FDCWD = -100
def pivot():
    os.chdir(d)
    return sc(155, ".", ".")[0]
def in_new_userns(fn):
    # The real attack chain (C1 then C2): own user+mount namespaces, then mount.
    name = sc(272, 0x10000000 | 0x20000)[0]
    return "unshare " + name if name != "ok" else fn()
attr = ctypes.create_string_buffer(32)
res = {
    "mount tmpfs": isolated(lambda: sc(165, "none", d, "tmpfs", 0, "size=1m")[0]),
    "mount proc": isolated(lambda: sc(165, "proc", d, "proc", 0, None)[0]),
    "mount cgroup2": isolated(lambda: sc(165, "none", d, "cgroup2", 0, None)[0]),
    "mount cgroup v1 (release_agent)": isolated(lambda: sc(165, "none", d, "cgroup", 0, "memory")[0]),
    "bind /usr": isolated(lambda: sc(165, "/usr", d, None, MS_BIND, None)[0]),
    "remount /usr rw": isolated(lambda: sc(165, None, "/usr", None, MS_REMOUNT | MS_BIND, None)[0]),
    "umount2": isolated(lambda: sc(166, d, 0)[0]),
    "mount tmpfs in a new userns": isolated(lambda: in_new_userns(lambda: sc(165, "none", d, "tmpfs", 0, None)[0])),
    "fsopen in a new userns": isolated(lambda: in_new_userns(lambda: sc(430, "tmpfs", 0)[0])),
    "pivot_root": isolated(pivot),
    "chroot": isolated(lambda: sc(161, d)[0]),
    "fsopen": isolated(lambda: sc(430, "tmpfs", 0)[0]),
    "fspick": isolated(lambda: sc(433, AT_FDCWD, "/tmp", 0)[0]),
    "open_tree clone": isolated(lambda: sc(428, AT_FDCWD, "/usr", 1)[0]),
    "move_mount": isolated(lambda: sc(429, AT_FDCWD, d, AT_FDCWD, d, 0)[0]),
    "fsmount": isolated(lambda: sc(432, 0, 0, 0)[0]),
    "mount_setattr": isolated(lambda: sc(442, AT_FDCWD, d, 0, addr(attr), 32)[0]),
}
emit({"res": res, "is_mount_after": os.path.ismount(d)})
''')
    exp = {k: DENIED for k in ("mount tmpfs", "mount proc", "mount cgroup2", "mount cgroup v1 (release_agent)",
                               "bind /usr", "remount /usr rw", "umount2", "pivot_root", "chroot")}
    # The new mount API: EPERM, or ENOSYS where the policy hides it so that
    # libmount falls back to mount(2).
    exp.update({k: DENIED_OR_ABSENT for k in ("fsopen", "fspick", "open_tree clone", "move_mount", "fsmount",
                                              "mount_setattr")})
    exp["mount tmpfs in a new userns"] = {"unshare EPERM", "unshare ENOSPC", "EPERM"}
    exp["fsopen in a new userns"] = {"unshare EPERM", "unshare ENOSPC", "EPERM", "ENOSYS"}
    _expect(r["res"], exp, "C2 mount syscalls")
    assert r["is_mount_after"] is False, "a mount appeared inside the sandbox"
    check_recovered(ctx, base, "the mount probe")


# ---------------------------------------------------------------------------
# C3-C7, C23: keyrings, bpf, userfaultfd, io_uring, perf; memfd still works.

def test_c03_to_c07_keyring_bpf_uffd_io_uring_perf_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
def perf():
    a = ctypes.create_string_buffer(128)
    ctypes.c_uint32.from_buffer(a, 0).value = 1            # PERF_TYPE_SOFTWARE
    ctypes.c_uint32.from_buffer(a, 4).value = 64           # PERF_ATTR_SIZE_VER0
    ctypes.c_uint64.from_buffer(a, 8).value = 0            # PERF_COUNT_SW_CPU_CLOCK
    ctypes.c_uint64.from_buffer(a, 40).value = 1 | (1 << 5) | (1 << 6)  # disabled, exclude_kernel, exclude_hv
    return sc(298, addr(a), 0, -1, -1, 8)[0]
def bpf_map():
    a = ctypes.create_string_buffer(72)
    for i, v in enumerate((2, 4, 4, 1)):                    # ARRAY, key 4, value 4, 1 entry
        ctypes.c_uint32.from_buffer(a, 4 * i).value = v
    return sc(321, 0, addr(a), 72)[0]
def uring():
    p = ctypes.create_string_buffer(120)
    return sc(425, 1, addr(p))[0]
res = {
    "add_key": isolated(lambda: sc(248, "user", "sbx-" + NONCE, b"x", 1, -2)[0]),
    "request_key": isolated(lambda: sc(249, "user", "sbx-none-" + NONCE, None, 0)[0]),
    "keyctl get user keyring": isolated(lambda: sc(250, 0, -4, 0)[0]),
    "bpf map_create": isolated(bpf_map),
    "userfaultfd user-mode-only": isolated(lambda: sc(323, 0x80000 | 0x800 | 1)[0]),
    "io_uring_setup": isolated(uring),
    "io_uring_enter": isolated(lambda: sc(426, -1, 0, 0, 0, None, 0)[0]),
    "io_uring_register": isolated(lambda: sc(427, -1, 0, None, 0)[0]),
    "perf_event_open self": isolated(perf),
    "control: memfd_create": isolated(lambda: sc(319, "probe", 1)[0]),
    "control: getpid": isolated(lambda: "ok" if sc(39) == ("ok", os.getpid()) else "bad"),
}
emit({"res": res})
''')
    _expect(r["res"], {
        "add_key": DENIED, "request_key": DENIED, "keyctl get user keyring": DENIED,
        "bpf map_create": DENIED, "userfaultfd user-mode-only": DENIED,
        "io_uring_setup": DENIED, "io_uring_enter": DENIED, "io_uring_register": DENIED,
        "perf_event_open self": DENIED,
        "control: memfd_create": {"ok"}, "control: getpid": {"ok"},
    }, "C3-C7 kernel attack surface (unconfined, each of these succeeds or reaches the kernel on this host)")
    check_recovered(ctx, base, "the kernel-surface probe")


# ---------------------------------------------------------------------------
# C8, B7: ptrace and friends.

def test_c08_b07_ptrace_family_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import signal, time
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
def attach_child():
    pid = os.fork()
    if pid == 0:
        while True:
            signal.pause()
    try:
        return sc(101, 16, pid, 0, 0)[0]            # PTRACE_ATTACH
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
def vm(nr):
    src = ctypes.create_string_buffer(b"secret-bytes", 16)
    dst = ctypes.create_string_buffer(16)
    local = iovec(addr(dst), 16)
    remote = iovec(addr(src), 16)
    return sc(nr, os.getpid(), addr(local), 1, addr(remote), 1, 0)[0]
def getfd():
    try:
        pfd = os.pidfd_open(os.getpid())
    except OSError:
        pfd = -1
    return sc(438, pfd, 0, 0)[0]
res = {
    "ptrace attach own child": isolated(attach_child),
    "ptrace traceme": isolated(lambda: sc(101, 0, 0, 0, 0)[0]),
    "ptrace attach pid 1": isolated(lambda: sc(101, 16, 1, 0, 0)[0]),
    "process_vm_readv self": isolated(lambda: vm(310)),
    "process_vm_writev self": isolated(lambda: vm(311)),
    "pidfd_getfd self": isolated(getfd),
    "kcmp self": isolated(lambda: sc(312, os.getpid(), os.getpid(), 0, 0, 0)[0]),
}
emit({"res": res})
''')
    _expect(r["res"], {
        "ptrace attach own child": DENIED, "ptrace traceme": DENIED, "ptrace attach pid 1": DENIED,
        "process_vm_readv self": DENIED, "process_vm_writev self": DENIED,
        "pidfd_getfd self": DENIED, "kcmp self": DENIED_OR_ABSENT,
    }, "C8/B7 process inspection syscalls")
    check_recovered(ctx, base, "the ptrace probe")


# ---------------------------------------------------------------------------
# C9, C15, C16, C18-C21: host-global administration.

def test_c09_c15_c16_c18_to_c21_admin_syscalls_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
empty = ctypes.create_string_buffer(64)
def clock_set():
    ts = (ctypes.c_long * 2)()
    if sc(228, 0, addr(ts))[0] != "ok":                  # clock_gettime(REALTIME)
        return "clock_gettime failed"
    return sc(227, 0, addr(ts))[0]                       # set it to what it is
node = os.uname().nodename
dom = read_text("/proc/sys/kernel/domainname").strip()
ldt = ctypes.create_string_buffer(16)
res = {
    "init_module": isolated(lambda: sc(175, addr(empty), 0, "")[0]),
    "finit_module": isolated(lambda: sc(313, -1, "", 0)[0]),
    "delete_module": isolated(lambda: sc(176, "sbx_probe", 0)[0]),
    "kexec_load": isolated(lambda: sc(246, 0, 1000, 0, 0)[0]),       # 1000 segments: EINVAL if permitted
    "kexec_file_load": isolated(lambda: sc(320, -1, -1, 0, "", 0)[0]),
    "syslog size": isolated(lambda: sc(103, 10, 0, 0)[0]),
    "syslog read": isolated(lambda: sc(103, 3, addr(empty), 64)[0]),
    "dev kmsg": isolated(lambda: try_open("/dev/kmsg", os.O_RDONLY)),
    "reboot (bad magic)": isolated(lambda: sc(169, 0, 0, 0, 0)[0]),
    "sethostname (same name)": isolated(lambda: sc(170, node, len(node))[0]),
    "setdomainname (same name)": isolated(lambda: sc(171, dom, len(dom))[0]),
    "settimeofday(NULL, NULL)": isolated(lambda: sc(164, None, None)[0]),
    "clock_settime (now)": isolated(clock_set),
    "acct(NULL)": isolated(lambda: sc(163, None)[0]),
    "swapon": isolated(lambda: sc(167, "/tmp/none", 0)[0]),
    "swapoff": isolated(lambda: sc(168, "/tmp/none")[0]),
    "iopl 3": isolated(lambda: sc(172, 3)[0]),
    "ioperm": isolated(lambda: sc(173, 0x80, 1, 1)[0]),
    "modify_ldt read": isolated(lambda: sc(154, 0, addr(ldt), 16)[0]),
    "personality READ_IMPLIES_EXEC": isolated(lambda: sc(135, 0x0400000)[0]),
    "personality ADDR_NO_RANDOMIZE": isolated(lambda: sc(135, 0x0040000)[0]),
    "personality query (either)": isolated(lambda: sc(135, 0xFFFFFFFF)[0]),
}
emit({"res": res})
''')
    _expect(r["res"], {
        "init_module": DENIED_OR_ABSENT, "finit_module": DENIED_OR_ABSENT, "delete_module": DENIED_OR_ABSENT,
        "kexec_load": DENIED_OR_ABSENT, "kexec_file_load": DENIED_OR_ABSENT,
        "syslog size": DENIED, "syslog read": DENIED, "dev kmsg": {"ENOENT"},
        "reboot (bad magic)": DENIED, "sethostname (same name)": DENIED, "setdomainname (same name)": DENIED,
        "settimeofday(NULL, NULL)": DENIED, "clock_settime (now)": DENIED, "acct(NULL)": DENIED,
        "swapon": DENIED, "swapoff": DENIED, "iopl 3": DENIED_OR_ABSENT, "ioperm": DENIED_OR_ABSENT,
        "modify_ldt read": DENIED_OR_ABSENT,
        "personality READ_IMPLIES_EXEC": DENIED, "personality ADDR_NO_RANDOMIZE": DENIED,
    }, "C9/C15/C16/C18-C21 administration syscalls")
    check_recovered(ctx, base, "the administration-syscall probe")


# ---------------------------------------------------------------------------
# C10-C14, C25: socket families, raw sockets, interface ioctls, file handles.

def test_c10_to_c14_sockets_and_handles_denied(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import socket, fcntl, struct
def sock(fam, typ, proto):
    name, fd = sc(41, fam, typ, proto)
    if name == "ok":
        os.close(fd)
    return name
fams = {
    "AF_PACKET raw": (17, 3, 0x0300), "AF_PACKET dgram": (17, 2, 0x0300),
    "AF_INET raw icmp": (2, 3, 1), "AF_INET raw tcp": (2, 3, 6), "AF_INET6 raw icmpv6": (10, 3, 58),
    "AF_VSOCK stream": (40, 1, 0), "AF_VSOCK dgram": (40, 2, 0),
    "AF_ALG": (38, 5, 0), "AF_TIPC": (30, 4, 0), "AF_APPLETALK": (5, 2, 0), "AF_RDS": (21, 5, 0),
    "AF_KEY": (15, 3, 2), "AF_XDP": (44, 3, 0), "AF_BLUETOOTH": (31, 3, 1), "AF_CAN": (29, 3, 1),
    "AF_X25": (9, 5, 0), "AF_AX25": (3, 5, 0), "AF_LLC": (26, 2, 0), "AF_SMC": (43, 1, 0),
    "AF_PHONET": (35, 2, 0), "AF_NFC": (39, 5, 0), "AF_CAIF": (37, 5, 0), "AF_MCTP": (45, 2, 0),
    "AF_IEEE802154": (36, 3, 0), "AF_QIPCRTR": (42, 2, 0), "AF_NETROM": (6, 5, 0), "AF_ROSE": (11, 5, 0),
}
res = {k: isolated(lambda v=v: sock(*v)) for k, v in fams.items()}
for k, v in {"control: AF_UNIX": (1, 1, 0), "control: AF_INET tcp": (2, 1, 0), "control: AF_INET udp": (2, 2, 0)}.items():
    res[k] = isolated(lambda v=v: sock(*v))
def set_mtu():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("16si20x", b"lo", 0)
    try:
        got = fcntl.ioctl(s, 0x8921, req)                  # SIOCGIFMTU
    except OSError as e:
        return "SIOCGIFMTU " + ename(e.errno)
    buf = ctypes.create_string_buffer(got, 40)
    return sc(16, s.fileno(), 0x8922, addr(buf))[0]          # SIOCSIFMTU, same value
def handles():
    fh = ctypes.create_string_buffer(8 + 128)
    ctypes.c_uint32.from_buffer(fh, 0).value = 128
    mnt = ctypes.c_int()
    n2h = sc(303, -100, "/usr", addr(fh), addr(mnt), 0)[0]
    if n2h != "ok":
        ctypes.c_uint32.from_buffer(fh, 0).value = 8
        ctypes.c_int32.from_buffer(fh, 4).value = 1
    root = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
    return {"name_to_handle_at": n2h, "open_by_handle_at": sc(304, root, addr(fh), os.O_RDONLY)[0]}
res["SIOCSIFMTU lo"] = isolated(set_mtu)
h = isolated(handles)
res["open_by_handle_at"] = h.get("open_by_handle_at") if isinstance(h, dict) else h
res["name_to_handle_at (C25, either)"] = h.get("name_to_handle_at") if isinstance(h, dict) else h
emit({"res": res})
''')
    res = r["res"]
    exp = {k: NO_SOCKET for k in res if k.startswith("AF_")}
    exp.update({"control: AF_UNIX": {"ok"}, "control: AF_INET tcp": {"ok"}, "control: AF_INET udp": {"ok"},
                "SIOCSIFMTU lo": DENIED, "open_by_handle_at": DENIED})
    _expect(res, exp, "C10-C14 socket families (EAFNOSUPPORT/EPERM), raw sockets, interface ioctl, "
                      "open_by_handle_at")
    check_recovered(ctx, base, "the socket probe")


# ---------------------------------------------------------------------------
# C17: foreign syscall ABIs.

def test_c17_32bit_and_x32_syscalls_do_not_bypass_the_filter(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import mmap
def run_code(code):
    m = mmap.mmap(-1, 4096)
    m.write(code)
    buf = (ctypes.c_char * 4096).from_buffer(m)
    if _libc.mprotect(ctypes.c_void_p(addr(buf)), ctypes.c_size_t(4096), 5) != 0:    # PROT_READ|PROT_EXEC
        return "mprotect " + ename(ctypes.get_errno())
    r = ctypes.CFUNCTYPE(ctypes.c_int)(addr(buf))()
    if r == os.getpid():
        return "returned own pid"
    return "returned -" + ename(-r) if r < 0 else "returned %d" % r
def x32():
    name, r = sc(0x40000000 | 39)
    if name != "ok":
        return name
    return "returned own pid" if r == os.getpid() else "returned %d" % r
res = {
    # mov eax, 20 (i386 getpid); int 0x80; ret
    "int 0x80 getpid": isolated(lambda: run_code(b"\xb8\x14\x00\x00\x00\xcd\x80\xc3")),
    "x32 getpid": isolated(x32),
    # mov eax, 39 (x86_64 getpid); syscall; ret -- the harness itself works
    "control: syscall getpid": isolated(lambda: run_code(b"\xb8\x27\x00\x00\x00\x0f\x05\xc3")),
}
emit({"res": res})
''')
    res = r["res"]
    assert res["control: syscall getpid"] == "returned own pid", f"the machine-code harness does not work: {res}"
    for k in ("int 0x80 getpid", "x32 getpid"):
        v = res[k]
        # Contained: the filter killed the task or answered an errno, or the
        # kernel has no such ABI (ENOSYS, or SIGSEGV for int 0x80 without
        # IA32 emulation).  Not contained: the call returned the pid.
        ok = isinstance(v, str) and (v.startswith(("killed by signal", "returned -"))
                                     or re.fullmatch(r"E[A-Z0-9]+", v) is not None)
        assert ok, f"{k}: {v!r} -- a syscall through a foreign ABI reached the kernel unfiltered ({res})"
    check_recovered(ctx, base, "the foreign-ABI probe")


# ---------------------------------------------------------------------------
# B8, B9: TIOCSTI, including the high-bits bypass (CVE-2019-10063).

def test_b08_b09_tiocsti_denied_including_high_bits(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import termios
TIOCSTI, HIGH = 0x5412, 0xFFFFFFFF00005412
def sti(fd, req):
    c = ctypes.create_string_buffer(b"x", 1)
    return sc(16, fd, req, addr(c))[0]
def pty_case(req):
    try:
        m, s = os.openpty()
    except OSError as e:
        return {"openpty": ename(e.errno)}
    os.setsid()
    out = {"openpty": "ok", "TIOCSCTTY": sc(16, s, termios.TIOCSCTTY, 0)[0]}
    win = ctypes.create_string_buffer(8)
    out["control TIOCGWINSZ"] = sc(16, s, termios.TIOCGWINSZ, addr(win))[0]
    out["TIOCSTI"] = sti(s, req)
    return out
nfd = os.open("/dev/null", os.O_RDWR)
tc = ctypes.create_string_buffer(64)
emit({"devnull plain": isolated(lambda: sti(nfd, TIOCSTI)),
      "devnull high bits": isolated(lambda: sti(nfd, HIGH)),
      "devnull control TCGETS": isolated(lambda: sc(16, nfd, termios.TCGETS, addr(tc))[0]),
      "pty plain": isolated(lambda: pty_case(TIOCSTI)),
      "pty high bits": isolated(lambda: pty_case(HIGH))})
''')
    # On /dev/null an unfiltered TIOCSTI is ENOTTY: only the filter answers EPERM.
    _expect(r, {"devnull plain": DENIED, "devnull high bits": DENIED, "devnull control TCGETS": {"ENOTTY"}},
            "TIOCSTI on /dev/null (ENOTTY would mean the filter let it through)")
    for k in ("pty plain", "pty high bits"):
        v = r[k]
        assert isinstance(v, dict) and v.get("openpty") == "ok", f"{k}: cannot open a pty (ptmx/pts promised): {v}"
        assert v["control TIOCGWINSZ"] == "ok" and v["TIOCSCTTY"] == "ok", f"{k}: pty set-up failed: {v}"
        assert v["TIOCSTI"] in DENIED, f"{k}: TIOCSTI into its own controlling tty gave {v['TIOCSTI']}: {v}"
    check_recovered(ctx, base, "the TIOCSTI probe")


# ---------------------------------------------------------------------------
# B1, B2, G3: kill(-1, SIGKILL) stays inside; concurrent runs have distinct uids.

_VICTIM = r'''
name = ("sbxv" + NONCE)[:15]
_libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)
import time
deadline = time.monotonic() + PARAMS["window"]
while time.monotonic() < deadline:        # the window in which the attacker strikes
    time.sleep(0.05)
emit({"survived": True})
'''


def test_b01_g1_g3_kill_minus_one_stays_inside_and_uids_are_distinct(ctx):
    base = baseline(ctx)
    nonce = secrets.token_hex(8)
    victim_code = (_PRELUDE.replace("@NONCE@", nonce) + "PARAMS = json.loads(%r)\n" % json.dumps({"window": 3.0})
                   + _VICTIM)
    comm, attacker_comm = ("sbxv" + nonce)[:15], ("sbxa" + nonce)[:15]
    victim = {}
    victim_done = os.eventfd(0)
    stop = os.eventfd(0)
    # Opened before the victim starts: its prctl(PR_SET_NAME) is the event
    # waited for, and then every process born during the attack is seen.
    events = ProcEvents()

    def run_victim():
        try:
            victim["result"] = ctx.run_on_new_connection(victim_code, timeout=20000)
        except Exception as e:  # reported below
            victim["error"] = repr(e)
        finally:
            os.eventfd_write(victim_done, 1)

    watched = {}

    def watch_attacker(before_attack):
        # Every process born while the attacker runs (the attacker's, and any
        # other sandbox the service starts meanwhile, e.g. for a pool), with
        # each host uid in the sandbox range it has: from its fork on, however
        # short its life.
        born, uids = set(), {}
        while True:
            last = fd_ready(stop)
            for what, pid, data in events.read(0 if last else None, stop):
                if what == ProcEvents.FORK:
                    if pid in before_attack:
                        continue
                    born.add(pid)
                    uid = uid_of(pid)
                    if uid is None:       # gone already: it had its parent's credentials
                        uid = uids.get(data["parent"], uid_of(data["parent"]))
                elif pid not in born or what == ProcEvents.EXIT:
                    continue
                elif what == ProcEvents.UID:
                    uid = data["ruid"]
                else:
                    uid = uid_of(pid)
                if uid is None:
                    continue
                uids[pid] = uid
                if in_sandbox_range(ctx, uid):
                    entry = watched.setdefault(pid, {"uids": set(), "attacker": False})
                    entry["uids"].add(uid)
                    if what == ProcEvents.COMM and data["comm"] == attacker_comm:
                        entry["attacker"] = True
            if last:
                return

    t = threading.Thread(target=run_victim, daemon=True)
    w = None
    try:
        t.start()
        seen = events.wait_comm(comm, time.monotonic() + 10, wake_fd=victim_done)
        victim_uid = uid_of(seen) if seen is not None else None
        # Host view of the running victim: its user code runs under a host uid
        # in the sandbox range (G1), never root.
        assert in_sandbox_range(ctx, victim_uid), (
            f"the victim's user code never appeared on the host under a uid in "
            f"[{ctx.uid_base}, {ctx.uid_base + ctx.uid_span}): pid {seen}, uid {victim_uid}, {victim}")
        events.read(0)                    # what happened before the attack
        w = threading.Thread(target=watch_attacker, args=(set(scan_sandbox(ctx)),), daemon=True)
        w.start()
        attacker = _probe(ctx, r'''
_libc.prctl(15, ctypes.c_char_p(("sbxa" + PARAMS["tag"])[:15].encode()), 0, 0, 0)
import signal, subprocess
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
os.kill(-1, signal.SIGKILL)
emit({"child_rc": child.wait()})
''', tag=nonce)
        victim_alive_after_attack = _comm(seen) == comm
    finally:
        os.eventfd_write(stop, 1)
        if w is not None:
            w.join(5)
        t.join(30)
        events.close()
        os.close(stop)
        os.close(victim_done)
    assert attacker["child_rc"] == -9, f"kill(-1) did not even kill the attacker's own child: {attacker}"
    assert victim_alive_after_attack, "the concurrent victim run was killed by another sandbox's kill(-1)"
    assert "result" in victim, f"victim run failed: {victim}"
    status, body = victim["result"]
    assert status == 200 and '"survived": true' in (body.get("output") or "") and body.get("exitCode") == 0, (
        f"the victim did not survive: HTTP {status} {short(body)}")
    # G3: no process of the concurrent attacker runs under the victim's host uid.
    assert not w.is_alive() and events.lost == 0, (
        f"the watch of the attacker's run is incomplete: {events.lost} process events lost")
    assert any(v["attacker"] for v in watched.values()), (
        f"the attacker's process was not seen on the host under a uid in the sandbox range: {watched}")
    same = {p: v for p, v in watched.items() if victim_uid in v["uids"]}
    assert not same, (f"processes started during the attacker's run share the victim's host uid {victim_uid}: "
                      f"{same} (all new: {watched})")
    check_recovered(ctx, base, "kill(-1, SIGKILL)")


# ---------------------------------------------------------------------------
# B3: an orphan that keeps stdout open does not outlive the run.

def test_b03_orphan_holding_stdout_does_not_survive(ctx):
    base = baseline(ctx)
    code = r'''
import os, sys, time
if os.fork() == 0:
    if os.fork() == 0:           # grandchild: orphaned, keeps stdout, never stops
        while True:
            print("tick", flush=True)
            time.sleep(0.1)
    os._exit(0)
os.wait()
print("main-done", flush=True)
'''
    body, elapsed = run_code(ctx, code, timeout=3000)
    out = body.get("output") or ""
    assert "main-done" in out, f"the program did not run: {short(body)}"
    assert elapsed < 3 + 8, f"the run took {elapsed:.1f} s with a 3 s timeout"
    assert out.count("tick") <= 3 / 0.1 + 10, f"{out.count('tick')} ticks in 3 s"
    wait_no_new_sandbox_pids(ctx, base, "after a run whose orphan kept stdout open")
    status, body = ctx.run("print(42)")
    assert status == 200 and body.get("output") == "42\n", f"orphan output leaked into the next run: {short(body)}"
    check_recovered(ctx, base, "the stdout-holding orphan")


# ---------------------------------------------------------------------------
# B4: zombies are reaped by the sandbox's pid 1.

def test_b04_orphaned_zombies_are_reaped(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import time
rfd, wfd = os.pipe()
mid = os.fork()
if mid == 0:
    n = 0
    for i in range(20):
        if os.fork() == 0:
            os._exit(0)
        n += 1
    os.write(wfd, str(n).encode())
    os._exit(0)                 # its exited children are now orphaned zombies
os.close(wfd)
made = int(os.read(rfd, 16) or b"0")
os.waitpid(mid, 0)
def zombies():
    z = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            st = read_text("/proc/%s/stat" % p)
            if not st.startswith("error:") and st.rsplit(")", 1)[1].split()[0] == "Z":
                z.append(int(p))
    return z
deadline = time.monotonic() + 3
left = zombies()
while left and time.monotonic() < deadline:   # reaping is asynchronous: bounded poll
    time.sleep(0.02)
    left = zombies()
emit({"made": made, "left": left})
''')
    assert r["made"] == 20, f"the probe could not fork its children: {r}"
    assert r["left"] == [], f"zombies not reaped by the sandbox init after 3 s: {r['left']}"
    check_recovered(ctx, base, "the zombie probe")


# ---------------------------------------------------------------------------
# F1, F2, F4, F6, D15: no route anywhere, no DNS.

def test_f01_f02_f04_no_egress_no_dns(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import socket
def connect(fam, typ, a):
    try:
        s = socket.socket(fam, typ)
    except OSError as e:
        return "socket " + ename(e.errno)
    s.settimeout(3)
    try:
        s.connect(a)
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return ename(e.errno)
    finally:
        s.close()
v4 = {
    "udp 1.1.1.1:53": connect(socket.AF_INET, socket.SOCK_DGRAM, ("1.1.1.1", 53)),
    "tcp 192.0.2.1:80": connect(socket.AF_INET, socket.SOCK_STREAM, ("192.0.2.1", 80)),
    "udp 169.254.169.254:80 (metadata)": connect(socket.AF_INET, socket.SOCK_DGRAM, ("169.254.169.254", 80)),
    "udp 10.0.0.1:53": connect(socket.AF_INET, socket.SOCK_DGRAM, ("10.0.0.1", 53)),
}
v6 = {
    "udp6 2001:4860:4860::8888:53": connect(socket.AF_INET6, socket.SOCK_DGRAM, ("2001:4860:4860::8888", 53)),
    "tcp6 2001:db8::1:80": connect(socket.AF_INET6, socket.SOCK_STREAM, ("2001:db8::1", 80)),
}
try:
    dns = "resolved " + repr(socket.getaddrinfo("example.com", 80, proto=socket.IPPROTO_TCP)[:1])
except socket.gaierror as e:
    dns = "gaierror %s" % e.errno
emit({"v4": v4, "v6": v6, "dns": dns, "resolv_conf": read_text("/etc/resolv.conf")})
''')
    _expect(r["v4"], {k: {"ENETUNREACH"} for k in r["v4"]}, "IPv4 egress (no route)")
    bad6 = {k: v for k, v in r["v6"].items() if v in ("connected", "timeout")}
    assert not bad6, f"IPv6 egress possible: {r['v6']}"
    assert r["dns"].startswith("gaierror"), f"DNS resolution works from inside: {r['dns']} (resolv.conf: {r['resolv_conf']!r})"
    check_recovered(ctx, base, "the egress probe")


# ---------------------------------------------------------------------------
# F3, F5: the loopback inside is the sandbox's own; only lo exists.

def test_f03_host_loopback_unreachable_and_only_lo(ctx):
    base = baseline(ctx)
    r = _probe(ctx, r'''
import socket
def connect(fam, a):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(a)
        return "connected"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return ename(e.errno)
    finally:
        s.close()
port = PARAMS["api_port"]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
own = connect(socket.AF_INET, ("127.0.0.1", srv.getsockname()[1]))
api = connect(socket.AF_INET, ("127.0.0.1", port))
try:
    api6 = connect(socket.AF_INET6, ("::1", port))
except OSError as e:
    api6 = "socket " + ename(e.errno)
b = socket.socket()
try:
    b.bind(("127.0.0.1", port))     # free here: this is not the host's loopback
    bind_api = "ok"
except OSError as e:
    bind_api = ename(e.errno)
finally:
    b.close()
try:
    names = sorted(n for _, n in socket.if_nameindex())
except OSError as e:
    names = "error " + ename(e.errno)
dev = [ln.split(":")[0].strip() for ln in read_text("/proc/net/dev").splitlines()[2:] if ":" in ln]
emit({"own": own, "api": api, "api6": api6, "bind_api": bind_api, "if_nameindex": names,
      "proc_net_dev": sorted(dev), "tcp_listen": read_text("/proc/net/tcp")})
''', api_port=ctx.api_port)
    assert r["own"] == "connected", f"loopback does not work inside the sandbox: {r['own']}"
    assert r["api"] in {"ECONNREFUSED", "ENETUNREACH"}, (
        f"connect to 127.0.0.1:{ctx.api_port} (the API port on the host) from inside: {r['api']}")
    assert r["api6"] not in {"connected", "timeout"}, f"connect to [::1]:{ctx.api_port}: {r['api6']}"
    if ctx.api_port >= 1024:
        assert r["bind_api"] == "ok", (
            f"binding 127.0.0.1:{ctx.api_port} inside gave {r['bind_api']}: the host's loopback is shared")
    assert r["proc_net_dev"] == ["lo"], f"interfaces in /proc/net/dev: {r['proc_net_dev']}"
    assert r["if_nameindex"] in (["lo"], ) or str(r["if_nameindex"]).startswith("error"), (
        f"if_nameindex(): {r['if_nameindex']}")
    assert f":{ctx.api_port:04X} " not in r["tcp_listen"], "the host's listening API port shows in /proc/net/tcp"
    check_recovered(ctx, base, "the loopback probe")
