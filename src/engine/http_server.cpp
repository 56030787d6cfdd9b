#include "engine/http_server.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdio>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace spritescript::engine {

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, HttpHandler h, std::vector<std::pair<std::string, std::string>> common)
      : acceptor(io), handler(std::move(h)), common_headers(std::move(common)) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();  // the server outlives its connections
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(std::uint64_t{64} * 1024 * 1024);
      stream.expires_after(std::chrono::minutes(5));  // idle keep-alive connections end
      auto [ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      http::request<http::string_body> req = parser.release();

      HttpRequest request{std::string(req.method_string()), std::string(req.target()),
                          std::string(req[http::field::authorization]),
                          std::string(req[http::field::accept]), std::move(req.body())};
      HttpResponse response;
      try {
        response = handler(request);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "spritescript serve: %s %s: %s\n", request.method.c_str(),
                     request.target.c_str(), e.what());
        response = {500, R"({"error":"internal","message":"internal error in the local engine"})"};
      }

      http::response<http::string_body> res{static_cast<http::status>(response.status),
                                            req.version()};
      for (const auto& [k, v] : common_headers) res.set(k, v);
      for (const auto& [k, v] : response.headers) res.set(k, v);
      if (response.status != 204 && response.status != 304) {
        res.set(http::field::content_type, response.content_type);
        res.body() = std::move(response.body);
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. out of file descriptors: keep serving the others
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
  }

  tcp::acceptor acceptor;
  HttpHandler handler;
  std::vector<std::pair<std::string, std::string>> common_headers;
};

HttpServer::HttpServer(asio::io_context& io, const std::string& host, std::uint16_t port,
                       HttpHandler handler,
                       std::vector<std::pair<std::string, std::string>> common_headers)
    : impl_(std::make_shared<Impl>(io, std::move(handler), std::move(common_headers))) {
  tcp::endpoint endpoint(asio::ip::make_address(host), port);
  impl_->acceptor.open(endpoint.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(endpoint);
  impl_->acceptor.listen();
  asio::co_spawn(io, impl_->accept_loop(), asio::detached);
}

HttpServer::~HttpServer() {
  boost::system::error_code ignored;
  impl_->acceptor.close(ignored);
}

std::uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace spritescript::engine
