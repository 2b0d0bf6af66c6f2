"""One server process started and stopped the way every script here does it.

A server (a built app, or a benchmark peer) prints `listening on http://HOST:PORT`
as its first line on stdout once it accepts connections, and exits on SIGTERM.
ServerProcess starts it, waits for that line (with a timeout, without ever blocking
on a half-written line), and stops it: SIGTERM (or another signal), a wait, then
SIGKILL.

    srv = ServerProcess([exe, "--port", "0"], name="hello").start()
    srv.host, srv.port, srv.listening_line, srv.pid
    srv.stop()                 # the exit status; srv.killed says whether SIGKILL was needed
    srv.stderr_text()          # collected stderr, also after stop()

Users: test/apps/harness.py (App), test/soak.py (Server), bench/peers.py (Server, and
bench/multicore.py through it) and bench/peers/check_peer.py. It lives in test/ because
the tests are its first and strictest user (the harness's start-up and stop are what
the integration suites assert on), and test/ is already where the scripts' shared
Python lives; the bench scripts import it with a sys.path insert of the test directory.

What differs between the callers is an option here, not a copy of the mechanism:
  env          extra variables on top of os.environ (None: inherit as is)
  cwd, stdin, preexec_fn   handed to Popen (stdin None: inherited)
  stderr       None: collected in a temporary file (stderr_text()); else handed to
               Popen as it is (subprocess.PIPE, a file), and stderr_text() is ""
  new_session  the server gets its own session, so its process group is its own:
               stop() can then SIGKILL what is left of the group (see group_grace)
  start_timeout  seconds to wait for the first line (None: no limit)
  settle       seconds to sleep after the line, before start() returns
  drain        True: a thread reads and drops the rest of stdout, so that the server
               never blocks on it; False: the rest stays in the pipe and stop() adds
               it to .out (what the tests look at). A process that forks afterwards
               (test/soak.py's multiprocessing workers) wants False: no thread.
stop(sig, timeout, group_grace, on_wait) covers the rest; subclasses override stop()
and start() fails through self.stop(), so a subclass's clean-up runs there too.
"""
import os
import re
import select
import signal
import subprocess
import tempfile
import threading
import time

LISTENING = re.compile(r"listening on https?://(\S+):(\d+)")


class StartError(RuntimeError):
    """The server gave no `listening on` line. It has been stopped (self.server.stop())."""

    def __init__(self, server, timed_out):
        self.server, self.timed_out = server, timed_out
        self.out = server.out        # every byte of stdout, the rest included once stopped
        self.line = server.first_line  # the first line, as text ("" if there was none)
        what = f"no `listening on` line within {server.start_timeout} s" if timed_out else "no `listening on` line"
        super().__init__(f"{server.name}: {what} (got {self.line!r}); stdout {self.out!r}; "
                         f"stderr {server.stderr_text()[-2000:]!r}")


class ServerProcess:
    def __init__(self, argv, *, name=None, env=None, cwd=None, stdin=None, stderr=None, preexec_fn=None,
                 new_session=False, start_timeout=20, settle=0.0, drain=False):
        self.argv = list(argv)
        self.name = name or os.path.basename(self.argv[0])
        self.extra_env, self.cwd, self.stdin, self.preexec_fn = env, cwd, stdin, preexec_fn
        self.new_session, self.start_timeout, self.settle, self.drain = new_session, start_timeout, settle, drain
        self._collected = tempfile.TemporaryFile() if stderr is None else None
        self._stderr_arg = self._collected if stderr is None else stderr
        self.proc = None
        self.out = b""
        self.first_line = ""
        self.listening_line = None
        self.host = self.port = None
        self.killed = False

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        env = None if self.extra_env is None else dict(os.environ, **self.extra_env)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stdin=self.stdin, stderr=self._stderr_arg,
                                     env=env, cwd=self.cwd, preexec_fn=self.preexec_fn,
                                     start_new_session=self.new_session)
        try:
            timed_out = self._read_first_line()
            self.first_line = self.out.split(b"\n", 1)[0].decode(errors="replace")
            m = LISTENING.fullmatch(self.first_line)
            if not m:
                self.stop()
                raise StartError(self, timed_out)
            self.listening_line = self.first_line
            self.host, self.port = m.group(1), int(m.group(2))
            if self.drain:
                threading.Thread(target=self.proc.stdout.read, daemon=True).start()
            if self.settle:
                time.sleep(self.settle)  # before anything is measured
        except BaseException as e:  # Ctrl-C while waiting: the server must not outlive us
            if not isinstance(e, StartError):
                self.stop()
            raise
        return self

    def _read_first_line(self):
        """Read stdout into self.out until a whole line is there, EOF, or the timeout
        (select, not readline: a server that hangs before its first line, or in the middle
        of it, must not hang us). Returns whether the timeout ran out."""
        deadline = None if self.start_timeout is None else time.monotonic() + self.start_timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.out:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return True
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return False
                self.out += chunk
        return False

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=10):
        return self.proc.wait(timeout=timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, sig=signal.SIGTERM, timeout=10, group_grace=None, on_wait=None):
        """Send sig (SIGTERM), wait up to timeout s, SIGKILL if it is still there; returns the
        exit status (self.killed: SIGKILL was needed).
        With new_session, what is left of the server's process group once the server is gone:
        group_grace None leaves it alone, unless the server itself had to be killed (then the
        whole group gets SIGKILL at once); a number gives it that many seconds to exit (on_wait()
        is called every 50 ms meanwhile, e.g. to reap orphans) before the group gets SIGKILL."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
        if self.new_session and (self.killed or group_grace is not None):
            deadline = time.monotonic() + (group_grace or 0)
            while time.monotonic() < deadline and self.group_alive():
                if on_wait:
                    on_wait()
                time.sleep(0.05)
            if self.group_alive():
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if p.poll() is None:
            self.killed = True
            p.kill()
        p.wait()
        if not self.drain and p.stdout and not p.stdout.closed:
            self.out += p.stdout.read()
            p.stdout.close()
        return p.returncode

    def stderr_text(self):
        if self._collected is None:
            return ""
        self._collected.seek(0)
        return self._collected.read().decode(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        if self._collected is not None:
            self._collected.close()  # kept open past stop(): callers read stderr_text() after the exit
