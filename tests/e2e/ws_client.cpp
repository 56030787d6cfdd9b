// The tests' HTTP and WebSocket client (ws_client.hpp): Boost.Beast over a
// private io_context per connection, driven synchronously with a deadline.
#include "ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <deque>
#include <functional>
#include <stdexcept>

namespace e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxMessage = std::size_t{256} * 1024 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Runs `io` until `done()` or the deadline; throws when the deadline passes
// or when nothing is left that could make `done()` true.
class Runner {
 public:
  Runner(asio::io_context& io, Millis timeout, std::string what)
      : io_(io), deadline_(Clock::now() + timeout), what_(std::move(what)) {}

  template <typename Done>
  void run(Done done) {
    while (!done()) {
      if (io_.stopped()) io_.restart();
      if (Clock::now() >= deadline_) throw std::runtime_error(what_ + ": timed out (hang guard)");
      if (io_.run_one_until(deadline_) == 0 && io_.stopped() && !done()) {
        throw std::runtime_error(what_ + ": nothing left to wait for");
      }
    }
  }

 private:
  asio::io_context& io_;
  Clock::time_point deadline_;
  std::string what_;
};

tcp::endpoint loopback(int port) {
  return {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)};
}

void connect(beast::tcp_stream& stream, int port, Runner& runner, const std::string& what) {
  bool done = false;
  beast::error_code error;
  stream.async_connect(loopback(port), [&](beast::error_code ec) {
    error = ec;
    done = true;
  });
  runner.run([&] { return done; });
  if (error) throw std::runtime_error(what + ": cannot connect: " + error.message());
}

template <class Fields>
void copy_headers(const Fields& fields, HttpReply& reply) {
  for (const auto& field : fields) {
    reply.headers[lower(field.name_string())] = std::string(field.value());
  }
}

}  // namespace

std::string HttpReply::header(std::string_view name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

bool HttpReply::has_header(std::string_view name) const {
  return headers.count(lower(name)) > 0;
}

HttpReply http_request(int port, const std::string& method, const std::string& target,
                       const std::string& body, const HeaderList& headers, Millis timeout) {
  const std::string what = "HTTP " + method + " " + target;
  asio::io_context io;
  beast::tcp_stream stream(io);
  Runner runner(io, timeout, what);
  connect(stream, port, runner, what);

  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = body;
  if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();

  bool written = false;
  beast::error_code error;
  http::async_write(stream, req, [&](beast::error_code ec, std::size_t) {
    error = ec;
    written = true;
  });
  runner.run([&] { return written; });
  if (error) throw std::runtime_error(what + ": cannot send: " + error.message());

  HttpReply reply;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  if (method == "HEAD") parser.skip(true);
  // Chunk boundaries matter (HTTP exec sends one frame per chunk): record
  // each chunk as it was framed on the wire.
  auto on_chunk_header = [&](std::uint64_t size, beast::string_view, beast::error_code&) {
    if (size > 0) reply.chunks.emplace_back();
  };
  auto on_chunk_body = [&](std::uint64_t, beast::string_view data,
                           beast::error_code&) -> std::size_t {
    reply.chunks.back().append(data.data(), data.size());
    reply.body.append(data.data(), data.size());
    return data.size();
  };
  parser.on_chunk_header(on_chunk_header);
  parser.on_chunk_body(on_chunk_body);

  beast::flat_buffer buffer;
  bool read = false;
  http::async_read(stream, buffer, parser, [&](beast::error_code ec, std::size_t) {
    error = ec;
    read = true;
  });
  runner.run([&] { return read; });
  if (error) throw std::runtime_error(what + ": cannot read the response: " + error.message());

  const auto& res = parser.get();
  reply.status = res.result_int();
  reply.chunked = res.chunked();
  copy_headers(res, reply);
  if (!reply.chunked) reply.body = res.body();
  return reply;
}

std::string raw_exchange(int port, std::string_view bytes, Millis timeout) {
  const std::string what = "raw exchange";
  asio::io_context io;
  beast::tcp_stream stream(io);
  Runner runner(io, timeout, what);
  connect(stream, port, runner, what);

  // Write and read at once: the server may answer (and close) before it has
  // read everything.
  asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()),
                    [](beast::error_code, std::size_t) {});
  std::string received;
  char buffer[16384];
  bool ended = false;
  std::function<void()> read_more = [&] {
    stream.async_read_some(asio::buffer(buffer), [&](beast::error_code ec, std::size_t n) {
      received.append(buffer, n);
      if (ec) {
        ended = true;
      } else {
        read_more();
      }
    });
  };
  read_more();
  runner.run([&] { return ended; });
  return received;
}

// ---- WebSocketClient ------------------------------------------------------------

