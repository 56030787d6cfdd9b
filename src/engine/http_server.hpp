// The engine's HTTP/1.1 listener. All of Beast lives in http_server.cpp;
// the rest of the engine sees plain requests and responses. (Streaming
// responses and WebSocket upgrades for exec come with the exec issue.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace spritescript::engine {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form, e.g. "/v1/sprites?prefix=ci-"
  std::string authorization;
  std::string accept;
  std::string body;
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string body) : status(status), body(std::move(body)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Listens on host:port (port 0 picks a free one) and serves each request
  // with `handler`, keep-alive included. Every response carries the extra
  // headers in `common_headers`.
  HttpServer(boost::asio::io_context& io, const std::string& host, std::uint16_t port,
             HttpHandler handler, std::vector<std::pair<std::string, std::string>> common_headers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace spritescript::engine
