"""policy, proxy and url against a fresh engine: --json outputs parsed, the
engine's state checked through `policy show --json`, one-line errors, exit
codes, and a proxy fetched through and stopped with SIGINT."""
import http.client
import json
import signal
import subprocess
import time
import urllib.request

import clitest
from clitest import BIN, ok, run

SPRITE = "net"


def setup_module():
    ok("-e", 'sprites.create("%s", {exist_ok = true})' % SPRITE)


def rules():
    return ok("policy", "show", "-s", SPRITE, "--json").json()["rules"]


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1, "expected one line, got %r" % text
    return lines[0]


def test_policy_empty_is_unrestricted():
    setup_module()
    assert rules() == []
    r = ok("policy", "-s", SPRITE)
    assert "unrestricted" in r.out and len(r.out.strip().splitlines()) == 1, r
    r = run("policy", "check", "anything.example", "-s", SPRITE)
    assert r.code == 0 and r.out.strip() == "allowed", r


def test_policy_allow_makes_an_allow_list_and_deny_adds():
    r = ok("policy", "allow", "github.com", "Example.COM", "-s", SPRITE)
    assert "allow-list" in one_line(r.err), r
    assert rules() == [{"domain": "github.com", "action": "allow"},
                       {"domain": "example.com", "action": "allow"}]
    # The human table lists them in the order stored.
    r = ok("policy", "show", "-s", SPRITE)
    lines = r.out.splitlines()
    assert lines[0].split() == ["#", "DOMAIN", "ACTION"], r
    assert lines[1].split() == ["1", "github.com", "allow"], r
    assert lines[2].split() == ["2", "example.com", "allow"], r
    assert "names no rule matches are denied" in r.out, r

    ok("policy", "deny", "*.bad.example", "-s", SPRITE)
    assert rules()[-1] == {"domain": "*.bad.example", "action": "deny"}
    # Allowing a denied name replaces its rule (both ways would mean deny).
    r = ok("policy", "allow", "*.bad.example", "github.com", "-s", SPRITE)
    assert "was deny; now allow" in r.err, r
    assert rules() == [{"domain": "github.com", "action": "allow"},
                       {"domain": "example.com", "action": "allow"},
                       {"domain": "*.bad.example", "action": "allow"}]


def test_policy_check_exit_codes():
    r = run("policy", "check", "github.com", "-s", SPRITE)
    assert r.code == 0 and r.out.strip() == "allowed", r
    r = run("policy", "check", "elsewhere.org", "-s", SPRITE)
    assert r.code == 1 and r.out.strip() == "denied", r
    r = run("policy", "check", "elsewhere.org", "-s", SPRITE, "--json")
    assert r.code == 1, r
    verdict = r.json()
    assert verdict["allowed"] is False and verdict["decision"] == "denied", verdict


def test_policy_set_from_a_file_and_stdin(tmp="policy.json"):
    with open(tmp, "w") as f:
        json.dump({"rules": [{"include": "defaults"}, {"domain": "api.example.com", "action": "allow"},
                             {"domain": "registry.npmjs.org", "action": "deny"}]}, f)
    r = ok("policy", "set", tmp, "-s", SPRITE, "--json")
    assert r.json()["rules"] == rules()
    assert rules()[0] == {"include": "defaults"}
    r = run("policy", "check", "pypi.org", "-s", SPRITE)
    assert r.code == 3 and "decided by include defaults" in r.out, r
    r = run("policy", "check", "registry.npmjs.org", "-s", SPRITE)
    assert r.code == 1, r
    r = run("policy", "check", "api.example.com", "-s", SPRITE)
    assert r.code == 0, r
    # The table marks the include row.
    r = ok("policy", "show", "-s", SPRITE)
    assert "include defaults" in r.out, r

    ok("policy", "set", "-", "-s", SPRITE,
       input=json.dumps({"rules": [{"domain": "only.example", "action": "allow"}]}))
    assert rules() == [{"domain": "only.example", "action": "allow"}]


def test_policy_set_refusals_leave_the_policy_alone():
    before = rules()
    with open("bad.json", "w") as f:
        json.dump({"rules": [{"domain": "x.example", "action": "maybe"}]}, f)
    r = run("policy", "set", "bad.json", "-s", SPRITE)
    assert r.code != 0, r
    line = one_line(r.err)
    assert "bad.json" in line and "maybe" in line, r
    assert rules() == before

    with open("notjson.json", "w") as f:
        f.write("{rules: oops")
    r = run("policy", "set", "notjson.json", "-s", SPRITE)
    assert r.code == 2 and "notjson.json is not JSON" in one_line(r.err), r

    r = run("policy", "set", "missing.json", "-s", SPRITE)
    assert r.code == 2 and "cannot read missing.json" in one_line(r.err), r

    r = run("policy", "set", "-s", SPRITE, input='{"rules": {"domain": "a"}}')
    assert r.code == 2, r
    r = run("policy", "frob", "-s", SPRITE)
    assert r.code == 2 and "unknown subcommand 'frob'" in one_line(r.err), r
    assert rules() == before


