#include "relay.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace e2e {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

RelayPlan RelayPlan::refuse(std::string response) {
  RelayPlan p;
  p.refuse_with = std::move(response);
  return p;
}

RelayPlan RelayPlan::cut(std::size_t bytes, std::string marker, int occurrences) {
  RelayPlan p;
  p.cut_after = bytes;
  p.cut_marker = std::move(marker);
  p.cut_occurrences = p.cut_marker.empty() ? 0 : occurrences;
  return p;
}

RelayPlan RelayPlan::delayed(Millis delay) {
  RelayPlan p;
  p.delay = delay;
  return p;
}

std::string http_answer(int status, const std::string& reason, const std::string& extra_headers) {
  std::string body = "{\"error\":\"relay_refused\",\"message\":\"" + reason + "\"}";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Relay::State {
  // Declared first, destroyed last: the io_context's destructor destroys
  // the pending handlers, and with them the TLS streams that use it.
  std::unique_ptr<ssl::context> tls;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;

  std::mutex mutex;
  std::deque<RelayPlan> plans;
  RelayPlan default_plan;

  std::atomic<int> connections{0};
  std::atomic<int> refused{0};
  std::atomic<int> cuts{0};
  std::atomic<int> handshake_failures{0};

  RelayPlan next_plan() {
    std::lock_guard lock(mutex);
    if (plans.empty()) return default_plan;
    RelayPlan p = std::move(plans.front());
    plans.pop_front();
    return p;
  }

  void accept();
};

namespace {

constexpr std::size_t kPiece = 64 * 1024;
constexpr std::size_t kMaxHead = 64 * 1024;

// One relayed connection. Handlers own it through shared_ptr; it ends when
// both directions stopped.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Relay::State* state, tcp::socket socket, RelayPlan plan)
      : state_(state),
        plan_(std::move(plan)),
        plain_(std::move(socket)),
        server_(state->io),
        timer_(state->io) {
    if (state_->tls) tls_.emplace(std::move(plain_), *state_->tls);
    extra_left_ = plan_.cut_after.value_or(0);
  }

  void start() {
    auto self = shared_from_this();
    if (tls_) {
      tls_->async_handshake(ssl::stream_base::server, [self](error_code ec) {
        if (ec) {
          ++self->state_->handshake_failures;
          self->close_all();
          return;
        }
        self->begin();
      });
    } else {
      begin();
    }
  }

 private:
  tcp::socket& client_socket() { return tls_ ? tls_->next_layer() : plain_; }

  template <class Handler>
  void client_read(asio::mutable_buffer buffer, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      plain_.async_read_some(buffer, std::forward<Handler>(handler));
    }
  }

  template <class Handler>
  void client_write(asio::const_buffer buffer, Handler&& handler) {
    if (tls_) {
      asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
    } else {
      asio::async_write(plain_, buffer, std::forward<Handler>(handler));
    }
  }

  void begin() {
    if (!plan_.refuse_with.empty()) {
      read_head();
      return;
    }
    auto self = shared_from_this();
    server_.async_connect(state_->target, [self](error_code ec) {
      if (ec) {
        self->close_all();
        return;
      }
      error_code ignored;
      self->server_.set_option(tcp::no_delay(true), ignored);
      self->pump_up();
      self->pump_down();
    });
  }

  // --- a canned refusal --------------------------------------------------

  void read_head() {
    auto self = shared_from_this();
    client_read(asio::buffer(up_), [self](error_code ec, std::size_t n) {
      if (ec) {
        self->close_all();
        return;
      }
      self->head_.append(self->up_.data(), n);
      if (self->head_.find("\r\n\r\n") == std::string::npos && self->head_.size() < kMaxHead) {
        self->read_head();
        return;
      }
      ++self->state_->refused;
      self->client_write(asio::buffer(self->plan_.refuse_with),
                         [self](error_code wec, std::size_t) {
                           if (wec) {
                             self->close_all();
                             return;
                           }
                           // Half-close, then wait for the client to go: a
                           // close with its request body unread could reset
                           // the connection before it read the answer.
                           error_code ignored;
                           if (!self->tls_) {
                             self->plain_.shutdown(tcp::socket::shutdown_send, ignored);
                           }
                           self->drain();
                         });
    });
  }

  void drain() {
    auto self = shared_from_this();
    client_read(asio::buffer(up_), [self](error_code ec, std::size_t) {
      if (ec) {
        self->close_all();
        return;
      }
      self->drain();
    });
  }

  // --- forwarding ----------------------------------------------------------

  // Client to server, as is.
  void pump_up() {
    auto self = shared_from_this();
    client_read(asio::buffer(up_), [self](error_code ec, std::size_t n) {
      if (ec) {
        if (ec == asio::error::eof && !self->tls_) {
          error_code ignored;
          self->server_.shutdown(tcp::socket::shutdown_send, ignored);
          return;
        }
        self->close_all();
        return;
      }
      asio::async_write(self->server_, asio::buffer(self->up_.data(), n),
                        [self](error_code wec, std::size_t) {
                          if (wec) {
                            self->close_all();
                            return;
                          }
                          self->pump_up();
                        });
    });
  }

  // Server to client, with the plan's delay and cut.
  void pump_down() {
    auto self = shared_from_this();
    server_.async_read_some(asio::buffer(down_), [self](error_code ec, std::size_t n) {
      if (ec) {
        // The server is done: so is the client's side (its writes to us
        // have nowhere to go).
        if (ec == asio::error::eof && !self->tls_) {
          error_code ignored;
          self->plain_.shutdown(tcp::socket::shutdown_send, ignored);
          self->server_.close(ignored);
          return;
        }
        self->close_all();
        return;
      }
      if (self->plan_.delay.count() > 0) {
        self->timer_.expires_after(self->plan_.delay);
        self->timer_.async_wait([self, n](error_code tec) {
          if (tec) {
            self->close_all();
            return;
          }
          self->forward(n);
        });
        return;
      }
      self->forward(n);
    });
  }

  // How many of the `n` bytes read go on before the cut; sets `cut` when
  // the cut comes with them.
  std::size_t allowed(std::size_t n, bool& cut) {
    cut = false;
    if (!plan_.cut_after) return n;
    const std::string& marker = plan_.cut_marker;
    for (std::size_t i = 0; i < n; ++i) {
      if (markers_seen_ < plan_.cut_occurrences) {
        recent_.push_back(down_[i]);
        if (recent_.size() > marker.size()) recent_.erase(0, recent_.size() - marker.size());
        if (recent_ == marker) {
          ++markers_seen_;
          recent_.clear();
        }
        continue;
      }
      if (extra_left_ == 0) {
        cut = true;
        return i;
      }
      --extra_left_;
    }
    cut = markers_seen_ >= plan_.cut_occurrences && extra_left_ == 0;
    return n;
  }

  void forward(std::size_t n) {
    bool cut = false;
    std::size_t pass = allowed(n, cut);
    if (pass == 0) {
      if (cut) {
        cut_now();
      } else {
        pump_down();
      }
      return;
    }
    auto self = shared_from_this();
    client_write(asio::buffer(down_.data(), pass), [self, cut](error_code ec, std::size_t) {
      if (ec) {
        self->close_all();
        return;
      }
      if (cut) {
        self->cut_now();
        return;
      }
      self->pump_down();
    });
  }

  void cut_now() {
    ++state_->cuts;
    close_all();
  }

  void close_all() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    timer_.cancel();
    client_socket().shutdown(tcp::socket::shutdown_both, ignored);
    client_socket().close(ignored);
    server_.shutdown(tcp::socket::shutdown_both, ignored);
    server_.close(ignored);
  }

  Relay::State* state_;
  RelayPlan plan_;
  tcp::socket plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  tcp::socket server_;
  asio::steady_timer timer_;
  std::array<char, kPiece> up_{};
  std::array<char, kPiece> down_{};
  std::string head_;
  std::string recent_;
  int markers_seen_ = 0;
  std::size_t extra_left_ = 0;
  bool closed_ = false;
};

}  // namespace

