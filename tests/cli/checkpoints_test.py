"""checkpoint create/ls/info/rm and restore (docs/cli.md "Checkpoints")."""
import re

import clitest
from clitest import ok, run, Pty

S = "cli-cp"


def one_line(text):
    return text.count("\n") == 1 and text.endswith("\n")


def sh(script):
    return ok("exec", "-s", S, "--", "sh", "-c", script).out


def test_setup():
    ok("create", S)
    sh("echo one > /home/sprite/state")


state = {}


def test_create_prints_the_new_id_and_nothing_else():
    r = ok("checkpoint", "-s", S, "--comment", "first state")
    assert re.fullmatch(r"v\d+\n", r.out), r
    assert r.err == "", r  # no progress without a terminal
    state["first"] = r.out.strip()
    sh("echo two > /home/sprite/state")
    r = ok("checkpoint", "create", "-s", S, "--comment", "second state", "--json")
    cp = r.json()
    assert cp["comment"] == "second state" and cp["sprite"] == S and cp["id"] != state["first"], cp
    state["second"] = cp["id"]


def test_ls_and_info():
    listing = ok("checkpoint", "ls", "-s", S, "--json").json()
    ids = [c["id"] for c in listing]
    assert state["first"] in ids and state["second"] in ids, listing
    assert ids.index(state["second"]) < ids.index(state["first"]), ids  # newest first
    assert all(not c["is_auto"] for c in listing), listing
    assert isinstance(listing[0]["history"], list)
    every = ok("checkpoint", "ls", "--all", "-s", S, "--json").json()
    assert set(ids) <= {c["id"] for c in every}

    table = ok("checkpoint", "list", "-s", S).out.splitlines()
    assert table[0].split() == ["ID", "CREATED", "KIND", "COMMENT"], table
    assert any(line.startswith(state["first"]) and "first state" in line for line in table), table

    info = ok("checkpoint", "info", state["first"], "-s", S, "--json").json()
    assert info["id"] == state["first"] and info["comment"] == "first state", info
    assert "create_time" in info and info["is_auto"] is False
    text = ok("checkpoint", "info", state["first"], "-s", S).out
    assert "first state" in text and state["first"] in text, text

    r = run("checkpoint", "info", "v999", "-s", S)
    assert r.code == 4 and one_line(r.err), r
    r = run("checkpoint", "info", "-s", S)
    assert r.code == 2 and one_line(r.err), r
    r = run("checkpoint", "frob", "-s", S)
    assert r.code == 2 and one_line(r.err) and "frob" in r.err, r


def test_restore():
    assert sh("cat /home/sprite/state") == "two\n"
    r = ok("restore", state["first"], "-s", S)
    assert state["first"] in r.out and r.err == "", r
    assert sh("cat /home/sprite/state") == "one\n"
    listing = ok("checkpoint", "ls", "-s", S, "--json").json()
    current = [c["id"] for c in listing if c.get("current")]
    assert current == [state["first"]], listing
    ok("checkpoint", "restore", state["second"], "-s", S)
    assert sh("cat /home/sprite/state") == "two\n"
    r = run("restore", "v999", "-s", S)
    assert r.code == 4 and one_line(r.err), r


def test_progress_on_a_terminal():
    term = Pty("checkpoint", "-s", S, "--comment", "from a terminal")
    assert term.wait() == 0
    text = term.buffer.decode()
    # A progress line redrawn in place (spinner, label, steps), cleared
    # before the id is printed on a line of its own.
    assert "checkpoint of " + S in text and "Checkpoint v" in text, text
    assert re.search(r"\r\x1b\[Kv\d+\r?\n", text), text


def test_rm():
    third = ok("checkpoint", "-s", S).out.strip()
    r = ok("checkpoint", "rm", third, "-s", S)
    assert third in r.out, r
    assert third not in [c["id"] for c in ok("checkpoint", "ls", "-s", S, "--json").json()]


clitest.main(globals())
