"""The real stack for integration tests: nginx with the shipped config in
front of a real sandboxd, on a private directory and free loopback ports.

Readiness is waited for on events, never by sleeping: sandboxd's log line
"listening on" (its socket is bound and listening by then), and nginx's
launcher process exiting after it daemonised (its sockets are bound by then).
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StackError(Exception):
    pass


class Stack:
    def __init__(self, build_dir, workers=4, uid_base=None, uid_slots=256, env=None):
        if uid_base is None:
            # Two test runs on one machine must not share host uids: a range per
            # run, picked by pid (the suites place extra stacks above it).
            uid_base = 300000000 + (os.getpid() % 40) * 60000000
        self.build_dir = build_dir
        self.workers = workers
        self.uid_base = uid_base
        self.uid_span = uid_slots * 65536
        self.uid_slots = uid_slots
        self.extra_env = env or {}
        self.dir = tempfile.mkdtemp(prefix="sandboxd-test-")
        os.chmod(self.dir, 0o755)
        self.run_dir = os.path.join(self.dir, "run")
        self.log_dir = os.path.join(self.dir, "log")
        self.state_dir = os.path.join(self.dir, "state")
        for d in (self.run_dir, self.log_dir):
            os.mkdir(d)
            os.chmod(d, 0o755)
        self.fcgi_socket = os.path.join(self.run_dir, "fcgi.sock")
        self.https_port = free_port()
        self.http_port = free_port()
        self.sandboxd = None
        self.nginx_pid = None
        self._log_buf = b""

    # -- start and stop -------------------------------------------------

    def start(self):
        self._make_cert()
        self._render_nginx()
        self.start_sandboxd()
        self._start_nginx()

    def _make_cert(self):
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1",
             "-keyout", self.key, "-out", self.cert],
            check=True, capture_output=True)

    def _render_nginx(self):
        self.nginx_conf = os.path.join(self.dir, "nginx.conf")
        subprocess.run(
            [os.path.join(ROOT, "conf/nginx/render.sh"), self.nginx_conf,
             "NGINX_USER=www-data", f"RUN_DIR={self.run_dir}", f"LOG_DIR={self.log_dir}",
             f"HTTPS_LISTEN=127.0.0.1:{self.https_port}", f"HTTP_LISTEN=127.0.0.1:{self.http_port}",
             f"TLS_CERT={self.cert}", f"TLS_KEY={self.key}", f"FCGI_SOCKET={self.fcgi_socket}"],
            check=True)

    def sandboxd_env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "SANDBOXD_SOCKET": self.fcgi_socket,
            "SANDBOXD_STATE_DIR": self.state_dir,
            "SANDBOXD_WORKERS": str(self.workers),
            "SANDBOXD_UID_BASE": str(self.uid_base),
            "SANDBOXD_UID_SLOTS": str(self.uid_slots),
            "SANDBOXD_SOCKET_GROUP": "www-data",
            "SANDBOXD_USER": "sandboxd",
            "SANDBOXD_AGENT": os.path.join(self.build_dir, "sandbox-core", "agent", "sandbox-agent"),
            "SANDBOXD_DRIVERS_DIR": os.path.join(ROOT, "drivers"),
            # A variable of the service's own: it must never reach sandboxed code.
            "SANDBOXD_TEST_SECRET": "do-not-leak-7f3a",
        }
        env.update(self.extra_env)
        return env

    def start_sandboxd(self):
        binary = os.path.join(self.build_dir, "fcgi-app", "sandboxd")
        self.sandboxd_log = open(os.path.join(self.log_dir, "sandboxd.log"), "ab")
        self.sandboxd = subprocess.Popen([binary, "-c", "/dev/null"], env=self.sandboxd_env(),
                                         stdin=subprocess.DEVNULL, stdout=self.sandboxd_log,
                                         stderr=subprocess.PIPE)
        self._log_buf = b""
        self._log_cond = threading.Condition()
        self._log_eof = False
        # sandboxd logs to stderr; a pipe nobody reads would fill up and stall it,
        # so a thread drains it all the time into the log file and a buffer.
        self._log_thread = threading.Thread(target=self._drain_log, args=(self.sandboxd,),
                                            daemon=True)
        self._log_thread.start()
        self.wait_log(b"listening on", 20)

    def _drain_log(self, proc):
        fd = proc.stderr.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            with self._log_cond:
                if not chunk:
                    self._log_eof = True
                    self._log_cond.notify_all()
                    return
                self._log_buf += chunk
                self.sandboxd_log.write(chunk)
                self.sandboxd_log.flush()
                self._log_cond.notify_all()

    def wait_log(self, needle, timeout, count=1):
        """Waits until needle has appeared count times in sandboxd's log."""
        deadline = time.monotonic() + timeout
        with self._log_cond:
            while self._log_buf.count(needle) < count:
                left = deadline - time.monotonic()
                if self._log_eof:
                    raise StackError(f"sandboxd exited ({self.sandboxd.wait()}): {self._log_buf[-2000:]!r}")
                if left <= 0:
                    raise StackError(f"sandboxd did not log {needle!r}: {self._log_buf[-2000:]!r}")
                self._log_cond.wait(left)
        return True

    def log_text(self):
        """Everything sandboxd has logged so far."""
        with self._log_cond:
            return self._log_buf.decode("utf-8", "replace")

    def _start_nginx(self):
        # Daemon mode: the launcher exits once the listening sockets are bound.
        r = subprocess.run(["nginx", "-p", self.dir, "-c", self.nginx_conf, "-g", "daemon on;"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise StackError(f"nginx failed: {r.stderr}")
        with open(os.path.join(self.run_dir, "nginx.pid")) as f:
            self.nginx_pid = int(f.read().strip())

    def stop_sandboxd(self):
        if self.sandboxd is None or self.sandboxd.stderr.closed:
            return self.sandboxd.returncode if self.sandboxd else None
        if self.sandboxd.poll() is None:
            self.sandboxd.send_signal(signal.SIGTERM)
            try:
                self.sandboxd.wait(30)
            except subprocess.TimeoutExpired:
                self.sandboxd.kill()
                self.sandboxd.wait()
        if self.sandboxd:
            self._log_thread.join(10)
            self.sandboxd.stderr.close()
            self.sandboxd_log.close()
        return self.sandboxd.returncode if self.sandboxd else None

    def stop(self, keep_dir=False):
        if self.nginx_pid:
            try:
                os.kill(self.nginx_pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
            self.nginx_pid = None
        rc = self.stop_sandboxd()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc

    # -- talking to it ----------------------------------------------------

    def tls_context(self):
        return ssl.create_default_context(cafile=self.cert)

    def connection(self):
        return http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.tls_context(),
                                           timeout=700)

    @staticmethod
    def _processes():
        """(pid, ppid, real uid) of every process, from /proc."""
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = f.read()
            except OSError:
                continue
            yield int(pid), int(st.split("PPid:")[1].split()[0]), int(st.split("Uid:")[1].split()[0])

    def _in_range(self, uid):
        return self.uid_base <= uid < self.uid_base + self.uid_span

    def worker_pids(self):
        """The master's children that are workers, not sandboxes: told apart by uid."""
        return [pid for pid, ppid, uid in self._processes()
                if ppid == self.sandboxd.pid and uid != 0 and not self._in_range(uid)]

    def wait_sandbox_running(self, timeout=10):
        """Waits until sandboxed code runs (a process of this stack's range that
        is not an init) and returns its pids; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.sandbox_pids()
            if pids:
                return pids
            if time.monotonic() >= deadline:
                raise StackError("no sandboxed code started")
            os.sched_yield()

    def sandbox_pids(self, include_init=False):
        """Host pids of sandboxed code: real uid in this stack's sandbox range.

        Each sandbox's init runs as the sandbox's root (the first uid of its
        range) and user code as uid 1000 inside, so the warm pool's waiting
        inits are told apart from code by uid; include_init counts them too."""
        return [pid for pid, _, uid in self._processes()
                if self._in_range(uid) and (include_init or (uid - self.uid_base) % 65536 != 0)]
