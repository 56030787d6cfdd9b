#include "client/transport.hpp"

#include "client/errors.hpp"
#include "proto/values.hpp"
#include "util/async_mutex.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <deque>
#include <functional>
#include <limits>

namespace spritescript::client {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

using proto::iequals;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
// Whole responses: sprite lists and error bodies are small, file reads are
// not; anything larger than this is a server gone wrong.
constexpr std::uint64_t kMaxBody = std::uint64_t{1} << 30;
constexpr std::uint64_t kMaxMessage = std::uint64_t{64} * 1024 * 1024;
// A WebSocket peer silent this long (our pings at half of it unanswered)
// is gone: bad networks must not hang an exec forever.
constexpr auto kWebSocketIdle = std::chrono::seconds(45);
// Idle keep-alive connections older than this are not reused (servers
// close theirs after a while; the engine after 5 minutes).
constexpr auto kMaxIdleAge = std::chrono::seconds(30);
constexpr std::size_t kStreamPiece = std::size_t{64} * 1024;
// A streamed request body is read and written this much at a time.
constexpr std::size_t kUploadPiece = std::size_t{256} * 1024;

// What a failed operation becomes. `what` names the request ("GET
// /v1/sprites"), never its headers: the token stays out of messages.
[[noreturn]] void fail(const beast::error_code& ec, const std::string& what,
                       const Endpoint& endpoint) {
  if (ec == asio::error::operation_aborted) throw Error(ErrorKind::cancelled, what + ": cancelled");
  if (ec == beast::error::timeout) {
    throw Error(ErrorKind::timeout, what + ": timed out talking to " + endpoint.authority());
  }
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == ssl::error::get_stream_category()) {
    std::string message = what + ": TLS with " + endpoint.host + " failed: " + ec.message();
    if (ec.message().find("certificate") != std::string::npos) {
      message += " (for a private CA set SPRITES_CA_FILE)";
    }
    throw Error(ErrorKind::network, message);
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    throw Error(ErrorKind::protocol, what + ": malformed HTTP response from " +
                                         endpoint.authority() + " (" + ec.message() + ")");
  }
  throw Error(ErrorKind::network, what + ": " + ec.message() + " (" + endpoint.authority() + ")");
}

Headers headers_of(const http::fields& fields) {
  Headers out;
  for (const auto& f : fields) out.emplace_back(f.name_string(), f.value());
  return out;
}

std::string describe(const std::string& method, const std::string& target) {
  // The query carries commands and names, not secrets, but can be long.
  return method + " " + target.substr(0, target.find('?'));
}

// One connection to the API (or through a proxy to it).
struct Connection {
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  Clock::time_point idle_since{};
  bool reused = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  // Still usable after sitting idle: the server has not closed it.
  bool alive() {
    if (!lowest().socket().is_open()) return false;
    if (Clock::now() - idle_since > kMaxIdleAge) return false;
    char c = 0;
    ssize_t n = ::recv(lowest().socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return false;                                   // closed by the server
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;  // nothing to read: good
    return tls != nullptr;  // TLS may have a session ticket pending; plain data is junk
  }
};

template <class Stream>
asio::awaitable<beast::error_code> write_request(Stream& stream,
                                                 http::request<http::string_body>& req) {
  auto [ec, n] = co_await http::async_write(stream, req, kAsTuple);
  co_return ec;
}

template <class Stream>
asio::awaitable<beast::error_code> write_head(Stream& stream,
                                              http::request_serializer<http::empty_body>& sr) {
  auto [ec, n] = co_await http::async_write_header(stream, sr, kAsTuple);
  co_return ec;
}

template <class Stream>
asio::awaitable<beast::error_code> write_bytes(Stream& stream, const char* data, std::size_t size) {
  auto [ec, n] = co_await asio::async_write(stream, asio::buffer(data, size), kAsTuple);
  co_return ec;
}

template <class Stream, class Parser>
asio::awaitable<beast::error_code> read_message(Stream& stream, beast::flat_buffer& buffer,
                                                Parser& parser) {
  auto [ec, n] = co_await http::async_read(stream, buffer, parser, kAsTuple);
  co_return ec;
}

template <class Stream, class Parser>
asio::awaitable<beast::error_code> read_header(Stream& stream, beast::flat_buffer& buffer,
                                               Parser& parser) {
  auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kAsTuple);
  co_return ec;
}

