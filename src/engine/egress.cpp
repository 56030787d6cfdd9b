#include "engine/egress.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <map>
#include <set>

#include "engine/fleet.hpp"
#include "engine/machine.hpp"
#include "engine/policy_api.hpp"
#include "engine/tcp_relay.hpp"
#include "proto/dns.hpp"
#include "proto/network_policy.hpp"
#include "proto/proxy_request.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kHeadTimeout = std::chrono::seconds(30);
constexpr auto kConnectTimeout = std::chrono::seconds(10);
constexpr std::size_t kMaxHead = std::size_t{64} * 1024;
// Addresses remembered per sprite as "resolved from this name" (raw-IP
// connections are allowed only to those of allowed names); beyond this
// many the memory starts over.
constexpr std::size_t kMaxRemembered = 10'000;

// Never reachable from a sprite: the host's own loopback, link-local
// (cloud metadata lives there), unspecified and multicast addresses.
bool always_blocked(const asio::ip::address& a) {
  if (a.is_loopback() || a.is_unspecified() || a.is_multicast()) return true;
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return b[0] == 169 && b[1] == 254;
  }
  auto v6 = a.to_v6();
  if (v6.is_link_local() || v6.is_multicast()) return true;
  if (v6.is_v4_mapped()) return always_blocked(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  return false;
}

// Private ranges: blocked while a policy is in force (spec §8.1).
bool is_private(const asio::ip::address& a) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 100 && (b[1] & 0xc0) == 64);  // carrier-grade NAT
  }
  auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return is_private(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  return (v6.to_bytes()[0] & 0xfe) == 0xfc;  // unique local
}

std::string http_error(int status, const char* reason, const std::string& message) {
  std::string body = "spritescript: " + message + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Resolved {
  std::vector<asio::ip::address> addresses;
  bool overridden = false;
  bool not_found = false;
  std::string error;
};

// One sandbox's egress: its two sockets and what passes through them.
struct SpriteEgress {
  SpriteEgress(const asio::any_io_executor& ex, std::string n)
      : name(std::move(n)), proxy(ex), dns(ex) {}

  std::string name;
  tcp::acceptor proxy;
  udp::socket dns;
  bool closed = false;
  // address -> the names it was resolved from, for raw-IP connections.
  std::map<std::string, std::set<std::string>> names_of_address;
  struct Open {
    std::string host;
    std::weak_ptr<TcpRelay> relay;
  };
  std::map<std::uint64_t, Open> open;
  std::uint64_t next_open = 1;

  void remember(const std::string& host, const std::vector<asio::ip::address>& addresses) {
    if (names_of_address.size() > kMaxRemembered) names_of_address.clear();
    for (const auto& a : addresses) names_of_address[a.to_string()].insert(host);
  }

  void close() {
    closed = true;
    boost::system::error_code ignored;
    proxy.close(ignored);
    dns.close(ignored);
    for (auto& [id, connection] : open) {
      if (auto relay = connection.relay.lock()) relay->abort();
    }
  }
};

}  // namespace

struct Egress::Core : std::enable_shared_from_this<Egress::Core> {
  Core(asio::any_io_executor ex, NetworkPolicies& p, Options o)
      : executor(std::move(ex)), policies(p), options(std::move(o)) {
    for (const auto& [name, addresses] : options.hosts) {
      for (const auto& text : addresses) {
        boost::system::error_code ec;
        auto a = asio::ip::make_address(text, ec);
        if (ec) continue;  // checked when the option was read
        overrides[proto::normalize_host(name)].push_back(a);
        exempt.insert(a.to_string());
      }
    }
  }

  asio::any_io_executor executor;
  NetworkPolicies& policies;
  Options options;
  std::map<std::string, std::vector<asio::ip::address>> overrides;
  std::set<std::string> exempt;  // override addresses: reachable although on loopback
  std::map<std::string, std::weak_ptr<SpriteEgress>> sprites;

