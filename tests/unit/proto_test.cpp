// src/proto: value encodings and error bodies (shared/spec/sprites-api.md).
#include <catch2/catch.hpp>

#include <chrono>

#include <boost/json.hpp>

#include "proto/api_error.hpp"
#include "proto/network_policy.hpp"
#include "proto/proxy_request.hpp"
#include "proto/signals.hpp"
#include "proto/values.hpp"

using namespace std::chrono_literals;
namespace proto = spritescript::proto;

TEST_CASE("Go durations parse in every unit and combination", "[proto]") {
  CHECK(proto::parse_go_duration("5s") == 5s);
  CHECK(proto::parse_go_duration("1m30s") == 90s);
  CHECK(proto::parse_go_duration("500ms") == 500ms);
  CHECK(proto::parse_go_duration("0s") == 0s);
  CHECK(proto::parse_go_duration("0") == 0s);
  CHECK(proto::parse_go_duration("1h0m0s") == 1h);
  CHECK(proto::parse_go_duration("1.5h") == 90min);
  CHECK(proto::parse_go_duration("2us") == 2us);
  CHECK(proto::parse_go_duration("2\xC2\xB5s") == 2us);
  CHECK(proto::parse_go_duration("7ns") == 7ns);
  CHECK(proto::parse_go_duration("-1m") == -1min);
  CHECK(proto::parse_go_duration(".5s") == 500ms);
}

TEST_CASE("malformed Go durations are refused", "[proto]") {
  for (const char* bad : {"", "5", "s", "5x", "1m30", "--1s", "1.s.", "99999999999h"}) {
    INFO(bad);
    CHECK_FALSE(proto::parse_go_duration(bad));
  }
}

TEST_CASE("durations format like Go's Duration.String", "[proto]") {
  CHECK(proto::format_go_duration(0s) == "0s");
  CHECK(proto::format_go_duration(5s) == "5s");
  CHECK(proto::format_go_duration(90s) == "1m30s");
  CHECK(proto::format_go_duration(1h) == "1h0m0s");
  CHECK(proto::format_go_duration(500ms) == "500ms");
  CHECK(proto::format_go_duration(1500us) == "1.5ms");
  CHECK(proto::format_go_duration(1500ns) == "1.5\xC2\xB5s");
  CHECK(proto::format_go_duration(7ns) == "7ns");
  CHECK(proto::format_go_duration(90500ms) == "1m30.5s");
  CHECK(proto::format_go_duration(-2s) == "-2s");
  const std::chrono::nanoseconds samples[] = {0ns, 7ns, 1500ns, 1500us, 90500ms, 3h + 7min + 1s};
  for (auto d : samples) {
    CHECK(proto::parse_go_duration(proto::format_go_duration(d)) == d);
  }
}

TEST_CASE("RFC 3339 timestamps round-trip in UTC", "[proto]") {
  auto t = proto::parse_rfc3339("2026-01-13T10:30:00Z");
  REQUIRE(t);
  CHECK(proto::format_rfc3339(*t) == "2026-01-13T10:30:00Z");
  auto frac = proto::parse_rfc3339("2026-01-13T10:30:00.25Z");
  REQUIRE(frac);
  CHECK(*frac - *t == 250ms);
  CHECK(proto::format_rfc3339(*frac) == "2026-01-13T10:30:00.25Z");
  auto offset = proto::parse_rfc3339("2026-01-13T12:30:00+02:00");
  REQUIRE(offset);
  CHECK(*offset == *t);
  for (const char* bad :
       {"", "2026-01-13", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-13T10:30:00",
        "2026-01-13T10:30:00.Z", "2026-01-13T10:30:00+0200"}) {
    INFO(bad);
    CHECK_FALSE(proto::parse_rfc3339(bad));
  }
}

