// src/proto pieces the client reads with: exec framing and control messages
// (spec §3.4-§3.6), NDJSON lines, sprite/session/event models (§2, §5).
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "client/config.hpp"
#include "proto/exec_frames.hpp"
#include "proto/models.hpp"
#include "proto/ndjson.hpp"

namespace proto = spritescript::proto;
using namespace std::string_literals;

TEST_CASE("exec frames: one id byte then the payload, exit is one byte", "[proto][exec]") {
  CHECK(proto::encode_frame(proto::StreamId::stdin_data, "hi") == "\x00hi"s);
  CHECK(proto::encode_frame(proto::StreamId::stdin_eof, "") == "\x04"s);
  CHECK(proto::encode_exit_frame(42) == "\x03\x2a"s);
  CHECK(proto::encode_exit_frame(256 + 7) == "\x03\x07"s);

  const std::string out_message = "\x01out"s, exit_message = "\x03\xff"s;  // frames view these
  auto out = proto::decode_frame(out_message);
  REQUIRE(out);
  CHECK(out->id == proto::StreamId::stdout_data);
  CHECK(out->payload == "out");
  auto exit = proto::decode_frame(exit_message);
  REQUIRE(exit);
  CHECK(proto::exit_code_of(*exit) == 255);
  auto empty_exit = proto::decode_frame("\x03"s);
  REQUIRE(empty_exit);
  CHECK(proto::exit_code_of(*empty_exit) == 0);  // Go and JS read it as 0
  CHECK_FALSE(proto::decode_frame(""));
  CHECK_FALSE(proto::decode_frame("\x07junk"s));  // unknown ids are ignored
}

TEST_CASE("control messages: session_info with a string or integer id, exit, ports",
          "[proto][exec]") {
  auto info = proto::parse_control_message(
      R"({"type":"session_info","session_id":"4711","command":"sh","created":1767609000,)"
      R"("is_owner":true,"tty":true,"cols":120,"rows":40})");
  REQUIRE(info);
  CHECK(info->type == proto::ControlMessage::Type::session_info);
  CHECK(info->session.session_id == "4711");
  CHECK(info->session.tty);
  CHECK(info->session.cols == 120);
  CHECK_FALSE(info->session.replay_offset);
  auto numeric = proto::parse_control_message(
      R"({"type":"session_info","session_id":812,"replay_offset":1024})");
  REQUIRE(numeric);
  CHECK(numeric->session.session_id == "812");
  CHECK(numeric->session.replay_offset == 1024u);

  auto exit = proto::parse_control_message(R"({"type":"exit","exit_code":3})");
  REQUIRE(exit);
  CHECK(exit->type == proto::ControlMessage::Type::exit);
  CHECK(exit->exit_code == 3);
  auto port = proto::parse_control_message(
      R"({"type":"port_opened","port":3000,"address":"0.0.0.0","pid":1847})");
  REQUIRE(port);
  CHECK(port->port.opened);
  CHECK(port->port.port == 3000);
  CHECK(proto::parse_control_message(R"({"type":"keepalive"})")->type ==
        proto::ControlMessage::Type::keepalive);
  CHECK(proto::parse_control_message(R"({"type":"new_thing"})")->type ==
        proto::ControlMessage::Type::other);
  CHECK_FALSE(proto::parse_control_message("not json"));
  CHECK_FALSE(proto::parse_control_message(R"({"no":"type"})"));
  CHECK(proto::signal_message("TERM") == R"({"type":"signal","signal":"TERM"})");
  CHECK(proto::resize_message(100, 30) == R"({"type":"resize","cols":100,"rows":30})");
}

