// The async C++ client's TCP tunnels (spec §9) and port watch (spec §6)
// against a real local engine: an HTTP GET to python3 http.server in a
// sprite, 5 MiB through an echo server, typed refusals (a closed port, bad
// ports and hosts, an unknown sprite), a server's port coming and going
// through watch_ports, and cancellation of a waiting read. Timeouts are hang
// guards only.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"
#include "process.hpp"
#include "test_data.hpp"

namespace {

using e2e::echo_server;
using e2e::random_bytes;

namespace asio = boost::asio;
using namespace spritescript;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using client::ErrorKind;
using e2e::run;

constexpr const char* kSprite = "tun";
constexpr auto kHangGuard = std::chrono::seconds(60);

// The client::Error `work` throws (fails when it throws none).
template <class T>
client::Error error_of(asio::io_context& io, asio::awaitable<T> work) {
  try {
    run(io, std::move(work));
  } catch (const client::Error& e) {
    return e;
  }
  FAIL("the call succeeded; an error was expected");
  return client::Error(ErrorKind::api, "unreachable");
}

// Every byte the target sends until it closes the tunnel.
asio::awaitable<std::string> read_all(client::Tunnel* tunnel) {
  std::string all;
  while (auto piece = co_await tunnel->read()) all += *piece;
  co_return all;
}

asio::awaitable<std::string> http_get(client::Client* api, std::string path, int port) {
  const std::string name = kSprite;
  auto tunnel = co_await api->open_tunnel(name, port);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  co_await tunnel->write(request);
  co_return co_await read_all(tunnel.get());
}

asio::awaitable<void> write_all(client::Tunnel* tunnel, std::string data, std::size_t piece) {
  for (std::size_t at = 0; at < data.size(); at += piece) {
    const std::string_view part = std::string_view(data).substr(at, piece);
    co_await tunnel->write(part);
  }
}

// Writes `data` in odd-sized pieces while reading the echo; the echo.
asio::awaitable<std::string> echo_round_trip(client::Client* api, std::string data, int port) {
  const std::string name = kSprite;
  const std::string_view host = "127.0.0.1";
  auto tunnel = co_await api->open_tunnel(name, port, host);
  auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, write_all(tunnel.get(), data, 100'000), asio::detached);
  std::string back;
  while (back.size() < data.size()) {
    auto piece = co_await tunnel->read();
    if (!piece) break;
    back += *piece;
  }
  co_await tunnel->close();
  // The close is answered: the read ends.
  auto rest = co_await tunnel->read();
  if (rest) back += *rest;
  co_return back;
}

asio::awaitable<std::optional<proto::PortEvent>> next_event(client::PortWatch* watch) {
  co_return co_await watch->next();
}

struct Fixture {
  e2e::TempDir state;
  e2e::Engine engine{state};
  asio::io_context io;
  client::Client api{io.get_executor(), e2e::client_config(engine.port())};

  Fixture() {
    proto::CreateSpriteRequest request;
    request.name = kSprite;
    run(io, api.create_sprite(request));
  }
  client::ExecResult sh(const std::string& script) {
    return run(io, api.run(kSprite, e2e::command({"sh", "-c", script})));
  }
  // A server in the sprite for as long as the process lives (its exec
  // socket stays open; it ends with the connection).
  std::unique_ptr<client::ExecProcess> start(std::vector<std::string> argv) {
    auto options = e2e::command(std::move(argv));
    options.stdin = false;
    options.max_run_after_disconnect = std::chrono::nanoseconds(0);
    return run(io, api.exec(kSprite, options));
  }
  void stop(client::ExecProcess& server) {
    run(io, server.signal("TERM"));
    for (;;) {
      auto event = run(io, server.next());
      if (event.type == client::ExecEvent::Type::exit) break;
    }
  }
  // Waits until `port` listens in the sprite (a tunnel connects).
  void wait_listening(int port) {
    const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
    const std::string name = kSprite;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        run(io, api.open_tunnel(name, port));
        return;
      } catch (const client::Error& e) {
        if (e.code() != "ECONNREFUSED") throw;
      }
      std::this_thread::sleep_for(50ms);
    }
    FAIL("port " << port << " never listened");
  }
  // The next event of `watch` for `port` (others skipped).
  proto::PortEvent next_for(client::PortWatch& watch, int port) {
    for (;;) {
      auto event = run(io, next_event(&watch));
      REQUIRE(event);
      if (event->port == port) return *event;
    }
  }
};

}  // namespace

