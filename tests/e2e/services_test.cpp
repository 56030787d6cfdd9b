// Services in the local engine, end to end (spec §11, §14.2): each test
// starts `spritescript serve` on a random port with a temporary state dir and
// drives /v1/sprites/NAME/services over real sockets, checking status codes,
// NDJSON events, the supervisor (needs order, restarts with backoff, sticky
// stop, cold wake, engine restart) and the log files. Timeouts are hang
// guards only; nothing here asserts on timing.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "process.hpp"
#include "ws_client.hpp"

namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using e2e::Engine;
using e2e::HttpReply;
using Clock = std::chrono::steady_clock;

constexpr auto kHangGuard = std::chrono::seconds(60);

json::value parse(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? json::value() : v;
}

json::object parse_object(std::string_view text) {
  json::value v = parse(text);
  return v.is_object() ? v.as_object() : json::object();
}

std::string str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::optional<std::int64_t> integer(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return std::nullopt;
}

void create_sprite(Engine& engine, const std::string& name) {
  REQUIRE_THAT(engine.call("POST", "/v1/sprites", R"({"name":")" + name + R"("})"),
               StartsWith("201 "));
}

std::string services_path(const std::string& sprite, const std::string& rest = "") {
  return "/v1/sprites/" + sprite + "/services" + rest;
}

// An NDJSON answer: its events, one per line, and whether each line came in
// a chunk of its own (flushed per line).
struct Events {
  HttpReply reply;
  std::vector<json::object> events;
  std::vector<std::string> problems;

  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(str(e, "type"));
    return out;
  }
  std::string output(const char* type = "stdout") const {
    std::string out;
    for (const auto& e : events) {
      if (str(e, "type") == type) out += str(e, "data");
    }
    return out;
  }
  const json::object* first(const std::string& type) const {
    for (const auto& e : events) {
      if (str(e, "type") == type) return &e;
    }
    return nullptr;
  }
};

Events ndjson(Engine& engine, const std::string& method, const std::string& target,
              const std::string& body = "") {
  Events r;
  r.reply = engine.request(method, target, body, {{"Content-Type", "application/json"}});
  INFO(method << " " << target << " -> " << r.reply.status << " " << r.reply.body);
  for (const auto& chunk : r.reply.chunks) {
    if (chunk.empty() || chunk.back() != '\n' || chunk.find('\n') != chunk.size() - 1) {
      r.problems.push_back("a chunk that is not exactly one line: " + chunk);
    }
  }
  std::istringstream lines(r.reply.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    json::value v = parse(line);
    if (!v.is_object()) {
      r.problems.push_back("not a JSON object: " + line);
      continue;
    }
    const json::object& o = v.as_object();
    if (!integer(o, "timestamp") || *integer(o, "timestamp") < 1'600'000'000'000) {
      r.problems.push_back("no integer Unix-millisecond timestamp: " + line);
    }
    r.events.push_back(o);
  }
  return r;
}

// A 200 NDJSON stream that ends with `complete` (with the log files).
void check_stream(const Events& r, const std::string& service) {
  INFO("body: " << r.reply.body);
  CHECK(r.reply.status == 200);
  CHECK_THAT(r.reply.header("Content-Type"), StartsWith("application/x-ndjson"));
  CHECK(r.reply.chunked);
  CHECK(r.problems.empty());
  REQUIRE_FALSE(r.events.empty());
  const json::object& last = r.events.back();
  CHECK(str(last, "type") == "complete");
  const json::value* files = last.if_contains("log_files");
  REQUIRE((files && files->is_object()));
  const std::string path = "/.sprite/logs/services/" + service + ".log";
  CHECK(str(files->as_object(), "combined") == path);
  CHECK(str(files->as_object(), "stdout") == path);
  CHECK(str(files->as_object(), "stderr") == path);
}

Events put_service(Engine& engine, const std::string& sprite, const std::string& name,
                   const std::string& body, const std::string& duration = "0") {
  return ndjson(engine, "PUT", services_path(sprite, "/" + name + "?duration=" + duration), body);
}

json::object get_service(Engine& engine, const std::string& sprite, const std::string& name) {
  HttpReply r = engine.request("GET", services_path(sprite, "/" + name));
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == 200);
  return parse_object(r.body);
}