TEST_CASE("NDJSON: lines come out whole whatever the pieces", "[proto][ndjson]") {
  proto::NdjsonSplitter lines;
  CHECK(lines.feed(R"({"type":"sig)"));
  CHECK_FALSE(lines.next_line());
  CHECK(lines.feed("nal\"}\n\r\n{\"type\":\"complete\"}\r\n{\"tail\":1}"));
  CHECK(lines.next_line() == R"({"type":"signal"})");
  CHECK(lines.next_line() == R"({"type":"complete"})");  // blank line skipped, \r dropped
  CHECK_FALSE(lines.next_line());
  CHECK(lines.finish() == R"({"tail":1})");

  proto::NdjsonSplitter small(8);
  CHECK_FALSE(small.feed("0123456789"));  // a line past the limit fails the stream
}

TEST_CASE("models: sprites, pages with counts in either place, sessions, events",
          "[proto][models]") {
  auto s = proto::parse_sprite(
      R"({"id":"5b0c","name":"ci-7","org_slug":"acme","status":"cold","labels":["ci"],)"
      R"("url_settings":{"auth":"public"},"extra":{"kept":true}})");
  CHECK(s.name == "ci-7");
  CHECK(s.organization == "acme");
  CHECK(s.labels == std::vector<std::string>{"ci"});
  CHECK(s.url_settings.auth == "public");
  CHECK(s.json.find("\"kept\":true") != std::string::npos);
  CHECK_THROWS_AS(proto::parse_sprite(R"({"id":"x"})"), proto::ModelError);
  CHECK_THROWS_AS(proto::parse_sprite("[]"), proto::ModelError);

  auto top = proto::parse_sprite_page(
      R"({"sprites":[{"name":"a"}],"has_more":true,"next_continuation_token":"t","running":2})");
  CHECK(top.sprites.size() == 1);
  CHECK(top.has_more);
  CHECK(top.next_continuation_token == "t");
  CHECK(top.running == 2);
  auto nested = proto::parse_sprite_page(R"({"sprites":[],"org":{"cold":4}})");
  CHECK(nested.cold == 4);

  auto sessions = proto::parse_sessions(
      R"({"sessions":[{"id":1234567,"command":"sleep","tty":true,"is_active":true}]})");
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].id == "1234567");  // never 1.234567e+06
  CHECK(sessions[0].tty);
  CHECK(proto::parse_sessions(R"({"sessions":null})").empty());

  auto complete = proto::parse_progress_event(R"({"type":"complete","exit_code":0})");
  REQUIRE(complete);
  CHECK(complete->exit_code == 0);
  CHECK_FALSE(proto::parse_progress_event("garbage"));
}

TEST_CASE("exec options become the query the SDKs send", "[proto][exec]") {
  proto::ExecOptions o;
  o.argv = {"sh", "-c", "echo hi; exit 3"};
  o.env = {{"A", "1 2"}};
  o.dir = "/tmp";
  o.stdin = false;
  CHECK(proto::exec_query(o) ==
        "cmd=sh&cmd=-c&cmd=echo%20hi%3B%20exit%203&path=sh&env=A%3D1%202&dir=%2Ftmp&stdin=false");
  o = {};
  o.argv = {"bash"};
  o.tty = true;
  o.cols = 120;
  o.rows = 40;
  o.max_run_after_disconnect = std::chrono::seconds(90);
  CHECK(proto::exec_query(o) ==
        "cmd=bash&path=bash&tty=true&cols=120&rows=40&stdin=true&max_run_after_disconnect=1m30s");
}

