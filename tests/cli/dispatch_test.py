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


def test_command_help_prints_usage_and_exits_0():
    r = run("ls", "--help")
    assert r.code == 0 and r.out.startswith("usage: spritescript ls"), r
    assert "--prefix" in r.out, r
    r = run("exec", "-h")
    assert r.code == 0 and "usage: spritescript exec" in r.out, r


def test_the_config_files_default_sprite_is_the_last_resort():
    import os
    config = os.path.join(os.environ["XDG_CONFIG_HOME"], "spritescript")
    os.makedirs(config, exist_ok=True)
    path = os.path.join(config, "config.lua")
    with open(path, "w") as f:
        f.write('return { default_sprite = "from-config" }\n')
    try:
        r = run("sessions", "ls")
        assert r.code == 4 and "from-config" in r.err, r  # it looked for that sprite
    finally:
        os.remove(path)
    r = run("sessions", "ls")
    assert r.code == 2 and "no sprite given" in r.err, r


clitest.main(globals())
