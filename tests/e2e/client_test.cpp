// The async C++ client (src/client) against a real local engine: every
// endpoint the engine serves, exec over WebSocket and HTTP, sessions, typed
// errors, cancellation, timeouts, retries and the connection pool. Each
// test starts `spritescript serve` on a random port with a temporary state
// dir. Timeouts are hang guards only; nothing asserts on timing except
// "promptly" bounds that are generous by orders of magnitude.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"
#include "process.hpp"

namespace {

namespace asio = boost::asio;
using namespace spritescript;
using client::ErrorKind;
using Clock = std::chrono::steady_clock;
using Catch::Matchers::Contains;

using e2e::command;
using e2e::run;

// The kind of the client::Error `work` throws (fails when it throws none).
template <class T>
ErrorKind error_kind(asio::io_context& io, asio::awaitable<T> work,
                     std::string* message = nullptr) {
  try {
    run(io, std::move(work));
  } catch (const client::Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  FAIL("the call succeeded; an error was expected");
  return ErrorKind::api;
}

client::Config config_for(int port, std::string token = e2e::kTestToken) {
  return e2e::client_config(port, std::move(token));
}

struct Fixture {
  e2e::TempDir state;
  e2e::Engine engine{state};
  asio::io_context io;
  client::Client api{io.get_executor(), config_for(engine.port())};

  proto::Sprite create(const std::string& name) {
    proto::CreateSpriteRequest request;
    request.name = name;
    return run(io, api.create_sprite(request));
  }
  client::ExecResult sh(const std::string& sprite, const std::string& script,
                        std::string stdin_data = {}) {
    proto::ExecOptions options;
    options.argv = {"sh", "-c", script};
    return run(io, api.run(sprite, options, std::move(stdin_data)));
  }
};

// Reads events until the exit; returns (stdout, exit code).
asio::awaitable<std::pair<std::string, int>> drain(client::ExecProcess& process) {
  std::string out;
  for (;;) {
    auto event = co_await process.next();
    if (event.type == client::ExecEvent::Type::exit) co_return std::make_pair(out, event.exit_code);
    if (event.type == client::ExecEvent::Type::output) out += event.data;
  }
}

}  // namespace

TEST_CASE("client: create, get, list with prefix and pages, update, delete", "[client][sprites]") {
  Fixture f;
  auto created = f.create("cl-one");
  CHECK(created.name == "cl-one");
  CHECK_FALSE(created.id.empty());
  CHECK(created.status == "cold");

  auto got = run(f.io, f.api.get_sprite("cl-one"));
  CHECK(got.id == created.id);

  for (int i = 0; i < 54; ++i) f.create("page-" + std::to_string(i));
  auto first = run(f.io, f.api.list_sprites("page-", 50));
  CHECK(first.sprites.size() == 50);
  CHECK(first.has_more);
  auto all = run(f.io, f.api.list_all_sprites("page-"));
  CHECK(all.size() == 54);
  CHECK(run(f.io, f.api.list_all_sprites("cl-")).size() == 1);

  proto::UpdateSpriteRequest update;
  update.labels = std::vector<std::string>{"ci", "nightly"};
  update.url_settings = proto::UrlSettings{"public", ""};
  auto updated = run(f.io, f.api.update_sprite("cl-one", update));
  CHECK(updated.labels == std::vector<std::string>{"ci", "nightly"});
  CHECK(updated.url_settings.auth == "public");

  run(f.io, f.api.delete_sprite("cl-one"));
  CHECK(error_kind(f.io, f.api.get_sprite("cl-one")) == ErrorKind::not_found);
}

TEST_CASE("client: API refusals are typed errors with the server's words", "[client][errors]") {
  Fixture f;
  f.create("dup");
  proto::CreateSpriteRequest again;
  again.name = "dup";
  std::string message;
  CHECK(error_kind(f.io, f.api.create_sprite(again), &message) == ErrorKind::conflict);
  CHECK_THAT(message, Contains("create sprite dup") && Contains("HTTP 409"));

  proto::CreateSpriteRequest bad;
  bad.name = "Not A Name!";
  CHECK(error_kind(f.io, f.api.create_sprite(bad)) == ErrorKind::usage);
  CHECK(error_kind(f.io, f.api.delete_sprite("nobody")) == ErrorKind::not_found);
  CHECK(error_kind(f.io, f.api.exec("nobody", command({"true"}))) == ErrorKind::not_found);

  client::Client wrong(f.io.get_executor(), config_for(f.engine.port(), "not-the-token"));
  CHECK(error_kind(f.io, wrong.list_sprites("")) == ErrorKind::unauthorized);
  try {
    run(f.io, wrong.get_sprite("dup"));
    FAIL("no error");
  } catch (const client::Error& e) {
    CHECK_THAT(e.what(), !Contains("not-the-token"));
    CHECK(e.status() == 401);
  }
}

TEST_CASE("client: exec separates stdout and stderr and reports exact exit codes",
          "[client][exec]") {
  Fixture f;
  f.create("ex");
  auto r = f.sh("ex", "echo out; echo err >&2; exit 3");
  CHECK(r.stdout_data == "out\n");
  CHECK(r.stderr_data == "err\n");
  CHECK(r.exit_code == 3);
  CHECK(f.sh("ex", "true").exit_code == 0);
  CHECK(f.sh("ex", "exit 255").exit_code == 255);
  CHECK(f.sh("ex", "kill -9 $$").exit_code == 137);
  CHECK(run(f.io, f.api.run("ex", command({"no-such-command"}))).exit_code == 127);

  SECTION("over HTTP POST exec too, stdin from the body") {
    auto h =
        run(f.io, f.api.run_http("ex", command({"sh", "-c", "cat; echo e >&2; exit 4"}), "hello"));
    CHECK(h.stdout_data == "hello");
    CHECK(h.stderr_data == "e\n");
    CHECK(h.exit_code == 4);
  }
}

TEST_CASE("client: 10 MB of stdin round trip and 64 MiB of stdout arrive byte for byte",
          "[client][exec][stream]") {
  Fixture f;
  f.create("big");
  std::string input(10 * 1000 * 1000, '\0');
  for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>((i * 7919) >> 3);
  auto echoed = run(f.io, f.api.run("big", command({"cat"}), input));
  CHECK(echoed.exit_code == 0);
  CHECK(echoed.stdout_data.size() == input.size());
  CHECK(echoed.stdout_data == input);

  auto streamed = f.sh("big", "head -c 67108864 /dev/zero");
  CHECK(streamed.stdout_data.size() == 67108864);
  auto http = run(f.io, f.api.run_http("big", command({"head", "-c", "8388608", "/dev/zero"})));
  CHECK(http.stdout_data.size() == 8388608);
}

TEST_CASE("client: a TTY exec sees its size, takes input and resizes", "[client][exec][tty]") {
  Fixture f;
  f.create("tty");
  proto::ExecOptions options = command({"sh"});
  options.tty = true;
  options.cols = 120;
  options.rows = 40;
  auto process = run(f.io, f.api.exec("tty", options));
  CHECK(process->tty());
  CHECK_FALSE(process->session().session_id.empty());
  run(f.io, process->write("stty size; exit 7\n"));
  auto [out, code] = run(f.io, drain(*process));
  CHECK_THAT(out, Contains("40 120"));
  CHECK(code == 7);
}

TEST_CASE("client: sessions survive a detach, list, reattach with replay, and kill",
          "[client][sessions]") {
  Fixture f;
  f.create("se");
  auto process =
      run(f.io, f.api.exec("se", command({"sh", "-c", "echo started; sleep 30; echo never"})));
  std::string id = process->session().session_id;
  REQUIRE_FALSE(id.empty());
  auto first = run(f.io, process->next());
  CHECK(first.data == "started\n");
  run(f.io, process->detach());

  auto sessions = run(f.io, f.api.list_sessions("se"));
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].id == id);

  auto again = run(f.io, f.api.attach("se", id));
  CHECK(again->session().session_id == id);
  auto replayed = run(f.io, again->next());
  CHECK(replayed.data == "started\n");

  auto events = run(f.io, f.api.kill_session("se", id, "TERM"));
  std::vector<std::string> types;
  while (auto e = run(f.io, events->next())) types.push_back(e->type);
  REQUIRE_FALSE(types.empty());
  CHECK(types.front() == "signal");
  CHECK(types.back() == "complete");
  auto [out, code] = run(f.io, drain(*again));
  CHECK(code == 143);

  // Killing it again: the session already exited (410), no events.
  auto none = run(f.io, f.api.kill_session("se", id, "TERM"));
  CHECK_FALSE(run(f.io, none->next()).has_value());
}

