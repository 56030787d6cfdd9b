"""exec and sessions (docs/cli.md "Running commands")."""
import os
import subprocess
import time

import clitest
from clitest import ok, run, BIN

S = "cli-exec"


def one_line(text):
    return text.count("\n") == 1 and text.endswith("\n")


def test_setup():
    ok("create", S)


def test_exit_code_passes_through():
    assert run("exec", "-s", S, "--", "sh", "-c", "exit 7").code == 7
    assert run("exec", "-s", S, "--", "true").code == 0
    assert run("exec", "-s", S, "--", "false").code == 1
    r = run("exec", "-s", S, "--", "sh", "-c", "kill -TERM $$")
    assert r.code == 128 + 15, r


def test_stdout_and_stderr_stay_apart():
    r = run("exec", "-s", S, "--", "sh", "-c", "echo out; echo err >&2; echo out2")
    assert r.code == 0 and r.out == "out\nout2\n" and r.err == "err\n", r


def test_argv_is_kept_and_one_string_runs_in_bash():
    r = ok("exec", "-s", S, "--", "printf", "%s|", "a b", "$HOME", "--flag")
    assert r.out == "a b|$HOME|--flag|", r
    r = ok("exec", "-s", S, "--", "echo one && echo $((1+1))")
    assert r.out == "one\n2\n", r
    # Without "--" the words are the command too, when none looks like an option.
    assert ok("exec", "-s", S, "echo", "hi").out == "hi\n"


def test_env_and_dir():
    r = ok("exec", "-s", S, "--env", "GREETING=hello world", "--env", "EMPTY=",
           "--", "sh", "-c", 'echo "$GREETING|$EMPTY|$HOME"')
    assert r.out == "hello world||/home/sprite\n", r
    assert ok("exec", "-s", S, "--dir", "/tmp", "--", "pwd").out == "/tmp\n"
    r = run("exec", "-s", S, "--dir", "/no/such/dir", "--", "pwd")
    assert r.code != 0, r


def test_bad_env_is_a_usage_error():
    for bad in ("NOEQUALS", "=value"):
        r = run("exec", "-s", S, "--env", bad, "--", "true")
        assert r.code == 2 and one_line(r.err) and bad in r.err, r


def test_missing_command_and_options():
    r = run("exec", "-s", S)
    assert r.code == 2 and one_line(r.err) and "no command" in r.err, r
    r = run("exec", "-s", S, "--env")
    assert r.code == 2 and one_line(r.err), r
    r = run("exec", "-s", S, "ls", "-la")
    assert r.code == 2 and one_line(r.err) and "after '--'" in r.err, r
    r = run("exec", "-s", "no-such-sprite", "--", "true")
    assert r.code == 4 and one_line(r.err), r


def test_stdin_is_forwarded():
    r = ok("exec", "-s", S, "--", "cat", input="hello\nworld\n")
    assert r.out == "hello\nworld\n", r
    big = "".join("line %d\n" % i for i in range(200000))  # about 2 MB
    r = ok("exec", "-s", S, "--", "wc", "-c", input=big)
    assert r.out.strip() == str(len(big)), r
    # Empty stdin: the command sees end of file at once.
    assert ok("exec", "-s", S, "--", "cat", input="").out == ""
    # A file, and /dev/null.
    with open("stdin.txt", "w") as f:
        f.write(big)
    with open("stdin.txt") as f:
        p = subprocess.run([BIN, "exec", "-s", S, "--", "wc", "-c"], stdin=f, capture_output=True,
                           text=True, timeout=clitest.HANG_GUARD)
    assert p.returncode == 0 and p.stdout.strip() == str(len(big)), p
    p = subprocess.run([BIN, "exec", "-s", S, "--", "cat"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=clitest.HANG_GUARD)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p


def test_output_streams_while_the_command_runs():
    p = subprocess.Popen([BIN, "exec", "-s", S, "--", "sh", "-c", "echo first; sleep 4; echo second"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        first = p.stdout.readline()
        assert first == "first\n" and p.poll() is None, (first, p.poll())
        assert p.stdout.readline() == "second\n"
        assert p.wait(timeout=clitest.HANG_GUARD) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_stdin_that_never_ends_does_not_hold_exec():
    # A pipe nobody closes: exec ends with the command.
    p = subprocess.Popen([BIN, "exec", "-s", S, "--", "sh", "-c", "read line; echo got $line"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        p.stdin.write("one\n")
        p.stdin.flush()
        assert p.stdout.readline() == "got one\n"
        assert p.wait(timeout=clitest.HANG_GUARD) == 0
    finally:
        p.stdin.close()
        if p.poll() is None:
            p.kill()


def test_tty_gives_the_command_a_terminal():
    r = ok("exec", "-s", S, "--tty", "--", "sh", "-c", "tty; echo $TERM", env={"TERM": "xterm-test"})
    assert "/dev/pts/" in r.out, r


def test_tty_on_a_terminal_is_interactive():
    term = clitest.Pty("exec", "-s", S, "--tty", "--", "sh", "-c", "tty; read x; echo got $x; exit 3")
    term.expect(r"/dev/pts/")
    term.send("typed\r")
    term.expect(r"got typed")
    assert term.wait() == 3


def test_sessions_ls_json_and_kill():
    p = subprocess.Popen([BIN, "exec", "-s", S, "--", "sleep", "300"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        session = None
        deadline = time.time() + clitest.HANG_GUARD
        while session is None and time.time() < deadline:
            listing = ok("sessions", "-s", S, "--json").json()
            assert isinstance(listing, list), listing
            found = [x for x in listing if "sleep" in x["command"]]
            session = found[0] if found else None
            time.sleep(0.1)
        assert session, listing
        assert {"id", "command", "workdir", "is_active", "tty"} <= set(session), session

        table = ok("sessions", "ls", "-s", S).out
        assert table.startswith("ID") and str(session["id"]) in table, table

        r = ok("sessions", "kill", str(session["id"]), "-s", S)
        assert "killed" in r.out, r
        assert p.wait(timeout=clitest.HANG_GUARD) == 128 + 15
    finally:
        if p.poll() is None:
            p.kill()
    r = run("sessions", "kill", "999999", "-s", S)
    assert r.code == 4 and one_line(r.err), r
    r = run("sessions", "frob", "-s", S)
    assert r.code == 2 and one_line(r.err), r


def test_dot_sprite_is_the_default():
    ok("use", S)
    assert ok("exec", "--", "hostname").out.strip() == S
    assert isinstance(ok("sessions", "--json").json(), list)
    os.remove(".sprite")


clitest.main(globals())
