"""spritescript repl: piped lines (scriptable) and the terminal REPL on a
pseudo-terminal (prompt, multi-line chunks, `_`, completion, Ctrl-C,
history, `!cmd`)."""
import os
import re

import clitest
from clitest import Pty, ok, run

SPRITE = "repl-test"
PROMPT = SPRITE + "> "


def setup_sprite():
    ok("-e", 'sprites.create("%s", {exist_ok = true})' % SPRITE)


def history_entries():
    """The history file's entries, decoded (libedit writes them vis(3)-encoded,
    one line each, after a _HiStOrY_V2_ header)."""
    path = os.path.join(os.environ["XDG_STATE_HOME"], "spritescript", "repl_history")
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines and lines[0] == "_HiStOrY_V2_", lines
    return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line) for line in lines[1:]]


def start(*args, colour=False):
    p = Pty("repl", *args, env={} if colour else {"NO_COLOR": "1"})
    p.expect(re.escape(PROMPT) if "-s" in args else r"lua> ")
    return p


def exit_repl(p):
    p.send("\x04")  # Ctrl-D on an empty line
    code = p.wait()
    assert code == 0, (code, p.buffer)


# ---- piped input ------------------------------------------------------------

def test_piped_expression_prints_its_value():
    r = run("repl", input="1+1\n")
    assert r.code == 0, r
    assert r.out == "2\n", r


def test_piped_statements_expressions_and_tables():
    r = run("repl", input='x = {1, "two", k = true}\n=x\nprint("p", #x)\n')
    assert r.code == 0, r
    assert r.out == '{ 1, "two", k = true }\np\t2\n', r


def test_piped_pretty_printer_depth_and_cycles():
    r = run("repl", input="t = {name = 'n'} t.self = t\n=t\n={a = {b = {c = {d = {e = 1}}}}}\n")
    assert r.code == 0, r
    assert r.out.splitlines() == ['{ name = "n", self = <cycle> }',
                                  "{ a = { b = { c = { d = {...} } } } }"], r


def test_piped_bound_sprite():
    setup_sprite()
    r = run("repl", "-s", SPRITE, input="=s.name\n")
    assert r.code == 0 and r.out == SPRITE + "\n", r
    r = run("repl", SPRITE, input="=s.name\n")
    assert r.code == 0 and r.out == SPRITE + "\n", r


def test_piped_dot_sprite_and_none():
    setup_sprite()
    with open(".sprite", "w") as f:
        f.write(SPRITE + "\n")
    try:
        r = run("repl", input="=s.name\n")
        assert r.code == 0 and r.out == SPRITE + "\n", r
    finally:
        os.remove(".sprite")
    r = run("repl", input="=s == nil\n")
    assert r.code == 0 and r.out == "true\n", r


def test_piped_errors_print_one_line_and_go_on():
    r = run("repl", input='error("boom")\nprint("after")\nlocal x = = 1\nprint("end")\n')
    assert r.code == 0, r
    assert r.out == "after\nend\n", r
    lines = r.err.splitlines()
    assert len(lines) == 2, r
    assert lines[0] == "stdin:1: boom", r
    assert "unexpected symbol" in lines[1], r


def test_piped_multi_line_chunk_and_waiting_calls():
    r = run("repl", input="for i = 1, 2 do\n  sprites.sleep(0.01)\n  print(i)\nend\n")
    assert r.code == 0 and r.out == "1\n2\n", r


def test_piped_underscore_and_background_tasks():
    src = ("41 + 1\n"
           "=_ \n"
           "done = false\n"
           "t = sprites.spawn(function() sprites.sleep(0.05) done = true end)\n"
           "=done\n"
           "sprites.sleep(0.3)\n"
           "=done\n")
    r = run("repl", input=src)
    assert r.code == 0, r
    assert r.out.split("\n")[:4] == ["42", "42", "false", "true"], r


def test_piped_unknown_sprite_is_one_line():
    r = run("repl", "-s", "no-such-sprite", input="1\n")
    assert r.code == 4, r
    assert len(r.err.strip().splitlines()) == 1 and "no-such-sprite" in r.err, r


def test_piped_usage_error():
    r = run("repl", "a", "b", input="")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1, r


def test_piped_shell_command():
    setup_sprite()
    r = run("repl", "-s", SPRITE, input="!echo hi; echo oops >&2; exit 3\n")
    assert r.code == 0, r
    assert r.out == "hi\noops\n", r
    assert "exit 3" in r.err, r
    r = run("repl", input="!echo hi\n")
    assert r.code == 0 and "no sprite bound" in r.err, r


# ---- on a terminal ----------------------------------------------------------