def test_policy_reset_and_deny_on_an_empty_policy():
    r = ok("policy", "reset", "-s", SPRITE)
    assert "unrestricted" in r.out, r
    assert rules() == []
    # One deny on an unrestricted sprite blocks that name only.
    r = ok("policy", "deny", "blocked.example", "-s", SPRITE)
    assert '"*" allow' in one_line(r.err), r
    assert rules() == [{"domain": "blocked.example", "action": "deny"}, {"domain": "*", "action": "allow"}]
    assert run("policy", "check", "blocked.example", "-s", SPRITE).code == 1
    assert run("policy", "check", "fine.example", "-s", SPRITE).code == 0
    # New rules go before the final "*".
    ok("policy", "deny", "also.example", "-s", SPRITE)
    assert rules()[-1] == {"domain": "*", "action": "allow"} and len(rules()) == 3
    ok("policy", "reset", "-s", SPRITE)


def test_policy_of_a_missing_sprite():
    r = run("policy", "-s", "no-such-sprite")
    assert r.code == 4, r
    one_line(r.err)


def test_url_shows_and_sets_the_auth():
    r = ok("url", "-s", SPRITE, "--json")
    info = r.json()
    assert info["name"] == SPRITE and info["auth"] == "sprite", info
    assert SPRITE + ".localhost" in info["url"], info
    r = ok("url", "-s", SPRITE, "--auth", "public")
    assert r.out.strip() == info["url"], r
    assert "auth: public" in r.err, r
    assert ok("url", "-s", SPRITE, "--json").json()["auth"] == "public"
    r = ok("url", "update", "-s", SPRITE, "-a", "sprite")
    assert ok("url", "-s", SPRITE, "--json").json()["auth"] == "sprite"
    r = run("url", "-s", SPRITE, "--auth", "everyone")
    assert r.code == 2 and "public or sprite" in one_line(r.err), r


def test_proxy_bad_ports_are_one_line():
    for bad in ["http", "0", "70000", "80:", "1:2:3", "-5"]:
        r = run("proxy", "-s", SPRITE, bad)
        assert r.code == 2, (bad, r)
        one_line(r.err)
    r = run("proxy", "-s", SPRITE)
    assert r.code == 2, r


def fetch(url, headers=None, deadline=30):
    """GETs url until it answers (the server may still be starting)."""
    end = time.time() + deadline
    while True:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except Exception:
            if time.time() > end:
                raise
            time.sleep(0.2)


def test_proxy_forwards_a_port_until_sigint():
    ok("fs", "put", "-", "/home/sprite/site/hello.txt", "-s", SPRITE, input="hello through the proxy\n")
    ok("services", "create", "web", "-s", SPRITE, "--dir", "/home/sprite/site", "--wait", "0",
       "--", "python3", "-m", "http.server", "8080")
    proxy = subprocess.Popen([BIN, "proxy", "-s", SPRITE, "0:8080"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = proxy.stdout.readline()
        assert line.startswith("localhost:") and line.rstrip().endswith(" -> %s:8080" % SPRITE), line
        port = int(line.split()[0].split(":")[1])
        assert port > 0
        status, body = fetch("http://127.0.0.1:%d/hello.txt" % port)
        assert status == 200 and body == b"hello through the proxy\n", (status, body)
        start = time.time()
        proxy.send_signal(signal.SIGINT)
        code = proxy.wait(timeout=10)
        assert time.time() - start < 5, "the proxy took %.1fs to stop" % (time.time() - start)
        err = proxy.stderr.read()
        assert code == 130, (code, err)
        # (Fetches before the server listened are reported as failed connections.)
        assert err.strip().splitlines()[-1] == "proxy: stopped", err
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
    # The sprite URL reaches the same server once it is public.
    url = ok("url", "-s", SPRITE, "--auth", "public").out.strip()
    host = url.split("//", 1)[1].split("/", 1)[0]
    name, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
    conn.request("GET", "/hello.txt", headers={"Host": host})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"hello through the proxy\n"
    ok("url", "-s", SPRITE, "--auth", "sprite")
    ok("services", "rm", "web", "-s", SPRITE)


def test_proxy_two_forwards_and_a_port_in_use():
    ok("services", "create", "web2", "-s", SPRITE, "--wait", "0", "--dir", "/home/sprite/site",
       "--", "python3", "-m", "http.server", "8081")
    proxy = subprocess.Popen([BIN, "proxy", "-s", SPRITE, "0:8081", "0:8082"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        first = proxy.stdout.readline().split()
        second = proxy.stdout.readline().split()
        assert first[2] == SPRITE + ":8081" and second[2] == SPRITE + ":8082", (first, second)
        used = int(first[0].split(":")[1])
        status, body = fetch("http://127.0.0.1:%d/hello.txt" % used)
        assert status == 200, status
        # A port already taken here: one line, the API's exit code, no traceback.
        r = run("proxy", "-s", SPRITE, "%d:8081" % used)
        assert r.code != 0 and r.code != 130, r
        one_line(r.err)
        # Nothing listens on 8082 in the sprite: the proxy says why.
        port2 = int(second[0].split(":")[1])
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/" % port2, timeout=5)
        except Exception:
            pass
        proxy.send_signal(signal.SIGINT)
        assert proxy.wait(timeout=10) == 130
        err = proxy.stderr.read()
        assert "a connection to %s:8082 failed" % SPRITE in err, err
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
    ok("services", "rm", "web2", "-s", SPRITE)


def test_proxy_stops_on_ctrl_c_at_a_terminal():
    term = clitest.Pty("proxy", "-s", SPRITE, "0:8080")
    term.expect(r"localhost:\d+ -> %s:8080" % SPRITE)
    term.expect("Ctrl-C to stop")
    term.send(b"\x03")
    assert term.wait(timeout=10) == 130
    assert b"proxy: stopped" in term.buffer, term.buffer
    assert b"cancelling tasks" not in term.buffer, term.buffer


clitest.main(globals())