  void attach(const std::string& name, const std::shared_ptr<Machine>& machine) {
    auto fds = machine->take_egress_fds();
    if (fds.proxy < 0) return;  // --sandbox=none: the host's network, no policy
    auto sprite = std::make_shared<SpriteEgress>(executor, name);
    boost::system::error_code ec;
    sprite->proxy.assign(tcp::v4(), fds.proxy, ec);
    if (ec) ::close(fds.proxy);
    sprite->dns.assign(udp::v4(), fds.dns, ec);
    if (ec) ::close(fds.dns);
    if (auto previous = sprites[name].lock()) previous->close();
    sprites[name] = sprite;
    std::weak_ptr<SpriteEgress> weak = sprite;
    machine->also_on_down([weak]() {
      if (auto s = weak.lock()) s->close();
    });
    auto self = shared_from_this();
    asio::co_spawn(executor, accept_loop(self, sprite), asio::detached);
    asio::co_spawn(executor, dns_loop(self, sprite), asio::detached);
  }

  // May the sprite reach `host` (a name or an IP literal)? "" when it may,
  // else why not (one line).
  std::string refusal(const SpriteEgress& sprite, const std::string& host) {
    auto policy = policies.get(sprite.name);
    if (policy->unrestricted()) return "";
    const std::string name = proto::normalize_host(host);
    boost::system::error_code ec;
    asio::ip::make_address(name, ec);
    if (!ec) {  // a raw IP: allowed by a rule naming it, or resolved from an allowed name
      auto decision = proto::decide(*policy, name);
      if (decision.allowed && decision.rule == name) return "";
      if (auto it = sprite.names_of_address.find(name); it != sprite.names_of_address.end()) {
        for (const auto& from : it->second) {
          if (proto::decide(*policy, from).allowed) return "";
        }
      }
      return "blocked by the sprite's network policy: " + name +
             " is an IP address no allowed name resolved to";
    }
    auto decision = proto::decide(*policy, name);
    if (decision.allowed) return "";
    return "blocked by the sprite's network policy: " + name +
           (decision.rule.empty() ? " (no rule allows it)"
                                  : " (rule \"" + decision.rule + "\": deny)");
  }

  void policy_changed(const std::string& name) {
    auto it = sprites.find(name);
    if (it == sprites.end()) return;
    auto sprite = it->second.lock();
    if (!sprite) return;
    for (auto& [id, connection] : sprite->open) {
      if (refusal(*sprite, connection.host).empty()) continue;
      if (auto relay = connection.relay.lock()) relay->abort();
    }
  }

  static asio::awaitable<Resolved> resolve(std::shared_ptr<Core> self, std::string host) {
    Resolved out;
    const std::string name = proto::normalize_host(host);
    boost::system::error_code ec;
    auto literal = asio::ip::make_address(name, ec);
    if (!ec) {
      out.addresses.push_back(literal);
      co_return out;
    }
    if (auto it = self->overrides.find(name); it != self->overrides.end()) {
      out.addresses = it->second;
      out.overridden = true;
      co_return out;
    }
    tcp::resolver resolver(self->executor);
    auto [rec, results] = co_await resolver.async_resolve(name, "", kAsTuple);
    if (rec) {
      out.not_found = rec == asio::error::host_not_found || rec == asio::error::no_data ||
                      rec == asio::error::host_not_found_try_again;
      out.error = rec.message();
      co_return out;
    }
    for (const auto& entry : results) {
      auto a = entry.endpoint().address();
      if (std::find(out.addresses.begin(), out.addresses.end(), a) == out.addresses.end()) {
        out.addresses.push_back(a);
      }
    }
    co_return out;
  }

  // --- the HTTP proxy ------------------------------------------------------

  static asio::awaitable<void> accept_loop(std::shared_ptr<Core> self,
                                           std::shared_ptr<SpriteEgress> sprite) {
    while (!sprite->closed) {
      auto [ec, socket] = co_await sprite->proxy.async_accept(kAsTuple);
      if (ec == asio::error::operation_aborted || sprite->closed) break;
      if (ec) continue;  // e.g. out of descriptors: keep serving the others
      socket.set_option(tcp::no_delay(true));
      asio::co_spawn(self->executor, serve_connection(self, sprite, std::move(socket)),
                     asio::detached);
    }
  }