void Relay::State::accept() {
  acceptor.async_accept(io, [this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      ++connections;
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Connection>(this, std::move(socket), next_plan())->start();
    }
    accept();
  });
}

Relay::Relay(int target_port, std::optional<Tls> tls) : state_(std::make_unique<State>()) {
  if (tls) {
    state_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    state_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3);
    state_->tls->use_certificate_chain_file(tls->cert_chain.string());
    state_->tls->use_private_key_file(tls->key.string(), ssl::context::pem);
  }
  auto loopback = asio::ip::make_address("127.0.0.1");
  state_->target = tcp::endpoint(loopback, static_cast<unsigned short>(target_port));
  tcp::endpoint listen(loopback, 0);
  state_->acceptor.open(listen.protocol());
  state_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  state_->acceptor.bind(listen);
  state_->acceptor.listen();
  port_ = state_->acceptor.local_endpoint().port();
  state_->accept();
  thread_ = std::thread([state = state_.get()] {
    auto work = asio::make_work_guard(state->io);
    state->io.run();
  });
}

Relay::~Relay() {
  asio::post(state_->io, [state = state_.get()] {
    error_code ignored;
    state->acceptor.close(ignored);
    state->io.stop();
  });
  thread_.join();
  // state_ goes now: the io_context drops the connections still open.
}