def test_prompt_multi_line_and_underscore():
    setup_sprite()
    p = start("-s", SPRITE)
    p.send("for i=1,2 do\r")
    p.expect(r">> ")
    p.send("print(i * 10)\r")
    p.expect(r">> ")
    p.send("end\r")
    p.expect(r"10\r\n20\r\n")
    p.expect(re.escape(PROMPT))
    p.send("6*7\r")
    p.expect(r"42\r\n")
    p.expect(re.escape(PROMPT))
    p.send("_ + 1\r")
    p.expect(r"43\r\n")
    p.expect(re.escape(PROMPT))
    exit_repl(p)


def test_no_sprite_prompt_says_so():
    p = Pty("repl", env={"NO_COLOR": "1"})
    p.expect(r"no sprite bound: s is nil")
    p.expect(r"lua> ")
    exit_repl(p)


def test_colours_on_a_terminal_only():
    p = start(colour=True)
    p.send('{1, "a"}\r')
    p.expect(re.escape('{ \x1b[36m1\x1b[0m, \x1b[32m"a"\x1b[0m }'))
    p.expect(r"lua> ")
    exit_repl(p)
    p = start()  # NO_COLOR
    p.send('{1, "a"}\r')
    p.expect(re.escape('{ 1, "a" }'))
    p.expect(r"lua> ")
    exit_repl(p)


def test_completion_of_fields_and_methods():
    setup_sprite()
    p = start("-s", SPRITE)
    p.send("sprites.cr\t")
    p.expect(r"eate")  # the line now reads sprites.create
    p.send("\x15")     # clear the line
    p.send("s:\t\t")
    m = p.expect(r"s:run.*?\r\n(?:.*\r\n)*?.*" + re.escape(PROMPT))
    listed = m.group(0).decode()
    assert "s:spawn" in listed and "s:checkpoint" in listed, listed
    assert "s:name" not in listed and "s:info" not in listed, listed
    assert "s:__" not in listed, listed
    p.send("\x15")  # clear the line; libedit reads keys in order, so Ctrl-D follows
    exit_repl(p)


def test_ctrl_c_cancels_the_running_line_only():
    setup_sprite()
    p = start("-s", SPRITE)
    p.send("ev = sprites.event(); bg = sprites.spawn(function() ev:wait() print('still here') end)\r")
    p.expect(re.escape(PROMPT))
    p.send("sprites.sleep(100)\r")
    p.expect(r"sprites\.sleep\(100\)\r\n")
    p.send("\x03")
    p.expect(r"interrupted")
    p.expect(re.escape(PROMPT))
    # The background task of the earlier line was not cancelled.
    p.send("ev:set(); sprites.sleep(0.1)\r")
    p.expect(r"still here\r\n")
    p.expect(re.escape(PROMPT))
    # Ctrl-C at the prompt clears the line; the REPL goes on (and survives
    # more than one Ctrl-C).
    p.send("1 +")
    p.send("\x03")
    p.expect(re.escape(PROMPT))
    p.send("\x03")
    p.expect(re.escape(PROMPT))
    p.send("2+3\r")
    p.expect(r"\b5\r\n")
    # Keys typed before the prompt is back would be typeahead, which the
    # terminal drops on Ctrl-C: always wait for the prompt.
    p.expect(re.escape(PROMPT))
    # Spinning code stops too.
    p.send("while true do end\r")
    p.expect(r"while true do end\r\n")
    p.send("\x03")
    p.expect(r"interrupted")
    p.expect(re.escape(PROMPT))
    p.send("=bg:status()\r")
    p.expect(r"ok\r\n")
    p.expect(re.escape(PROMPT))
    exit_repl(p)


def test_history_persists_multi_line_chunks_as_one_entry():
    p = start()
    p.send("for i=1,2 do\r")
    p.expect(r">> ")
    p.send("print('h' .. i)\r")
    p.expect(r">> ")
    p.send("end\r")
    p.expect(r"h2\r\n")
    p.expect(r"lua> ")
    exit_repl(p)
    assert "for i=1,2 do\nprint('h' .. i)\nend" in history_entries(), history_entries()
    # A second REPL recalls it with the up arrow, as one chunk.
    p = start()
    p.send("\x1b[A")
    p.send("\r")
    p.expect(r"h1\r\nh2\r\n")
    p.expect(r"lua> ")
    exit_repl(p)


def test_shell_command_streams_from_the_sprite():
    setup_sprite()
    p = start("-s", SPRITE)
    p.send("!echo hi; sleep 0.2; echo there\r")
    p.expect(r"\r\nhi\r\n")
    p.expect(r"there\r\n")
    p.expect(re.escape(PROMPT))
    exit_repl(p)


clitest.main(globals())