template <class Stream, class Parser>
asio::awaitable<std::pair<beast::error_code, std::size_t>> read_some(Stream& stream,
                                                                     beast::flat_buffer& buffer,
                                                                     Parser& parser) {
  auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, kAsTuple);
  co_return std::make_pair(ec, n);
}

asio::awaitable<beast::error_code> write_request(Connection& c,
                                                 http::request<http::string_body>& req) {
  if (c.tls) co_return co_await write_request(*c.tls, req);
  co_return co_await write_request(*c.plain, req);
}

asio::awaitable<beast::error_code> write_head(Connection& c,
                                              http::request_serializer<http::empty_body>& sr) {
  if (c.tls) co_return co_await write_head(*c.tls, sr);
  co_return co_await write_head(*c.plain, sr);
}

asio::awaitable<beast::error_code> write_bytes(Connection& c, const char* data, std::size_t size) {
  if (c.tls) co_return co_await write_bytes(*c.tls, data, size);
  co_return co_await write_bytes(*c.plain, data, size);
}

template <class Parser>
asio::awaitable<beast::error_code> read_message(Connection& c, Parser& parser) {
  if (c.tls) co_return co_await read_message(*c.tls, c.buffer, parser);
  co_return co_await read_message(*c.plain, c.buffer, parser);
}

template <class Parser>
asio::awaitable<beast::error_code> read_header(Connection& c, Parser& parser) {
  if (c.tls) co_return co_await read_header(*c.tls, c.buffer, parser);
  co_return co_await read_header(*c.plain, c.buffer, parser);
}

template <class Parser>
asio::awaitable<std::pair<beast::error_code, std::size_t>> read_some(Connection& c,
                                                                     Parser& parser) {
  if (c.tls) co_return co_await read_some(*c.tls, c.buffer, parser);
  co_return co_await read_some(*c.plain, c.buffer, parser);
}

http::request<http::string_body> make_request(const Request& r, const Endpoint& endpoint) {
  http::request<http::string_body> req;
  req.method_string(r.method);
  req.target(endpoint.path_prefix + r.target);
  req.version(11);
  req.set(http::field::host, endpoint.authority());
  for (const auto& [k, v] : r.headers) req.set(k, v);
  if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
  req.body() = r.body;
  req.keep_alive(true);
  // POST/PUT always say how long the body is, even when it is empty.
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT") req.prepare_payload();
  return req;
}

// A request with a streamed body: its header says the source's size.
http::request<http::empty_body> make_head(const Request& r, const Endpoint& endpoint) {
  http::request<http::empty_body> req;
  req.method_string(r.method);
  req.target(endpoint.path_prefix + r.target);
  req.version(11);
  req.set(http::field::host, endpoint.authority());
  for (const auto& [k, v] : r.headers) req.set(k, v);
  if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
  req.keep_alive(true);
  req.content_length(r.source->size());
  return req;
}

// Writes the header, then the source's bytes piece by piece straight to
// the connection (one 256 KiB buffer, whatever the size). A connection
// failure is returned; the source's own failure, or its ending early,
// throws (the caller drops the connection: the server has half a body).
asio::awaitable<beast::error_code> write_streamed(Connection& c, const Request& r,
                                                  const Endpoint& endpoint,
                                                  const std::string& what) {
  auto req = make_head(r, endpoint);
  http::request_serializer<http::empty_body> sr{req};
  beast::error_code ec = co_await write_head(c, sr);
  if (ec) co_return ec;
  BodySource& source = *r.source;
  const std::uint64_t total = source.size();
  std::unique_ptr<char[]> piece(new char[std::min<std::uint64_t>(kUploadPiece, total) + 1]);
  char* buffer = piece.get();
  std::uint64_t sent = 0;
  while (sent < total) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(kUploadPiece, total - sent));
    const std::size_t n = co_await source.read(buffer, want);
    if (n == 0 || n > want) {
      throw Error(ErrorKind::usage, what + ": the body ended after " + std::to_string(sent) +
                                        " of " + std::to_string(total) + " bytes");
    }
    ec = co_await write_bytes(c, buffer, n);
    if (ec) co_return ec;
    sent += n;
  }
  co_return ec;
}

