#include "engine/http_server.hpp"

#include "util/async_mutex.hpp"

#include <fcntl.h>
#include <sys/sendfile.h>

#include <cerrno>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <vector>

namespace spritescript::engine {

using util::AsyncMutex;

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using asio::use_awaitable;

namespace {

constexpr std::uint64_t kMaxBody = std::uint64_t{64} * 1024 * 1024;
constexpr std::uint64_t kMaxWebSocketMessage = std::uint64_t{64} * 1024 * 1024;
constexpr auto kAsTuple = asio::as_tuple(use_awaitable);

// A completion condition for asio::async_write: everything, as transfer_all,
// but in socket writes as large as the kernel takes rather than 64 KiB each.
struct LargeWrites {
  std::size_t operator()(const boost::system::error_code& ec, std::size_t) const {
    return ec ? 0 : std::size_t{1} << 30;
  }
};

class BeastWebSocket final : public WebSocket {
 public:
  explicit BeastWebSocket(beast::tcp_stream stream)
      : ws_(std::move(stream)), lock_(ws_.get_executor()) {}

  asio::awaitable<bool> accept(const http::request<http::string_body>& req, Headers headers) {
    beast::get_lowest_layer(ws_).expires_never();
    // Handshake bound; no idle timeout: exec keepalives and the peer's pings
    // keep a live socket busy, and a dead peer fails the next write.
    ws_.set_option(websocket::stream_base::timeout{std::chrono::seconds(30),
                                                   websocket::stream_base::none(), false});
    ws_.set_option(websocket::stream_base::decorator(
        [headers = std::move(headers)](websocket::response_type& res) {
          for (const auto& [k, v] : headers) res.set(k, v);
        }));
    ws_.read_message_max(kMaxWebSocketMessage);
    ws_.auto_fragment(false);  // one message = one frame: exec frames carry no length
    auto [ec] = co_await ws_.async_accept(req, kAsTuple);
    open_ = !ec;
    co_return open_;
  }

  asio::awaitable<std::optional<Message>> read() override {
    buffer_.clear();
    auto [ec, n] = co_await ws_.async_read(buffer_, kAsTuple);
    if (ec) {
      open_ = false;
      co_return std::nullopt;
    }
    co_return Message{ws_.got_binary(), beast::buffers_to_string(buffer_.data())};
  }

  asio::awaitable<bool> write(bool binary, std::string_view data) override {
    co_await lock_.lock();
    bool ok = open_ && !closing_;
    if (ok) {
      ws_.binary(binary);
      auto [ec, n] = co_await ws_.async_write(asio::buffer(data.data(), data.size()), kAsTuple);
      if (ec) open_ = false;
      ok = !ec;
    }
    lock_.unlock();
    co_return ok;
  }

  asio::awaitable<bool> write_binary(std::string_view prefix, std::string_view data,
                                     std::size_t max_payload) override {
    co_await lock_.lock();
    bool ok = open_ && !closing_ && max_payload > 0;
    if (ok) ws_.binary(true);
    while (ok && !data.empty()) {
      std::size_t n = std::min(data.size(), max_payload);
      message_[0] = asio::const_buffer(prefix.data(), prefix.size());
      message_[1] = asio::const_buffer(data.data(), n);
      auto [ec, written] = co_await ws_.async_write(message_, kAsTuple);
      if (ec) open_ = false;
      ok = !ec;
      data.remove_prefix(n);
    }
    lock_.unlock();
    co_return ok;
  }

  asio::awaitable<void> close(std::uint16_t code) override {
    co_await lock_.lock();
    if (open_ && !closing_) {
      closing_ = true;
      auto [ec] = co_await ws_.async_close(websocket::close_reason(code), kAsTuple);
      if (ec) open_ = false;
    }
    lock_.unlock();
  }

  bool is_open() const override { return open_ && !closing_; }

