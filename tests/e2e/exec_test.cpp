// Exec in the local engine, end to end (spec §3 exec over WebSocket, §4 HTTP
// exec, §5 sessions and kill, §14): each test starts `spritescript serve` on
// a random port with a temporary state dir and drives it over real sockets
// with the tests' own client (ws_client.hpp), checking the bytes on the wire.
// Timeouts are hang guards only; nothing here asserts on timing.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "json_support.hpp"
#include "process.hpp"
#include "test_data.hpp"
#include "ws_client.hpp"

namespace {

using e2e::random_bytes;

namespace json = boost::json;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using e2e::Engine;
using e2e::HttpReply;
using Message = e2e::WebSocketClient::Message;
using Clock = std::chrono::steady_clock;

constexpr auto kHangGuard = std::chrono::seconds(60);

using e2e::parse_object;
using e2e::string_field;

// ---- small helpers ----------------------------------------------------------

std::optional<std::int64_t> int_field(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return std::nullopt;
}

std::optional<bool> bool_field(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->as_bool();
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string hex(std::string_view bytes, std::size_t max = 48) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    out += digits[c >> 4];
    out += digits[c & 15];
    out += ' ';
  }
  if (bytes.size() > max) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

std::string describe(const Message& m) {
  return m.binary ? "BIN[" + hex(m.data) + "]" : "TXT" + m.data.substr(0, 200);
}

// A name no other test run uses (for files that must not show up on the host).
std::string unique_tag() {
  std::random_device rd;
  std::ostringstream s;
  s << "ss-e2e-" << ::getpid() << "-" << std::hex << rd() << rd();
  return s.str();
}

// One non-TTY client frame: the stream id, then the payload.
std::string frame(char stream, std::string_view payload = {}) {
  std::string f;
  f.reserve(payload.size() + 1);
  f += stream;
  f.append(payload);
  return f;
}

// The query of a new exec: one cmd per argv element, path = argv[0] (as the
// SDKs send it), then `extra` ("stdin=true&tty=true", ...).
std::string exec_target(const std::string& sprite, const std::vector<std::string>& argv,
                        const std::string& extra = "") {
  std::string target = "/v1/sprites/" + sprite + "/exec?";
  for (const auto& arg : argv) target += "cmd=" + e2e::url_encode(arg) + "&";
  target += "path=" + e2e::url_encode(argv.at(0));
  if (!extra.empty()) target += "&" + extra;
  return target;
}

void create_sprite(Engine& engine, const std::string& name) {
  REQUIRE_THAT(engine.call("POST", "/v1/sprites", R"({"name":")" + name + R"("})"),
               StartsWith("201 "));
}

std::string sprite_status(Engine& engine, const std::string& name) {
  HttpReply r = engine.request("GET", "/v1/sprites/" + name);
  REQUIRE(r.status == 200);
  return string_field(parse_object(r.body), "status");
}

// An error answer: the status, and the body {"error": "...", "message": "..."}.
void check_error(const HttpReply& r, int status) {
  INFO("status " << r.status << ", body: " << r.body);
  CHECK(r.status == status);
  json::object o = parse_object(r.body);
  CHECK_FALSE(string_field(o, "error").empty());
  CHECK_FALSE(string_field(o, "message").empty());
}

// The engine still answers after whatever the test just did to it.
void check_still_serving(Engine& engine) {
  CHECK(engine.request("GET", "/v1/sprites").status == 200);
}

// ---- an exec over WebSocket, as the client sees it --------------------------

// One exec socket: reads session_info, then the output frames, checking the
// framing of every message (non-TTY: a stream byte per frame, the exit frame
// 03 <code> last; TTY: raw bytes, the exit in a JSON text message last).
class ExecSocket {
 public:
  ExecSocket(Engine& engine, const std::string& target, bool tty)
      : ws_(engine.websocket(target)), tty_(tty) {}

  e2e::WebSocketClient& ws() { return *ws_; }
  bool connected() const { return ws_->connected(); }

  // The first message, which must be the text session_info.
  json::object session_info() {
    std::optional<Message> m = ws_->read(kHangGuard);
    REQUIRE(m.has_value());
    INFO("first message: " << describe(*m));
    REQUIRE_FALSE(m->binary);
    json::object o = parse_object(m->data);
    REQUIRE(string_field(o, "type") == "session_info");
    return o;
  }

  // Reads until the output (stdout; TTY: the terminal) contains `text`.
  // False when the session ended first.
  bool wait_for_out(std::string_view text) {
    while (out_.find(text) == std::string::npos) {
      if (!next()) return false;
    }
    return true;
  }

  // Reads everything up to the end of the connection, within `guard`.
  void finish(e2e::Millis guard = kHangGuard) {
    const auto deadline = Clock::now() + guard;
    while (next(std::max(e2e::Millis(1),
                         std::chrono::duration_cast<e2e::Millis>(deadline - Clock::now())))) {
    }
  }

  void send_stdin(const std::string& data) {
    ws_->send_binary(tty_ ? data : frame('\x00', data), kHangGuard);
  }
  void send_eof() { ws_->send_binary(std::string(1, '\x04'), kHangGuard); }
  void send_json(const std::string& text) { ws_->send_text(text, kHangGuard); }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  std::optional<int> exit_code() const { return exit_code_; }
  std::optional<int> close_code() const { return ws_->close_code(); }
  const std::vector<std::string>& binary_frames() const { return binary_; }
  // Framing rules the server broke, one line each.
  const std::vector<std::string>& problems() const { return problems_; }
  std::string problem_text() const {
    std::string s;
    for (const auto& p : problems_) s += p + "\n";
    return s;
  }

