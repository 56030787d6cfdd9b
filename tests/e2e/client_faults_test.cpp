// The client (src/client) through a fault-injecting relay (relay.hpp) in
// front of a real local engine, and over TLS: connections cut mid-response,
// mid-WebSocket and mid-NDJSON, canned 503/429 refusals, slow servers, and
// certificates that verify or do not. Each test starts `spritescript
// serve` on a random port; the relay runs on its own thread, the client on
// the test's. Waits are hang guards; the only timing assertions are
// "promptly" bounds generous by orders of magnitude.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"
#include "process.hpp"
#include "relay.hpp"

namespace {

namespace asio = boost::asio;
using namespace spritescript;
using client::ErrorKind;
using Clock = std::chrono::steady_clock;
using Catch::Matchers::Contains;
using e2e::RelayPlan;

using e2e::command;
using e2e::run;

// The client::Error `work` throws (fails when it throws none). Every error
// a test provokes goes through here, so every one is checked for the token.
template <class T>
client::Error failure(asio::io_context& io, asio::awaitable<T> work) {
  try {
    run(io, std::move(work));
  } catch (const client::Error& e) {
    INFO("error: " << e.what());
    CHECK_THAT(e.what(), !Contains(e2e::kTestToken));
    return e;
  }
  FAIL("the call succeeded; an error was expected");
  return client::Error(ErrorKind::api, "unreachable");
}

client::Config config_for(const std::string& url) {
  return e2e::client_config(url);
}

client::Config config_for(int port) {
  return e2e::client_config(port);
}

proto::ExecOptions sh(const std::string& script) {
  return command({"sh", "-c", script});
}

// What `seq 1 n` prints.
std::string seq_output(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += std::to_string(i) + "\n";
  return out;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Reads an exec's events into `*out` until the exit; returns the exit code.
// `out` keeps what came before an error.
asio::awaitable<int> collect(client::ExecProcess* process, std::string* out) {
  for (;;) {
    auto event = co_await process->next();
    if (event.type == client::ExecEvent::Type::exit) co_return event.exit_code;
    if (event.type == client::ExecEvent::Type::output) out->append(event.data);
  }
}

// Every event of a kill stream, appended to `*types` as they come.
asio::awaitable<void> read_events(client::EventStream* events, std::vector<std::string>* types) {
  while (auto e = co_await events->next()) types->push_back(e->type);
}

// Whatever the process writes to stderr (fd 2) while this lives.
class StderrCapture {
 public:
  StderrCapture() : path_(dir_.path() / "stderr.txt") {
    std::fflush(stderr);
    saved_ = ::dup(2);
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { finish(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Restores stderr and returns what was captured.
  std::string finish() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  e2e::TempDir dir_;
  std::filesystem::path path_;
  int saved_ = -1;
};

// An engine, a relay in front of it, and clients on the test's io_context:
// `api` through the relay, `direct` straight to the engine (setup and
// checks that must not depend on the relay).
struct Fixture {
  e2e::TempDir state;
  e2e::Engine engine{state};
  e2e::Relay relay{engine.port()};
  asio::io_context io;
  client::Client api{io.get_executor(), config_for(relay.port())};
  client::Client direct{io.get_executor(), config_for(engine.port())};

  proto::Sprite create(const std::string& name) {
    proto::CreateSpriteRequest request;
    request.name = name;
    return run(io, direct.create_sprite(request));
  }
  // The sprites whose name starts with `prefix`, as the engine has them.
  std::vector<proto::Sprite> sprites(const std::string& prefix) {
    return run(io, direct.list_all_sprites(prefix));
  }
};

}  // namespace

// --- retries of idempotent calls -------------------------------------------------

TEST_CASE("client faults: an idempotent GET is retried after its connection is cut",
          "[client][faults]") {
  Fixture f;
  auto made = f.create("flaky");

  SECTION("cut in the response head") {
    f.relay.plan(RelayPlan::cut(12));
    auto got = run(f.io, f.api.get_sprite("flaky"));
    CHECK(got.id == made.id);
    CHECK(f.relay.cuts() == 1);
    CHECK(f.relay.connections() == 2);
  }
  SECTION("cut in the response body") {
    f.relay.plan(RelayPlan::cut(5, "\r\n\r\n"));
    auto got = run(f.io, f.api.get_sprite("flaky"));
    CHECK(got.id == made.id);
    CHECK(f.relay.cuts() == 1);
    CHECK(f.relay.connections() == 2);
  }
  SECTION("a kept-alive connection cut in its second response") {
    // One connection: the first answer whole, the second cut in its body.
    f.relay.plan(RelayPlan::cut(5, "\r\n\r\n", 2));
    CHECK(run(f.io, f.api.get_sprite("flaky")).id == made.id);
    CHECK(run(f.io, f.api.list_sprites("fl")).sprites.size() == 1);
    CHECK(f.relay.cuts() == 1);
    CHECK(f.relay.connections() == 2);
  }
  SECTION("cut every time: a network error once the attempts are used up") {
    f.relay.set_default(RelayPlan::cut(5, "\r\n\r\n"));
    auto e = failure(f.io, f.api.get_sprite("flaky"));
    CHECK(e.kind() == ErrorKind::network);
    CHECK_THAT(e.what(), Contains("/v1/sprites/flaky"));
    CHECK(f.relay.connections() == f.api.config().retry.max_attempts);
    CHECK(f.relay.cuts() == f.api.config().retry.max_attempts);
  }
}

TEST_CASE("client faults: 503 and 429 refusals are retried until the engine answers",
          "[client][faults]") {
  Fixture f;
  f.create("busy");

  SECTION("GET after a 503 and a 429 with Retry-After") {
    f.relay.plan(RelayPlan::refuse(e2e::http_answer(503, "Service Unavailable")));
    f.relay.plan(
        RelayPlan::refuse(e2e::http_answer(429, "Too Many Requests", "Retry-After: 1\r\n")));
    std::string trace;
    {
      client::Config traced = config_for(f.relay.port());
      traced.trace = true;
      client::Client api(f.io.get_executor(), traced);
      StderrCapture capture;
      auto page = run(f.io, api.list_sprites("bu"));
      trace = capture.finish();
      REQUIRE(page.sprites.size() == 1);
      CHECK(page.sprites[0].name == "busy");
    }
    CHECK(f.relay.refused() == 2);
    CHECK(f.relay.connections() == 3);
    // The trace shows the refusals, never the token.
    CHECK_THAT(trace, Contains("503") && Contains("429"));
    CHECK_THAT(trace, !Contains(e2e::kTestToken));
  }
  SECTION("a create refused with 429 is sent again and makes one sprite") {
    f.relay.plan(
        RelayPlan::refuse(e2e::http_answer(429, "Too Many Requests", "Retry-After: 0\r\n")));
    proto::CreateSpriteRequest request;
    request.name = "busy-two";
    auto made = run(f.io, f.api.create_sprite(request));
    CHECK(made.name == "busy-two");
    CHECK(f.relay.refused() == 1);
    CHECK(f.sprites("busy-two").size() == 1);
  }
  SECTION("503 every time: the API error once the attempts are used up") {
    f.relay.set_default(RelayPlan::refuse(e2e::http_answer(503, "Service Unavailable")));
    auto e = failure(f.io, f.api.get_sprite("busy"));
    CHECK(e.kind() == ErrorKind::api);
    CHECK(e.status() == 503);
    CHECK(f.relay.refused() == f.api.config().retry.max_attempts);
  }
}

TEST_CASE("client faults: a slow answer within the timeout arrives, one past it times out",
          "[client][faults]") {
  Fixture f;
  auto made = f.create("slow");
  f.relay.set_default(RelayPlan::delayed(std::chrono::milliseconds(200)));
  CHECK(run(f.io, f.api.get_sprite("slow")).id == made.id);

  // A new client: the first one would reuse its kept-alive connection,
  // and the relay's plans are per connection.
  f.relay.set_default(RelayPlan::delayed(std::chrono::seconds(5)));
  client::Client api(f.io.get_executor(), config_for(f.relay.port()));
  client::CallOptions quick;
  quick.timeout = std::chrono::milliseconds(500);
  auto start = Clock::now();
  auto e = failure(f.io, api.get_sprite("slow", quick));
  CHECK(e.kind() == ErrorKind::timeout);
  CHECK(Clock::now() - start < std::chrono::seconds(30));
}

// --- non-idempotent calls ---------------------------------------------------------

TEST_CASE("client faults: a create whose answer is lost returns the sprite, made once",
          "[client][faults]") {
  Fixture f;
  // The engine made the sprite; its answer is cut before the first byte.
  f.relay.plan(RelayPlan::cut(0));
  proto::CreateSpriteRequest request;
  request.name = "lost-answer";
  auto made = run(f.io, f.api.create_sprite(request));
  CHECK(made.name == "lost-answer");
  CHECK(f.relay.cuts() == 1);
  auto all = f.sprites("lost-answer");
  REQUIRE(all.size() == 1);
  CHECK(all[0].id == made.id);

  SECTION("the same with the answer cut in its body") {
    // A new client: `api` would reuse its kept-alive connection.
    client::Client api(f.io.get_executor(), config_for(f.relay.port()));
    f.relay.plan(RelayPlan::cut(3, "\r\n\r\n"));
    request.name = "lost-body";
    auto second = run(f.io, api.create_sprite(request));
    CHECK(second.name == "lost-body");
    CHECK(f.relay.cuts() == 2);
    REQUIRE(f.sprites("lost-body").size() == 1);
    CHECK(f.sprites("lost-body")[0].id == second.id);
  }
}

TEST_CASE("client faults: HTTP exec cut mid-body fails and is not sent again", "[client][faults]") {
  Fixture f;
  f.create("hx");
  f.relay.plan(RelayPlan::cut(2000, "\r\n\r\n"));
  auto e = failure(f.io, f.api.run_http("hx", command({"seq", "1", "30000"})));
  CHECK(e.kind() == ErrorKind::network);
  // A POST exec is never sent twice: the command ran once.
  CHECK(f.relay.connections() == 1);
}

TEST_CASE("client faults: HTTP exec cut mid-body says output may be incomplete",
          "[client][faults]") {
  Fixture f;
  f.create("hx");
  f.relay.plan(RelayPlan::cut(2000, "\r\n\r\n"));
  auto e = failure(f.io, f.api.run_http("hx", command({"seq", "1", "30000"})));
  CHECK(e.kind() == ErrorKind::network);
  CHECK_THAT(e.what(), Contains("output may be incomplete"));
}

// --- WebSocket exec ------------------------------------------------------------

// The client reattaches when the server's session_info on attach says where
// its replay starts (replay_offset, the local engine's extension).
TEST_CASE(
    "client faults: an exec whose WebSocket is cut mid-output reattaches, no byte lost or "
    "repeated",
    "[client][faults]") {
  Fixture f;
  f.create("wx");
  const std::string expected = seq_output(30000) + "end\n";
  f.relay.plan(RelayPlan::cut(3000, "\r\n\r\n"));
  auto result = run(f.io, f.api.run("wx", sh("seq 1 30000; sleep 1; echo end")));
  CHECK(result.exit_code == 0);
  CHECK(result.stdout_data.size() == expected.size());
  CHECK(result.stdout_data == expected);
  CHECK(f.relay.cuts() == 1);
  CHECK(f.relay.connections() == 2);  // the exec and the reattach
}

TEST_CASE(
    "client faults: an exec whose WebSocket is cut mid-output and cannot resume fails "
    "saying output may be incomplete",
    "[client][faults]") {
  Fixture f;
  f.create("wx");
  const std::string expected = seq_output(30000) + "end\n";
  const auto script = sh("seq 1 30000; sleep 1; echo end");

  SECTION("when reattaching is refused, fails saying output may be incomplete") {
    f.relay.plan(RelayPlan::cut(3000, "\r\n\r\n"));
    f.relay.set_default(RelayPlan::refuse(e2e::http_answer(503, "Service Unavailable")));
    auto process = run(f.io, f.api.exec("wx", script));
    std::string out;
    auto e = failure(f.io, collect(process.get(), &out));
    CHECK(e.kind() == ErrorKind::network);
    CHECK_THAT(e.what(), Contains("output may be incomplete"));
    CHECK(out.size() < expected.size());
    CHECK(starts_with(expected, out));  // what came is right, just short
  }
  SECTION("cut on every connection: gives up, no output twice") {
    f.relay.set_default(RelayPlan::cut(3000, "\r\n\r\n"));
    auto process = run(f.io, f.api.exec("wx", script));
    std::string out;
    auto e = failure(f.io, collect(process.get(), &out));
    CHECK(e.kind() == ErrorKind::network);
    CHECK_THAT(e.what(), Contains("output may be incomplete"));
    CHECK(starts_with(expected, out));
    CHECK(f.relay.connections() >= 2);
  }
}

// --- NDJSON -----------------------------------------------------------------------

TEST_CASE("client faults: a kill event stream cut mid-way ends with an error, not a hang",
          "[client][faults]") {
  Fixture f;
  f.create("kx");
  // A command that ignores TERM: with a 30 s timeout the stream would stay
  // open that long before the SIGKILL.
  auto process = run(f.io, f.direct.exec("kx", sh("trap '' TERM; echo ready; sleep 60")));
  auto first = run(f.io, process->next());
  REQUIRE(first.data == "ready\n");
  const std::string id = process->session().session_id;

  // The first event line passes; the connection is cut right after it.
  f.relay.plan(RelayPlan::cut(0, "}\n"));
  auto start = Clock::now();
  auto events = run(f.io, f.api.kill_session("kx", id, "TERM",
                                             std::chrono::nanoseconds(std::chrono::seconds(30))));
  std::vector<std::string> types;
  auto e = failure(f.io, read_events(events.get(), &types));
  CHECK(e.kind() == ErrorKind::network);
  CHECK(types == std::vector<std::string>{"signal"});
  CHECK(Clock::now() - start < std::chrono::seconds(20));  // not after the SIGKILL at 30 s
  CHECK(f.relay.cuts() == 1);
  CHECK(f.relay.connections() == 1);  // a kill is not sent twice

  // Done with it (straight to the engine).
  auto killed = run(f.io, f.direct.kill_session("kx", id, "KILL"));
  std::vector<std::string> rest;
  run(f.io, read_events(killed.get(), &rest));
}

// --- TLS --------------------------------------------------------------------------

namespace {

// An engine behind a TLS-terminating relay whose certificate the test CA
// issued for `dns` (and `ips`).
struct TlsFixture {
  explicit TlsFixture(const std::vector<std::string>& dns, const std::vector<std::string>& ips)
      : relay(engine.port(), pki.issue("server", dns, ips)) {}

  e2e::TempDir state;
  e2e::Engine engine{state};
  e2e::TestPki pki;
  e2e::Relay relay;
  asio::io_context io;

  std::string url(const std::string& host = "localhost") const {
    return "https://" + host + ":" + std::to_string(relay.port());
  }
  void create(const std::string& name) {
    auto r = engine.call("POST", "/v1/sprites", "{\"name\":\"" + name + "\"}");
    REQUIRE(starts_with(r, "20"));
  }
};

}  // namespace

TEST_CASE("client tls: with the test CA, REST and exec over wss work", "[client][tls]") {
  TlsFixture f({"localhost"}, {"127.0.0.1"});
  f.create("secure");
  auto config = config_for(f.url());
  config.ca_file = f.pki.ca_cert().string();
  client::Client api(f.io.get_executor(), config);

  auto page = run(f.io, api.list_sprites("sec"));
  REQUIRE(page.sprites.size() == 1);
  CHECK(page.sprites[0].name == "secure");

  proto::CreateSpriteRequest request;
  request.name = "secure-two";
  CHECK(run(f.io, api.create_sprite(request)).name == "secure-two");

  auto result = run(f.io, api.run("secure", sh("echo over-tls; echo err >&2; exit 5"), "ignored"));
  CHECK(result.stdout_data == "over-tls\n");
  CHECK(result.stderr_data == "err\n");
  CHECK(result.exit_code == 5);

  auto http = run(f.io, api.run_http("secure", command({"cat"}), "through tls"));
  CHECK(http.stdout_data == "through tls");

  SECTION("by IP address too (the certificate names 127.0.0.1)") {
    auto by_ip = config_for(f.url("127.0.0.1"));
    by_ip.ca_file = f.pki.ca_cert().string();
    client::Client ip_api(f.io.get_executor(), by_ip);
    CHECK(run(f.io, ip_api.get_sprite("secure")).name == "secure");
  }
  CHECK(f.relay.handshake_failures() == 0);
}

TEST_CASE("client tls: a certificate the system store does not know is refused", "[client][tls]") {
  TlsFixture f({"localhost"}, {"127.0.0.1"});
  f.create("untrusted");
  client::Client api(f.io.get_executor(), config_for(f.url()));  // no ca_file

  auto e = failure(f.io, api.list_sprites(""));
  CHECK(e.kind() == ErrorKind::network);
  CHECK_THAT(e.what(), Contains("certificate"));

  auto w = failure(f.io, api.run("untrusted", command({"true"})));
  CHECK(w.kind() == ErrorKind::network);
  CHECK_THAT(w.what(), Contains("certificate"));
}

TEST_CASE("client tls: a certificate for another host name is refused", "[client][tls]") {
  TlsFixture f({"other.example"}, {});
  f.create("elsewhere");
  auto config = config_for(f.url());
  config.ca_file = f.pki.ca_cert().string();  // trusted issuer, wrong name
  client::Client api(f.io.get_executor(), config);

  auto e = failure(f.io, api.get_sprite("elsewhere"));
  CHECK(e.kind() == ErrorKind::network);
  CHECK_THAT(e.what(), Contains("hostname mismatch") && Contains("another host"));

  auto w = failure(f.io, api.run("elsewhere", command({"true"})));
  CHECK(w.kind() == ErrorKind::network);
}

TEST_CASE("client tls: insecure skips verification, with a warning", "[client][tls]") {
  TlsFixture f({"other.example"}, {});
  f.create("careless");
  auto config = config_for(f.url());
  config.insecure = true;  // no CA file either: nothing would verify

  std::string warning;
  std::unique_ptr<client::Client> api;
  {
    StderrCapture capture;
    api = std::make_unique<client::Client>(f.io.get_executor(), config);
    warning = capture.finish();
  }
  CHECK_THAT(warning, Contains("warning") && Contains("verification"));
  CHECK_THAT(warning, !Contains(e2e::kTestToken));

  CHECK(run(f.io, api->get_sprite("careless")).name == "careless");
  auto result = run(f.io, api->run("careless", command({"echo", "anyway"})));
  CHECK(result.stdout_data == "anyway\n");
  CHECK(result.exit_code == 0);
}

TEST_CASE("client trace: requests and statuses, never the token or exec env values",
          "[client][trace]") {
  Fixture f;
  f.create("tr");
  auto options = command({"printenv", "API_KEY"});
  options.env = {{"API_KEY", "s3cr3t-value"}};
  std::string trace;
  std::string printed;
  {
    client::Config traced = config_for(f.relay.port());
    traced.trace = true;
    client::Client api(f.io.get_executor(), traced);
    StderrCapture capture;
    printed = run(f.io, api.run("tr", options)).stdout_data;
    trace = capture.finish();
  }
  CHECK(printed == "s3cr3t-value\n");  // the value did reach the command
  CHECK_THAT(trace, Contains("/v1/sprites/tr/exec") && Contains("env=API_KEY%3D***"));
  CHECK_THAT(trace, !Contains("s3cr3t") && !Contains(e2e::kTestToken));
}