json::object state_of(Engine& engine, const std::string& sprite, const std::string& name) {
  json::object svc = get_service(engine, sprite, name);
  const json::value* state = svc.if_contains("state");
  REQUIRE((state && state->is_object()));
  return state->as_object();
}

// Polls until `ok(state)` (a hang guard, no timing asserted).
json::object wait_state(Engine& engine, const std::string& sprite, const std::string& name,
                        const std::function<bool(const json::object&)>& ok, const char* what) {
  const auto deadline = Clock::now() + kHangGuard;
  for (;;) {
    json::object state = state_of(engine, sprite, name);
    if (ok(state)) return state;
    INFO("waiting for " << name << " to be " << what << "; state: " << json::serialize(state));
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

json::object wait_running(Engine& engine, const std::string& sprite, const std::string& name) {
  return wait_state(
      engine, sprite, name,
      [](const json::object& s) { return str(s, "status") == "running" && integer(s, "pid"); },
      "running");
}

// Polls the service's buffered logs until its stdout contains `text`.
void wait_output(Engine& engine, const std::string& sprite, const std::string& name,
                 const std::string& text) {
  const auto deadline = Clock::now() + kHangGuard;
  for (;;) {
    Events logs = ndjson(engine, "GET", services_path(sprite, "/" + name + "/logs"));
    if (logs.output().find(text) != std::string::npos) return;
    INFO("waiting for '" << text << "' from " << name << "; logs: " << logs.reply.body);
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The stdout of `sh -c script` in the sprite (HTTP exec, spec §4).
std::string sh(Engine& engine, const std::string& sprite, const std::string& script) {
  HttpReply r = engine.request("POST", "/v1/sprites/" + sprite + "/exec?cmd=sh&cmd=-c&cmd=" +
                                           e2e::url_encode(script) + "&path=sh&stdin=false");
  REQUIRE(r.status == 200);
  std::string out;
  for (const auto& chunk : r.chunks) {
    if (!chunk.empty() && chunk[0] == 0x01) out += chunk.substr(1);
  }
  return out;
}

std::string sprite_status(Engine& engine, const std::string& name) {
  return str(parse_object(engine.request("GET", "/v1/sprites/" + name).body), "status");
}

void wait_sprite_status(Engine& engine, const std::string& name, const std::string& wanted) {
  const auto deadline = Clock::now() + kHangGuard;
  while (sprite_status(engine, name) != wanted) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void check_error(const HttpReply& r, int status, const std::string& code = "") {
  INFO("status " << r.status << ", body: " << r.body);
  CHECK(r.status == status);
  json::object o = parse_object(r.body);
  CHECK_FALSE(str(o, "error").empty());
  CHECK_FALSE(str(o, "message").empty());
  if (!code.empty()) CHECK(str(o, "error") == code);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE(
    "Services: create streams started and output and complete and the service runs with a pid",
    "[services]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "svc");

  Events created = put_service(
      engine, "svc", "web",
      R"({"cmd":"sh","args":["-c","echo hello; echo oops >&2; echo $GREETING; exec sleep 1000"],)"
      R"("env":{"GREETING":"hi there"},"dir":"/tmp","http_port":8080})",
      "1s");
  check_stream(created, "web");
  CHECK(created.types().front() == "started");
  CHECK(created.output() == "hello\nhi there\n");
  CHECK(created.output("stderr") == "oops\n");

  json::object svc = get_service(engine, "svc", "web");
  CHECK(str(svc, "cmd") == "sh");
  CHECK(str(svc, "dir") == "/tmp");
  CHECK(integer(svc, "http_port") == 8080);
  CHECK(svc.at("args").as_array().size() == 2);
  CHECK(str(svc.at("env").as_object(), "GREETING") == "hi there");
  json::object st = svc.at("state").as_object();
  CHECK(str(st, "name") == "web");
  CHECK(str(st, "status") == "running");
  REQUIRE(integer(st, "pid"));
  CHECK(integer(st, "restart_count") == 0);
  CHECK_FALSE(str(st, "started_at").empty());
  CHECK_FALSE(st.contains("next_restart_at"));  // never "" for a time

  // It is that process in the sprite, started in its dir, with the base
  // environment plus its env.
  const std::string pid = std::to_string(*integer(st, "pid"));
  CHECK_THAT(sh(engine, "svc", "tr '\\0' ' ' < /proc/" + pid + "/cmdline"), Contains("sleep 1000"));
  CHECK(sh(engine, "svc", "readlink /proc/" + pid + "/cwd") == "/tmp\n");
  std::string env = sh(engine, "svc", "tr '\\0' '\\n' < /proc/" + pid + "/environ");
  CHECK_THAT(env, Contains("GREETING=hi there"));
  CHECK_THAT(env, Contains("PATH="));
  CHECK_THAT(env, Contains("HOME=/home/sprite"));
  // The log file, read-only inside the sprite.
  // (stdout and stderr are two pipes: their order in the combined log is not fixed)
  CHECK(sh(engine, "svc", "sort /.sprite/logs/services/web.log") == "hello\nhi there\noops\n");
  CHECK(sh(engine, "svc", "echo x > /.sprite/logs/services/web.log 2>/dev/null || echo refused") ==
        "refused\n");

  HttpReply list = engine.request("GET", services_path("svc"));
  REQUIRE(list.status == 200);
  json::value array = parse(list.body);
  REQUIRE(array.is_array());  // a top-level array (Go requires it)
  REQUIRE(array.as_array().size() == 1);
  CHECK(str(array.as_array()[0].as_object(), "name") == "web");

  // Updating it replaces the process (stop then start events).
  Events updated = put_service(engine, "svc", "web", R"({"cmd":"sleep","args":["999"]})");
  check_stream(updated, "web");
  std::vector<std::string> types = updated.types();
  CHECK(std::find(types.begin(), types.end(), "stopped") != types.end());
  CHECK(std::find(types.begin(), types.end(), "started") != types.end());
  json::object after = wait_running(engine, "svc", "web");
  CHECK(integer(after, "pid") != integer(st, "pid"));
  CHECK(get_service(engine, "svc", "web").at("http_port").is_null());
}

TEST_CASE("Services: a crash is restarted with restart_count and TERM by signal counts as a crash",
          "[services]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "crash");

  check_stream(put_service(engine, "crash", "loop", R"({"cmd":"sh","args":["-c","exit 3"]})", "0"),
               "loop");
  json::object failed = wait_state(
      engine, "crash", "loop",
      [](const json::object& s) {
        return str(s, "status") == "failed" && s.contains("next_restart_at");
      },
      "failed");
  CHECK_THAT(str(failed, "error"), Contains("3"));
  wait_state(
      engine, "crash", "loop",
      [](const json::object& s) { return integer(s, "restart_count").value_or(0) >= 2; },
      "restarted twice");
  // Its log events say why.
  Events logs = ndjson(engine, "GET", services_path("crash", "/loop/logs"));
  check_stream(logs, "loop");
  const json::object* exit = logs.first("exit");
  REQUIRE(exit);
  CHECK(integer(*exit, "exit_code") == 3);

  // A long runner killed by a TERM signal comes back as a new process.
  check_stream(put_service(engine, "crash", "web", R"({"cmd":"sleep","args":["1000"]})"), "web");
  json::object before = wait_running(engine, "crash", "web");
  HttpReply signalled = engine.request("POST", services_path("crash", "/signal"),
                                       R"({"name":"web","signal":"TERM"})");
  CHECK(signalled.status == 204);
  CHECK(signalled.body.empty());
  json::object after = wait_state(
      engine, "crash", "web",
      [](const json::object& s) {
        return str(s, "status") == "running" && integer(s, "restart_count") == 1;
      },
      "restarted");
  CHECK(integer(after, "pid") != integer(before, "pid"));
  // KILL by number, SIGKILL by name: the same.
  CHECK(engine.request("POST", services_path("crash", "/signal"), R"({"name":"web","signal":9})")
            .status == 204);
  wait_state(
      engine, "crash", "web",
      [](const json::object& s) {
        return str(s, "status") == "running" && integer(s, "restart_count") == 2;
      },
      "restarted again");
  // A HUP the service survives is no crash.
  check_stream(put_service(engine, "crash", "hup",
                           R"({"cmd":"sh","args":["-c","trap 'echo got hup' HUP; echo ready; )"
                           R"(while :; do sleep 0.05; done"]})"),
               "hup");
  wait_output(engine, "crash", "hup", "ready");  // the trap is set
  json::object hup = wait_running(engine, "crash", "hup");
  CHECK(
      engine
          .request("POST", services_path("crash", "/signal"), R"({"name":"hup","signal":"SIGHUP"})")
          .status == 204);
  wait_output(engine, "crash", "hup", "got hup");
  json::object still = state_of(engine, "crash", "hup");
  CHECK(integer(still, "pid") == integer(hup, "pid"));
  CHECK(integer(still, "restart_count") == 0);
}

TEST_CASE("Services: stop is sticky across a cold wake and start and restart and needs order work",
          "[services]") {
  e2e::TempDir state;
  Engine engine(state, {"--idle-timeout", "300ms", "--cold-timeout", "300ms"});
  create_sprite(engine, "nap");

  check_stream(put_service(engine, "nap", "db", R"({"cmd":"sleep","args":["1000"]})"), "db");
  check_stream(
      put_service(engine, "nap", "app", R"({"cmd":"sleep","args":["1001"],"needs":["db"]})"),
      "app");
  check_stream(put_service(engine, "nap", "off", R"({"cmd":"sleep","args":["1002"]})"), "off");
  wait_running(engine, "nap", "off");

  Events stopped = ndjson(engine, "POST", services_path("nap", "/off/stop?timeout=5s"));
  check_stream(stopped, "off");
  std::vector<std::string> types = stopped.types();
  CHECK(types == std::vector<std::string>{"stopping", "exit", "stopped", "complete"});
  CHECK(str(state_of(engine, "nap", "off"), "status") == "stopped");
  check_error(engine.request("POST", services_path("nap", "/off/stop")), 409,
              "service_not_running");
  CHECK_FALSE(state_of(engine, "nap", "off").contains("pid"));

  // Hibernate to cold: every process ends; the next request wakes the sprite
  // and its services, in needs order (db before app), but not the stopped one.
  wait_sprite_status(engine, "nap", "cold");
  CHECK(str(state_of(engine, "nap", "db"), "status") == "stopped");
  CHECK(sh(engine, "nap", "echo awake") == "awake\n");
  json::object db = wait_running(engine, "nap", "db");
  json::object app = wait_running(engine, "nap", "app");
  CHECK(*integer(db, "pid") < *integer(app, "pid"));  // a fresh pid namespace counts up
  CHECK(str(state_of(engine, "nap", "off"), "status") == "stopped");
  CHECK(sh(engine, "nap", "pgrep -f 'sleep 100[2]' || echo none") == "none\n");

  // start brings it back (and clears the stop), restart replaces the process.
  Events started = ndjson(engine, "POST", services_path("nap", "/off/start?duration=0s"));
  check_stream(started, "off");
  CHECK(started.types().front() == "started");
  json::object on = wait_running(engine, "nap", "off");
  Events restarted = ndjson(engine, "POST", services_path("nap", "/off/restart?duration=0"));
  check_stream(restarted, "off");
  CHECK(restarted.types() ==
        std::vector<std::string>{"stopping", "exit", "stopped", "started", "complete"});
  json::object again = wait_running(engine, "nap", "off");
  CHECK(integer(again, "pid") != integer(on, "pid"));
}

TEST_CASE("Services: definitions and stops survive an engine restart and start at the next wake",
          "[services]") {
  e2e::TempDir state;
  {
    Engine engine(state);
    create_sprite(engine, "keep");
    check_stream(put_service(engine, "keep", "a", R"({"cmd":"sleep","args":["1000"]})"), "a");
    check_stream(
        put_service(engine, "keep", "b", R"({"cmd":"sleep","args":["1001"],"http_port":3000})"),
        "b");
    CHECK(ndjson(engine, "POST", services_path("keep", "/b/stop")).reply.status == 200);
    CHECK(engine.stop(SIGKILL).signal == SIGKILL);  // even a killed engine keeps them
  }
  Engine engine(state);
  // Any request that wakes the sprite starts its services, here an exec
  // before any services request (needs Fleet::executor()).
  CHECK(sh(engine, "keep", "echo up") == "up\n");
  wait_running(engine, "keep", "a");
  CHECK(str(state_of(engine, "keep", "b"), "status") == "stopped");
  HttpReply list = engine.request("GET", services_path("keep"));
  REQUIRE(list.status == 200);
  json::value array = parse(list.body);
  REQUIRE(array.is_array());
  CHECK(array.as_array().size() == 2);
  CHECK(integer(get_service(engine, "keep", "b"), "http_port") == 3000);
  // The single-port rule holds for the reloaded definitions.
  check_error(put_service(engine, "keep", "c", R"({"cmd":"true","http_port":3001})").reply, 409,
              "http_port_conflict");
}

TEST_CASE("Services: logs keep recent events and follow with duration and the log file rotates",
          "[services]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "logs");

  check_stream(put_service(engine, "logs", "tick",
                           R"({"cmd":"sh","args":["-c","i=0; while :; do i=$((i+1)); )"
                           R"(echo tick $i; sleep 0.1; done"]})"),
               "tick");
  // Buffered: exactly the last N events.
  const auto deadline = Clock::now() + kHangGuard;
  while (ndjson(engine, "GET", services_path("logs", "/tick/logs")).events.size() < 8) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Events last = ndjson(engine, "GET", services_path("logs", "/tick/logs?lines=3"));
  check_stream(last, "tick");
  CHECK(last.events.size() == 4);  // 3 + complete
  Events none = ndjson(engine, "GET", services_path("logs", "/tick/logs?lines=0"));
  CHECK(none.types() == std::vector<std::string>{"complete"});
  // Following: new output arrives while the stream lasts.
  Events follow = ndjson(engine, "GET", services_path("logs", "/tick/logs?lines=0&duration=1s"));
  check_stream(follow, "tick");
  CHECK(follow.events.size() >= 3);
  CHECK_THAT(follow.output(), StartsWith("tick "));

  // 3 MB of output: the file rotates to .log.1 past 1 MiB; both stay bounded.
  check_stream(put_service(engine, "logs", "big",
                           R"({"cmd":"sh","args":["-c","yes 0123456789012345678901234567890123 )"
                           R"(| head -c 3000000; echo; echo done-big; exec sleep 1000"]})"),
               "big");
  const fs::path dir = state.path() / "sprites" / "logs" / "logs" / "services";
  const auto deadline2 = Clock::now() + kHangGuard;
  while (read_file(dir / "big.log").find("done-big") == std::string::npos) {
    REQUIRE(Clock::now() < deadline2);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(fs::file_size(dir / "big.log") <= (1u << 20));
  REQUIRE(fs::exists(dir / "big.log.1"));
  CHECK(fs::file_size(dir / "big.log.1") <= (1u << 20));
  CHECK(fs::file_size(dir / "big.log.1") > 900'000);
  // The in-memory ring is bounded too: the last events, not 3 MB.
  Events ring = ndjson(engine, "GET", services_path("logs", "/big/logs"));
  CHECK(ring.reply.body.size() < 2'000'000);
  CHECK_THAT(ring.output(), Contains("done-big"));

  // Deleting a service removes its logs; the others stay.
  HttpReply deleted = engine.request("DELETE", services_path("logs", "/big"));
  CHECK(deleted.status == 204);
  CHECK(deleted.body.empty());
  CHECK_FALSE(fs::exists(dir / "big.log"));
  CHECK(fs::exists(dir / "tick.log"));
}

TEST_CASE("Services: delete stops the process and deleting the sprite drops its services",
          "[services]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "gone");
  check_stream(put_service(engine, "gone", "x", R"({"cmd":"sleep","args":["1000"]})"), "x");
  const std::string pid = std::to_string(*integer(wait_running(engine, "gone", "x"), "pid"));
  HttpReply deleted = engine.request("DELETE", services_path("gone", "/x"));
  CHECK(deleted.status == 204);
  CHECK(sh(engine, "gone", "test -e /proc/" + pid + " && echo alive || echo dead") == "dead\n");
  check_error(engine.request("GET", services_path("gone", "/x")), 404, "service_not_found");
  check_error(engine.request("DELETE", services_path("gone", "/x")), 404);

  // A sprite deleted while its services run; a new one of the same name
  // starts with none, and the engine goes on.
  check_stream(put_service(engine, "gone", "y",
                           R"({"cmd":"sh","args":["-c","while :; do )"
                           R"(echo spam; sleep 0.01; done"]})"),
               "y");
  CHECK(engine.request("DELETE", "/v1/sprites/gone").status == 204);
  CHECK_FALSE(fs::exists(state.path() / "sprites" / "gone"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(fs::exists(state.path() / "sprites" / "gone"));  // nothing recreated it
  create_sprite(engine, "gone");
  CHECK(engine.request("GET", services_path("gone")).body == "[]");
  CHECK(sh(engine, "gone", "echo fresh") == "fresh\n");
}

TEST_CASE("Services: bad input gets one clear error and changes nothing", "[services][errors]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "bad");
  check_stream(put_service(engine, "bad", "a", R"({"cmd":"sleep","args":["1000"],"http_port":80})"),
               "a");
  check_stream(put_service(engine, "bad", "b", R"({"cmd":"sleep","args":["1000"],"needs":["a"]})"),
               "b");
  const fs::path file = state.path() / "sprites" / "bad" / "services.json";
  const std::string saved = read_file(file);
  REQUIRE_FALSE(saved.empty());

  auto put = [&](const std::string& name, const std::string& body, const std::string& query = "") {
    return engine.request("PUT", services_path("bad", "/" + name + query), body);
  };
  check_error(put("c", "{not json"), 400, "invalid_json");
  check_error(put("c", R"(["cmd"])"), 400, "invalid_service");
  check_error(put("c", R"({"args":["x"]})"), 400, "invalid_service");
  check_error(put("c", R"({"cmd":"x","args":"y"})"), 400, "invalid_service");
  check_error(put("c", R"({"cmd":"x","env":{"A":1}})"), 400, "invalid_service");
  check_error(put("c", R"({"cmd":"x","dir":"relative"})"), 400, "invalid_service");
  check_error(put("c", R"({"cmd":"x","http_port":70000})"), 400, "invalid_service");
  check_error(put("-c", R"({"cmd":"x"})"), 400, "invalid_service_name");
  check_error(put("c", R"({"cmd":"x","needs":["nope"]})"), 400, "unknown_dependency");
  check_error(put("c", R"({"cmd":"x","needs":["c"]})"), 400, "dependency_cycle");
  check_error(put("a", R"({"cmd":"x","needs":["b"]})"), 400, "dependency_cycle");
  check_error(put("c", R"({"cmd":"x","http_port":81})"), 409, "http_port_conflict");
  check_error(put("c", R"({"cmd":"x"})", "?duration=soon"), 400, "invalid_duration");
  check_error(engine.request("DELETE", services_path("bad", "/a")), 409, "service_needed");

  for (const char* target : {"/nope", "/nope/start", "/nope/stop", "/nope/restart", "/nope/logs"}) {
    const std::string method =
        std::string(target).find("logs") != std::string::npos || std::string(target) == "/nope"
            ? "GET"
            : "POST";
    check_error(engine.request(method, services_path("bad", target)), 404, "service_not_found");
  }
  check_error(engine.request("POST", services_path("bad", "/a/stop?timeout=x")), 400,
              "invalid_duration");
  check_error(engine.request("GET", services_path("bad", "/a/logs?lines=-1")), 400,
              "invalid_lines");
  check_error(engine.request("POST", services_path("bad", "/a/explode")), 404);
  auto signal = [&](const std::string& body) {
    return engine.request("POST", services_path("bad", "/signal"), body);
  };
  check_error(signal("nope"), 400, "invalid_json");
  check_error(signal(R"({"name":"a","signal":"FOO"})"), 400, "invalid_signal");
  check_error(signal(R"({"name":"a"})"), 400, "invalid_signal");
  check_error(signal(R"({"name":"zzz","signal":"TERM"})"), 404, "service_not_found");
  CHECK(ndjson(engine, "POST", services_path("bad", "/b/stop")).reply.status == 200);
  check_error(signal(R"({"name":"b","signal":"TERM"})"), 409, "service_not_running");
  check_error(engine.request("GET", "/v1/sprites/nosuch/services"), 404);

  // Nothing changed but b's stop; the engine still serves.
  std::string now = read_file(file);
  CHECK(parse_object(now).at("services").as_array().size() == 2);
  CHECK_THAT(now, Contains(R"("stopped":true)"));
  CHECK(str(state_of(engine, "bad", "a"), "status") == "running");
  CHECK(sh(engine, "bad", "echo still") == "still\n");
}