TEST_CASE("fs models: entries with camelCase keys, lenient modes, answers", "[proto][fs]") {
  auto listing = proto::parse_fs_listing(
      R"({"path":"/home/sprite/app","count":3,"entries":[)"
      R"({"name":"main.go","path":"/home/sprite/app/main.go","type":"file","size":120,)"
      R"("mode":"0644","modTime":"2026-05-01T09:00:00Z","isDir":false,"extra":1},)"
      R"({"name":"lib","path":"/home/sprite/app/lib","type":"directory","size":4096,"mode":"0755","isDir":true},)"
      R"({"name":"odd","path":"/home/sprite/app/odd","type":"directory","mode":"rwx","isDir":true}]})");
  CHECK(listing.path == "/home/sprite/app");
  REQUIRE(listing.entries.size() == 3);
  CHECK(listing.entries[0].name == "main.go");
  CHECK(listing.entries[0].size == 120);
  CHECK(listing.entries[0].mode == 0644);
  CHECK(listing.entries[0].mod_time == "2026-05-01T09:00:00Z");
  CHECK_FALSE(listing.entries[0].is_dir);
  CHECK(listing.entries[1].is_dir);
  CHECK(listing.entries[1].type == "directory");
  CHECK(listing.entries[2].mode == 0755);  // not octal: the SDKs' fallback for a directory
  CHECK(proto::parse_fs_listing(R"({"path":"/x"})").entries.empty());
  auto nameless = proto::parse_fs_listing(R"({"entries":[{"path":"/a/b","size":"7"}]})");
  REQUIRE(nameless.entries.size() == 1);
  CHECK(nameless.entries[0].name == "b");
  CHECK(nameless.entries[0].type == "file");
  CHECK(nameless.entries[0].size == 7);
  CHECK(nameless.entries[0].mode == 0644);
  CHECK_THROWS_AS(proto::parse_fs_listing("[]"), proto::ModelError);
  CHECK_THROWS_AS(proto::parse_fs_listing(R"({"entries":[1]})"), proto::ModelError);
  CHECK_THROWS_AS(proto::parse_fs_listing(R"({"entries":[{"size":1}]})"), proto::ModelError);

  auto written = proto::parse_fs_written(R"({"path":"/tmp/x","size":5,"mode":"0600"})");
  CHECK(written.path == "/tmp/x");
  CHECK(written.size == 5);
  CHECK(written.mode == 0600);
  CHECK_THROWS_AS(proto::parse_fs_written("not json"), proto::ModelError);

  CHECK(proto::parse_fs_deleted(R"({"deleted":["/a","/a/b",3],"count":2})") ==
        std::vector<std::string>{"/a", "/a/b"});
  auto moved = proto::parse_fs_renamed(R"({"source":"/a","dest":"/b"})");
  CHECK(moved.source == "/a");
  CHECK(moved.dest == "/b");
  auto copied = proto::parse_fs_copied(
      R"({"copied":[{"source":"/a","dest":"/c"},"junk"],"count":1,"totalBytes":120})");
  REQUIRE(copied.copied.size() == 1);
  CHECK(copied.copied[0].dest == "/c");
  CHECK(copied.total_bytes == 120);
  auto chmod = proto::parse_fs_changes(R"({"affected":[{"path":"/x","mode":"0750"}],"count":1})");
  REQUIRE(chmod.size() == 1);
  CHECK(chmod[0].mode == 0750u);
  CHECK_FALSE(chmod[0].uid);
  auto chown = proto::parse_fs_changes(R"({"affected":[{"path":"/x","uid":1000,"gid":0}]})");
  REQUIRE(chown.size() == 1);
  CHECK(chown[0].uid == 1000);
  CHECK(chown[0].gid == 0);
  CHECK_FALSE(chown[0].mode);
}

TEST_CASE("service models: state, list as an array or an object, definition JSON",
          "[proto][services]") {
  auto svc = proto::parse_service(
      R"({"name":"web","cmd":"python","args":["-m","http.server"],"env":{"A":"1","N":2},)"
      R"("needs":["db"],"http_port":8000,"dir":"/srv",)"
      R"("state":{"name":"web","status":"running","pid":42,"started_at":"2026-05-01T09:00:00Z",)"
      R"("restart_count":2}})");
  CHECK(svc.name == "web");
  CHECK(svc.cmd == "python");
  CHECK(svc.args == std::vector<std::string>{"-m", "http.server"});
  CHECK(svc.env == std::map<std::string, std::string>{{"A", "1"}});  // non-strings skipped
  CHECK(svc.needs == std::vector<std::string>{"db"});
  CHECK(svc.http_port == 8000);
  CHECK(svc.dir == "/srv");
  REQUIRE(svc.state);
  CHECK(svc.state->status == "running");
  CHECK(svc.state->pid == 42);
  CHECK(svc.state->restart_count == 2);
  CHECK(svc.state->error.empty());

  auto bare = proto::parse_service(R"({"name":"x","cmd":"sleep","http_port":null})");
  CHECK_FALSE(bare.http_port);
  CHECK_FALSE(bare.state);
  CHECK(bare.args.empty());
  CHECK_THROWS_AS(proto::parse_service(R"({"cmd":"sleep"})"), proto::ModelError);
  CHECK_THROWS_AS(proto::parse_service("[]"), proto::ModelError);

  CHECK(proto::parse_services(R"([{"name":"a","cmd":"x"},{"name":"b","cmd":"y"}])").size() == 2);
  CHECK(proto::parse_services(R"({"services":[{"name":"a","cmd":"x"}]})").size() == 1);
  CHECK(proto::parse_services("[]").empty());
  CHECK_THROWS_AS(proto::parse_services(R"({"nope":1})"), proto::ModelError);
  CHECK_THROWS_AS(proto::parse_services("[1]"), proto::ModelError);

  proto::ServiceDefinition def;
  def.cmd = "sleep";
  CHECK(proto::to_json(def) == R"({"cmd":"sleep"})");
  def.args = {"10"};
  def.env = {{"B", "2"}, {"A", "1"}};
  def.dir = "/tmp";
  def.needs = {"db"};
  def.http_port = 8080;
  CHECK(
      proto::to_json(def) ==
      R"({"cmd":"sleep","args":["10"],"env":{"A":"1","B":"2"},"dir":"/tmp","needs":["db"],"http_port":8080})");

  auto out = proto::parse_progress_event(
      R"({"type":"stdout","data":"hello\n","timestamp":1780420274700})");
  REQUIRE(out);
  CHECK(out->message == "hello\n");
  CHECK(out->timestamp == 1780420274700);
  auto exit = proto::parse_progress_event(R"({"type":"exit","exit_code":1,"timestamp":5})");
  REQUIRE(exit);
  CHECK(exit->exit_code == 1);
  CHECK_FALSE(proto::parse_progress_event(R"({"type":"info","timestamp":"soon"})")->timestamp);
}

