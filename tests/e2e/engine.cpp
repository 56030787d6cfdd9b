#include "engine.hpp"

#include <catch2/catch.hpp>

namespace e2e {
namespace {

Command serve_command(const TempDir& state, std::vector<std::string> extra) {
  std::vector<std::string> args = {
      "serve",   "--listen", "127.0.0.1:0", "--state-dir", state.path().string(),
      "--token", kTestToken};
  args.insert(args.end(), extra.begin(), extra.end());
  return spritescript(args);
}

HeaderList with_token(HeaderList headers, const std::string& token) {
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  return headers;
}

}  // namespace

std::string listening_url(const std::string& out) {
  auto start = out.find("http://");
  return out.substr(start, out.find(' ', start) - start);
}

std::string port_of(const std::string& url) {
  return url.substr(url.rfind(':') + 1);
}

Engine::Engine(const TempDir& state, std::vector<std::string> extra)
    : child_(serve_command(state, std::move(extra))) {
  INFO("engine stdout: " << child_.out() << "\nengine stderr: " << child_.err());
  REQUIRE(child_.wait_for_stdout("listening on http://127.0.0.1:"));
  REQUIRE(child_.wait_for_stdout(" (state dir"));
  port_ = std::stoi(port_of(listening_url(child_.out())));
}

std::string Engine::call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& token) {
  HeaderList headers;
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  HttpReply r = request(method, path, body, headers, token);
  return std::to_string(r.status) + " " + r.body;
}

HttpReply Engine::request(const std::string& method, const std::string& target,
                          const std::string& body, HeaderList headers, const std::string& token,
                          Millis timeout) {
  return http_request(port_, method, target, body, with_token(std::move(headers), token), timeout);
}

std::unique_ptr<WebSocketClient> Engine::websocket(const std::string& target,
                                                   const std::string& token, Millis timeout) {
  return std::make_unique<WebSocketClient>(port_, target, with_token({}, token), timeout);
}

Result Engine::stop(int sig) {
  child_.send_signal(sig);
  return child_.wait();
}

}  // namespace e2e