 private:
  bool next(e2e::Millis guard = kHangGuard) {
    std::optional<Message> m = ws_->read(guard);
    if (!m) return false;
    take(*m);
    return true;
  }

  void take(const Message& m) {
    if (!m.binary) {
      json::object o = parse_object(m.data);
      std::string type = string_field(o, "type");
      if (type == "keepalive" || type == "port_opened" || type == "port_closed") return;
      if (type == "exit") {
        auto code = int_field(o, "exit_code");
        if (!code) problems_.push_back("exit message without an integer exit_code: " + m.data);
        if (tty_) {
          if (exit_code_) problems_.push_back("a second exit: " + m.data);
          exit_code_ = code ? static_cast<int>(*code) : -1;
        } else if (exit_code_ && code && *code != *exit_code_) {
          problems_.push_back("JSON exit disagrees with the exit frame: " + m.data);
        }
        return;
      }
      problems_.push_back("unexpected text message: " + m.data.substr(0, 200));
      return;
    }
    if (exit_code_) problems_.push_back("a frame after the exit: " + describe(m));
    binary_.push_back(m.data);
    if (tty_) {
      out_ += m.data;
      return;
    }
    if (m.data.empty()) {
      problems_.push_back("an empty binary frame");
      return;
    }
    std::string_view payload = std::string_view(m.data).substr(1);
    switch (m.data[0]) {
      case 0x01:
        out_.append(payload);
        break;
      case 0x02:
        err_.append(payload);
        break;
      case 0x03:
        if (payload.size() != 1) problems_.push_back("exit frame not 2 bytes: " + describe(m));
        if (exit_code_) problems_.push_back("a second exit frame: " + describe(m));
        exit_code_ = payload.empty() ? 0 : static_cast<unsigned char>(payload[0]);
        break;
      default:
        problems_.push_back("unknown stream id: " + describe(m));
    }
  }

  std::unique_ptr<e2e::WebSocketClient> ws_;
  bool tty_;
  std::string out_, err_;
  std::optional<int> exit_code_;
  std::vector<std::string> binary_;
  std::vector<std::string> problems_;
};

struct Ran {
  std::string out, err;
  std::optional<int> exit_code;
  std::optional<int> close_code;
  std::string problems;
};

// Runs argv to the end over a non-TTY WebSocket exec without stdin.
Ran run(Engine& engine, const std::string& sprite, const std::vector<std::string>& argv,
        const std::string& extra = "stdin=false") {
  ExecSocket s(engine, exec_target(sprite, argv, extra), false);
  INFO("upgrade answered " << s.ws().handshake().status << ": " << s.ws().handshake().body);
  REQUIRE(s.connected());
  s.session_info();
  s.finish();
  return {s.out(), s.err(), s.exit_code(), s.close_code(), s.problem_text()};
}

std::string run_out(Engine& engine, const std::string& sprite,
                    const std::vector<std::string>& argv) {
  Ran r = run(engine, sprite, argv);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 0);
  return r.out;
}

// The HTTP exec body split into its frames (one per chunk, spec §4).
struct HttpExec {
  HttpReply reply;
  std::string out, err;
  std::optional<int> exit_code;
  std::vector<std::string> problems;
};

HttpExec http_exec(Engine& engine, const std::string& target, const std::string& body) {
  HttpExec r;
  try {
    r.reply = engine.request("POST", target, body, {{"Content-Type", "application/octet-stream"}});
  } catch (const std::exception& e) {
    // Say whether the engine is still there: a crash shows up here.
    std::string fate = engine.child().still_running_after(e2e::Millis(200))
                           ? "the engine still runs"
                           : "the engine died: " + engine.child().wait().describe();
    FAIL_CHECK(e.what() << "\n" << fate);
    return r;
  }
  for (std::size_t i = 0; i < r.reply.chunks.size(); ++i) {
    const std::string& chunk = r.reply.chunks[i];
    if (r.exit_code) r.problems.push_back("a chunk after the exit: " + hex(chunk));
    if (chunk.empty()) {
      r.problems.push_back("an empty chunk");
      continue;
    }
    std::string_view payload = std::string_view(chunk).substr(1);
    switch (chunk[0]) {
      case 0x01:
        r.out.append(payload);
        break;
      case 0x02:
        r.err.append(payload);
        break;
      case 0x03:
        if (payload.size() != 1) r.problems.push_back("exit chunk not 2 bytes: " + hex(chunk));
        r.exit_code = payload.empty() ? 0 : static_cast<unsigned char>(payload[0]);
        break;
      default:
        r.problems.push_back("chunk with an unknown frame type: " + hex(chunk));
    }
  }
  return r;
}

std::vector<json::object> ndjson_lines(const std::string& body) {
  std::vector<json::object> lines;
  for (const auto& line : e2e::split_lines(body)) lines.push_back(parse_object(line));
  return lines;
}