struct WebSocketClient::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream> ws{io};
  HttpReply handshake;
  bool connected = false;

  beast::flat_buffer buffer;
  std::deque<Message> inbox;
  bool reading = false;
  bool ended = false;
  std::optional<int> close_code;

  std::deque<Message> outbox;
  bool writing = false;
  beast::error_code write_error;

  void start_read() {
    if (reading || ended || !connected) return;
    reading = true;
    ws.async_read(buffer, [this](beast::error_code ec, std::size_t) {
      reading = false;
      if (ec) {
        ended = true;
        if (ec == websocket::error::closed) close_code = static_cast<int>(ws.reason().code);
        return;
      }
      inbox.push_back({ws.got_binary(), beast::buffers_to_string(buffer.data())});
      buffer.consume(buffer.size());
      start_read();
    });
  }

  void start_write() {
    if (writing || outbox.empty()) return;
    if (ended) {
      outbox.clear();
      return;
    }
    writing = true;
    ws.binary(outbox.front().binary);
    ws.async_write(asio::buffer(outbox.front().data), [this](beast::error_code ec, std::size_t) {
      writing = false;
      if (ec) {
        write_error = ec;
        outbox.clear();
        return;
      }
      outbox.pop_front();
      start_write();
    });
  }

  void abort() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws).socket().close(ignored);
    ended = true;
    // Let the cancelled operations finish before anything is destroyed.
    io.restart();
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while ((reading || writing) && Clock::now() < deadline) {
      if (io.stopped()) io.restart();
      io.run_one_until(deadline);
    }
  }
};

WebSocketClient::WebSocketClient(int port, const std::string& target, const HeaderList& headers,
                                 Millis timeout)
    : impl_(std::make_unique<Impl>()) {
  const std::string what = "WebSocket " + target;
  Runner runner(impl_->io, timeout, what);
  connect(beast::get_lowest_layer(impl_->ws), port, runner, what);
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  impl_->ws.read_message_max(kMaxMessage);
  impl_->ws.auto_fragment(false);  // one message, one frame, as the SDKs send them
  websocket::response_type res;
  bool done = false;
  beast::error_code error;
  impl_->ws.async_handshake(res, "127.0.0.1:" + std::to_string(port), target,
                            [&](beast::error_code ec) {
                              error = ec;
                              done = true;
                            });
  runner.run([&] { return done; });
  impl_->handshake.status = res.result_int();
  copy_headers(res, impl_->handshake);
  impl_->handshake.body = res.body();
  if (error && impl_->handshake.status == 0) {
    throw std::runtime_error(what + ": no HTTP answer to the upgrade: " + error.message());
  }
  impl_->connected = !error;
  impl_->ended = !impl_->connected;
}

WebSocketClient::~WebSocketClient() {
  if (!impl_->ended || impl_->reading || impl_->writing) impl_->abort();
}

bool WebSocketClient::connected() const {
  return impl_->connected;
}

const HttpReply& WebSocketClient::handshake() const {
  return impl_->handshake;
}

void WebSocketClient::queue(bool binary, std::string data) {
  if (!impl_->connected) throw std::runtime_error("WebSocket: not connected");
  impl_->outbox.push_back({binary, std::move(data)});
  impl_->start_write();
}

void WebSocketClient::flush(Millis timeout) {
  Runner runner(impl_->io, timeout, "WebSocket send");
  impl_->start_read();
  impl_->start_write();
  runner.run([&] { return impl_->outbox.empty() && !impl_->writing; });
  if (impl_->write_error) {
    throw std::runtime_error("WebSocket send failed: " + impl_->write_error.message());
  }
}

void WebSocketClient::send(bool binary, std::string data, Millis timeout) {
  queue(binary, std::move(data));
  flush(timeout);
}

std::optional<WebSocketClient::Message> WebSocketClient::read(Millis timeout) {
  Runner runner(impl_->io, timeout, "WebSocket read");
  impl_->start_read();
  impl_->start_write();
  runner.run([&] { return !impl_->inbox.empty() || (impl_->ended && !impl_->reading); });
  if (impl_->inbox.empty()) return std::nullopt;
  Message m = std::move(impl_->inbox.front());
  impl_->inbox.pop_front();
  return m;
}

std::optional<int> WebSocketClient::close_code() const {
  return impl_->close_code;
}

bool WebSocketClient::ended() const {
  return impl_->ended;
}

void WebSocketClient::close(int code, Millis timeout) {
  if (impl_->ended) return;
  Runner runner(impl_->io, timeout, "WebSocket close");
  bool closed = false;
  impl_->ws.async_close(websocket::close_reason(static_cast<std::uint16_t>(code)),
                        [&](beast::error_code) { closed = true; });
  impl_->start_read();
  runner.run([&] { return closed && !impl_->reading && !impl_->writing; });
  impl_->ended = true;
}

void WebSocketClient::drop() {
  impl_->abort();
}

std::string url_encode(std::string_view value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace e2e