// A write failure that may mean the server answered early and closed (an
// error before taking the whole body): its answer may still be readable.
bool may_have_answered(const beast::error_code& ec) {
  return ec == asio::error::broken_pipe || ec == asio::error::connection_reset ||
         ec == asio::error::eof || ec == http::error::end_of_stream;
}

template <class Body>
Response response_of(http::response<Body>& res) {
  Response out;
  out.status = static_cast<int>(res.result_int());
  out.headers = headers_of(res.base());
  return out;
}

template <class Next>
class BeastWebSocket final : public WebSocket {
 public:
  BeastWebSocket(Next next, std::string what, Endpoint endpoint)
      : ws_(std::move(next)),
        lock_(ws_.get_executor()),
        what_(std::move(what)),
        endpoint_(std::move(endpoint)) {}

  // Upgrades; false with `refused` filled when the server said no.
  asio::awaitable<bool> handshake(const std::string& target, const Headers& headers, Millis timeout,
                                  Response& refused) {
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket's own timeouts from here
    ws_.set_option(websocket::stream_base::timeout{timeout, kWebSocketIdle, true});
    ws_.set_option(websocket::stream_base::decorator([&headers](websocket::request_type& req) {
      for (const auto& [k, v] : headers) req.set(k, v);
    }));
    ws_.read_message_max(kMaxMessage);
    ws_.auto_fragment(false);  // one message, one frame: exec frames carry no length
    websocket::response_type res;
    auto [ec] = co_await ws_.async_handshake(res, endpoint_.authority(),
                                             endpoint_.path_prefix + target, kAsTuple);
    if (ec == websocket::error::upgrade_declined) {
      refused = response_of(res);
      refused.body = std::move(res.body());
      co_return false;
    }
    if (ec) fail(ec, what_, endpoint_);
    upgrade_headers_ = headers_of(res.base());
    co_return true;
  }

  asio::awaitable<std::optional<Message>> read() override {
    buffer_.clear();
    auto [ec, n] = co_await ws_.async_read(buffer_, kAsTuple);
    if (ec == websocket::error::closed) co_return std::nullopt;
    if (ec) fail(ec, what_, endpoint_);
    co_return Message{ws_.got_binary(), beast::buffers_to_string(buffer_.data())};
  }

  asio::awaitable<void> write(bool binary, std::string_view data) override {
    co_await lock_.lock();
    ws_.binary(binary);
    auto [ec, n] = co_await ws_.async_write(asio::buffer(data.data(), data.size()), kAsTuple);
    lock_.unlock();
    if (ec == websocket::error::closed) {
      throw Error(ErrorKind::network, what_ + ": the server closed the connection");
    }
    if (ec) fail(ec, what_, endpoint_);
  }

  asio::awaitable<void> close(std::uint16_t code) override {
    co_await lock_.lock();
    if (!close_sent_ && ws_.is_open()) {
      close_sent_ = true;
      co_await ws_.async_close(websocket::close_reason(code), kAsTuple);
    }
    lock_.unlock();
  }

  void abort() override {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

  std::uint16_t close_code() const override { return ws_.reason().code; }
  Headers upgrade_headers() const override { return upgrade_headers_; }

 private:
  websocket::stream<Next> ws_;
  util::AsyncMutex lock_;
  beast::flat_buffer buffer_;
  std::string what_;
  Endpoint endpoint_;
  Headers upgrade_headers_;
  bool close_sent_ = false;
};

}  // namespace

// --- Endpoint ---------------------------------------------------------------

