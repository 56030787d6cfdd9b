// The local engine under test: `spritescript serve` started as a child on a
// random loopback port with a temporary state dir and a known token, and
// ways to talk to it (HTTP, WebSocket). Shared by the serve and exec tests.
#pragma once

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"
#include "ws_client.hpp"

namespace e2e {

inline const std::string kTestToken = "test-token";

// The URL from the engine's "listening on http://HOST:PORT (state dir ...)".
std::string listening_url(const std::string& out);
std::string port_of(const std::string& url);

class Engine {
 public:
  // Starts `spritescript serve --listen 127.0.0.1:0 --state-dir STATE --token
  // test-token EXTRA...` and waits until it listens.
  explicit Engine(const TempDir& state, std::vector<std::string> extra = {});

  int port() const { return port_; }
  Child& child() { return child_; }

  // METHOD PATH [BODY] (JSON): returns "STATUS BODY". An empty token sends
  // no Authorization header.
  std::string call(const std::string& method, const std::string& path, const std::string& body = "",
                   const std::string& token = kTestToken);
  // One HTTP request with the token (unless `token` is empty).
  HttpReply request(const std::string& method, const std::string& target,
                    const std::string& body = "", HeaderList headers = {},
                    const std::string& token = kTestToken, Millis timeout = kDefaultTimeout);
  // A WebSocket upgrade with the token (unless `token` is empty).
  std::unique_ptr<WebSocketClient> websocket(const std::string& target,
                                             const std::string& token = kTestToken,
                                             Millis timeout = kDefaultTimeout);

  // Sends `sig` and waits for the engine to end.
  Result stop(int sig = SIGTERM);

 private:
  Child child_;
  int port_ = 0;
};

}  // namespace e2e
