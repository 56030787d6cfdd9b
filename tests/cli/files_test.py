"""fs and services against a fresh engine: binary round trips through files
and through stdin/stdout, listings parsed from --json, one-line errors and
exit codes, and a service created, listed, logged, stopped and removed."""
import os
import signal
import subprocess
import json

import clitest
from clitest import BIN, ok, run

SPRITE = "files"
BLOB = bytes(range(256)) * 300 + os.urandom(100_000) + b"\r\n\x00end"


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, "expected one line, got %r" % text
    return lines[0]


def run_bytes(*args, input=None):
    """Runs spritescript with binary stdin and stdout."""
    p = subprocess.run([BIN] + list(args), input=input, capture_output=True, timeout=clitest.HANG_GUARD)
    return p.returncode, p.stdout, p.stderr.decode()


def entries(path, *extra):
    return {e["name"]: e for e in ok("fs", "ls", path, "-s", SPRITE, "--json", *extra).json()}


def test_put_get_ls_rm_with_files():
    ok("-e", 'sprites.create("%s", {exist_ok = true})' % SPRITE)
    with open("blob.bin", "wb") as f:
        f.write(BLOB)
    ok("fs", "put", "blob.bin", "/tmp/cli/deep/blob.bin", "-s", SPRITE)
    listed = entries("/tmp/cli/deep")
    assert listed["blob.bin"]["size"] == len(BLOB), listed
    assert listed["blob.bin"]["mode"] & 0o777 == 0o644, listed

    ok("fs", "get", "/tmp/cli/deep/blob.bin", "back.bin", "-s", SPRITE)
    with open("back.bin", "rb") as f:
        assert f.read() == BLOB
    assert not [n for n in os.listdir(".") if n.endswith(".spritescript-part")]
    # Into a local directory, under the remote name.
    os.mkdir("into")
    ok("fs", "get", "/tmp/cli/deep/blob.bin", "into", "-s", SPRITE)
    with open("into/blob.bin", "rb") as f:
        assert f.read() == BLOB

    # Into a remote directory (existing, or said with a trailing /), with a mode.
    ok("fs", "put", "blob.bin", "/tmp/cli/", "--mode", "0600", "-s", SPRITE)
    assert entries("/tmp/cli")["blob.bin"]["mode"] & 0o777 == 0o600
    r = ok("fs", "ls", "/tmp/cli", "-s", SPRITE)
    assert r.out.splitlines() == ["blob.bin", "deep/"], r
    r = ok("fs", "ls", "/tmp/cli", "-l", "-s", SPRITE)
    lines = r.out.splitlines()
    assert lines[0].split() == ["MODE", "SIZE", "MODIFIED", "NAME"], r
    assert lines[1].startswith("-rw-------") and lines[1].endswith("blob.bin"), r
    assert lines[2].startswith("drwx") and lines[2].endswith("deep/"), r
    r = ok("fs", "ls", "/tmp/cli", "-r", "-s", SPRITE)
    assert "deep/blob.bin" in r.out.splitlines(), r

    ok("fs", "rm", "/tmp/cli/blob.bin", "-s", SPRITE)
    assert "blob.bin" not in entries("/tmp/cli")
    r = run("fs", "get", "/tmp/cli/blob.bin", "gone.bin", "-s", SPRITE)
    assert r.code == 4 and "/tmp/cli/blob.bin" in one_line(r.err), r
    assert not os.path.exists("gone.bin")


def test_stdin_and_stdout_are_binary_safe():
    code, out, err = run_bytes("fs", "put", "-", "piped.bin", "-s", SPRITE, input=BLOB)
    assert code == 0, err
    # A relative remote path is under /home/sprite.
    assert entries("/home/sprite")["piped.bin"]["size"] == len(BLOB)
    code, out, err = run_bytes("fs", "get", "~/piped.bin", "-", "-s", SPRITE)
    assert code == 0 and out == BLOB, err
    code, out, err = run_bytes("fs", "get", "/home/sprite/piped.bin", "-", "-s", SPRITE)
    assert code == 0 and out == BLOB, err
    # An empty file too.
    code, out, err = run_bytes("fs", "put", "-", "/tmp/empty", "-s", SPRITE, input=b"")
    assert code == 0, err
    code, out, err = run_bytes("fs", "get", "/tmp/empty", "-", "-s", SPRITE)
    assert code == 0 and out == b"", err


def test_trees_with_r():
    os.makedirs("tree/sub")
    with open("tree/a.txt", "w") as f:
        f.write("a\n")
    with open("tree/sub/b.bin", "wb") as f:
        f.write(BLOB[:5000])
    r = run("fs", "put", "tree", "/tmp/tree", "-s", SPRITE)
    assert r.code == 2 and "add -r" in one_line(r.err), r
    ok("fs", "put", "-r", "tree", "/tmp/tree", "-s", SPRITE)
    assert set(entries("/tmp/tree")) == {"a.txt", "sub"}
    r = run("fs", "get", "/tmp/tree", "-s", SPRITE)
    assert r.code == 2 and "add -r" in one_line(r.err), r
    ok("fs", "get", "-r", "/tmp/tree", "copy", "-s", SPRITE)
    with open("copy/sub/b.bin", "rb") as f:
        assert f.read() == BLOB[:5000]
    r = run("fs", "rm", "/tmp/tree", "-s", SPRITE)
    assert r.code == 2 and "not empty" in one_line(r.err), r
    ok("fs", "rm", "-r", "/tmp/tree", "-s", SPRITE)
    assert run("fs", "ls", "/tmp/tree", "-s", SPRITE).code == 4
    # -f: removing what is not there is fine.
    ok("fs", "rm", "-f", "/tmp/tree", "-s", SPRITE)
    assert run("fs", "rm", "/tmp/tree", "-s", SPRITE).code == 4