TEST_CASE("query booleans and octal modes", "[proto]") {
  CHECK(proto::parse_query_bool("true") == true);
  CHECK(proto::parse_query_bool("1") == true);
  CHECK(proto::parse_query_bool("false") == false);
  CHECK(proto::parse_query_bool("0") == false);
  CHECK_FALSE(proto::parse_query_bool("yes"));
  CHECK(proto::parse_octal_mode("0644") == 0644u);
  CHECK(proto::parse_octal_mode("755") == 0755u);
  CHECK_FALSE(proto::parse_octal_mode("0849"));
  CHECK_FALSE(proto::parse_octal_mode("077777"));
  CHECK(proto::format_octal_mode(0644) == "0644");
}

TEST_CASE("error bodies parse the way the SDKs read them", "[proto]") {
  auto rate = proto::parse_error_body(
      429,
      R"({"error":"sprite_creation_rate_limited","message":"Sprite creation rate limit exceeded",
              "limit":10,"window_seconds":60,"retry_after_seconds":42,"current_count":3})");
  CHECK(rate.code == "sprite_creation_rate_limited");
  CHECK(rate.message == "Sprite creation rate limit exceeded");
  CHECK(rate.retry_after_seconds == 42);
  CHECK(rate.limit == 10);
  CHECK(rate.window_seconds == 60);
  CHECK(rate.current_count == 3);
  CHECK(proto::parse_error_body(404, R"({"error":"sprite not found"})").message ==
        "sprite not found");
  CHECK(proto::parse_error_body(422, R"({"errors":["invalid a","invalid b"]})").message ==
        "invalid a; invalid b");
  CHECK(proto::parse_error_body(502, "Bad Gateway\n").message == "Bad Gateway");
  CHECK(proto::parse_error_body(500, "").message == "API error (status 500)");
  CHECK(proto::parse_error_body(500, "{}").message == "API error (status 500)");
}

TEST_CASE("a server's error body is the recommended shape and parses back", "[proto]") {
  proto::ApiError e;
  e.status = 409;
  e.code = "sprite_exists";
  e.message = "a sprite named dev already exists";
  std::string body = proto::error_body(e);
  CHECK(body == R"({"error":"sprite_exists","message":"a sprite named dev already exists"})");
  auto back = proto::parse_error_body(409, body);
  CHECK(back.code == e.code);
  CHECK(back.message == e.message);
  proto::ApiError bare;
  bare.status = 404;
  CHECK(proto::error_body(bare) == R"({"error":"not_found","message":"error"})");
}

TEST_CASE("HTTP statuses map to the error kinds of docs/errors.md", "[proto]") {
  CHECK(proto::kind_for_status(400) == "usage");
  CHECK(proto::kind_for_status(401) == "unauthorized");
  CHECK(proto::kind_for_status(403) == "unauthorized");
  CHECK(proto::kind_for_status(404) == "not_found");
  CHECK(proto::kind_for_status(409) == "conflict");
  CHECK(proto::kind_for_status(422) == "usage");
  CHECK(proto::kind_for_status(429) == "rate_limited");
  CHECK(proto::kind_for_status(500) == "api");
}

TEST_CASE("signal names are read with or without SIG, in any case, or as numbers", "[proto]") {
  using spritescript::proto::parse_signal;
  using spritescript::proto::signal_name;
  CHECK(parse_signal("TERM") == 15);
  CHECK(parse_signal("SIGTERM") == 15);
  CHECK(parse_signal("sigterm") == 15);
  CHECK(parse_signal("kill") == 9);
  CHECK(parse_signal("9") == 9);
  CHECK(parse_signal("WINCH") == 28);
  CHECK_FALSE(parse_signal("").has_value());
  CHECK_FALSE(parse_signal("SIG").has_value());
  CHECK_FALSE(parse_signal("NOPE").has_value());
  CHECK_FALSE(parse_signal("0").has_value());
  CHECK_FALSE(parse_signal("65").has_value());
  CHECK_FALSE(parse_signal("9x").has_value());
  CHECK(signal_name(15) == "SIGTERM");
  CHECK(signal_name(2) == "SIGINT");
  CHECK(signal_name(40) == "SIG40");
}

