"""Scripts as team tools: headers read without running, `run NAME` lookup,
typed parameters, --help, `scripts --json`, and trust (docs/cli.md)."""
import hashlib
import json
import os
import shutil

import clitest
from clitest import run, ok, Pty

WORK = os.getcwd()
CONFIG = os.environ["XDG_CONFIG_HOME"]
STATE = os.environ["XDG_STATE_HOME"]

# Prints what the script received: params, `...` and `arg`.
DEPLOY = '''#!/usr/bin/env spritescript
--- Deploy a branch to a sprite.
--- It builds, uploads and restarts the service.
---@param target sprite the sprite to deploy to
---@param branch string="main" the branch to deploy
---@param retries integer=3 how many attempts
---@param ratio number? a fraction
---@param level "debug"|"info"|"warn"="info" how chatty
---@param dry_run boolean print what would be done
---@param tag string the release tag
---@example spritescript run deploy --tag v1 --dry-run
local p = ...
print(sprites.json.encode({ params = params, same = (p == params), arg1 = arg[1] }, { sort_keys = true }))
'''


def project(name, scripts):
    """A project directory WORK/name with .spritescript/scripts/* and a
    subdirectory a/b to run from; returns (root, subdir)."""
    root = os.path.join(WORK, name)
    scripts_dir = os.path.join(root, ".spritescript", "scripts")
    os.makedirs(scripts_dir, exist_ok=True)
    for file, text in scripts.items():
        with open(os.path.join(scripts_dir, file), "w") as f:
            f.write(text)
    sub = os.path.join(root, "a", "b")
    os.makedirs(sub, exist_ok=True)
    return root, sub


def script_path(root, name):
    return os.path.realpath(os.path.join(root, ".spritescript", "scripts", name + ".lua"))


def one_line(r):
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, "expected one line on stderr:\n%r" % r
    return lines[0]


def test_header_is_read_without_running_the_script():
    marker = os.path.join(WORK, "side-effect")
    root, sub = project("sidefx", {
        "touchy.lua": '--- Writes a marker file when run.\nio.open(%r, "w"):close()\n' % marker,
        "plain.lua": "-- plain.lua: an old script without a header\nprint(...)\n",
    })
    items = {i["name"]: i for i in ok("scripts", "--json", cwd=sub).json()}
    assert items["touchy"]["description"] == "Writes a marker file when run.", items
    assert items["touchy"]["origin"] == "project" and items["touchy"]["trusted"] is False, items
    assert items["plain"]["description"] == "plain.lua: an old script without a header", items
    assert not os.path.exists(marker), "listing ran the script"
    human = ok("scripts", cwd=sub).out
    assert "touchy" in human and "Writes a marker file" in human and "(untrusted)" in human, human


def test_untrusted_project_script_is_refused_without_a_terminal():
    root, sub = project("untrusted", {"hello.lua": 'print("hello ran")\n'})
    r = run("run", "hello", cwd=sub)
    assert r.code == 2, r
    line = one_line(r)
    assert "not trusted" in line and ("spritescript trust " + script_path(root, "hello")) in line, r
    assert "hello ran" not in r.out, r


def test_trust_then_it_runs_and_a_change_asks_again():
    root, sub = project("trusted", {"hello.lua": 'print("hello ran", ...)\n'})
    path = script_path(root, "hello")
    r = ok("trust", path, cwd=sub)
    assert path in r.out, r
    with open(os.path.join(STATE, "spritescript", "trust.json")) as f:
        store = json.load(f)["scripts"]
    with open(path, "rb") as f:
        assert store[path]["sha256"] == hashlib.sha256(f.read()).hexdigest(), store
    r = ok("run", "hello", "x", "y", cwd=sub)
    assert r.out == "hello ran\tx\ty\n", r  # no header: raw args in `...`

    with open(path, "a") as f:
        f.write('print("and now something else")\n')
    r = run("run", "hello", cwd=sub)
    assert r.code == 2 and "changed since it was trusted" in one_line(r), r
    assert "hello ran" not in r.out, r
    listed = ok("trust", "--list", "--json").json()
    assert [i["status"] for i in listed if i["path"] == path] == ["changed"], listed

    r = ok("run", "--trust", "hello", cwd=sub)  # CI: run once, record nothing
    assert "and now something else" in r.out, r
    assert run("run", "hello", cwd=sub).code == 2

    ok("trust", "hello", cwd=sub)  # by name, like run
    assert "and now something else" in ok("run", "hello", cwd=sub).out
    r = ok("trust", "--remove", path)
    assert "no longer trusted" in r.out, r
    assert run("run", "hello", cwd=sub).code == 2