Endpoint Endpoint::parse(std::string_view url) {
  Endpoint e;
  auto bad = [&](const char* why) {
    return Error(ErrorKind::usage, "bad API URL '" + std::string(url) + "': " + why +
                                       " (expected http[s]://host[:port])");
  };
  std::string_view rest = url;
  if (rest.substr(0, 8) == "https://") {
    e.tls = true;
    rest.remove_prefix(8);
  } else if (rest.substr(0, 7) == "http://") {
    rest.remove_prefix(7);
  } else {
    throw bad("the scheme must be http or https");
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.path_prefix = std::string(path);
  if (authority.find('@') != std::string_view::npos) throw bad("credentials in the URL");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("unclosed [ in the host");
    e.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw bad("junk after the host");
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (e.host.empty()) throw bad("no host");
  e.port = e.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) throw bad("the port is not a number");
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) throw bad("the port is out of range");
    e.port = static_cast<std::uint16_t>(port);
  }
  return e;
}

std::string Endpoint::authority() const {
  std::string host_part = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port == (tls ? 443 : 80)) return host_part;
  return host_part + ":" + std::to_string(port);
}

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return {};
}

asio::awaitable<std::string> BodyStream::read_all() {
  std::string all;
  while (auto piece = co_await next()) all += *piece;
  co_return all;
}

// --- Transport ----------------------------------------------------------------