// --- the `sprite` CLI's login as a token source (src/client/config.cpp) -------

namespace {

// A temporary HOME, removed at the end.
struct TempHome {
  std::string path;
  TempHome() {
    char pattern[] = "/tmp/spritescript-home-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempHome() { std::filesystem::remove_all(path); }
  void write(const std::string& relative, const std::string& text) const {
    std::filesystem::path file = std::filesystem::path(path) / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
  }
};

}  // namespace

TEST_CASE("sprite CLI login: the selected organization's token and URL", "[client][config]") {
  namespace client = spritescript::client;
  TempHome home;
  home.write(".sprites/sprites.json", R"({
    "version": "1",
    "current_selection": {"url": "https://api.example.test/", "org": "team"},
    "urls": {
      "https://api.example.test": {"url": "https://api.example.test", "orgs": {
        "personal": {"name": "personal", "token": "tok-personal"},
        "team": {"name": "team", "api_token": "tok-team"}}},
      "https://api.sprites.dev": {"orgs": {"solo": {"token": "tok-solo"}}}
    },
    "some_future_field": [1, 2, 3]
  })");
  auto login = client::sprite_cli_login(home.path);
  REQUIRE(login);
  CHECK(login->api_url == "https://api.example.test");
  CHECK(login->org == "team");
  CHECK(login->token == "tok-team");

  std::map<std::string, std::string> env{{"HOME", home.path}};
  auto c = client::config_from_environment(&env);
  CHECK(c.api_url == "https://api.example.test");
  CHECK(c.token == "tok-team");
  CHECK(c.token_source == "~/.sprites/sprites.json");
  CHECK_FALSE(c.wants_local_engine());

  // A token variable wins; the file is not read for it.
  env["SPRITES_TOKEN"] = "from-env";
  c = client::config_from_environment(&env);
  CHECK(c.token == "from-env");
  CHECK(c.token_source == "SPRITES_TOKEN");
  CHECK(c.api_url == client::kDefaultApiUrl);
  env.erase("SPRITES_TOKEN");

  // A URL of the environment: only a token filed under that URL is used
  // (the only org there when the selection is for another URL).
  env["SPRITES_API_URL"] = "https://api.sprites.dev";
  c = client::config_from_environment(&env);
  CHECK(c.api_url == "https://api.sprites.dev");
  CHECK(c.token == "tok-solo");
  // ...and never one of another server's: the local engine gets none.
  env["SPRITES_API_URL"] = "http://127.0.0.1:7777";
  c = client::config_from_environment(&env);
  CHECK(c.api_url == "http://127.0.0.1:7777");
  CHECK(c.token.empty());
  CHECK(c.token_source.empty());

  // No HOME in the environment given: no file.
  std::map<std::string, std::string> bare;
  CHECK(client::config_from_environment(&bare).wants_local_engine());
}