TEST_CASE("client: cancelling an exec stops it promptly with kind cancelled", "[client][cancel]") {
  Fixture f;
  f.create("ca");
  asio::cancellation_signal cancel;
  asio::steady_timer timer(f.io, std::chrono::milliseconds(300));
  timer.async_wait(
      [&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
  auto start = Clock::now();
  try {
    run(f.io, f.api.run("ca", command({"sleep", "60"})), cancel.slot());
    FAIL("not cancelled");
  } catch (const client::Error& e) {
    CHECK(e.kind() == ErrorKind::cancelled);
  }
  CHECK(Clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("client: a server that never answers times out with kind timeout", "[client][timeout]") {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<asio::ip::tcp::socket> held;
  std::function<void()> accept = [&] {
    silent.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (!ec) held.push_back(std::move(s));
      accept();
    });
  };
  accept();
  client::Client api(io.get_executor(), config_for(silent.local_endpoint().port()));
  client::CallOptions quick;
  quick.timeout = std::chrono::milliseconds(300);
  std::string message;
  CHECK(error_kind(io, api.get_sprite("x", quick), &message) == ErrorKind::timeout);
  CHECK_THAT(message, Contains("get sprite x") || Contains("GET /v1/sprites/x"));
}

TEST_CASE("client: 503 and 429 are retried for idempotent calls, with Retry-After",
          "[client][retry]") {
  // A tiny HTTP server: the first answers are refusals, then success.
  asio::io_context io;
  asio::ip::tcp::acceptor server(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<std::string> answers = {
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: "
      "application/json\r\nContent-Length: 16\r\n\r\n{\"error\":\"slow\"}",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
      "{\"name\":\"again\"}"};
  int served = 0;
  std::function<void()> accept = [&] {
    server.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      auto buffer = std::make_shared<std::string>();
      asio::async_read_until(
          *socket, asio::dynamic_buffer(*buffer), "\r\n\r\n",
          [&, socket, buffer](boost::system::error_code, std::size_t) {
            auto reply = std::make_shared<std::string>(answers[std::min<std::size_t>(served++, 2)]);
            asio::async_write(*socket, asio::buffer(*reply),
                              [socket, reply](boost::system::error_code, std::size_t) {
                                boost::system::error_code ignored;
                                socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
                              });
          });
      accept();
    });
  };
  accept();
  client::Client api(io.get_executor(), config_for(server.local_endpoint().port()));
  auto start = Clock::now();
  auto sprite = run(io, api.get_sprite("again"));
  CHECK(sprite.name == "again");
  CHECK(served == 3);
  CHECK(Clock::now() - start >= std::chrono::milliseconds(900));  // Retry-After: 1 honoured

  SECTION("a create is not retried on 503") {
    served = 0;
    proto::CreateSpriteRequest request;
    request.name = "once";
    CHECK(error_kind(io, api.create_sprite(request)) == ErrorKind::api);
    CHECK(served == 1);
  }
}

TEST_CASE("client: sequential calls reuse one kept-alive connection", "[client][pool]") {
  Fixture f;
  f.create("pool");
  for (int i = 0; i < 20; ++i) run(f.io, f.api.get_sprite("pool"));
  auto [open, idle] = f.api.transport().pool_size();
  CHECK(open == 1);
  CHECK(idle == 1);
}

TEST_CASE("client: configuration from the environment", "[client][config]") {
  std::map<std::string, std::string> env;
  auto c = client::config_from_environment(&env);
  CHECK(c.wants_local_engine());

  env["SPRITES_TOKEN"] = "t";
  c = client::config_from_environment(&env);
  CHECK(c.api_url == client::kDefaultApiUrl);
  CHECK(c.token == "t");

  env["SPRITE_TOKEN"] = "first";
  env["HTTPS_PROXY"] = "proxy.internal:3128";
  c = client::config_from_environment(&env);
  CHECK(c.token == "first");
  CHECK(c.proxy == "http://proxy.internal:3128");

  env["NO_PROXY"] = "localhost,.sprites.dev";
  CHECK(client::config_from_environment(&env).proxy.empty());
  CHECK(client::no_proxy_matches("*", "anything"));
  CHECK_FALSE(client::no_proxy_matches("example.com", "notexample.com"));

  CHECK(client::Endpoint::parse("http://127.0.0.1:7777/").authority() == "127.0.0.1:7777");
  CHECK(client::Endpoint::parse("https://api.sprites.dev").port == 443);
  CHECK(client::Endpoint::parse("https://h/prefix/").path_prefix == "/prefix");
  CHECK_THROWS_AS(client::Endpoint::parse("ftp://x"), client::Error);
  CHECK_THROWS_AS(client::Endpoint::parse("http://x:99999"), client::Error);
}

namespace {

asio::awaitable<int> flood_then_term(client::ExecProcess& process, int count) {
  for (int i = 0; i < count; ++i) co_await process.signal("CONT");
  co_await process.signal("TERM");
  auto [out, code] = co_await drain(process);
  co_return code;
}

}  // namespace

TEST_CASE("client: a burst of signals is delivered in order, none dropped", "[client][signal]") {
  // Thousands of signal messages fill the engine's socket to the sprite's
  // agent; the last one (TERM) must still arrive.
  Fixture f;
  f.create("burst");
  auto process = run(f.io, f.api.exec("burst", command({"sleep", "60"})));
  CHECK(run(f.io, flood_then_term(*process, 5000)) == 143);
}