 private:
  websocket::stream<beast::tcp_stream> ws_;
  AsyncMutex lock_;
  std::array<asio::const_buffer, 2> message_;  // write_binary's message being written
  beast::flat_buffer buffer_;
  bool open_ = false;
  bool closing_ = false;
};

class BeastExchange final : public HttpExchange {
 public:
  // `body_parser`: the parser of a streamed body (its header is read), or
  // null when the whole body is in `request.body`.
  BeastExchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                http::request<http::string_body>& req, HttpRequest request, const Headers& common,
                http::request_parser<http::buffer_body>* body_parser)
      : stream_(stream),
        buffer_(buffer),
        req_(req),
        request_(std::move(request)),
        common_(common),
        body_parser_(body_parser) {
    if (body_parser_ && !body_parser_->chunked() && body_parser_->content_length()) {
      // A body of known length is read straight into the handler's buffer:
      // no copy through the parser, and reads as large as the buffer.
      direct_ = true;
      remaining_ = *body_parser_->content_length();
    } else if (body_parser_) {
      buffer_.reserve(std::size_t{256} * 1024);  // Beast reads at most what the buffer can take
    }
  }

  const HttpRequest& request() const override { return request_; }

  asio::awaitable<std::size_t> read_body(char* data, std::size_t size) override {
    if (!body_parser_) {
      std::size_t n = std::min(size, request_.body.size() - body_read_);
      std::copy_n(request_.body.data() + body_read_, n, data);
      body_read_ += n;
      co_return n;
    }
    if (body_failed_) throw std::runtime_error("the request body was cut off");
    if (direct_) {
      size = static_cast<std::size_t>(std::min<std::uint64_t>(size, remaining_));
      if (size == 0) co_return 0;
      if (buffer_.size() > 0) {  // what came with the header
        std::size_t n = asio::buffer_copy(asio::buffer(data, size), buffer_.data());
        buffer_.consume(n);
        remaining_ -= n;
        co_return n;
      }
      stream_.expires_after(std::chrono::minutes(5));
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(data, size), kAsTuple);
      if (ec) {
        body_failed_ = true;
        throw std::runtime_error("the request body was cut off: " + ec.message());
      }
      remaining_ -= n;
      co_return n;
    }
    while (size > 0 && !body_parser_->is_done()) {
      auto& body = body_parser_->get().body();
      body.data = data;
      body.size = size;
      stream_.expires_after(std::chrono::minutes(5));  // a slow upload is fine, a stalled one not
      auto [ec, n] = co_await http::async_read(stream_, buffer_, *body_parser_, kAsTuple);
      if (ec == http::error::need_buffer) ec = {};
      const std::size_t got = size - body.size;
      if (ec) {
        body_failed_ = true;
        throw std::runtime_error("the request body was cut off: " + ec.message());
      }
      if (got > 0) co_return got;
    }
    co_return 0;
  }

  // A streamed body the handler did not read to its end.
  bool body_unread() const {
    return direct_ ? remaining_ > 0 : body_parser_ && !body_parser_->is_done();
  }