void Relay::plan(RelayPlan plan) {
  std::lock_guard lock(state_->mutex);
  state_->plans.push_back(std::move(plan));
}

void Relay::set_default(RelayPlan plan) {
  std::lock_guard lock(state_->mutex);
  state_->default_plan = std::move(plan);
}

int Relay::connections() const {
  return state_->connections.load();
}
int Relay::refused() const {
  return state_->refused.load();
}
int Relay::cuts() const {
  return state_->cuts.load();
}
int Relay::handshake_failures() const {
  return state_->handshake_failures.load();
}

// --- TestPki ----------------------------------------------------------------------

namespace {

void openssl(const TempDir& dir, std::vector<std::string> args) {
  Command c;
  c.argv = {"/usr/bin/openssl"};
  c.argv.insert(c.argv.end(), args.begin(), args.end());
  c.cwd = dir.path();
  Result r = run(c);
  if (!r.exited || r.exit_code != 0) {
    std::string line;
    for (const auto& a : c.argv) line += a + " ";
    throw std::runtime_error("openssl failed: " + line + "\n" + r.describe());
  }
}

}  // namespace

TestPki::TestPki() {
  dir_.write("ca.cnf",
             "[req]\n"
             "distinguished_name = dn\n"
             "prompt = no\n"
             "x509_extensions = v3_ca\n"
             "[dn]\n"
             "CN = spritescript test CA\n"
             "[v3_ca]\n"
             "basicConstraints = critical, CA:TRUE\n"
             "keyUsage = critical, keyCertSign, cRLSign\n"
             "subjectKeyIdentifier = hash\n");
  openssl(dir_, {"req", "-x509", "-config", "ca.cnf", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", "2"});
  ca_cert_ = dir_.path() / "ca.pem";
  ca_key_ = dir_.path() / "ca.key";
}

Relay::Tls TestPki::issue(const std::string& stem, const std::vector<std::string>& dns_names,
                          const std::vector<std::string>& ip_addresses) {
  std::string san;
  for (const auto& d : dns_names) san += (san.empty() ? "" : ", ") + std::string("DNS:") + d;
  for (const auto& ip : ip_addresses) san += (san.empty() ? "" : ", ") + std::string("IP:") + ip;
  dir_.write(stem + ".ext",
             "[v3]\n"
             "basicConstraints = CA:FALSE\n"
             "keyUsage = critical, digitalSignature, keyEncipherment\n"
             "extendedKeyUsage = serverAuth\n"
             "subjectKeyIdentifier = hash\n"
             "authorityKeyIdentifier = keyid\n"
             "subjectAltName = " +
                 san + "\n");
  std::string cn = dns_names.empty() ? ip_addresses.front() : dns_names.front();
  openssl(dir_, {"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", stem + ".key", "-out", stem + ".csr", "-subj", "/CN=" + cn});
  openssl(dir_, {"x509", "-req", "-in", stem + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", std::to_string(++serial_), "-days", "2", "-extfile", stem + ".ext",
                 "-extensions", "v3", "-out", stem + ".pem"});
  return Relay::Tls{dir_.path() / (stem + ".pem"), dir_.path() / (stem + ".key")};
}

}  // namespace e2e