// Runs `sh -c script` until it exits 0 (a condition inside the sprite).
void wait_in_sprite(Engine& engine, const std::string& sprite, const std::string& script) {
  const auto deadline = Clock::now() + kHangGuard;
  while (run(engine, sprite, {"sh", "-c", script}).exit_code != 0) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

// ---- §3.4 non-TTY framing ------------------------------------------------------

TEST_CASE("WebSocket exec non-TTY: byte-exact framing with exit codes 0 1 127 255 and 137",
          "[exec][ws]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "frames");

  struct Case {
    std::vector<std::string> argv;
    int exit_code;
    std::string out, err;  // exact; "*" for stderr = anything
  };
  const std::vector<Case> cases = {
      {{"sh", "-c", "echo out; echo err >&2; exit 0"}, 0, "out\n", "err\n"},
      {{"sh", "-c", "printf 'a\\000b\\377'; printf x >&2; exit 1"},
       1,
       std::string("a\0b\xff", 4),
       "x"},
      {{"no-such-command-e2e"}, 127, "", "*"},
      {{"sh", "-c", "exit 255"}, 255, "", ""},
      {{"sh", "-c", "echo dying; kill -9 $$"}, 137, "dying\n", ""},
      // spec §14.3: without a TTY, `tty` says so on stdout and exits 1
      {{"tty"}, 1, "not a tty\n", ""},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION("argv[0]=" << c.argv[0] << " exit " << c.exit_code) {
      ExecSocket s(engine, exec_target("frames", c.argv, "stdin=false"), false);
      const HttpReply& hs = s.ws().handshake();
      INFO("upgrade answered " << hs.status << ": " << hs.body);
      REQUIRE(s.connected());
      CHECK(hs.status == 101);
      CHECK_THAT(hs.header("X-Sprite-Capabilities"), Contains("signal"));

      json::object info = s.session_info();
      INFO("session_info: " << json::serialize(info));
      const json::value* id = info.if_contains("session_id");
      REQUIRE(id != nullptr);
      CHECK(id->is_string());  // a string of PID digits (spec §3.6.3)
      CHECK(all_digits(string_field(info, "session_id")));
      CHECK(bool_field(info, "tty") == false);
      CHECK(bool_field(info, "is_owner") == true);
      CHECK(int_field(info, "created").has_value());
      CHECK(string_field(info, "command").find(c.argv[0]) != std::string::npos);

      s.finish();
      INFO("framing problems:\n" << s.problem_text());
      CHECK(s.problems().empty());
      CHECK(s.out() == c.out);
      if (c.err != "*") CHECK(s.err() == c.err);
      CHECK(s.exit_code() == c.exit_code);
      REQUIRE_FALSE(s.binary_frames().empty());
      const std::string& last = s.binary_frames().back();
      CHECK(last == std::string{'\x03', static_cast<char>(c.exit_code)});
      CHECK(s.close_code() == 1000);
    }
  }
}

// ---- stdin -----------------------------------------------------------------------

TEST_CASE("WebSocket exec: 00 stdin frames and the 04 EOF frame reach cat", "[exec][ws][stdin]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "stdin");

  SECTION("cat echoes stdin and exits at EOF") {
    ExecSocket s(engine, exec_target("stdin", {"cat"}, "stdin=true"), false);
    REQUIRE(s.connected());
    s.session_info();
    s.send_stdin("hello ");
    s.send_stdin("world\n");
    REQUIRE(s.wait_for_out("hello world\n"));
    s.send_stdin(std::string("\0\x01\x02\xff", 4));
    s.send_eof();
    s.finish();
    INFO(s.problem_text());
    CHECK(s.problems().empty());
    CHECK(s.out() == std::string("hello world\n\0\x01\x02\xff", 16));
    CHECK(s.exit_code() == 0);
    CHECK(s.close_code() == 1000);
  }

  SECTION("stdin=true without EOF: a command that does not read stdin still exits") {
    // JS exec never sends EOF (spec §3.4): exit must not wait for it.
    ExecSocket s(engine, exec_target("stdin", {"sh", "-c", "echo done"}, "stdin=true"), false);
    REQUIRE(s.connected());
    s.session_info();
    s.finish();
    CHECK(s.out() == "done\n");
    CHECK(s.exit_code() == 0);
    CHECK(s.close_code() == 1000);
  }
}

TEST_CASE("WebSocket exec: 10 MB through cat in 64 KiB frames comes back byte for byte",
          "[exec][ws][stdin]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "bulk");
  const std::string data = random_bytes(10 * 1024 * 1024, 20261123);

  ExecSocket s(engine, exec_target("bulk", {"cat"}, "stdin=true"), false);
  REQUIRE(s.connected());
  s.session_info();
  // Queued, not sent one by one: the client writes while it reads cat's
  // output, as a real client must (both directions fill up otherwise).
  constexpr std::size_t kFrame = 64 * 1024;
  for (std::size_t at = 0; at < data.size(); at += kFrame) {
    s.ws().queue(true, frame('\x00', std::string_view(data).substr(at, kFrame)));
  }
  s.ws().queue(true, std::string(1, '\x04'));
  s.finish();
  INFO(s.problem_text());
  CHECK(s.problems().empty());
  CHECK(s.out().size() == data.size());
  const bool same = s.out() == data;
  CHECK(same);
  CHECK(s.err().empty());
  CHECK(s.exit_code() == 0);
  CHECK(s.close_code() == 1000);
}

TEST_CASE("WebSocket exec: stdin=false accepts the client's 04 EOF frame (Go sends one)",
          "[exec][ws][stdin]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "nostdin");
  // cat must see EOF at once (stdin=false); then the command waits for
  // /tmp/go, made by another exec, so the frames below certainly reach a
  // running session.
  ExecSocket s(engine,
               exec_target("nostdin",
                           {"sh", "-c",
                            "cat; echo cat-saw-eof; "
                            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo ok"},
                           "stdin=false"),
               false);
  REQUIRE(s.connected());
  s.send_eof();  // right after connecting, as Go does
  s.session_info();
  REQUIRE(s.wait_for_out("cat-saw-eof\n"));
  s.send_stdin("ignored\n");  // stray stdin data: dropped
  s.send_eof();
  CHECK(run(engine, "nostdin", {"touch", "/tmp/go"}).exit_code == 0);
  s.finish();
  INFO(s.problem_text());
  CHECK(s.problems().empty());
  CHECK(s.out() == "cat-saw-eof\nok\n");
  CHECK(s.exit_code() == 0);
  CHECK(s.close_code() == 1000);
}

// ---- §3.5 TTY ------------------------------------------------------------------------

TEST_CASE("WebSocket exec TTY: raw output and size and resize and JSON exit and close code",
          "[exec][ws][tty]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "term");

  SECTION("tty; stty size with rows=30 cols=100") {
    ExecSocket s(engine,
                 exec_target("term", {"sh", "-c", "tty; stty size"}, "tty=true&rows=30&cols=100"),
                 true);
    REQUIRE(s.connected());
    json::object info = s.session_info();
    INFO("session_info: " << json::serialize(info));
    CHECK(bool_field(info, "tty") == true);
    CHECK(bool_field(info, "is_owner") == true);
    CHECK(int_field(info, "rows") == 30);
    CHECK(int_field(info, "cols") == 100);
    CHECK(all_digits(string_field(info, "session_id")));
    s.finish();
    INFO("terminal output: " << s.out() << "\n" << s.problem_text());
    CHECK(s.problems().empty());
    CHECK_THAT(s.out(), Contains("/dev/pts/") && Contains("30 100"));
    // No stream prefix in TTY mode: the output is the terminal's bytes.
    CHECK(s.out().find('\x01') == std::string::npos);
    CHECK(s.out().rfind("/dev/pts/", 0) == 0);
    CHECK(s.exit_code() == 0);
    CHECK(s.close_code() == 1000);
  }

  SECTION("an interactive sh: resize, stty size, exit 3 -> close 4003") {
    ExecSocket s(engine, exec_target("term", {"sh"}, "tty=true&stdin=true"), true);
    REQUIRE(s.connected());
    json::object info = s.session_info();
    CHECK(bool_field(info, "tty") == true);
    s.send_json(R"({"type":"resize","rows":40,"cols":120})");
    s.send_stdin("stty size\n");
    INFO("terminal output so far: " << s.out());
    REQUIRE(s.wait_for_out("40 120"));
    s.send_stdin("exit 3\n");
    s.finish();
    INFO(s.problem_text());
    CHECK(s.problems().empty());
    CHECK(s.exit_code() == 3);
    CHECK(s.close_code() == 4003);
  }
}

// ---- signals over the socket (§3.6.1) ---------------------------------------------------

TEST_CASE("WebSocket exec: a signal message ends sleep 100 with 143", "[exec][ws][signal]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "sig");
  // Both spellings (Go: TERM; JS: SIGTERM), case-insensitive (spec §3.6.1).
  for (std::string name : {"TERM", "SIGTERM", "sigterm"}) {
    DYNAMIC_SECTION("signal " << name) {
      ExecSocket s(engine, exec_target("sig", {"sleep", "100"}, "stdin=false"), false);
      REQUIRE(s.connected());
      s.session_info();
      s.send_json(R"({"type":"signal","signal":")" + name + R"("})");
      s.finish();
      INFO(s.problem_text());
      CHECK(s.problems().empty());
      CHECK(s.exit_code() == 143);
      CHECK(s.close_code() == 1000);
    }
  }
}

// ---- §3.7 sessions, §5 list and kill, §5.3 HEAD ---------------------------------------------

TEST_CASE(
    "Exec sessions: detach then list then attach in both URL forms with replay then kill then 410",
    "[exec][sessions]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "sess");

  // Prints, waits for /tmp/go (made while nobody is attached), prints again.
  const std::string script =
      "echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo while-detached; "
      "touch /tmp/done; exec sleep 1000";
  std::string id;
  {
    ExecSocket owner(
        engine,
        exec_target("sess", {"sh", "-c", script}, "stdin=false&max_run_after_disconnect=10m"),
        false);
    REQUIRE(owner.connected());
    json::object info = owner.session_info();
    id = string_field(info, "session_id");
    REQUIRE(all_digits(id));
    REQUIRE(owner.wait_for_out("started\n"));
    owner.ws().drop();  // gone without a close frame: a detach
  }
  CHECK(run(engine, "sess", {"touch", "/tmp/go"}).exit_code == 0);
  wait_in_sprite(engine, "sess", "test -e /tmp/done");

  // §5.1: listed, id as a string.
  HttpReply list = engine.request("GET", "/v1/sprites/sess/exec");
  INFO("list: " << list.body);
  REQUIRE(list.status == 200);
  bool listed = false;
  json::object listing = parse_object(list.body);
  const json::value* sessions = listing.if_contains("sessions");
  REQUIRE(sessions != nullptr);
  REQUIRE(sessions->is_array());
  for (const auto& entry : sessions->as_array()) {
    const json::object& e = entry.as_object();
    const json::value* entry_id = e.if_contains("id");
    REQUIRE(entry_id != nullptr);
    CHECK(entry_id->is_string());
    if (entry_id->is_string() && entry_id->as_string() == id) {
      listed = true;
      CHECK(bool_field(e, "tty") == false);
      CHECK_THAT(string_field(e, "command"), Contains("sh"));
      CHECK_FALSE(string_field(e, "created").empty());
    }
  }
  CHECK(listed);

  // Attach by path: session_info first (not the owner), then the output made
  // while detached, replayed.
  {
    ExecSocket path_form(engine, "/v1/sprites/sess/exec/" + id + "?stdin=true", false);
    INFO("upgrade: " << path_form.ws().handshake().status << " "
                     << path_form.ws().handshake().body);
    REQUIRE(path_form.connected());
    json::object info = path_form.session_info();
    INFO("session_info: " << json::serialize(info));
    CHECK(string_field(info, "session_id") == id);
    CHECK(bool_field(info, "is_owner") == false);
    CHECK(bool_field(info, "tty") == false);
    REQUIRE(path_form.wait_for_out("while-detached\n"));
    CHECK(path_form.out() == "started\nwhile-detached\n");
    CHECK(path_form.problems().empty());
    path_form.ws().drop();
  }

  // Attach by query (legacy Go form); it stays attached through the kill.
  ExecSocket query_form(engine, "/v1/sprites/sess/exec?id=" + id + "&stdin=false", false);
  REQUIRE(query_form.connected());
  json::object info = query_form.session_info();
  CHECK(string_field(info, "session_id") == id);
  CHECK(bool_field(info, "is_owner") == false);
  REQUIRE(query_form.wait_for_out("while-detached\n"));
  CHECK(query_form.out() == "started\nwhile-detached\n");

  // §5.3: the version probe.
  HttpReply head = engine.request("HEAD", "/v1/sprites/sess/exec");
  CHECK(head.status == 200);
  CHECK_FALSE(head.header("Sprite-Version").empty());

  // §5.2: kill streams NDJSON progress, ending with complete. The attached
  // client keeps reading meanwhile (on this thread), as a real one would.
  auto pending_kill = std::async(std::launch::async, [&engine, id] {
    return engine.request("POST", "/v1/sprites/sess/exec/" + id + "/kill?signal=TERM&timeout=30s");
  });
  // The attached client sees the end: the exit frame, then close 1000.
  query_form.finish();
  INFO(query_form.problem_text());
  CHECK(query_form.problems().empty());
  CHECK(query_form.exit_code() == 143);
  CHECK(query_form.close_code() == 1000);

  HttpReply kill = pending_kill.get();
  INFO("kill: " << kill.status << " " << kill.body);
  CHECK(kill.status == 200);
  CHECK_THAT(kill.header("Content-Type"), StartsWith("application/x-ndjson"));
  std::vector<json::object> events = ndjson_lines(kill.body);
  std::string types;
  for (const auto& e : events) types += string_field(e, "type") + " ";
  CHECK(types == "signal exited complete ");
  REQUIRE_FALSE(events.empty());
  CHECK(string_field(events.front(), "signal") == "SIGTERM");
  CHECK(int_field(events.front(), "pid") == std::stoll(id));
  CHECK(int_field(events.back(), "exit_code") == 143);

  // Gone now: a second kill is 410, an unknown id 404; no longer listed.
  check_error(engine.request("POST", "/v1/sprites/sess/exec/" + id + "/kill?signal=TERM"), 410);
  check_error(engine.request("POST", "/v1/sprites/sess/exec/99999999/kill?signal=TERM"), 404);
  HttpReply after = engine.request("GET", "/v1/sprites/sess/exec");
  CHECK(after.status == 200);
  CHECK_THAT(after.body, !Contains("\"id\":\"" + id + "\""));
}

TEST_CASE("Exec sessions TTY: a detached terminal keeps running and replays its output",
          "[exec][sessions][tty]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "tsess");
  const std::string script =
      "echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo while-detached; "
      "touch /tmp/done; exec sleep 1000";
  std::string id;
  {
    ExecSocket owner(engine, exec_target("tsess", {"sh", "-c", script}, "tty=true&rows=25&cols=90"),
                     true);
    REQUIRE(owner.connected());
    id = string_field(owner.session_info(), "session_id");
    REQUIRE(all_digits(id));
    REQUIRE(owner.wait_for_out("started"));
    owner.ws().drop();
  }
  CHECK(run(engine, "tsess", {"touch", "/tmp/go"}).exit_code == 0);
  wait_in_sprite(engine, "tsess", "test -e /tmp/done");

  HttpReply list = engine.request("GET", "/v1/sprites/tsess/exec");
  INFO("list: " << list.body);
  CHECK(list.status == 200);
  CHECK_THAT(list.body, Contains("\"id\":\"" + id + "\""));

  ExecSocket attached(engine, "/v1/sprites/tsess/exec/" + id + "?stdin=true", true);
  REQUIRE(attached.connected());
  json::object info = attached.session_info();
  INFO("session_info: " << json::serialize(info));
  CHECK(string_field(info, "session_id") == id);
  CHECK(bool_field(info, "is_owner") == false);
  CHECK(bool_field(info, "tty") == true);
  CHECK(int_field(info, "rows") == 25);
  CHECK(int_field(info, "cols") == 90);
  REQUIRE(attached.wait_for_out("while-detached"));
  CHECK_THAT(attached.out(), Contains("started"));

  // A signal over the attached socket; TTY: JSON exit, close 4000+code.
  attached.send_json(R"({"type":"signal","signal":"KILL"})");
  attached.finish();
  INFO(attached.problem_text());
  CHECK(attached.problems().empty());
  CHECK(attached.exit_code() == 137);
  CHECK(attached.close_code() == 4137);
}

// ENGINE BUG (found by this test, 2026-11-23; fails until fixed): the engine
// delivers a session's exit to its clients one after another, and for each
// it waits for the WebSocket close handshake to complete (Session::finish
// awaits WebSocketSubscriber::exited, which awaits async_close, bounded only
// by the 30 s handshake timeout). So one attached client that does not read
// holds back the exit frame of every client after it, and the kill
// endpoint's wait, for 30 s. Here B gets its exit after ~30 s instead of at
// once. The guard below is a hang guard well above "at once" but under the
// engine's 30 s, not a performance bound.
TEST_CASE("Exec sessions: a client that stops reading does not hold back the exit for the others",
          "[exec][sessions]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "two");
  ExecSocket a(engine, exec_target("two", {"sleep", "100"}, "stdin=false"), false);
  REQUIRE(a.connected());
  std::string id = string_field(a.session_info(), "session_id");
  // a reads nothing more from here on.
  ExecSocket b(engine, "/v1/sprites/two/exec/" + id, false);
  REQUIRE(b.connected());
  b.session_info();
  b.send_json(R"({"type":"signal","signal":"TERM"})");
  INFO("b waits for its exit while a, attached first, reads nothing");
  b.finish(std::chrono::seconds(20));
  CHECK(b.exit_code() == 143);
  CHECK(b.close_code() == 1000);
}

// ---- §4 HTTP exec ---------------------------------------------------------------------------

TEST_CASE("HTTP exec: one frame per chunk with the exit chunk last and the body as stdin",
          "[exec][http]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "post");

  SECTION("no body") {
    HttpExec r =
        http_exec(engine, exec_target("post", {"sh", "-c", "echo hi; echo oops >&2; exit 3"}), "");
    INFO("status " << r.reply.status << ", body " << hex(r.reply.body));
    CHECK(r.reply.status == 200);
    CHECK(r.reply.chunked);
    CHECK(r.problems.empty());
    CHECK(r.out == "hi\n");
    CHECK(r.err == "oops\n");
    CHECK(r.exit_code == 3);
    REQUIRE_FALSE(r.reply.chunks.empty());
    CHECK(r.reply.chunks.back() == std::string("\x03\x03", 2));
  }

  SECTION("the body goes to stdin") {
    HttpExec r = http_exec(
        engine, exec_target("post", {"sh", "-c", "cat; echo err >&2; exit 7"}, "stdin=true"),
        "hello\n");
    INFO("status " << r.reply.status << ", body " << hex(r.reply.body));
    CHECK(r.reply.status == 200);
    CHECK(r.reply.chunked);
    CHECK(r.problems.empty());
    CHECK(r.out == "hello\n");
    CHECK(r.err == "err\n");
    CHECK(r.exit_code == 7);
    REQUIRE_FALSE(r.reply.chunks.empty());
    CHECK(r.reply.chunks.back() == std::string("\x03\x07", 2));
    check_still_serving(engine);
  }

  SECTION("1 MiB through cat, in small chunks") {
    const std::string data = random_bytes(1024 * 1024, 7);
    HttpExec r = http_exec(engine, exec_target("post", {"cat"}, "stdin=true"), data);
    CHECK(r.reply.status == 200);
    CHECK(r.problems.empty());
    CHECK(r.out.size() == data.size());
    const bool same = r.out == data;
    CHECK(same);
    CHECK(r.exit_code == 0);
    for (const auto& chunk : r.reply.chunks) CHECK(chunk.size() <= 16 * 1024 + 1);
    check_still_serving(engine);
  }
}

// ---- isolation and durability ---------------------------------------------------------------

TEST_CASE("Sprites are isolated: each has its own /etc and /home/sprite and hostname",
          "[exec][sandbox]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "iso-a");
  create_sprite(engine, "iso-b");
  const std::string tag = unique_tag();
  const std::string etc_file = "/etc/" + tag;

  Ran wrote = run(engine, "iso-a",
                  {"sh", "-c",
                   "echo secret > " + etc_file + " && echo mine > /home/sprite/" + tag +
                       " && cat " + etc_file});
  INFO("stderr: " << wrote.err);
  REQUIRE(wrote.exit_code == 0);
  CHECK(wrote.out == "secret\n");
  CHECK(run_out(engine, "iso-a", {"cat", "/home/sprite/" + tag}) == "mine\n");

  CHECK_FALSE(std::filesystem::exists(etc_file));  // not on the host
  CHECK(run(engine, "iso-b", {"test", "-e", etc_file}).exit_code == 1);
  CHECK(run(engine, "iso-b", {"test", "-e", "/home/sprite/" + tag}).exit_code == 1);

  CHECK(run_out(engine, "iso-a", {"hostname"}) == "iso-a\n");
  CHECK(run_out(engine, "iso-b", {"hostname"}) == "iso-b\n");
  // Commands run as root in /home/sprite with HOME=/home/sprite.
  CHECK(run_out(engine, "iso-a", {"sh", "-c", "id -u; pwd; echo $HOME"}) ==
        "0\n/home/sprite\n/home/sprite\n");
}

TEST_CASE("Files in /home/sprite and /etc survive the engine stopping even by SIGKILL",
          "[exec][durability]") {
  e2e::TempDir state;
  const std::string tag = unique_tag();
  {
    Engine engine(state);
    create_sprite(engine, "keep");
    CHECK(run(engine, "keep",
              {"sh", "-c",
               "echo home-1 > /home/sprite/" + tag + "-1 && echo etc-1 > /etc/" + tag + "-1"})
              .exit_code == 0);
    e2e::Result stopped = engine.stop(SIGTERM);
    INFO(stopped.describe());
    CHECK(stopped.exited);
    CHECK(stopped.exit_code == 0);
  }
  {
    Engine engine(state);
    CHECK(run_out(engine, "keep", {"cat", "/home/sprite/" + tag + "-1", "/etc/" + tag + "-1"}) ==
          "home-1\netc-1\n");
    CHECK(run(engine, "keep",
              {"sh", "-c",
               "echo home-2 > /home/sprite/" + tag + "-2 && echo etc-2 > /etc/" + tag + "-2"})
              .exit_code == 0);
    engine.stop(SIGKILL);
  }
  Engine engine(state);
  CHECK(run_out(engine, "keep",
                {"cat", "/home/sprite/" + tag + "-1", "/etc/" + tag + "-1",
                 "/home/sprite/" + tag + "-2", "/etc/" + tag + "-2"}) ==
        "home-1\netc-1\nhome-2\netc-2\n");
  CHECK_FALSE(std::filesystem::exists("/etc/" + tag + "-1"));
}

// ---- hibernation ---------------------------------------------------------------------------

TEST_CASE("Hibernation: running then warm then cold after an exec and the next exec wakes it",
          "[exec][hibernation]") {
  e2e::TempDir state;
  Engine engine(state, {"--idle-timeout", "300ms", "--cold-timeout", "600ms"});
  create_sprite(engine, "nap");
  CHECK(sprite_status(engine, "nap") == "cold");

  {
    ExecSocket s(engine, exec_target("nap", {"sleep", "100"}, "stdin=false"), false);
    REQUIRE(s.connected());
    s.session_info();
    CHECK(sprite_status(engine, "nap") == "running");  // a client is attached
    s.send_json(R"({"type":"signal","signal":"KILL"})");
    s.finish();
    CHECK(s.exit_code() == 137);
  }

  // Every status seen, in order, until cold (a hang guard, no timing).
  std::vector<std::string> seen;
  const auto deadline = Clock::now() + kHangGuard;
  while (seen.empty() || seen.back() != "cold") {
    REQUIRE(Clock::now() < deadline);
    std::string status = sprite_status(engine, "nap");
    if (seen.empty() || seen.back() != status) seen.push_back(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string order;
  for (const auto& s : seen) order += s + " ";
  INFO("statuses seen: " << order);
  // It may already be warm at the first look; it never goes back.
  CHECK((order == "running warm cold " || order == "warm cold "));

  Ran woke = run(engine, "nap", {"echo", "awake"});
  CHECK(woke.out == "awake\n");
  CHECK(woke.exit_code == 0);
}

// ---- bad input -------------------------------------------------------------------------------

TEST_CASE("Bad exec requests get the right status and a JSON error and the engine keeps serving",
          "[exec][errors]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "bad");

  auto refused = [&](const std::string& target, int status, const std::string& token) {
    auto ws = engine.websocket(target, token);
    INFO("upgrade to " << target);
    CHECK_FALSE(ws->connected());
    check_error(ws->handshake(), status);
    check_still_serving(engine);
  };
  auto refused_http = [&](const std::string& target, int status) {
    INFO("POST " << target);
    check_error(engine.request("POST", target), status);
    check_still_serving(engine);
  };

  SECTION("unknown sprite: 404") {
    refused(exec_target("nope", {"true"}), 404, e2e::kTestToken);
    refused_http(exec_target("nope", {"true"}), 404);
  }
  SECTION("unknown session: 404 in both attach forms") {
    refused("/v1/sprites/bad/exec/99999999?stdin=true", 404, e2e::kTestToken);
    refused("/v1/sprites/bad/exec?id=99999999&stdin=true", 404, e2e::kTestToken);
    refused("/v1/sprites/bad/exec/not-a-number", 404, e2e::kTestToken);
  }
  SECTION("env entry without '=': 400") {
    refused(exec_target("bad", {"env"}, "env=NOEQUALS"), 400, e2e::kTestToken);
    refused_http(exec_target("bad", {"env"}, "env=A%3D1&env=NOEQUALS"), 400);
  }
  SECTION("relative dir: 400") {
    refused(exec_target("bad", {"pwd"}, "dir=relative%2Fdir"), 400, e2e::kTestToken);
    refused_http(exec_target("bad", {"pwd"}, "dir=relative"), 400);
  }
  SECTION("bad max_run_after_disconnect: 400") {
    refused(exec_target("bad", {"true"}, "max_run_after_disconnect=forever"), 400, e2e::kTestToken);
    refused(exec_target("bad", {"true"}, "max_run_after_disconnect=-1s"), 400, e2e::kTestToken);
  }
  SECTION("missing or wrong token: 401") {
    refused(exec_target("bad", {"true"}), 401, "");
    refused(exec_target("bad", {"true"}), 401, "wrong-token");
    refused("/v1/sprites/bad/exec/1", 401, "wrong-token");
    check_error(engine.request("POST", exec_target("bad", {"true"}), "", {}, "wrong-token"), 401);
  }
  SECTION("kill with an unknown signal: 400, and the session is untouched") {
    ExecSocket s(engine, exec_target("bad", {"sleep", "100"}, "stdin=false"), false);
    REQUIRE(s.connected());
    std::string id = string_field(s.session_info(), "session_id");
    check_error(engine.request("POST", "/v1/sprites/bad/exec/" + id + "/kill?signal=NOPE"), 400);
    check_error(
        engine.request("POST", "/v1/sprites/bad/exec/" + id + "/kill?signal=TERM&timeout=soon"),
        400);
    check_still_serving(engine);
    auto kill = std::async(std::launch::async, [&engine, id] {
      return engine.request("POST", "/v1/sprites/bad/exec/" + id + "/kill?signal=KILL&timeout=30s");
    });
    s.finish();
    CHECK(s.exit_code() == 137);
    CHECK(kill.get().status == 200);
  }
  // Whatever happened, the sprite still runs commands.
  CHECK(run_out(engine, "bad", {"echo", "fine"}) == "fine\n");
}

TEST_CASE("Garbage over an exec WebSocket is ignored and the command still completes",
          "[exec][errors][ws]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "junk");
  ExecSocket s(engine, exec_target("junk", {"cat"}, "stdin=true"), false);
  REQUIRE(s.connected());
  s.session_info();

  std::mt19937 gen(42);
  for (int i = 0; i < 64; ++i) {
    // Stream ids a client never sends (01-03 are the server's, 05-ff unknown).
    int id = static_cast<int>(gen() % 254) + 1;
    if (id == 4) id = 5;
    s.ws().queue(
        true, frame(static_cast<char>(id), random_bytes(gen() % 2048, static_cast<unsigned>(i))));
  }
  s.ws().queue(true, "");  // a zero-length message
  for (std::string text :
       {"{not json", "[]", "42", "\"a string\"", "{}", R"({"type":7})", R"({"type":"unknown"})",
        R"({"type":"resize","rows":"x","cols":-1})", R"({"type":"signal"})",
        R"({"type":"signal","signal":"NOPE"})", R"({"type":"signal","signal":12345})"}) {
    s.ws().queue(false, text);
  }
  s.ws().flush(kHangGuard);
  s.send_stdin("still alive\n");
  s.send_eof();
  s.finish();
  INFO(s.problem_text());
  CHECK(s.problems().empty());
  CHECK(s.out() == "still alive\n");
  CHECK(s.exit_code() == 0);
  CHECK(s.close_code() == 1000);
  check_still_serving(engine);
}

TEST_CASE("Malformed HTTP and oversized bodies: 400 and 413 with JSON errors", "[exec][errors]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "raw");

  auto status_and_body = [](const std::string& response) {
    auto line_end = response.find("\r\n");
    auto body_start = response.find("\r\n\r\n");
    std::string line = response.substr(0, line_end);
    std::string body = body_start == std::string::npos ? "" : response.substr(body_start + 4);
    return std::make_pair(line, body);
  };

  for (std::string request :
       {std::string("NOT A VALID REQUEST LINE\r\n\r\n"), std::string("GET\r\n\r\n"),
        std::string("G(E)T /v1/sprites HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    DYNAMIC_SECTION("request line " << request.substr(0, request.find('\r'))) {
      auto [line, body] = status_and_body(e2e::raw_exchange(engine.port(), request));
      INFO("status line: " << line << "\nbody: " << body);
      CHECK_THAT(line, StartsWith("HTTP/1.1 400"));
      json::object o = parse_object(body);
      CHECK_FALSE(string_field(o, "error").empty());
      CHECK_FALSE(string_field(o, "message").empty());
      check_still_serving(engine);
    }
  }

  SECTION("a body over 64 MiB: 413") {
    const std::string head = "POST " + exec_target("raw", {"cat"}, "stdin=true") +
                             " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                             e2e::kTestToken +
                             "\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                             std::to_string(64 * 1024 * 1024 + 1) + "\r\n\r\n";
    // Only the head: the engine refuses on the declared length alone.
    auto [line, body] = status_and_body(e2e::raw_exchange(engine.port(), head));
    INFO("status line: " << line << "\nbody: " << body);
    CHECK_THAT(line, StartsWith("HTTP/1.1 413"));
    json::object o = parse_object(body);
    CHECK_FALSE(string_field(o, "error").empty());
    CHECK_FALSE(string_field(o, "message").empty());
    check_still_serving(engine);
  }

  SECTION("a chunked body that grows past 64 MiB: 413") {
    std::string request = "POST " + exec_target("raw", {"cat"}, "stdin=true") +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                          e2e::kTestToken + "\r\nTransfer-Encoding: chunked\r\n\r\n";
    const std::string chunk(1024 * 1024, 'x');
    for (int i = 0; i < 65; ++i) request += "100000\r\n" + chunk + "\r\n";
    request += "0\r\n\r\n";
    auto [line, body] = status_and_body(e2e::raw_exchange(engine.port(), request));
    INFO("status line: " << line << "\nbody: " << body);
    CHECK_THAT(line, StartsWith("HTTP/1.1 413"));
    json::object o = parse_object(body);
    CHECK_FALSE(string_field(o, "error").empty());
    check_still_serving(engine);
  }
}