def test_a_terminal_is_asked():
    root, sub = project("asked", {"hi.lua": 'print("hi ran")\n'})
    path = script_path(root, "hi")
    t = Pty("run", "hi", cwd=sub)
    t.expect(path)
    t.expect("sha256 [0-9a-f]{64}")
    t.expect(r"trust this script\? \[y/N\]")
    t.send("n\r")
    t.expect("not trusted, not run")
    assert t.wait() == 2

    t = Pty("run", "hi", cwd=sub)
    t.expect(r"trust this script\? \[y/N\]")
    t.send("y\r")
    t.expect("hi ran")
    assert t.wait() == 0
    assert "hi ran" in ok("run", "hi", cwd=sub).out  # remembered


def test_help_is_generated_from_the_header():
    root, sub = project("helpful", {"deploy.lua": DEPLOY})
    r = ok("run", "deploy", "--help", cwd=sub)  # before trust: nothing runs
    out = r.out
    assert out.startswith("usage: spritescript run deploy [--target SPRITE] [--branch STRING]"), out
    assert "--tag STRING" in out.splitlines()[0], out
    assert "Deploy a branch to a sprite." in out and "It builds, uploads" in out, out
    assert "--level debug|info|warn" in out and '(default: "main")' in out, out
    assert "--dry-run, --no-dry-run" in out and "(required)" in out, out
    assert "examples:\n  spritescript run deploy --tag v1 --dry-run" in out, out


def test_parameters_are_validated():
    root, sub = project("validated", {"deploy.lua": DEPLOY})
    r = run("run", "--trust", "deploy", "--tag", "v1", cwd=sub)
    assert r.code == 2 and "missing --target SPRITE (or run 'spritescript use NAME' here)" in one_line(r), r
    with open(os.path.join(root, ".sprite"), "w") as f:
        f.write("dev\n")
    cases = [
        (["--tag", "v1", "--colour", "red"], "unknown parameter '--colour'"),
        (["--tag", "v1", "--retries", "2.5"], "--retries wants an integer, not '2.5'"),
        (["--tag", "v1", "--retries=x"], "--retries wants a number, not 'x'"),
        (["--tag", "v1", "--level", "loud"], "--level wants one of debug, info, warn, not 'loud'"),
        (["--tag", "v1", "--dry-run=maybe"], "--dry-run wants true or false"),
        (["--tag"], "--tag needs a value"),
        ([], "missing --tag STRING"),
        (["--tag", "v1", "extra"], "unexpected argument 'extra'"),
        (["--tag", "v1", "--target", "not a name"], "--target wants a sprite name"),
    ]
    for args, expected in cases:
        r = run("run", "--trust", "deploy", *args, cwd=sub)
        assert r.code == 2, (args, r)
        assert expected in one_line(r) and "--help" in one_line(r), (args, expected, r)
        assert r.out == "", r


def test_defaults_are_applied_and_the_script_gets_params():
    root, sub = project("defaults", {"deploy.lua": DEPLOY})
    with open(os.path.join(root, ".sprite"), "w") as f:
        f.write("from-dot-sprite\n")
    r = ok("run", "--trust", "deploy", "--tag=v1", "--dry-run", "--retries", "5", cwd=sub)
    got = json.loads(r.out)
    assert got["params"] == {"target": "from-dot-sprite", "branch": "main", "retries": 5,
                             "level": "info", "dry_run": True, "tag": "v1"}, got
    assert got["same"] is True and got["arg1"] == "--tag=v1", got
    got = json.loads(ok("run", "--trust", "deploy", "--tag", "v2", "--no-dry-run", "--level", "warn",
                        "--target", "other", "--ratio", "0.5", cwd=sub).out)
    assert got["params"]["dry_run"] is False and got["params"]["level"] == "warn", got
    assert got["params"]["target"] == "other" and got["params"]["ratio"] == 0.5, got