  static asio::awaitable<void> reply(tcp::socket& socket, std::string response) {
    co_await asio::async_write(socket, asio::buffer(response), kAsTuple);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  static asio::awaitable<void> serve_connection(std::shared_ptr<Core> self,
                                                std::shared_ptr<SpriteEgress> sprite,
                                                tcp::socket client) {
    // The head, within a deadline: a client that says nothing is let go.
    std::string buffer;
    asio::steady_timer deadline(self->executor);
    deadline.expires_after(kHeadTimeout);
    deadline.async_wait([&client](boost::system::error_code ec) {
      if (!ec) client.cancel(ec);
    });
    auto [ec, head_size] = co_await asio::async_read_until(
        client, asio::dynamic_buffer(buffer, kMaxHead), "\r\n\r\n", kAsTuple);
    deadline.cancel();
    if (ec) {
      if (ec == asio::error::not_found) {
        co_await reply(client, http_error(431, "Request Header Fields Too Large",
                                          "the request head is over 64 KiB"));
      }
      co_return;
    }
    std::string problem;
    auto request =
        proto::parse_proxy_request(std::string_view(buffer).substr(0, head_size - 4), problem);
    if (!request) {
      co_await reply(client, http_error(400, "Bad Request", problem));
      co_return;
    }
    if (std::string why = self->refusal(*sprite, request->host); !why.empty()) {
      co_await reply(client, http_error(403, "Forbidden", why));
      co_return;
    }
    Resolved resolved = co_await resolve(self, request->host);
    if (resolved.addresses.empty()) {
      co_await reply(client, http_error(502, "Bad Gateway",
                                        "cannot resolve " + request->host + ": " + resolved.error));
      co_return;
    }
    sprite->remember(proto::normalize_host(request->host), resolved.addresses);
    const bool restricted = !self->policies.get(sprite->name)->unrestricted();
    std::vector<tcp::endpoint> endpoints;
    for (const auto& a : resolved.addresses) {
      const bool reachable = self->exempt.contains(a.to_string()) ||
                             (!always_blocked(a) && !(restricted && is_private(a)));
      if (reachable) endpoints.emplace_back(a, static_cast<unsigned short>(request->port));
    }
    if (endpoints.empty()) {
      co_await reply(client, http_error(403, "Forbidden",
                                        request->host + " is (or resolves to) " +
                                            resolved.addresses.front().to_string() +
                                            ", a loopback, link-local or private address, "
                                            "which sprites cannot reach"));
      co_return;
    }
    tcp::socket upstream(self->executor);
    deadline.expires_after(kConnectTimeout);
    deadline.async_wait([&upstream](boost::system::error_code ec) {
      if (!ec) upstream.cancel(ec);
    });
    auto [cec, endpoint] = co_await asio::async_connect(upstream, endpoints, kAsTuple);
    deadline.cancel();
    if (cec) {
      co_await reply(
          client, http_error(502, "Bad Gateway",
                             "cannot connect to " + request->host + ":" +
                                 std::to_string(request->port) + ": " +
                                 (cec == asio::error::operation_aborted ? std::string("timed out")
                                                                        : cec.message())));
      co_return;
    }
    upstream.set_option(tcp::no_delay(true));
    std::string first;  // what goes upstream before the relay
    std::string rest = buffer.substr(head_size);
    if (request->connect) {
      std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
      auto [wec, wn] = co_await asio::async_write(client, asio::buffer(established), kAsTuple);
      if (wec) co_return;
      first = std::move(rest);
    } else {
      first = proto::forwarded_head(*request) + rest;
    }
    if (!first.empty()) {
      auto [wec, wn] = co_await asio::async_write(upstream, asio::buffer(first), kAsTuple);
      if (wec) co_return;
    }
    // The policy may have changed while we resolved and connected.
    if (!self->refusal(*sprite, request->host).empty() || sprite->closed) co_return;
    auto relay = std::make_shared<TcpRelay>(std::move(client), std::move(upstream));
    const std::uint64_t id = sprite->next_open++;
    sprite->open[id] = {request->host, relay};
    co_await relay->run();
    sprite->open.erase(id);
  }

  // --- the resolver --------------------------------------------------------

  static asio::awaitable<void> dns_loop(std::shared_ptr<Core> self,
                                        std::shared_ptr<SpriteEgress> sprite) {
    std::array<char, 4096> datagram{};
    while (!sprite->closed) {
      udp::endpoint from;
      auto [ec, n] =
          co_await sprite->dns.async_receive_from(asio::buffer(datagram), from, kAsTuple);
      if (ec == asio::error::operation_aborted || sprite->closed) break;
      if (ec) continue;
      asio::co_spawn(self->executor, answer(self, sprite, std::string(datagram.data(), n), from),
                     asio::detached);
    }
  }

  static asio::awaitable<void> answer(std::shared_ptr<Core> self,
                                      std::shared_ptr<SpriteEgress> sprite, std::string datagram,
                                      udp::endpoint from) {
    namespace dns = proto::dns;
    std::string response;
    auto only = [](dns::Rcode rcode) {
      dns::Answer answer;
      answer.rcode = rcode;
      return answer;
    };
    auto query = dns::parse_query(datagram);
    if (!query) {
      auto id = dns::query_id(datagram);
      if (!id) co_return;
      response = dns::build_error(*id, dns::Rcode::format_error);
    } else if (query->opcode != 0) {
      response = dns::build_response(*query, only(dns::Rcode::not_implemented));
    } else if (!self->refusal(*sprite, query->question.name).empty()) {
      response = dns::build_response(*query, only(dns::Rcode::refused));
    } else {
      dns::Answer result;
      const auto type = query->question.type;
      if (type == dns::kTypeA || type == dns::kTypeAAAA) {
        Resolved resolved = co_await resolve(self, query->question.name);
        if (resolved.addresses.empty()) {
          result.rcode = resolved.not_found ? dns::Rcode::name_error : dns::Rcode::server_failure;
        }
        sprite->remember(query->question.name, resolved.addresses);
        for (const auto& a : resolved.addresses) {
          if (a.is_v4()) result.ipv4.push_back(a.to_v4().to_bytes());
          if (a.is_v6()) result.ipv6.push_back(a.to_v6().to_bytes());
        }
      }
      // Other types: no records (NODATA); the name exists as far as we say.
      response = dns::build_response(*query, result);
    }
    if (sprite->closed) co_return;
    co_await sprite->dns.async_send_to(asio::buffer(response), from, kAsTuple);
  }
};

std::optional<Egress::Options> Egress::parse_options(const std::vector<std::string>& resolve,
                                                     std::string& error) {
  Options options;
  for (const std::string& entry : resolve) {
    auto equals = entry.find('=');
    std::string name = proto::normalize_host(entry.substr(0, equals));
    if (equals == std::string::npos || name.empty()) {
      error = "--resolve wants NAME=IP[,IP...], not '" + entry + "'";
      return std::nullopt;
    }
    std::string rest = entry.substr(equals + 1);
    std::size_t start = 0;
    do {
      std::size_t comma = rest.find(',', start);
      std::string ip = rest.substr(start, comma == std::string::npos ? comma : comma - start);
      boost::system::error_code ec;
      asio::ip::make_address(ip, ec);
      if (ec) {
        error = "--resolve " + entry + ": '" + ip + "' is not an IP address";
        return std::nullopt;
      }
      options.hosts[name].push_back(ip);
      start = comma == std::string::npos ? comma : comma + 1;
    } while (start != std::string::npos);
  }
  return options;
}

Egress::Egress(Fleet& fleet, NetworkPolicies& policies, Options options)
    : fleet_(fleet),
      policies_(policies),
      core_(std::make_shared<Core>(fleet.executor(), policies, std::move(options))) {
  std::weak_ptr<Core> weak = core_;
  fleet_.on_machine_up = [weak](const std::string& name, const std::shared_ptr<Machine>& machine) {
    if (auto core = weak.lock()) core->attach(name, machine);
  };
  observer_ = policies_.observe([weak](const std::string& name) {
    if (auto core = weak.lock()) core->policy_changed(name);
  });
}

Egress::~Egress() {
  fleet_.on_machine_up = nullptr;
  policies_.unobserve(observer_);
  for (auto& [name, weak] : core_->sprites) {
    if (auto sprite = weak.lock()) sprite->close();
  }
}

}  // namespace spritescript::engine
