// A small blocking HTTP/1.1 and WebSocket client for the end-to-end tests of
// the engine. All of Beast stays in ws_client.cpp (Beast is slow to compile);
// this header is plain C++. Every call takes a hang guard: when it passes,
// the call throws std::runtime_error (Catch reports it as a failure) instead
// of hanging the suite.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "process.hpp"

namespace e2e {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // the whole body (chunks joined)
  bool chunked = false;
  std::vector<std::string> chunks;  // a chunked body, one string per HTTP chunk as sent

  // The header's value, or "" when absent. `name` in any case.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// One request on a fresh connection to 127.0.0.1:port; reads the whole
// response (a chunked one to its last chunk). A HEAD request reads no body.
HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body = "", const HeaderList& headers = {},
                       Millis timeout = kDefaultTimeout);

// Writes `bytes` as they are on a fresh connection and returns everything
// the server sends until it closes the connection.
std::string raw_exchange(int port, std::string_view bytes, Millis timeout = kDefaultTimeout);

// A WebSocket client connection. It always keeps a read pending while it
// waits for anything, so messages that arrive while it sends (or while it
// waits for another message) queue up in order and nothing deadlocks against
// a server that writes while the test writes.
class WebSocketClient {
 public:
  struct Message {
    bool binary = false;
    std::string data;
  };

  // Connects and upgrades. When the server refuses the upgrade, connected()
  // is false and handshake() holds its answer (status, headers, body).
  WebSocketClient(int port, const std::string& target, const HeaderList& headers = {},
                  Millis timeout = kDefaultTimeout);
  ~WebSocketClient();
  WebSocketClient(const WebSocketClient&) = delete;
  WebSocketClient& operator=(const WebSocketClient&) = delete;

  bool connected() const;
  // The server's answer to the upgrade: 101 and its headers, or the refusal.
  const HttpReply& handshake() const;

  // Sends one message (one frame) and waits until it is on the wire.
  void send(bool binary, std::string data, Millis timeout = kDefaultTimeout);
  void send_binary(std::string data, Millis timeout = kDefaultTimeout) {
    send(true, std::move(data), timeout);
  }
  void send_text(std::string data, Millis timeout = kDefaultTimeout) {
    send(false, std::move(data), timeout);
  }
  // Queues a message; it goes out, in order, while later calls wait.
  void queue(bool binary, std::string data);
  // Waits until every queued message is on the wire (reading meanwhile).
  void flush(Millis timeout = kDefaultTimeout);

  // The next message; std::nullopt once the connection ended (then see
  // close_code()). Throws when `timeout` passes first.
  std::optional<Message> read(Millis timeout = kDefaultTimeout);

  // The code of the server's close frame, once the connection ended with one.
  std::optional<int> close_code() const;
  // The connection ended (closed by either side, or broken).
  bool ended() const;

  // A clean close: sends a close frame with `code`, waits for the server's.
  void close(int code = 1000, Millis timeout = kDefaultTimeout);
  // Drops the TCP connection without a close frame (a client that vanished).
  void drop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query-string value (everything but unreserved characters).
std::string url_encode(std::string_view value);

}  // namespace e2e