def test_rest_arguments_and_a_bad_header():
    root, sub = project("rest", {
        "count.lua": "--- Counts its files.\n---@param ... string files\n"
                     "print(#params, params[1], params[2])\n",
        "broken.lua": "--- Broken.\n---@param n int a count\nprint('ran')\n",
    })
    assert ok("run", "--trust", "count", "a", "--", "--b", cwd=sub).out == "2\ta\t--b\n"
    r = run("run", "--trust", "broken", cwd=sub)
    assert r.code == 3 and "unknown type 'int'" in one_line(r), r
    items = {i["name"]: i for i in ok("scripts", "--json", cwd=sub).json()}
    assert "unknown type 'int'" in items["broken"]["header_error"], items


def test_lookup_order_origins_and_shadowing():
    root, sub = project("shadows", {"tool.lua": "--- project tool\nprint('project')\n"})
    user_dir = os.path.join(CONFIG, "spritescript", "scripts")
    path_root = os.path.join(WORK, "team-path")
    for d, text in [(user_dir, "--- user tool\nprint('user')\n"),
                    (os.path.join(path_root, "scripts"), "--- path tool\nprint('path')\n")]:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "tool.lua"), "w") as f:
            f.write(text)
    with open(os.path.join(user_dir, "only-user.lua"), "w") as f:
        f.write("--- only in the user dir\nprint('only user', ...)\n")
    env = {"SPRITESCRIPT_PATH": path_root}
    try:
        items = ok("scripts", "--json", cwd=sub, env=env).json()
        tools = [(i["origin"], i["shadowed"], i["description"]) for i in items if i["name"] == "tool"]
        assert tools == [("project", False, "project tool"), ("user", True, "user tool"),
                         ("path", True, "path tool")], items
        user_tool = [i for i in items if i["name"] == "tool" and i["origin"] == "user"][0]
        assert user_tool["shadowed_by"].endswith("/shadows/.spritescript/scripts/tool.lua"), user_tool
        assert "shadowed" in ok("scripts", cwd=sub, env=env).out
        # Outside the project the user's script runs, and needs no trust.
        assert ok("run", "tool", cwd=WORK, env=env).out == "user\n"
        assert ok("run", "only-user", "x", cwd=sub, env=env).out == "only user\tx\n"
        os.remove(os.path.join(user_dir, "tool.lua"))
        assert ok("run", "tool", cwd=WORK, env=env).out == "path\n"
        r = run("run", "no-such-tool", cwd=sub, env=env)
        assert r.code == 2 and "no such script: no-such-tool" in one_line(r), r
    finally:
        shutil.rmtree(user_dir)


def test_built_in_scripts_are_listed_run_and_shadowed():
    items = ok("scripts", "--json", cwd=WORK).json()
    builtins = {i["name"]: i for i in items if i["origin"] == "built-in"}
    assert {"nightly", "demo", "lifecycle"} <= set(builtins), items
    assert builtins["demo"]["description"].startswith("demo.lua:"), builtins["demo"]
    assert builtins["demo"]["path"] == "builtin:demo", builtins["demo"]
    # demo.lua runs offline (no sprites): its JSON report says how many jobs.
    report = ok("run", "demo", "2", cwd=WORK).out
    assert '"jobs": 2' in report, report
    # A user's script of that name comes first.
    user_dir = os.path.join(CONFIG, "spritescript", "scripts")
    os.makedirs(user_dir, exist_ok=True)
    with open(os.path.join(user_dir, "demo.lua"), "w") as f:
        f.write("--- my own demo\nprint('mine')\n")
    try:
        assert ok("run", "demo", cwd=WORK).out == "mine\n"
        demo = [i for i in ok("scripts", "--json", cwd=WORK).json() if i["name"] == "demo"]
        assert [(i["origin"], i["shadowed"]) for i in demo] == [("user", False), ("built-in", True)], demo
    finally:
        shutil.rmtree(user_dir)


def test_a_file_path_still_runs_as_before():
    with open(os.path.join(WORK, "local.lua"), "w") as f:
        f.write("print(arg[0], ...)\n")
    assert ok("run", "local.lua", "1", "2").out == "local.lua\t1\t2\n"
    r = run("run", "missing/thing.lua")
    assert r.code == 2 and "no such script" in one_line(r), r


clitest.main(globals())
