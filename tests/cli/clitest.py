"""Helpers for the command-line tests (tests/cli/*_test.py), run by
tests/cli/run.sh against a fresh engine. Each test is a plain function named
test_*; main() runs them in order and exits non-zero when one fails."""
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import fcntl
import time
import traceback

BIN = os.environ.get("SPRITESCRIPT", "spritescript")
HANG_GUARD = 60  # seconds: a hang guard, never a performance expectation


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "exit %s\n--- stdout\n%s--- stderr\n%s" % (self.code, self.out, self.err)


def run(*args, input=None, cwd=None, env=None, timeout=HANG_GUARD):
    """Runs `spritescript ARGS...` to its end (stdin not a terminal)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run([BIN] + list(args), input=input, capture_output=True, text=True,
                       cwd=cwd, env=full_env, timeout=timeout)
    return Result(p.returncode, p.stdout, p.stderr)


def ok(*args, **kwargs):
    """run(), asserting exit 0."""
    r = run(*args, **kwargs)
    assert r.code == 0, "spritescript %s failed:\n%r" % (" ".join(args), r)
    return r


class Pty:
    """`spritescript ARGS...` on a pseudo-terminal: write keys, expect output."""

    def __init__(self, *args, rows=24, cols=80, cwd=None, env=None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            if cwd:
                os.chdir(cwd)
            full_env = dict(os.environ)
            full_env.update(env or {})
            full_env.setdefault("TERM", "xterm")
            os.execvpe(BIN, [BIN] + list(args), full_env)
        self.buffer = b""
        self.resize(rows, cols)

    def resize(self, rows, cols):
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            os.kill(self.pid, signal.SIGWINCH)
        except ProcessLookupError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        os.write(self.fd, data)

    def expect(self, pattern, timeout=HANG_GUARD):
        """Reads until `pattern` (a regex on the text seen since the last
        match) appears; returns the match. Fails with what was seen."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.time() + timeout
        while True:
            m = regex.search(self.buffer)
            if m:
                self.buffer = self.buffer[m.end():]
                return m
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("expected %r, saw %r" % (pattern, self.buffer[-2000:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("ended before %r; saw %r" % (pattern, self.buffer[-2000:]))
                self.buffer += chunk

    def wait(self, timeout=HANG_GUARD):
        """Reads to the end; returns the exit code."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                self.buffer += chunk
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("did not exit; saw %r" % self.buffer[-2000:])


def main(namespace):
    tests = [(name, fn) for name, fn in namespace.items()
             if name.startswith("test_") and callable(fn)]
    failed = 0
    for name, fn in tests:
        start = time.time()
        try:
            fn()
            print("ok   %s (%.1fs)" % (name, time.time() - start))
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc()
    if not tests:
        print("no tests found")
        sys.exit(1)
    sys.exit(1 if failed else 0)
