// HTTP/1.1 and WebSocket transport of the client: TCP or TLS (OpenSSL, SNI,
// verified against the system store or a CA file), optionally through an
// HTTPS proxy (CONNECT), with a keep-alive pool. All of Beast and OpenSSL
// live in transport.cpp (slow to compile); this header is plain C++ and Asio
// awaitables. Failures throw client::Error (network, timeout, cancelled,
// protocol); HTTP statuses are not errors here, the caller judges them.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spritescript::client {

namespace asio = boost::asio;
using Headers = std::vector<std::pair<std::string, std::string>>;
using Millis = std::chrono::milliseconds;

// Where the API lives, from a base URL such as "https://api.sprites.dev" or
// "http://127.0.0.1:7777". Trailing slashes are dropped (as the SDKs do).
struct Endpoint {
  bool tls = false;
  std::string host;
  std::uint16_t port = 0;
  std::string path_prefix;  // "" or "/prefix"

  // Throws Error(usage) saying what is wrong with the URL.
  static Endpoint parse(std::string_view base_url);
  std::string authority() const;  // host, or host:port when not the default
};

struct TransportOptions {
  std::string ca_file;               // PEM trust anchors instead of the system store
  bool insecure = false;             // no certificate verification (the caller warns)
  std::string proxy;                 // "http://host:port" to tunnel TLS through; "" for none
  std::size_t max_connections = 64;  // open HTTP connections at once (WebSockets excluded)
  std::size_t max_idle = 16;         // kept for reuse
  Millis connect_timeout{10'000};
};

// A request body produced piece by piece (an upload from a local file), so
// that it is never whole in memory. Its size is known up front and sent as
// Content-Length; the transport asks for up to 256 KiB at a time and writes
// each piece to the connection before asking for the next.
class BodySource {
 public:
  virtual ~BodySource() = default;
  virtual std::uint64_t size() const = 0;
  // Up to `max` bytes into `buffer`; 0 means the source ended (early, if
  // fewer than size() bytes came: the request fails). May throw Error.
  virtual asio::awaitable<std::size_t> read(char* buffer, std::size_t max) = 0;
  // Back to the first byte, for the caller's retry; false when it cannot.
  virtual bool rewind() { return false; }
};

struct Request {
  std::string method;  // GET, POST, ...
  std::string target;  // path + query, without the endpoint's prefix
  Headers headers;
  std::string body;
  std::string content_type;  // set with a body
  // A streamed body instead of `body` (which must then be empty). The
  // transport never replays a streamed request: the caller retries (after
  // rewind()) when it may.
  std::shared_ptr<BodySource> source;
};

struct Response {
  int status = 0;
  Headers headers;
  std::string body;
  // The header's value ("" when absent); `name` in any case.
  std::string header(std::string_view name) const;
};

// A response whose body is read as it arrives (NDJSON, HTTP exec).
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  int status = 0;
  Headers headers;
  // The next piece of the body: for a chunked body exactly one HTTP chunk
  // (HTTP exec frames are chunks, spec §4); nullopt at the end.
  virtual asio::awaitable<std::optional<std::string>> next() = 0;
  // The rest of the body, whole (for an error response).
  asio::awaitable<std::string> read_all();
};

class WebSocket {
 public:
  struct Message {
    bool binary = false;
    std::string data;
  };
  virtual ~WebSocket() = default;
  // The next message; nullopt when the peer closed (close_code() says how).
  // Throws Error(network/timeout/cancelled) when the connection broke: a
  // peer that answers no ping for 45 s counts as broken.
  virtual asio::awaitable<std::optional<Message>> read() = 0;
  // Writes are queued in order; each returns once its message is sent.
  virtual asio::awaitable<void> write(bool binary, std::string_view data) = 0;
  // Sends a close frame (once, best effort).
  virtual asio::awaitable<void> close(std::uint16_t code) = 0;
  // Drops the connection at once; pending reads and writes fail.
  virtual void abort() = 0;
  virtual std::uint16_t close_code() const = 0;  // 0 until the peer closed
  virtual Headers upgrade_headers() const = 0;   // of the 101 response
};

class Transport {
 public:
  Transport(asio::any_io_executor executor, Endpoint endpoint, TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  const Endpoint& endpoint() const;

  // One request and its whole response within `timeout`, on a pooled
  // connection. `replayable`: the request may be sent again on a fresh
  // connection when a reused one turns out closed before any answer
  // (never one with a streamed body). A streamed body is written in
  // pieces straight to the connection; a server that answers before
  // taking the whole body (an error) is heard when it can be.
  asio::awaitable<Response> send(const Request& request, Millis timeout, bool replayable);

  // A request whose response body is read piece by piece; `head_timeout`
  // bounds the time to the response head only.
  asio::awaitable<std::unique_ptr<BodyStream>> open_stream(const Request& request,
                                                           Millis head_timeout);

  // A WebSocket upgrade on a fresh connection. When the server answers
  // anything but 101, the socket is null and `refused` holds its answer.
  struct Upgrade {
    std::unique_ptr<WebSocket> socket;
    Response refused;
  };
  asio::awaitable<Upgrade> open_websocket(const std::string& target, const Headers& headers,
                                          Millis timeout);

  // Connections in the pool now (open, idle), for tests and the trace.
  std::pair<std::size_t, std::size_t> pool_size() const;

  struct Impl;  // transport.cpp's

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace spritescript::client
