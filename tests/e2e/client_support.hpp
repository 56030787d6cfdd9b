// What the client tests share: running one client coroutine to completion
// on the test's io_context (with a hang guard), a client configuration for
// a test engine, and exec options. Header-only (templates), no Beast.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "client/client.hpp"
#include "engine.hpp"

namespace e2e {

namespace asio = boost::asio;

inline constexpr auto kClientHangGuard = std::chrono::seconds(90);

// Runs one awaitable on `io` to completion and returns its value (or
// rethrows its exception). The hang guard turns a hang into a failure.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> work, asio::cancellation_slot slot = {}) {
  std::optional<T> value;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(work),
                 asio::bind_cancellation_slot(slot, [&](std::exception_ptr e, T v) {
                   error = e;
                   if (!e) value = std::move(v);
                   done = true;
                 }));
  io.restart();
  auto deadline = std::chrono::steady_clock::now() + kClientHangGuard;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(50));
  }
  if (!done) throw std::runtime_error("hang guard: the client call did not finish");
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

inline asio::awaitable<bool> finished(asio::awaitable<void> work) {
  co_await std::move(work);
  co_return true;
}

inline void run(asio::io_context& io, asio::awaitable<void> work,
                asio::cancellation_slot slot = {}) {
  run(io, finished(std::move(work)), slot);
}

// A client of the test engine at `url`, with the test token and fast retries.
inline spritescript::client::Config client_config(const std::string& url,
                                                  std::string token = kTestToken) {
  spritescript::client::Config c;
  c.api_url = url;
  c.token = std::move(token);
  c.user_agent = "spritescript-test";
  c.retry.base_delay = std::chrono::milliseconds(10);
  return c;
}

inline spritescript::client::Config client_config(int port, std::string token = kTestToken) {
  return client_config("http://127.0.0.1:" + std::to_string(port), std::move(token));
}

inline spritescript::proto::ExecOptions command(std::vector<std::string> argv) {
  spritescript::proto::ExecOptions options;
  options.argv = std::move(argv);
  return options;
}

}  // namespace e2e