namespace {

proto::NetworkPolicy policy_of(const char* json_text) {
  std::string error;
  auto policy = proto::parse_network_policy(boost::json::parse(json_text), error);
  INFO(error);
  REQUIRE(policy);
  return *policy;
}

std::string policy_error(const char* json_text) {
  std::string error;
  auto policy = proto::parse_network_policy(boost::json::parse(json_text), error);
  CHECK_FALSE(policy);
  return error;
}

}  // namespace

TEST_CASE("a network policy: the most specific rule decides", "[proto][policy]") {
  auto policy = policy_of(R"({"rules":[
    {"domain":"*","action":"deny"},
    {"domain":"*.example.com","action":"allow"},
    {"domain":"bad.example.com","action":"deny"},
    {"domain":"*.private.example.com","action":"deny"},
    {"domain":"open.private.example.com","action":"allow"}]})");
  CHECK(proto::decide(policy, "a.example.com").allowed);
  CHECK(proto::decide(policy, "deep.a.example.com").allowed);
  CHECK(proto::decide(policy, "A.Example.COM.").allowed);
  CHECK_FALSE(proto::decide(policy, "example.com").allowed);  // "*." is below, not the name
  CHECK_FALSE(proto::decide(policy, "bad.example.com").allowed);
  CHECK(proto::decide(policy, "x.bad.example.com").allowed);
  CHECK_FALSE(proto::decide(policy, "x.private.example.com").allowed);
  CHECK(proto::decide(policy, "open.private.example.com").allowed);
  CHECK_FALSE(proto::decide(policy, "other.org").allowed);
  CHECK(proto::decide(policy, "a.example.com").rule == "*.example.com");
  CHECK(proto::decide(policy, "other.org").rule == "*");
}

TEST_CASE("a network policy: no match denies, no rules allows, deny wins a tie",
          "[proto][policy]") {
  auto allow_one = policy_of(R"({"rules":[{"domain":"github.com","action":"allow"}]})");
  CHECK(proto::decide(allow_one, "github.com").allowed);
  CHECK_FALSE(proto::decide(allow_one, "api.github.com").allowed);
  CHECK(proto::decide(allow_one, "api.github.com").rule.empty());
  CHECK(proto::decide(policy_of(R"({"rules":[]})"), "anything.test").allowed);
  auto tie = policy_of(R"({"rules":[{"domain":"x.test","action":"deny"},
                                    {"domain":"x.test","action":"allow"}]})");
  CHECK_FALSE(proto::decide(tie, "x.test").allowed);
  auto tie_reversed = policy_of(R"({"rules":[{"domain":"x.test","action":"allow"},
                                             {"domain":"x.test","action":"deny"}]})");
  CHECK_FALSE(proto::decide(tie_reversed, "x.test").allowed);
}

TEST_CASE("a network policy: include defaults allows the common dev hosts", "[proto][policy]") {
  auto policy = policy_of(R"({"rules":[{"include":"defaults"},
                                       {"domain":"registry.npmjs.org","action":"deny"}]})");
  CHECK(proto::decide(policy, "github.com").allowed);
  CHECK(proto::decide(policy, "raw.githubusercontent.com").allowed);
  CHECK(proto::decide(policy, "pypi.org").allowed);
  CHECK(proto::decide(policy, "api.anthropic.com").allowed);
  CHECK_FALSE(proto::decide(policy, "registry.npmjs.org").allowed);  // exact beats *.npmjs.org
  CHECK_FALSE(proto::decide(policy, "evil.test").allowed);
  // Round trip: the include stays an include.
  CHECK(boost::json::serialize(proto::to_json(policy)) ==
        R"({"rules":[{"include":"defaults"},{"domain":"registry.npmjs.org","action":"deny"}]})");
}