  asio::awaitable<void> respond(HttpResponse response) override {
    answered_ = true;
    http::response<http::string_body> res{static_cast<http::status>(response.status),
                                          req_.version()};
    set_headers(res, response.headers);
    if (response.status != 204 && response.status != 304) {
      res.set(http::field::content_type, response.content_type);
      res.body() = std::move(response.body);
    }
    res.keep_alive(req_.keep_alive() && !body_unread());
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream_, res, kAsTuple);
    reusable_ = !ec && res.keep_alive();
  }

  asio::awaitable<bool> start_stream(int status, std::string content_type) override {
    answered_ = true;
    stream_.expires_never();  // a stream lasts as long as its producer
    http::response<http::empty_body> res{static_cast<http::status>(status), req_.version()};
    set_headers(res, {});
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-cache");
    res.keep_alive(req_.keep_alive());
    res.chunked(true);
    http::response_serializer<http::empty_body> serializer{res};
    auto [ec, n] = co_await http::async_write_header(stream_, serializer, kAsTuple);
    streaming_ok_ = !ec;
    reusable_ = false;
    co_return streaming_ok_;
  }

  asio::awaitable<bool> write_chunk(std::string_view data) override {
    if (!streaming_ok_ || data.empty()) co_return streaming_ok_;
    auto [ec, n] = co_await asio::async_write(
        stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), kAsTuple);
    if (ec) streaming_ok_ = false;
    co_return streaming_ok_;
  }

  asio::awaitable<bool> write_chunks(std::string_view prefix, std::string_view data,
                                     std::size_t max_payload) override {
    if (!streaming_ok_ || data.empty() || max_payload == 0) co_return streaming_ok_;
    gather_chunks(prefix, data, max_payload);
    auto [ec, n] = co_await asio::async_write(stream_, chunks_, LargeWrites{}, kAsTuple);
    if (ec) streaming_ok_ = false;
    co_return streaming_ok_;
  }

  asio::awaitable<bool> write_file_chunk(int fd, std::uint64_t offset, std::size_t size) override {
    if (!streaming_ok_ || size == 0) co_return streaming_ok_;
    char head[2 * sizeof(std::size_t) + 3];
    int len = std::snprintf(head, sizeof head, "%zx\r\n", size);
    auto [ec, n] = co_await asio::async_write(
        stream_, asio::buffer(head, static_cast<std::size_t>(len)), kAsTuple);
    if (ec) streaming_ok_ = false;
    auto& socket = stream_.socket();
    boost::system::error_code nb;
    if (streaming_ok_) socket.native_non_blocking(true, nb);
    auto at = static_cast<off_t>(offset);
    std::size_t left = size;
    while (streaming_ok_ && left > 0) {
      ssize_t sent = ::sendfile(socket.native_handle(), fd, &at, left);
      if (sent > 0) {
        left -= static_cast<std::size_t>(sent);
      } else if (sent < 0 && errno == EAGAIN) {
        auto [wec] = co_await socket.async_wait(tcp::socket::wait_write, kAsTuple);
        if (wec) streaming_ok_ = false;
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else {
        streaming_ok_ = false;  // an error, or the file is shorter than it was
      }
    }
    if (!streaming_ok_) co_return false;
    auto [tec, tn] = co_await asio::async_write(stream_, asio::buffer("\r\n", 2), kAsTuple);
    if (tec) streaming_ok_ = false;
    co_return streaming_ok_;
  }

  asio::awaitable<void> finish_stream() override {
    if (!streaming_ok_) co_return;
    auto [ec, n] = co_await asio::async_write(stream_, http::make_chunk_last(), kAsTuple);
    reusable_ = !ec && req_.keep_alive() && !body_unread();
  }

  asio::awaitable<std::shared_ptr<WebSocket>> accept_websocket(Headers headers) override {
    answered_ = true;
    reusable_ = false;
    if (!websocket::is_upgrade(req_)) co_return nullptr;
    for (const auto& h : common_) headers.push_back(h);
    auto ws = std::make_shared<BeastWebSocket>(std::move(stream_));
    if (!co_await ws->accept(req_, std::move(headers))) co_return nullptr;
    co_return ws;
  }

  Connection take_connection() override {
    Connection taken;
    if (!request_.passthrough || answered_) return taken;
    // A copy of the descriptor: the stream closes its own when it goes.
    taken.fd = ::fcntl(stream_.socket().native_handle(), F_DUPFD_CLOEXEC, 0);
    if (taken.fd < 0) return taken;
    auto data = buffer_.data();
    taken.pending.assign(static_cast<const char*>(data.data()), data.size());
    buffer_.consume(buffer_.size());
    answered_ = true;
    taken_ = true;
    return taken;
  }
  bool taken() const { return taken_; }

  bool answered() const { return answered_; }
  bool reusable() const { return reusable_; }

 private:
  // Fills chunks_ with the chunked encoding of `data` cut into pieces:
  // size line, prefix, piece, CRLF; the small parts live in chunk_heads_.
  void gather_chunks(std::string_view prefix, std::string_view data, std::size_t max_payload) {
    chunk_heads_.clear();
    std::vector<std::size_t> ends;  // where each piece's head ends in chunk_heads_
    char hex[2 * sizeof(std::size_t) + 1];
    for (std::size_t at = 0; at < data.size(); at += max_payload) {
      std::size_t n = std::min(data.size() - at, max_payload);
      if (at > 0) chunk_heads_ += "\r\n";
      int len = std::snprintf(hex, sizeof hex, "%zx", prefix.size() + n);
      chunk_heads_.append(hex, static_cast<std::size_t>(len));
      chunk_heads_ += "\r\n";
      chunk_heads_ += prefix;
      ends.push_back(chunk_heads_.size());
    }
    chunk_heads_ += "\r\n";
    chunks_.clear();
    std::size_t head = 0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
      std::size_t at = i * max_payload;
      chunks_.emplace_back(chunk_heads_.data() + head, ends[i] - head);
      chunks_.emplace_back(data.data() + at, std::min(data.size() - at, max_payload));
      head = ends[i];
    }
    chunks_.emplace_back(chunk_heads_.data() + head, chunk_heads_.size() - head);
  }

  template <class Message>
  void set_headers(Message& res, const Headers& extra) {
    for (const auto& [k, v] : common_) res.set(k, v);
    for (const auto& [k, v] : extra) res.set(k, v);
  }

  beast::tcp_stream& stream_;
  beast::flat_buffer& buffer_;
  http::request<http::string_body>& req_;
  HttpRequest request_;
  const Headers& common_;
  http::request_parser<http::buffer_body>* body_parser_;
  std::size_t body_read_ = 0;  // of request_.body, when not streamed
  bool direct_ = false;        // a streamed body of known length, read without the parser
  std::uint64_t remaining_ = 0;
  bool body_failed_ = false;
  bool answered_ = false;
  bool reusable_ = false;
  bool streaming_ok_ = false;
  bool taken_ = false;  // the connection went to the handler
  std::string chunk_heads_;
  std::vector<asio::const_buffer> chunks_;
};