struct Transport::Impl : std::enable_shared_from_this<Transport::Impl> {
  Impl(asio::any_io_executor ex, Endpoint ep, TransportOptions opts)
      : executor(std::move(ex)),
        endpoint(std::move(ep)),
        options(std::move(opts)),
        tls_context(ssl::context::tls_client) {
    if (endpoint.tls) {
      tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                              ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                              ssl::context::no_tlsv1_1);
      beast::error_code ec;
      if (!options.ca_file.empty()) {
        tls_context.load_verify_file(options.ca_file, ec);
        if (ec) {
          throw Error(ErrorKind::usage,
                      "cannot load CA file " + options.ca_file + ": " + ec.message());
        }
      } else {
        tls_context.set_default_verify_paths(ec);
      }
      tls_context.set_verify_mode(options.insecure ? ssl::verify_none : ssl::verify_peer);
    }
    if (!options.proxy.empty()) proxy = Endpoint::parse(options.proxy);
  }

  asio::awaitable<std::vector<tcp::endpoint>> resolve(const Endpoint& where,
                                                      const std::string& what) {
    beast::error_code ec;
    auto address = asio::ip::make_address(where.host, ec);
    if (!ec) co_return std::vector<tcp::endpoint>{tcp::endpoint(address, where.port)};
    tcp::resolver resolver(executor);
    auto [rec, results] =
        co_await resolver.async_resolve(where.host, std::to_string(where.port), kAsTuple);
    if (rec) {
      throw Error(ErrorKind::network,
                  what + ": cannot resolve " + where.host + " (" + rec.message() + ")");
    }
    std::vector<tcp::endpoint> out;
    for (const auto& r : results) out.push_back(r.endpoint());
    co_return out;
  }

  // HTTP CONNECT through the proxy to the API's host.
  asio::awaitable<void> tunnel(beast::tcp_stream& stream, const std::string& what) {
    http::request<http::empty_body> req{http::verb::connect, endpoint.authority(), 11};
    req.set(http::field::host, endpoint.authority());
    auto [wec, wn] = co_await http::async_write(stream, req, kAsTuple);
    if (wec) fail(wec, what + " (proxy " + proxy->authority() + ")", endpoint);
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a CONNECT answer has no body
    auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kAsTuple);
    if (rec) fail(rec, what + " (proxy " + proxy->authority() + ")", endpoint);
    if (parser.get().result_int() != 200) {
      throw Error(ErrorKind::network, what + ": the proxy " + proxy->authority() +
                                          " refused the tunnel (HTTP " +
                                          std::to_string(parser.get().result_int()) + ")");
    }
  }

  // A new connection, connected (and tunnelled, and TLS-established) by
  // `deadline`.
  asio::awaitable<std::unique_ptr<Connection>> connect(Clock::time_point deadline,
                                                       const std::string& what) {
    const Endpoint& first_hop = proxy ? *proxy : endpoint;
    auto addresses = co_await resolve(first_hop, what);
    auto stream = std::make_unique<beast::tcp_stream>(executor);
    stream->expires_at(std::min(deadline, Clock::now() + options.connect_timeout));
    auto [ec, ep] = co_await stream->async_connect(addresses, kAsTuple);
    if (ec) {
      if (ec == beast::error::timeout) {
        throw Error(ErrorKind::timeout,
                    what + ": could not connect to " + first_hop.authority() + " in time");
      }
      fail(ec, what, first_hop);
    }
    stream->socket().set_option(tcp::no_delay(true));
    stream->expires_at(deadline);
    if (proxy) co_await tunnel(*stream, what);
    auto c = std::make_unique<Connection>();
    if (!endpoint.tls) {
      c->plain = std::move(stream);
      co_return c;
    }
    c->tls =
        std::make_unique<beast::ssl_stream<beast::tcp_stream>>(std::move(*stream), tls_context);
    if (!SSL_set_tlsext_host_name(c->tls->native_handle(), endpoint.host.c_str())) {
      throw Error(ErrorKind::network, what + ": cannot set TLS server name " + endpoint.host);
    }
    if (!options.insecure) {
      // OpenSSL's own check (not a verify callback) so that a wrong name is
      // reported as "hostname mismatch", not as an untrusted certificate.
      X509_VERIFY_PARAM* param = SSL_get0_param(c->tls->native_handle());
      beast::error_code ip_ec;
      asio::ip::make_address(endpoint.host, ip_ec);
      int ok = ip_ec ? X509_VERIFY_PARAM_set1_host(param, endpoint.host.c_str(), 0)
                     : X509_VERIFY_PARAM_set1_ip_asc(param, endpoint.host.c_str());
      if (!ok)
        throw Error(ErrorKind::network, what + ": cannot set TLS host name " + endpoint.host);
    }
    auto [hec] = co_await c->tls->async_handshake(ssl::stream_base::client, kAsTuple);
    if (hec) {
      // OpenSSL's reason ("certificate verify failed") hides the cause;
      // the verify result names it ("hostname mismatch", "self-signed ...").
      long verify = SSL_get_verify_result(c->tls->native_handle());
      if (verify != X509_V_OK && hec != beast::error::timeout &&
          hec != asio::error::operation_aborted) {
        bool wrong_name =
            verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH;
        throw Error(ErrorKind::network,
                    what + ": TLS with " + endpoint.host + " failed: certificate verify failed (" +
                        X509_verify_cert_error_string(verify) + ")" +
                        (wrong_name ? " (the certificate is for another host: check the API URL)"
                                    : " (for a private CA set SPRITES_CA_FILE)"));
      }
      fail(hec, what, endpoint);
    }
    co_return c;
  }

  // A connection for one HTTP exchange: an idle one, or a new one within
  // the cap (waiting for a free slot until `deadline`).
  asio::awaitable<std::unique_ptr<Connection>> checkout(Clock::time_point deadline,
                                                        const std::string& what) {
    for (;;) {
      while (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        if (c->alive()) {
          c->reused = true;
          co_return c;
        }
        --open;
      }
      if (open < options.max_connections) {
        ++open;
        try {
          co_return co_await connect(deadline, what);
        } catch (...) {
          release_slot();
          throw;
        }
      }
      auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
      waiters.push_back(timer);
      auto [ec] = co_await timer->async_wait(kAsTuple);
      std::erase(waiters, timer);
      if (Clock::now() >= deadline) {
        throw Error(ErrorKind::timeout, what + ": no free connection in time (" +
                                            std::to_string(options.max_connections) + " are busy)");
      }
      if (ec && ec != asio::error::operation_aborted) fail(ec, what, endpoint);
      // Woken (cancel() of the timer) or cancelled: check the state again.
      auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) {
        throw Error(ErrorKind::cancelled, what + ": cancelled");
      }
    }
  }

  void checkin(std::unique_ptr<Connection> c, bool reusable) {
    if (reusable && idle.size() < options.max_idle && c->lowest().socket().is_open()) {
      c->lowest().expires_never();
      c->idle_since = Clock::now();
      idle.push_back(std::move(c));
      wake_one();
      return;
    }
    release_slot();
  }

  void release_slot() {
    --open;
    wake_one();
  }

  void wake_one() {
    if (!waiters.empty()) waiters.front()->cancel();
  }

  asio::any_io_executor executor;
  Endpoint endpoint;
  TransportOptions options;
  ssl::context tls_context;
  std::optional<Endpoint> proxy;
  std::vector<std::unique_ptr<Connection>> idle;
  std::size_t open = 0;  // connections checked out or idle
  std::deque<std::shared_ptr<asio::steady_timer>> waiters;
};

