"""ls, create, destroy, use and .sprite; doctor and the configuration
(docs/cli.md "Sprites", "Configuration and doctor")."""
import os

import clitest
from clitest import ok, run, Pty

TOKEN = "cli-test-token"


def one_line(text):
    return text.count("\n") == 1 and text.endswith("\n")


def names(listing):
    return [s["name"] for s in listing]


def test_create_ls_destroy_round_trip_with_json():
    created = ok("create", "cli-alpha", "--label", "team-a", "--label", "web", "--json").json()
    assert created["name"] == "cli-alpha" and created["labels"] == ["team-a", "web"], created
    ok("create", "cli-beta")

    listing = ok("ls", "--json").json()
    assert isinstance(listing, list)
    assert {"cli-alpha", "cli-beta"} <= set(names(listing)), listing
    alpha = [s for s in listing if s["name"] == "cli-alpha"][0]
    assert alpha["labels"] == ["team-a", "web"] and alpha["status"], alpha
    beta = [s for s in listing if s["name"] == "cli-beta"][0]
    assert beta["labels"] == [], beta  # an empty array, not {}

    assert names(ok("ls", "--prefix", "cli-al", "--json").json()) == ["cli-alpha"]
    assert names(ok("ls", "--label", "team-a", "--label", "web", "--json").json()) == ["cli-alpha"]
    assert ok("ls", "--label", "nobody", "--json").json() == []

    table = ok("ls").out.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "LABELS", "LAST", "RUNNING", "CREATED"], table
    row = [line for line in table if line.startswith("cli-alpha ")][0]
    assert "team-a,web" in row and ("just now" in row or "s ago" in row), row
    # Columns are aligned: every row starts its STATUS where the header does.
    column = table[0].index("STATUS")
    assert all(line[column - 2:column] == "  " for line in table[1:]), table

    r = ok("destroy", "cli-beta", "--force")
    assert "destroyed cli-beta" in r.out, r
    assert "cli-beta" not in names(ok("ls", "--json").json())


def test_create_existing_and_bad_arguments():
    r = run("create", "cli-alpha")
    assert r.code == 7 and one_line(r.err), r
    r = run("create")
    assert r.code == 2 and one_line(r.err) and "usage" in r.err, r
    r = run("ls", "--bogus")
    assert r.code == 2 and one_line(r.err) and "--bogus" in r.err, r


def test_destroy_without_a_terminal_needs_force():
    ok("create", "cli-keep")
    r = run("destroy", "cli-keep")
    assert r.code == 2 and one_line(r.err) and "--force" in r.err, r
    assert "cli-keep" in names(ok("ls", "--json").json())
    r = run("destroy", "no-such-sprite", "--force")
    assert r.code == 4 and one_line(r.err), r


def test_destroy_asks_on_a_terminal():
    term = Pty("destroy", "cli-keep")
    term.expect(r"Destroy sprite cli-keep.*\[y/N\]")
    term.send("n\r")
    assert term.wait() == 1
    assert "cli-keep" in names(ok("ls", "--json").json())
    term = Pty("destroy", "cli-keep")
    term.expect(r"\[y/N\]")
    term.send("y\r")
    assert term.wait() == 0
    assert "destroyed cli-keep" in term.buffer.decode()
    assert "cli-keep" not in names(ok("ls", "--json").json())


def test_use_writes_dot_sprite_and_commands_find_it_from_subdirectories():
    r = ok("use", "cli-alpha")
    assert open(".sprite").read() == "cli-alpha\n", r
    os.makedirs("deep/er", exist_ok=True)
    r = ok("exec", "--", "hostname", cwd="deep/er")
    assert r.out.strip() == "cli-alpha", r
    r = ok("use", cwd="deep/er")
    assert r.out.startswith("cli-alpha") and os.path.abspath(".sprite") in r.out, r
    # -s wins over .sprite.
    ok("create", "cli-other")
    assert ok("exec", "-s", "cli-other", "--", "hostname", cwd="deep").out.strip() == "cli-other"

    r = run("use", "no-such-sprite")
    assert r.code == 4 and one_line(r.err), r
    assert open(".sprite").read() == "cli-alpha\n"  # unchanged

    ok("use", "--unset")
    assert not os.path.exists(".sprite")
    r = run("exec", "--", "true", cwd="deep")
    assert r.code == 2 and one_line(r.err) and "use NAME" in r.err, r

    # The sprite CLI's JSON .sprite is read too.
    with open("deep/.sprite", "w") as f:
        f.write('{"organization": "me", "sprite": "cli-other"}')
    assert ok("exec", "--", "hostname", cwd="deep/er").out.strip() == "cli-other"
    os.remove("deep/.sprite")