def test_bad_local_files_are_one_line_exit_2():
    r = run("fs", "put", "no-such-file.txt", "/tmp/x", "-s", SPRITE)
    assert r.code == 2 and "cannot read no-such-file.txt" in one_line(r.err), r
    r = run("fs", "put", "-", "-s", SPRITE, input="x")
    assert r.code == 2, r
    r = run("fs", "put", "blob.bin", "/tmp/x", "--mode", "rw", "-s", SPRITE)
    assert r.code == 2 and "--mode" in one_line(r.err), r
    r = run("fs", "get", "/home/sprite/piped.bin", "no/such/dir/out.bin", "-s", SPRITE)
    assert r.code == 2 and "no/such/dir/out.bin" in one_line(r.err), r
    r = run("fs", "frob", "-s", SPRITE)
    assert r.code == 2 and "unknown subcommand" in one_line(r.err), r
    r = run("fs", "ls")  # no -s and no .sprite
    assert r.code == 2 and "no sprite given" in one_line(r.err), r
    # .sprite names the default sprite.
    with open(".sprite", "w") as f:
        f.write(SPRITE + "\n")
    try:
        assert "piped.bin" in ok("fs", "ls").out.splitlines()
    finally:
        os.remove(".sprite")


def services():
    return {s["name"]: s for s in ok("services", "ls", "-s", SPRITE, "--json").json()}


def test_services_create_ls_logs_stop_start_rm():
    assert ok("services", "-s", SPRITE, "--json").json() == []
    r = ok("services", "create", "greeter", "-s", SPRITE, "--wait", "1.5",
           "--", "sh", "-c", "echo hello-from-greeter; exec sleep 1000")
    assert "hello-from-greeter" in r.out, r
    assert "greeter: running" in r.err, r
    svc = services()["greeter"]
    assert svc["state"]["status"] == "running" and svc["cmd"] == "sh", svc
    assert svc["args"] == ["-c", "echo hello-from-greeter; exec sleep 1000"], svc

    r = ok("services", "-s", SPRITE)
    header, row = r.out.splitlines()[0], r.out.splitlines()[1]
    assert header.split()[:3] == ["NAME", "STATUS", "PID"], r
    assert row.split()[:2] == ["greeter", "running"], r

    r = ok("services", "logs", "greeter", "-s", SPRITE)
    assert "hello-from-greeter" in r.out, r
    r = ok("services", "logs", "greeter", "-s", SPRITE, "--json")
    events = [json.loads(line) for line in r.out.splitlines()]
    assert any(e["type"] == "stdout" and "hello-from-greeter" in e["message"] for e in events), events
    assert all(e["type"] != "complete" for e in events), events

    ok("services", "stop", "greeter", "-s", SPRITE, "--timeout", "2")
    assert services()["greeter"]["state"]["status"] == "stopped"
    r = run("services", "stop", "greeter", "-s", SPRITE)
    assert r.code == 7, r  # conflict: not running
    one_line(r.err)
    r = ok("services", "start", "greeter", "-s", SPRITE, "--wait", "1")
    assert services()["greeter"]["state"]["status"] == "running"
    ok("services", "restart", "greeter", "-s", SPRITE, "--wait", "0")
    assert services()["greeter"]["state"]["status"] in ("running", "starting")

    ok("services", "rm", "greeter", "-s", SPRITE)
    assert "greeter" not in services()
    r = run("services", "logs", "greeter", "-s", SPRITE)
    assert r.code == 4, r


def test_services_create_with_options_and_follow():
    ok("services", "create", "env", "-s", SPRITE, "--cmd", "sh", "--arg", "-c",
       "--arg", 'echo "$GREETING from $(pwd)"; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.3; done',
       "--env", "GREETING=hi", "--dir", "/tmp", "--wait", "0.5", "--http-port", "9000")
    svc = services()["env"]
    assert svc["env"] == {"GREETING": "hi"} and svc["dir"] == "/tmp" and svc["http_port"] == 9000, svc
    r = ok("services", "logs", "env", "-n", "100", "-s", SPRITE)
    assert "hi from /tmp" in r.out, r
    follow = subprocess.Popen([BIN, "services", "logs", "env", "-f", "-n", "0", "-s", SPRITE],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = follow.stdout.readline()
        assert line.startswith("tick-"), line
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 130
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    ok("services", "rm", "env", "-s", SPRITE)


def test_services_bad_input():
    r = run("services", "create", "x", "-s", SPRITE)
    assert r.code == 2 and "no command" in one_line(r.err), r
    r = run("services", "create", "x", "--env", "NOVALUE", "-s", SPRITE, "--", "true")
    assert r.code == 2 and "KEY=VALUE" in one_line(r.err), r
    r = run("services", "create", "x", "--http-port", "99999", "-s", SPRITE, "--", "true")
    assert r.code == 2 and "--http-port" in one_line(r.err), r
    r = run("services", "start", "nothing-here", "-s", SPRITE)
    assert r.code == 4, r
    one_line(r.err)
    r = run("services", "frob", "-s", SPRITE)
    assert r.code == 2, r


clitest.main(globals())
