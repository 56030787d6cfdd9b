// The engine's HTTP/1.1 + WebSocket listener. All of Beast lives in
// http_server.cpp; the rest of the engine sees plain requests, an exchange
// to answer them (whole, chunked, or by accepting a WebSocket) and a small
// WebSocket interface.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace spritescript::engine {

namespace asio = boost::asio;

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form, e.g. "/v1/sprites?prefix=ci-"
  std::string authorization;
  std::string accept;
  std::string body;        // empty when body_streamed
  bool websocket = false;  // an Upgrade: websocket request
  // The body was not read ahead: HttpExchange::read_body() delivers it as it
  // arrives, with no size limit. True for PUT /v1/sprites/NAME/fs/write only
  // (see streams_body()).
  bool body_streamed = false;
  // A request for a sprite's URL (is_sprite_host): only the header was read;
  // the handler takes the connection (HttpExchange::take_connection).
  bool passthrough = false;
  std::string host{};  // the Host header, passthrough requests only
  Headers fields{};    // every header field in order, passthrough requests only
};

// Whether a Host header names a sprite's URL, NAME.localhost[:PORT]: such
// requests go to the sprite, not to the API (docs/networking.md).
bool is_sprite_host(std::string_view host);

// Which requests get their bodies streamed rather than read whole (limit
// 64 MiB) before the handler runs: PUT .../fs/write, decided on the header.
bool streams_body(std::string_view method, std::string_view target);

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status, std::string body) : status(status), body(std::move(body)) {}

  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  Headers headers;
};

// An accepted WebSocket. Use it from the io_context's thread only. Any number
// of coroutines may write at once: writes are queued in order and each waits
// until its message is on the wire (that is the back-pressure).
class WebSocket {
 public:
  struct Message {
    bool binary = false;
    std::string data;
  };
  virtual ~WebSocket() = default;
  // The next message; nullopt once the peer closed or the connection broke.
  // Keep one read pending: it is also what answers the peer's pings.
  virtual asio::awaitable<std::optional<Message>> read() = 0;
  // False when the connection is gone (the message was dropped).
  virtual asio::awaitable<bool> write(bool binary, std::string_view data) = 0;
  // Sends `data` as consecutive binary messages, each `prefix` followed by
  // at most `max_payload` bytes of `data`, in order and with nothing else
  // between them. Completes when all are on the wire; false when the
  // connection is gone.
  virtual asio::awaitable<bool> write_binary(std::string_view prefix, std::string_view data,
                                             std::size_t max_payload) = 0;
  // Sends a close frame with `code` (once); later writes fail.
  virtual asio::awaitable<void> close(std::uint16_t code) = 0;
  virtual bool is_open() const = 0;
};

// One request being answered, exactly once: respond(), or
// start_stream()/write_chunk()/finish_stream(), or accept_websocket().
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual const HttpRequest& request() const = 0;
  // The next bytes of the request body into `buffer` (at most `size`); 0 at
  // its end. For a streamed body (request().body_streamed) this reads the
  // connection; otherwise it hands out request().body. Throws
  // std::runtime_error when the body is cut off or malformed. A handler that
  // answers before the end of a streamed body closes the connection after
  // the answer (the rest of the body is drained and dropped first, briefly).
  virtual asio::awaitable<std::size_t> read_body(char* buffer, std::size_t size) = 0;
  virtual asio::awaitable<void> respond(HttpResponse response) = 0;
  // A chunked response; each write_chunk() is one HTTP chunk, flushed at
  // once (HTTP exec relies on chunk boundaries, spec §4). False when the
  // client went away.
  virtual asio::awaitable<bool> start_stream(int status, std::string content_type) = 0;
  virtual asio::awaitable<bool> write_chunk(std::string_view data) = 0;
  // Consecutive chunks, each `prefix` followed by at most `max_payload`
  // bytes of `data`, written together (one gather write, no copy).
  virtual asio::awaitable<bool> write_chunks(std::string_view prefix, std::string_view data,
                                             std::size_t max_payload) = 0;
  // One chunk of `size` bytes of the file `fd` from `offset`, sent with
  // sendfile(): from the page cache to the socket without passing through
  // the engine (let the data be cached first: a read from disk here would
  // block the event loop). False when the client went away or the file
  // ended early (the response is then cut short, which the client sees).
  virtual asio::awaitable<bool> write_file_chunk(int fd, std::uint64_t offset,
                                                 std::size_t size) = 0;
  virtual asio::awaitable<void> finish_stream() = 0;
  // Completes the upgrade (101 with `headers`); nullptr when it failed.
  virtual asio::awaitable<std::shared_ptr<WebSocket>> accept_websocket(Headers headers) = 0;
  // A passthrough request's connection, handed over: the caller owns `fd`
  // (a connected TCP socket) and gets the bytes already read past the
  // header in `pending`. The exchange counts as answered. fd -1 when the
  // request is not a passthrough one or the connection is gone.
  struct Connection {
    int fd = -1;
    std::string pending;
  };
  virtual Connection take_connection() = 0;
};

using HttpHandler = std::function<asio::awaitable<void>(HttpExchange&)>;

class HttpServer {
 public:
  // Listens on host:port (port 0 picks a free one) and serves each request
  // with `handler`, keep-alive included. Every response (and WebSocket
  // upgrade) carries the extra headers in `common_headers`.
  HttpServer(asio::io_context& io, const std::string& host, std::uint16_t port, HttpHandler handler,
             Headers common_headers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace spritescript::engine