def test_use_refuses_a_dot_sprite_directory():
    os.makedirs("dirty/.sprite")
    r = run("use", "cli-alpha", cwd="dirty")
    assert r.code == 2 and one_line(r.err) and "not a file" in r.err, r


def test_doctor_names_the_token_source_without_printing_it():
    r = ok("doctor")
    assert TOKEN not in r.out + r.err, r
    assert "SPRITE_TOKEN" in r.out and os.environ["SPRITES_API_URL"] in r.out, r
    assert "yes" in r.out and "spritescript" in r.out, r

    r = ok("--token", TOKEN, "doctor", env={"SPRITE_TOKEN": ""})
    assert TOKEN not in r.out + r.err and "--token" in r.out, r
    r = ok("--token=" + TOKEN, "ls", "--json", env={"SPRITE_TOKEN": ""})
    r = run("--token", "bogus-token-1234", "doctor")  # the flag wins over the environment
    assert r.code == 6 and "bogus-token-1234" not in r.out + r.err, r

    r = run("--api-url", "http://127.0.0.1:1", "doctor")
    assert r.code == 8 and "http://127.0.0.1:1" in r.out and "--api-url" in r.out, r
    r = run("--token")
    assert r.code == 2 and one_line(r.err), r


def test_doctor_on_the_local_engine():
    # Neither URL nor token: the local engine of this test's XDG_DATA_HOME.
    local = {"SPRITE_TOKEN": "", "SPRITES_API_URL": ""}
    try:
        r = ok("doctor", env=local)
        state_dir = os.path.join(os.environ["XDG_DATA_HOME"], "spritescript", "engine")
        assert "the local engine (state dir %s)" % state_dir in r.out, r
        assert "token file" in r.out and "local engine at http://127.0.0.1:" in r.out, r
        token = open(os.path.join(state_dir, "token")).read().strip()
        assert token not in r.out + r.err, r
    finally:
        run("engine", "stop", env=local)


def write_config(text):
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "spritescript")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.lua"), "w") as f:
        f.write(text)
    return os.path.join(path, "config.lua")


def test_config_file_token_and_token_command():
    no_env_token = {"SPRITE_TOKEN": ""}
    path = write_config('return { token = "%s" }\n' % TOKEN)
    try:
        r = ok("doctor", env=no_env_token)
        assert TOKEN not in r.out + r.err and "token in " + path in r.out, r
        assert "cli-alpha" in names(ok("ls", "--json", env=no_env_token).json())

        write_config('return { token_command = "printf %s" }\n' % TOKEN)
        r = ok("doctor", env=no_env_token)
        assert "token_command" in r.out and r.out.count(TOKEN) == 1, r  # the command's text only
        assert "cli-alpha" in names(ok("ls", "--json", env=no_env_token).json())

        # The environment wins over the file.
        write_config('return { token = "from-the-file", api_url = "http://127.0.0.1:1" }\n')
        assert "cli-alpha" in names(ok("ls", "--json").json())

        write_config('return { token_command = "exit 3" }\n')
        r = run("ls", env=no_env_token)
        assert r.code != 0 and one_line(r.err) and "token_command" in r.err, r

        write_config("return {")
        r = run("doctor", env=no_env_token)
        assert r.code != 0 and "unreadable" in r.out, r
    finally:
        os.remove(path)


clitest.main(globals())