namespace {

// A streamed response body on a pooled connection; the connection goes back
// to the pool when the body was read to its end.
class PooledBodyStream final : public BodyStream {
 public:
  PooledBodyStream(std::shared_ptr<Transport::Impl> impl, std::unique_ptr<Connection> conn,
                   std::string what)
      : impl_(std::move(impl)), conn_(std::move(conn)), what_(std::move(what)) {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());
    // Each chunk is gathered whole; its end stops the read (Beast's
    // "chunk body callback" idiom), so next() returns one chunk.
    on_chunk_ = [this](std::uint64_t remain, beast::string_view body, beast::error_code& ec) {
      if (remain == body.size()) ec = http::error::end_of_chunk;
      chunk_.append(body.data(), body.size());
      return body.size();
    };
    parser_.on_chunk_body(on_chunk_);  // kept by reference: declared before parser_
  }

  ~PooledBodyStream() override {
    if (conn_) impl_->checkin(std::move(conn_), false);
  }

  asio::awaitable<void> read_head(Clock::time_point deadline) {
    conn_->lowest().expires_at(deadline);
    auto ec = co_await read_header(*conn_, parser_);
    if (ec) fail(ec, what_, impl_->endpoint);
    conn_->lowest().expires_never();  // the body takes as long as its producer
    status = static_cast<int>(parser_.get().result_int());
    headers = headers_of(parser_.get().base());
  }

  asio::awaitable<std::optional<std::string>> next() override {
    if (!conn_) co_return std::nullopt;
    if (parser_.is_done()) {
      finish();
      co_return std::nullopt;
    }
    if (parser_.chunked()) {
      chunk_.clear();
      auto ec = co_await read_message(*conn_, parser_);
      if (ec == http::error::end_of_chunk) co_return std::move(chunk_);
      if (ec) fail(ec, what_, impl_->endpoint);
      finish();
      if (!chunk_.empty()) co_return std::move(chunk_);
      co_return std::nullopt;
    }
    std::string piece(kStreamPiece, '\0');
    parser_.get().body().data = piece.data();
    parser_.get().body().size = piece.size();
    parser_.get().body().more = true;
    auto [ec, n] = co_await read_some(*conn_, parser_);
    if (ec && ec != http::error::need_buffer) fail(ec, what_, impl_->endpoint);
    piece.resize(kStreamPiece - parser_.get().body().size);
    if (parser_.is_done()) finish();
    if (piece.empty() && !conn_) co_return std::nullopt;
    co_return piece;
  }

 private:
  void finish() {
    if (conn_) impl_->checkin(std::move(conn_), parser_.get().keep_alive());
  }

  std::shared_ptr<Transport::Impl> impl_;
  std::unique_ptr<Connection> conn_;
  std::string what_;
  std::string chunk_;
  std::function<std::size_t(std::uint64_t, beast::string_view, beast::error_code&)> on_chunk_;
  http::response_parser<http::buffer_body> parser_;
};

}  // namespace

Transport::Transport(asio::any_io_executor executor, Endpoint endpoint, TransportOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(endpoint), std::move(options))) {}

Transport::~Transport() = default;

const Endpoint& Transport::endpoint() const {
  return impl_->endpoint;
}