TEST_CASE("sprite CLI login: keyring files and a user's own config", "[client][config]") {
  namespace client = spritescript::client;
  TempHome home;
  // `sprite login` with the file keyring: the config names a key only.
  home.write(".sprites/sprites.json", R"({"version":"1",
    "current_selection": {"url": "https://api.sprites.dev", "org": "personal"},
    "urls": {"https://api.sprites.dev": {"orgs": {"personal":
      {"name": "personal", "keyring_key": "sprites:org:https://api.sprites.dev:personal"}}}}})");
  CHECK_FALSE(client::sprite_cli_login(home.path));  // no keyring file yet
  home.write(
      ".sprites/keyring/sprites-cli-manual-tokens/sprites-org-https-/api.sprites.dev-personal",
      "  tok-from-keyring\n");
  auto login = client::sprite_cli_login(home.path);
  REQUIRE(login);
  CHECK(login->token == "tok-from-keyring");
  CHECK(login->api_url == client::kDefaultApiUrl);

  // A user's own config (current_user, users[].config_path) comes first.
  TempHome other;
  other.write(".sprites/sprites.json", R"({"version":"1","current_user":"u1",
    "users": [{"id": "u1", "config_path": "users/u1.json"}],
    "current_selection": {"url": "https://api.sprites.dev", "org": "personal"},
    "urls": {"https://api.sprites.dev": {"orgs": {"personal": {"token": "tok-global"}}}}})");
  other.write(".sprites/users/u1.json", R"({"version":"1",
    "urls": {"https://api.sprites.dev": {"orgs": {"personal": {"keyring_key": "k:1"}}}}})");
  other.write(".sprites/keyring/sprites-cli-u1/k-1", "tok-user\n");
  login = client::sprite_cli_login(other.path);
  REQUIRE(login);
  CHECK(login->token == "tok-user");
}

TEST_CASE("sprite CLI login: unknown shapes are ignored, never an error", "[client][config]") {
  namespace client = spritescript::client;
  TempHome home;
  const std::string path = ".sprites/sprites.json";
  auto none = [&](const std::string& text) {
    home.write(path, text);
    std::map<std::string, std::string> env{{"HOME", home.path}};
    auto c = client::config_from_environment(&env);
    return !client::sprite_cli_login(home.path) && c.token.empty() && c.wants_local_engine();
  };
  CHECK(none(""));
  CHECK(none("not json {"));
  CHECK(none("[1,2]"));
  CHECK(none(R"({"version":"2","urls":{"https://api.sprites.dev":{"orgs":{"a":{"token":"t"}}}}})"));
  CHECK(none(R"({"version":"1","urls":"https://api.sprites.dev"})"));
  CHECK(none(R"({"version":"1","urls":{"https://api.sprites.dev":{"orgs":[{"token":"t"}]}}})"));
  CHECK(none(R"({"urls":{"https://api.sprites.dev":{"orgs":{"a":{"token":42}}}}})"));
  // A token that could not go in a header as it is.
  CHECK(none(R"({"urls":{"https://api.sprites.dev":{"orgs":{"a":{"token":"a b\r\nX: y"}}}}})"));
  // Two orgs and no selection: which one is not guessed.
  CHECK(none(
      R"({"urls":{"https://api.sprites.dev":{"orgs":{"a":{"token":"t1"},"b":{"token":"t2"}}}}})"));
  // A keyring key never reaches outside the keyring.
  home.write("secret", "tok-outside");
  CHECK(none(
      R"({"urls":{"https://api.sprites.dev":{"orgs":{"a":{"keyring_key":"../../../secret"}}}}})"));
  // A selected URL that is not HTTP.
  CHECK(none(
      R"({"current_selection":{"url":"file:///etc","org":"a"},"urls":{"file:///etc":{"orgs":{"a":{"token":"t"}}}}})"));
  // No version, one org, no selection: its token for the default URL.
  home.write(path, R"({"urls":{"https://api.sprites.dev":{"orgs":{"only":{"token":"t-only"}}}}})");
  auto login = client::sprite_cli_login(home.path);
  REQUIRE(login);
  CHECK(login->token == "t-only");
  CHECK(login->org == "only");
}