TEST_CASE("client tunnel: an HTTP GET reaches python3 http.server in the sprite",
          "[client][proxy]") {
  Fixture f;
  REQUIRE(f.sh("mkdir -p /tmp/www && echo hello-through-tunnel > /tmp/www/hello.txt").exit_code ==
          0);
  auto server = f.start(
      {"python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/tmp/www"});
  f.wait_listening(8080);

  const std::string response = run(f.io, http_get(&f.api, "/hello.txt", 8080));
  CHECK_THAT(response, StartsWith("HTTP/1.0 200"));
  CHECK_THAT(response, Contains("\r\n\r\nhello-through-tunnel\n"));

  // The reply names the target as the client did.
  const std::string name = kSprite;
  auto tunnel = run(f.io, f.api.open_tunnel(name, 8080));
  CHECK(tunnel->target() == "localhost:8080");
  CHECK_FALSE(tunnel->closed());
  f.stop(*server);
}

TEST_CASE("client tunnel: 5 MiB through an echo server come back byte for byte",
          "[client][proxy]") {
  Fixture f;
  auto server = f.start({"python3", "-c", echo_server(9000)});
  f.wait_listening(9000);
  const std::string data = random_bytes(5 << 20, 11);
  const std::string back = run(f.io, echo_round_trip(&f.api, data, 9000));
  CHECK(back.size() == data.size());
  CHECK(back == data);
  // Still serving after the client closed its tunnel.
  const std::string again = run(f.io, echo_round_trip(&f.api, std::string("ping"), 9000));
  CHECK(again == "ping");
  f.stop(*server);
}

TEST_CASE("client tunnel: a closed port, bad ports and hosts, an unknown sprite are typed errors",
          "[client][proxy][errors]") {
  Fixture f;
  const std::string name = kSprite;
  {
    auto e = error_of(f.io, f.api.open_tunnel(name, 9));
    CHECK(e.kind() == ErrorKind::network);
    CHECK(e.code() == "ECONNREFUSED");
    CHECK_THAT(std::string(e.what()), Contains("tunnel to localhost:9 in tun"));
    CHECK_THAT(std::string(e.what()), Contains("connection refused"));
  }
  CHECK(error_of(f.io, f.api.open_tunnel(name, 0)).kind() == ErrorKind::usage);
  CHECK(error_of(f.io, f.api.open_tunnel(name, 70000)).kind() == ErrorKind::usage);
  {
    const std::string_view elsewhere = "example.com";
    auto e = error_of(f.io, f.api.open_tunnel(name, 80, elsewhere));
    CHECK(e.kind() == ErrorKind::usage);
    CHECK_THAT(std::string(e.what()), Contains("own addresses"));
  }
  const std::string nosuch = "nosuch";
  CHECK(error_of(f.io, f.api.open_tunnel(nosuch, 80)).kind() == ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.watch_ports(nosuch)).kind() == ErrorKind::not_found);
  // Still serving.
  CHECK(run(f.io, f.api.get_sprite(name)).name == name);
}

TEST_CASE("client watch_ports: the list first, then a server's port opened and closed",
          "[client][ports]") {
  Fixture f;
  REQUIRE(f.sh("true").exit_code == 0);  // awake
  const std::string name = kSprite;
  auto watch = run(f.io, f.api.watch_ports(name));
  int pid = 0;
  {
    auto server = f.start({"python3", "-c", echo_server(8081)});
    pid = std::stoi(server->session().session_id);
    proto::PortEvent opened = f.next_for(*watch, 8081);
    CHECK(opened.opened);
    CHECK(opened.address == "127.0.0.1");
    CHECK(opened.pid == pid);

    // A second watch has it in its initial list.
    auto second = run(f.io, f.api.watch_ports(name));
    proto::PortEvent listed = f.next_for(*second, 8081);
    CHECK(listed.opened);
    CHECK(listed.pid == pid);
    second->close();
    CHECK_FALSE(run(f.io, next_event(second.get())));  // closed: the end
    f.stop(*server);
  }
  proto::PortEvent closed = f.next_for(*watch, 8081);
  CHECK_FALSE(closed.opened);
  CHECK(closed.port == 8081);
  CHECK(closed.pid == pid);

  // A waiting next() is cancelled like any call.
  asio::cancellation_signal signal;
  asio::steady_timer later(f.io, 200ms);
  later.async_wait(
      [&](const boost::system::error_code&) { signal.emit(asio::cancellation_type::terminal); });
  try {
    run(f.io, next_event(watch.get()), signal.slot());
    FAIL("next() returned; cancellation was expected");
  } catch (const client::Error& e) {
    CHECK(e.kind() == ErrorKind::cancelled);
  }
}