std::pair<std::size_t, std::size_t> Transport::pool_size() const {
  return {impl_->open, impl_->idle.size()};
}

asio::awaitable<Response> Transport::send(const Request& request, Millis timeout, bool replayable) {
  auto impl = impl_;
  const std::string what = describe(request.method, request.target);
  const auto deadline = Clock::now() + timeout;
  for (int attempt = 0;; ++attempt) {
    auto conn = co_await impl->checkout(deadline, what);
    conn->lowest().expires_at(deadline);
    beast::error_code wec;
    bool answered_early = false;
    if (request.source) {
      std::exception_ptr source_failed;
      try {
        wec = co_await write_streamed(*conn, request, impl->endpoint, what);
      } catch (...) {
        source_failed = std::current_exception();
      }
      if (source_failed) {
        impl->checkin(std::move(conn), false);
        std::rethrow_exception(source_failed);
      }
    } else {
      auto req = make_request(request, impl->endpoint);
      wec = co_await write_request(*conn, req);
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxBody);
    beast::error_code ec = wec;
    if (!ec) {
      ec = co_await read_message(*conn, parser);
    } else if (request.source && may_have_answered(wec)) {
      // The server stopped taking the body: perhaps it answered first.
      auto rec = co_await read_message(*conn, parser);
      if (!rec) {
        ec = {};
        answered_early = true;
      }
    }
    if (ec) {
      bool reused = conn->reused;
      impl->checkin(std::move(conn), false);
      // A kept-alive connection the server had closed meanwhile: the
      // request never reached it, so a fresh connection may try again
      // (a streamed body never: the caller rewinds and retries).
      bool stale = ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
                   ec == asio::error::broken_pipe || ec == asio::error::eof;
      if (reused && stale && attempt == 0 && !request.source && (replayable || wec)) continue;
      fail(ec, what, impl->endpoint);
    }
    auto res = parser.release();
    Response out = response_of(res);
    out.body = std::move(res.body());
    impl->checkin(std::move(conn), res.keep_alive() && !answered_early);
    co_return out;
  }
}

asio::awaitable<std::unique_ptr<BodyStream>> Transport::open_stream(const Request& request,
                                                                    Millis head_timeout) {
  auto impl = impl_;
  const std::string what = describe(request.method, request.target);
  if (request.source) throw Error(ErrorKind::usage, what + ": a streamed body needs send()");
  const auto deadline = Clock::now() + head_timeout;
  auto conn = co_await impl->checkout(deadline, what);
  conn->lowest().expires_at(deadline);
  auto req = make_request(request, impl->endpoint);
  auto ec = co_await write_request(*conn, req);
  if (ec) {
    impl->checkin(std::move(conn), false);
    fail(ec, what, impl->endpoint);
  }
  auto stream = std::make_unique<PooledBodyStream>(impl, std::move(conn), what);
  co_await stream->read_head(deadline);
  co_return stream;
}

asio::awaitable<Transport::Upgrade> Transport::open_websocket(const std::string& target,
                                                              const Headers& headers,
                                                              Millis timeout) {
  auto impl = impl_;
  const std::string what = describe("GET", target) + " (WebSocket)";
  const auto deadline = Clock::now() + timeout;
  // WebSockets are long-lived: their own connections, outside the pool.
  auto conn = co_await impl->connect(deadline, what);
  Upgrade upgrade;
  if (conn->tls) {
    auto ws = std::make_unique<BeastWebSocket<beast::ssl_stream<beast::tcp_stream>>>(
        std::move(*conn->tls), what, impl->endpoint);
    if (co_await ws->handshake(target, headers, timeout, upgrade.refused)) {
      upgrade.socket = std::move(ws);
    }
  } else {
    auto ws = std::make_unique<BeastWebSocket<beast::tcp_stream>>(std::move(*conn->plain), what,
                                                                  impl->endpoint);
    if (co_await ws->handshake(target, headers, timeout, upgrade.refused)) {
      upgrade.socket = std::move(ws);
    }
  }
  co_return upgrade;
}

}  // namespace spritescript::client
