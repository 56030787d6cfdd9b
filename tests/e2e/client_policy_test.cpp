// The async C++ client's policy calls (spec §8) against a real local
// engine: a new sprite's empty network policy, set/get round trips
// (include defaults, wildcards, "*"), invalid policies refused with the
// server's words and the old policy kept, unknown sprites, the privileges
// and resources policies stored, read back and deleted; and a server that
// answers a set with 200 instead of 204 (both SDKs take it as a failure).
// Timeouts are hang guards only.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace spritescript;
using Catch::Matchers::Contains;
using client::ErrorKind;
using e2e::run;

constexpr const char* kSprite = "box";

template <class T>
client::Error error_of(asio::io_context& io, asio::awaitable<T> work) {
  try {
    run(io, std::move(work));
  } catch (const client::Error& e) {
    return e;
  }
  FAIL("the call succeeded; an error was expected");
  return client::Error(ErrorKind::api, "unreachable");
}

struct Fixture {
  e2e::TempDir state;
  e2e::Engine engine{state};
  asio::io_context io;
  client::Client api{io.get_executor(), e2e::client_config(engine.port())};

  Fixture() {
    proto::CreateSpriteRequest request;
    request.name = kSprite;
    run(io, api.create_sprite(request));
  }
};

proto::PolicyRule domain_rule(std::string domain, std::string action) {
  proto::PolicyRule r;
  r.domain = std::move(domain);
  r.action = std::move(action);
  return r;
}

proto::PolicyRule include_rule(std::string include) {
  proto::PolicyRule r;
  r.include = std::move(include);
  return r;
}

// "domain:action" or "include:name" for each rule, in order.
std::vector<std::string> shown(const proto::NetworkPolicy& policy) {
  std::vector<std::string> out;
  for (const auto& r : policy.rules) {
    out.push_back(r.include.empty() ? r.domain + ":" + r.action : "include:" + r.include);
  }
  return out;
}

json::value parsed(const std::string& text) {
  return json::parse(text);
}

}  // namespace

TEST_CASE("client policy: a new sprite is unrestricted, set and get round trip",
          "[client][policy]") {
  Fixture f;
  CHECK(run(f.io, f.api.get_network_policy(kSprite)).rules.empty());

  proto::NetworkPolicy policy;
  policy.rules = {include_rule("defaults"), domain_rule("example.com", "allow"),
                  domain_rule("*.example.com", "allow"), domain_rule("blocked.example.com", "deny"),
                  domain_rule("*", "deny")};
  run(f.io, f.api.set_network_policy(kSprite, policy));
  const std::vector<std::string> expected = {"include:defaults", "example.com:allow",
                                             "*.example.com:allow", "blocked.example.com:deny",
                                             "*:deny"};
  CHECK(shown(run(f.io, f.api.get_network_policy(kSprite))) == expected);

  // Setting it again (the retried case) changes nothing.
  run(f.io, f.api.set_network_policy(kSprite, policy));
  CHECK(shown(run(f.io, f.api.get_network_policy(kSprite))) == expected);

  // Replaced, not merged.
  proto::NetworkPolicy narrow;
  narrow.rules = {domain_rule("*.npmjs.org", "allow")};
  run(f.io, f.api.set_network_policy(kSprite, narrow));
  CHECK(shown(run(f.io, f.api.get_network_policy(kSprite))) ==
        std::vector<std::string>{"*.npmjs.org:allow"});

  // No rules: unrestricted again.
  proto::NetworkPolicy none;
  run(f.io, f.api.set_network_policy(kSprite, none));
  CHECK(run(f.io, f.api.get_network_policy(kSprite)).rules.empty());
}

TEST_CASE(
    "client policy: an invalid policy is refused with the server's words and the old one stays",
    "[client][policy][errors]") {
  Fixture f;
  proto::NetworkPolicy good;
  good.rules = {domain_rule("github.com", "allow"), domain_rule("*", "deny")};
  run(f.io, f.api.set_network_policy(kSprite, good));

  auto both = domain_rule("github.com", "allow");
  both.include = "defaults";
  const std::vector<proto::PolicyRule> bad_rules = {
      both,                                  // both domain and include
      proto::PolicyRule{},                   // neither
      domain_rule("github.com", "block"),    // unknown action
      domain_rule("github.com", ""),         // no action
      include_rule("everything"),            // unknown include
      domain_rule("exa mple.com", "allow"),  // not a domain pattern
      domain_rule("git*.com", "allow"),      // a wildcard that is not "*." or "*"
  };
  for (const auto& rule : bad_rules) {
    proto::NetworkPolicy bad;
    bad.rules = {domain_rule("ok.example.com", "allow"), rule};
    INFO("rule: domain='" << rule.domain << "' action='" << rule.action << "' include='"
                          << rule.include << "'");
    auto e = error_of(f.io, f.api.set_network_policy(kSprite, bad));
    CHECK(e.kind() == ErrorKind::usage);
    CHECK(e.status() == 400);
    CHECK(e.code() == "invalid_policy");
    CHECK_THAT(std::string(e.what()),
               Contains("set network policy of box: ") && Contains("(HTTP 400)"));
    // The server's message, not a generic one.
    CHECK_THAT(std::string(e.what()), !Contains("API error (status"));
  }
  CHECK(shown(run(f.io, f.api.get_network_policy(kSprite))) ==
        std::vector<std::string>{"github.com:allow", "*:deny"});
}

