"""The command dispatcher: unknown commands, usage errors, exit codes."""
import clitest
from clitest import run


def test_unknown_command_suggests_the_closest():
    r = run("lss")
    assert r.code == 2, r
    assert "unknown command 'lss'; did you mean 'ls'?" in r.err, r
    r = run("frobnicate")
    assert r.code == 2 and "did you mean" not in r.err, r


def test_help_lists_the_commands():
    r = run("help")
    assert r.code == 0 and "console" in r.out and "repl" in r.out, r


clitest.main(globals())
