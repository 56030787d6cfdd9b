// src/proto pieces the client reads with: exec framing and control messages
// (spec §3.4-§3.6), NDJSON lines, sprite/session/event models (§2, §5).
#include <catch2/catch.hpp>

#include <string>

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
