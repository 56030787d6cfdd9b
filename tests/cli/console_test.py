"""The console and attach (docs/cli.md "The console and attach"): a shell
over a TTY session, window size, Ctrl-C, the detach key, reattaching, the
remote exit code, and the local terminal back in cooked mode after every
way out."""
import os
import re
import signal
import termios
import time

import clitest
from clitest import Pty, ok, run

NAME = "console-test"
DETACH = b"\x1c"  # Ctrl-\


def setup_sprite():
    if run("sessions", "ls", "--json", "-s", NAME).code != 0:
        ok("create", NAME)


def assert_cooked(p):
    """The terminal is back in cooked mode: echo and line editing on."""
    lflag = termios.tcgetattr(p.fd)[3]
    assert lflag & termios.ECHO, "ECHO is off after the console ended"
    assert lflag & termios.ICANON, "ICANON is off after the console ended"


def console(*args, key=r"Ctrl-\\", **kwargs):
    p = Pty("console", NAME, *args, **kwargs)
    p.expect(r"Connected to %s, session (\d+)\. %s detaches" % (NAME, key))
    return p


def shell_says(p, command, pattern, timeout=clitest.HANG_GUARD):
    p.send(command + "\r")
    return p.expect(pattern, timeout=timeout)


def sessions():
    return ok("sessions", "ls", "--json", "-s", NAME).json()


def test_a_shell_runs_and_its_exit_code_is_the_consoles():
    setup_sprite()
    p = console()
    shell_says(p, "echo $((6*7))", r"[\r\n]42\r\n")
    p.send("exit 3\r")
    assert p.wait() == 3
    assert_cooked(p)


def test_the_window_size_follows_the_terminal():
    p = console(rows=24, cols=80)
    shell_says(p, "stty size", r"[\r\n]24 80\r\n")
    p.resize(30, 100)
    # The resize and the next keys travel separately: ask until it shows.
    deadline = time.time() + 20
    while True:
        p.send("stty size\r")
        m = p.expect(r"[\r\n](\d+ \d+)\r\n")
        if m.group(1) == b"30 100":
            break
        assert time.time() < deadline, "the remote size stayed %r" % m.group(1)
        time.sleep(0.2)
    p.send("exit\r")
    assert p.wait() == 0
    assert_cooked(p)


def test_ctrl_c_interrupts_the_remote_command_and_the_shell_stays():
    p = console()
    shell_says(p, "echo begin-$((3*3)); sleep 100", r"begin-9")
    time.sleep(0.3)
    p.send(b"\x03")
    # Were the sleep not interrupted, this would not run within the timeout.
    shell_says(p, "echo after-$((2+2))", r"after-4", timeout=15)
    p.send("exit 0\r")
    assert p.wait() == 0
    assert_cooked(p)


def test_detach_leaves_the_session_running_and_attach_resumes_it():
    p = console()
    shell_says(p, "cd /tmp && X=kept && echo set-$((1+1))", r"set-2")
    shell_says(p, "echo marker-$((2+3))", r"marker-5")
    p.send(DETACH)
    assert p.wait() == 0
    text = p.buffer.decode(errors="replace")
    m = re.search(r"attach again with: spritescript sessions attach (\d+) -s %s" % NAME, text)
    assert m, text
    session = m.group(1)
    assert_cooked(p)

    listed = {str(x["id"]): x for x in sessions()}
    assert session in listed, listed
    assert listed[session]["tty"] is True, listed[session]

    a = Pty("sessions", "attach", session, "-s", NAME)
    a.expect(r"Connected to %s, session %s" % (NAME, session))
    # The shell kept its state: directory and variables.
    shell_says(a, "echo again-$X-$(pwd)-$((3+4))", r"again-kept-/tmp-7")
    a.send("exit 5\r")
    assert a.wait() == 5
    assert_cooked(a)
    assert session not in {str(x["id"]) for x in sessions()}


def test_the_detach_key_can_be_changed():
    p = console("--detach-key", "ctrl-]", key=r"Ctrl-\]")
    shell_says(p, "echo one-$((1+0))", r"one-1")
    p.send(DETACH)  # now an ordinary key: the shell gets it
    shell_says(p, "echo two-$((1+1))", r"two-2")
    p.send(b"\x1d")
    assert p.wait() == 0
    assert b"sessions attach" in p.buffer
    assert_cooked(p)


def test_signals_restore_the_terminal():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        p = console()
        shell_says(p, "echo up-$((5+5))", r"up-10")
        os.kill(p.pid, sig)
        assert p.wait() == -sig
        assert_cooked(p)


def test_a_missing_sprite_or_session_is_one_line():
    p = Pty("console", "no-such-sprite")
    assert p.wait() == 4
    assert b"no-such-sprite" in p.buffer and b"Traceback" not in p.buffer
    assert_cooked(p)
    a = Pty("sessions", "attach", "999999", "-s", NAME)
    assert a.wait() == 4, a.buffer
    assert_cooked(a)


def test_usage_errors():
    r = run("console", NAME)  # stdin is not a terminal
    assert r.code == 2 and "needs a terminal" in r.err and len(r.err.strip().splitlines()) == 1, r
    r = run("console", NAME, "--detach-key", "alt-x")
    assert r.code == 2 and "--detach-key" in r.err, r
    r = run("console", NAME, "other")
    assert r.code == 2, r


clitest.main(globals())