TEST_CASE("client policy: unknown sprites are not_found", "[client][policy][errors]") {
  Fixture f;
  const std::string ghost = "no-such-sprite";
  auto e = error_of(f.io, f.api.get_network_policy(ghost));
  CHECK(e.kind() == ErrorKind::not_found);
  CHECK_THAT(std::string(e.what()), Contains("get network policy of no-such-sprite"));
  proto::NetworkPolicy policy;
  policy.rules = {domain_rule("github.com", "allow")};
  CHECK(error_of(f.io, f.api.set_network_policy(ghost, policy)).kind() == ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.get_privileges(ghost)).kind() == ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.set_resources(ghost, R"({"memory":{"limit_mb":256}})")).kind() ==
        ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.delete_resources(ghost)).kind() == ErrorKind::not_found);
}

TEST_CASE("client policy: privileges and resources are stored, read back and deleted",
          "[client][policy]") {
  Fixture f;
  SECTION("privileges") {
    const json::value initial = parsed(run(f.io, f.api.get_privileges(kSprite)));
    REQUIRE(initial.is_object());
    const std::string wanted =
        R"({"profile":"minimal","devices":["/dev/fuse"],"noNewPrivileges":true})";
    const json::value stored = parsed(run(f.io, f.api.set_privileges(kSprite, wanted)));
    CHECK(stored == parsed(wanted));
    CHECK(parsed(run(f.io, f.api.get_privileges(kSprite))) == parsed(wanted));
    run(f.io, f.api.delete_privileges(kSprite));
    CHECK(parsed(run(f.io, f.api.get_privileges(kSprite))) == initial);
    // Deleting the default is fine.
    run(f.io, f.api.delete_privileges(kSprite));
  }
  SECTION("resources") {
    const json::value initial = parsed(run(f.io, f.api.get_resources(kSprite)));
    REQUIRE(initial.is_object());
    const std::string wanted = R"({"memory":{"limit_mb":512,"autoscale":true}})";
    CHECK(parsed(run(f.io, f.api.set_resources(kSprite, wanted))) == parsed(wanted));
    CHECK(parsed(run(f.io, f.api.get_resources(kSprite))) == parsed(wanted));
    run(f.io, f.api.delete_resources(kSprite));
    CHECK(parsed(run(f.io, f.api.get_resources(kSprite))) == initial);
  }
}

TEST_CASE("client policy: a set answered 200 instead of 204 is a failure", "[client][policy]") {
  // A server as the Docs describe it: 200 with the policy echoed back.
  asio::io_context io;
  asio::ip::tcp::acceptor server(io, {asio::ip::make_address("127.0.0.1"), 0});
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n"
      "{\"rules\":[]}";
  int served = 0;
  std::function<void()> accept = [&] {
    server.async_accept([&](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto socket = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      auto buffer = std::make_shared<std::string>();
      asio::async_read_until(
          *socket, asio::dynamic_buffer(*buffer), "\r\n\r\n",
          [&, socket, buffer](boost::system::error_code, std::size_t) {
            ++served;
            asio::async_write(*socket, asio::buffer(answer),
                              [socket](boost::system::error_code, std::size_t) {
                                boost::system::error_code ignored;
                                socket->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
                              });
          });
      accept();
    });
  };
  accept();
  client::Client api(io.get_executor(), e2e::client_config(server.local_endpoint().port()));
  proto::NetworkPolicy none;
  auto e = error_of(io, api.set_network_policy(kSprite, none));
  CHECK(e.kind() == ErrorKind::protocol);
  CHECK_THAT(std::string(e.what()), Contains("HTTP 200 instead of 204"));
  CHECK(served == 1);
  // The same server's GET answer is a policy.
  CHECK(run(io, api.get_network_policy(kSprite)).rules.empty());
}