TEST_CASE("invalid network policies say which rule and what is wrong", "[proto][policy]") {
  CHECK(policy_error(R"([])").find("JSON object") != std::string::npos);
  CHECK(policy_error(R"({})").find("\"rules\"") != std::string::npos);
  CHECK(policy_error(R"({"rules":[{"domain":"a.test"}]})").find("rule 1: action") == 0);
  CHECK(policy_error(R"({"rules":[{"include":"defaults"},{"include":"all"}]})")
            .find("rule 2: unknown include") == 0);
  CHECK(policy_error(R"({"rules":[{"domain":"a.test","include":"defaults"}]})").find("both") !=
        std::string::npos);
  CHECK(policy_error(R"({"rules":[{"action":"allow"}]})").find("needs") != std::string::npos);
  for (const char* bad : {"a..test", "*a.test", "a.*.test", "a test", "-", "**", "*.", ""}) {
    INFO(bad);
    std::string text = std::string(R"({"rules":[{"action":"allow","domain":")") + bad + "\"}]}";
    std::string error;
    CHECK_FALSE(proto::parse_network_policy(boost::json::parse(text), error));
  }
  CHECK(proto::normalize_host("Allowed.Test.") == "allowed.test");
  CHECK(proto::normalize_host("bad host").empty());
}

TEST_CASE("proxy requests: CONNECT and absolute URLs parse, the rest is refused",
          "[proto][egress]") {
  std::string error;
  auto connect = proto::parse_proxy_request(
      "CONNECT github.com:443 HTTP/1.1\r\nHost: github.com:443\r\nUser-Agent: curl", error);
  REQUIRE(connect);
  CHECK(connect->connect);
  CHECK(connect->host == "github.com");
  CHECK(connect->port == 443);
  auto v6 = proto::parse_proxy_request("CONNECT [2001:db8::1]:8443 HTTP/1.1", error);
  REQUIRE(v6);
  CHECK(v6->host == "2001:db8::1");
  CHECK(v6->port == 8443);

  auto get = proto::parse_proxy_request(
      "GET http://user:pw@Deb.Debian.org/debian/dists?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\n"
      "Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nProxy-Other: x\r\n"
      "Accept: */*",
      error);
  REQUIRE(get);
  CHECK_FALSE(get->connect);
  CHECK(get->host == "Deb.Debian.org");
  CHECK(get->port == 80);
  CHECK(get->target == "/debian/dists?x=1");
  CHECK(proto::forwarded_head(*get) ==
        "GET /debian/dists?x=1 HTTP/1.1\r\nHost: deb.debian.org\r\nAccept: */*\r\n"
        "Connection: close\r\n\r\n");
  auto bare = proto::parse_proxy_request("GET http://example.test:8080 HTTP/1.0", error);
  REQUIRE(bare);
  CHECK(bare->target == "/");
  CHECK(proto::forwarded_head(*bare) ==
        "GET / HTTP/1.0\r\nHost: example.test:8080\r\nConnection: close\r\n\r\n");

  for (const char* bad :
       {"GET / HTTP/1.1", "GET https://example.test/ HTTP/1.1", "CONNECT example.test HTTP/1.1",
        "CONNECT example.test:99999 HTTP/1.1", "GET http://:80/ HTTP/1.1", "NONSENSE",
        "GET http://a.test/ SPDY/3", "GET http://a.test/ HTTP/1.1\r\nno colon here",
        // Line breaks that would reach the origin as headers of their own (found by fuzzing):
        "GET http://a.test/ HTTP/1.1\r\nX-A: 1\nInjected: 2",
        "GET http://a.test/\nInjected: 2 HTTP/1.1", "GET http://a.test/ HTTP/1.1\r\nBad Name: 1"}) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(proto::parse_proxy_request(bad, error));
    CHECK_FALSE(error.empty());
  }
}