HttpResponse json_error(int status, const char* code, const char* message) {
  return {status, std::string(R"({"error":")") + code + R"(","message":")" + message + "\"}"};
}

}  // namespace

bool is_sprite_host(std::string_view host) {
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (host.ends_with('.')) host.remove_suffix(1);
  constexpr std::string_view kSuffix = ".localhost";
  if (host.size() <= kSuffix.size()) return false;
  std::string_view tail = host.substr(host.size() - kSuffix.size());
  return beast::iequals(tail, kSuffix) &&
         host.substr(0, host.size() - kSuffix.size()).find('.') == std::string_view::npos;
}

bool streams_body(std::string_view method, std::string_view target) {
  if (method != "PUT") return false;
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/v1/sprites/";
  constexpr std::string_view kSuffix = "/fs/write";
  return path.size() > kPrefix.size() + kSuffix.size() && path.starts_with(kPrefix) &&
         path.ends_with(kSuffix) &&
         path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size()).find('/') ==
             std::string_view::npos;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& io, HttpHandler h, Headers common)
      : acceptor(io), handler(std::move(h)), common_headers(std::move(common)) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    auto self = shared_from_this();  // the server outlives its connections
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      // The header first: it decides whether the body is read whole (the
      // usual case, up to 64 MiB) or streamed to the handler (fs write).
      http::request_parser<http::empty_body> header_parser;
      header_parser.body_limit(boost::none);          // checked below, per kind of request
      stream.expires_after(std::chrono::minutes(5));  // idle keep-alive connections end
      auto [ec, n] = co_await http::async_read_header(stream, buffer, header_parser, kAsTuple);
      const bool passthrough = !ec && is_sprite_host(header_parser.get()[http::field::host]);
      const bool streamed =
          !ec && !passthrough &&
          streams_body(header_parser.get().method_string(), header_parser.get().target());
      std::optional<http::request_parser<http::string_body>> parser;
      std::optional<http::request_parser<http::buffer_body>> body_parser;
      if (!ec && passthrough) {
        co_await pass_through(stream, buffer, header_parser.get());
        co_return;
      }
      if (!ec && !streamed && header_parser.content_length() &&
          *header_parser.content_length() > kMaxBody) {
        ec = http::error::body_limit;
      }
      if (!ec && beast::iequals(header_parser.get()[http::field::expect], "100-continue")) {
        // curl waits a second for this before it sends a large body.
        http::response<http::empty_body> go_on{http::status::continue_, 11};
        auto [wec, wn] = co_await http::async_write(stream, go_on, kAsTuple);
        ec = wec;
      }
      if (!ec && streamed) {
        body_parser.emplace(std::move(header_parser));
      } else if (!ec) {
        parser.emplace(std::move(header_parser));
        parser->body_limit(kMaxBody);
        auto [bec, bn] = co_await http::async_read(stream, buffer, *parser, kAsTuple);
        ec = bec;
      }
      if (ec) {
        // Say what was wrong when the peer is still there to hear it.
        if (ec == http::error::body_limit) {
          co_await reply_and_close(
              stream, json_error(413, "body_too_large", "the request body is over 64 MiB"));
        } else if (ec.category() == beast::error_code(http::error::bad_target).category() &&
                   ec != http::error::end_of_stream && ec != http::error::partial_message) {
          co_await reply_and_close(stream,
                                   json_error(400, "bad_request", "malformed HTTP request"));
        }
        break;
      }
      http::request<http::string_body> req;
      if (streamed) {
        req = http::request<http::string_body>(http::request_header<>(body_parser->get().base()));
      } else {
        req = parser->release();
      }
      HttpRequest request{std::string(req.method_string()),
                          std::string(req.target()),
                          std::string(req[http::field::authorization]),
                          std::string(req[http::field::accept]),
                          std::move(req.body()),
                          websocket::is_upgrade(req),
                          streamed};
      BeastExchange exchange(stream, buffer, req, std::move(request), common_headers,
                             body_parser ? &*body_parser : nullptr);
      try {
        co_await handler(exchange);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "spritescript serve: %s %s: %s\n", exchange.request().method.c_str(),
                     exchange.request().target.c_str(), e.what());
      }
      if (!exchange.answered()) {
        co_await exchange.respond(
            json_error(500, "internal", "internal error in the local engine"));
      }
      if (streamed) buffer.shrink_to_fit();
      if (exchange.body_unread()) {
        // Answered before the body's end: drop what the client still sends
        // for a little while, so that closing does not reset the connection
        // before the client has read the answer.
        co_await drain(stream);
        break;
      }
      if (!exchange.reusable()) break;
    }
    if (stream.socket().is_open()) {
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  // A sprite URL request: the handler gets the header, then the connection.
  asio::awaitable<void> pass_through(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                     const http::request<http::empty_body>& header) {
    HttpRequest request;
    request.method = std::string(header.method_string());
    request.target = std::string(header.target());
    request.authorization = std::string(header[http::field::authorization]);
    request.accept = std::string(header[http::field::accept]);
    request.websocket = websocket::is_upgrade(header);
    request.passthrough = true;
    request.host = std::string(header[http::field::host]);
    for (const auto& field : header) {
      request.fields.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    http::request<http::string_body> req{header.method(), header.target(), header.version()};
    BeastExchange exchange(stream, buffer, req, std::move(request), common_headers, nullptr);
    stream.expires_never();
    try {
      co_await handler(exchange);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "spritescript serve: sprite URL %s: %s\n",
                   std::string(req.target()).c_str(), e.what());
    }
    if (!exchange.answered()) {
      co_await exchange.respond(json_error(500, "internal", "internal error in the local engine"));
    }
    // Whether answered here or taken, one request per connection.
    beast::error_code ignored;
    if (!exchange.taken()) stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  static asio::awaitable<void> drain(beast::tcp_stream& stream) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(2));
    std::vector<char> sink(std::size_t{64} * 1024);
    std::uint64_t dropped = 0;
    while (dropped < kMaxBody) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kAsTuple);
      if (ec) break;
      dropped += n;
    }
  }

  asio::awaitable<void> reply_and_close(beast::tcp_stream& stream, HttpResponse response) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), 11};
    for (const auto& [k, v] : common_headers) res.set(k, v);
    res.set(http::field::content_type, response.content_type);
    res.body() = std::move(response.body);
    res.keep_alive(false);
    res.prepare_payload();
    co_await http::async_write(stream, res, kAsTuple);
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. out of file descriptors: keep serving the others
      socket.set_option(tcp::no_delay(true));  // exec frames are small and latency-bound
      asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
  }

  tcp::acceptor acceptor;
  HttpHandler handler;
  Headers common_headers;
};

HttpServer::HttpServer(asio::io_context& io, const std::string& host, std::uint16_t port,
                       HttpHandler handler, Headers common_headers)
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
