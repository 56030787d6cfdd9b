// src/proto/dns: the messages of the engine's stub resolver (RFC 1035, 6891).
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "proto/dns.hpp"

namespace dns = spritescript::proto::dns;
using namespace std::string_literals;
using Strings = std::vector<std::string>;

namespace {

// "d2 9a 01 20" -> the bytes; spaces and newlines are ignored.
std::string from_hex(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) continue;
    if (high < 0) {
      high = v;
    } else {
      out += static_cast<char>(high << 4 | v);
      high = -1;
    }
  }
  return out;
}

std::uint8_t byte(const std::string& s, std::size_t i) {
  return static_cast<std::uint8_t>(s[i]);
}

const std::array<std::uint8_t, 16> kLoopback6 = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
const std::array<std::uint8_t, 16> kDoc6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0,    0,    0,    0,    0, 0, 0, 5};

}  // namespace

TEST_CASE("DNS A queries round-trip, with and without EDNS", "[dns]") {
  for (bool edns : {false, true}) {
    INFO("edns " << edns);
    auto wire = dns::build_query(0x1234, "allowed.test", dns::kTypeA, edns);
    std::string error;
    auto q = dns::parse_query(wire, &error);
    INFO(error);
    REQUIRE(q);
    CHECK(q->id == 0x1234);
    CHECK(q->recursion_desired);
    CHECK(q->opcode == 0);
    CHECK(q->question.name == "allowed.test");
    CHECK(q->question.type == dns::kTypeA);
    CHECK(q->question.qclass == dns::kClassIN);
    CHECK(q->has_edns == edns);

    dns::Answer answer;
    answer.ipv4 = {{1, 2, 3, 4}, {10, 0, 0, 1}};
    answer.ipv6 = {kLoopback6};  // not asked for: left out
    auto response = dns::build_response(*q, answer);
    CHECK(byte(response, 2) == 0x81);             // QR, opcode 0, AA clear, RD
    CHECK(byte(response, 3) == 0x80);             // RA, NOERROR
    CHECK(byte(response, 11) == (edns ? 1 : 0));  // ARCOUNT: the OPT
    // header, question ("allowed.test" is 14 bytes), 2 A records, OPT
    CHECK(response.size() == 12 + 14 + 4 + 2 * 16 + (edns ? 11 : 0));
    auto parsed = dns::parse_response(response);
    REQUIRE(parsed);
    CHECK(parsed->id == 0x1234);
    CHECK(parsed->rcode == dns::Rcode::no_error);
    CHECK_FALSE(parsed->truncated);
    CHECK(parsed->question == "allowed.test");
    CHECK(parsed->addresses == Strings{"1.2.3.4", "10.0.0.1"});
  }
}

TEST_CASE("DNS AAAA queries round-trip, with and without EDNS", "[dns]") {
  for (bool edns : {false, true}) {
    INFO("edns " << edns);
    auto q = dns::parse_query(dns::build_query(7, "v6.allowed.test", dns::kTypeAAAA, edns));
    REQUIRE(q);
    CHECK(q->question.type == dns::kTypeAAAA);
    CHECK(q->has_edns == edns);
    dns::Answer answer;
    answer.ipv4 = {{1, 2, 3, 4}};
    answer.ipv6 = {kLoopback6, kDoc6};
    auto parsed = dns::parse_response(dns::build_response(*q, answer));
    REQUIRE(parsed);
    CHECK(parsed->id == 7);
    CHECK(parsed->question == "v6.allowed.test");
    CHECK(parsed->addresses == Strings{"::1", "2001:db8::5"});
  }
}

TEST_CASE("DNS REFUSED, NXDOMAIN and bare error responses", "[dns]") {
  auto q = dns::parse_query(dns::build_query(0xBEEF, "denied.example", dns::kTypeA));
  REQUIRE(q);
  for (auto rcode : {dns::Rcode::refused, dns::Rcode::name_error}) {
    dns::Answer answer;
    answer.rcode = rcode;
    answer.ipv4 = {{1, 2, 3, 4}};  // only a NOERROR answer carries records
    auto response = dns::build_response(*q, answer);
    CHECK((byte(response, 3) & 0xF) == static_cast<int>(rcode));
    auto parsed = dns::parse_response(response);
    REQUIRE(parsed);
    CHECK(parsed->id == 0xBEEF);
    CHECK(parsed->rcode == rcode);
    CHECK(parsed->question == "denied.example");
    CHECK(parsed->addresses.empty());
  }

  auto error = dns::build_error(0x0102, dns::Rcode::format_error);
  CHECK(error == "\x01\x02\x80\x81\0\0\0\0\0\0\0\0"s);  // QR, RA, FORMERR, every count 0
  auto parsed = dns::parse_response(error);
  REQUIRE(parsed);
  CHECK(parsed->id == 0x0102);
  CHECK(parsed->rcode == dns::Rcode::format_error);
  CHECK(parsed->question.empty());

  // Other opcodes parse (the caller answers NOTIMP) and are echoed.
  auto notify = dns::build_query(9, "a.test", dns::kTypeA);
  notify[2] = static_cast<char>(4 << 3);  // NOTIFY, RD clear
  auto nq = dns::parse_query(notify);
  REQUIRE(nq);
  CHECK(nq->opcode == 4);
  CHECK_FALSE(nq->recursion_desired);
  auto notimp = dns::build_response(*nq, {dns::Rcode::not_implemented, {}, {}, 30});
  CHECK(byte(notimp, 2) == (0x80 | 4 << 3));
  CHECK((byte(notimp, 3) & 0xF) == 4);

  // A name no parsed query can have: a bare SERVFAIL rather than a bad message.
  dns::Query bad;
  bad.id = 5;
  bad.question.name = "a..b";
  CHECK(dns::build_response(bad, {}) == dns::build_error(5, dns::Rcode::server_failure));
}

TEST_CASE("DNS names are lowercased and checked against the length limits", "[dns]") {
  auto q = dns::parse_query(dns::build_query(1, "AlLoWeD.TeSt", dns::kTypeA));
  REQUIRE(q);
  CHECK(q->question.name == "allowed.test");
  auto parsed = dns::parse_response(dns::build_response(*q, {}));
  REQUIRE(parsed);
  CHECK(parsed->question == "allowed.test");

  auto utf8 = dns::parse_query(dns::build_query(1, "Caf\xC3\x89.test", dns::kTypeA));
  REQUIRE(utf8);
  CHECK(utf8->question.name == "caf\xC3\x89.test");  // only ASCII is folded

  std::string l63(63, 'a'), l61(61, 'b');
  std::string longest = l63 + "." + l63 + "." + l63 + "." + l61;  // 253 characters
  REQUIRE(longest.size() == 253);
  auto lq = dns::parse_query(dns::build_query(1, longest, dns::kTypeA));
  REQUIRE(lq);
  CHECK(lq->question.name == longest);
  CHECK(dns::parse_query(dns::build_query(1, longest + ".", dns::kTypeA)));  // trailing dot

  CHECK(dns::encode_name("") == "\0"s);
  CHECK(dns::encode_name(".") == "\0"s);
  CHECK(dns::encode_name("a.bc.") ==
        "\x01"
        "a\x02"
        "bc\0"s);
  for (std::string bad : {longest + "c", "a..b"s, ".a"s, "a.."s, std::string(64, 'x') + ".test"}) {
    INFO(bad);
    CHECK_FALSE(dns::encode_name(bad));
    CHECK(dns::build_query(1, bad, dns::kTypeA).empty());
  }
}

TEST_CASE("malformed DNS queries are rejected with a reason", "[dns]") {
  const std::string header = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"s;  // QDCOUNT 1
  const std::string tail = "\x00\x01\x00\x01"s;  // type A, class IN
  auto valid = dns::build_query(0x1234, "example.com", dns::kTypeA, true);
  auto response = valid;
  response[2] = static_cast<char>(0x81);
  auto qd0 = valid, qd2 = valid;
  qd0[5] = 0;
  qd2[5] = 2;
  auto two_opts = valid + valid.substr(valid.size() - 11);
  two_opts[11] = 2;

  const std::pair<const char*, std::string> cases[] = {
      {"empty", ""},
      {"short header", "\x12\x34\x01\x00\x00"s},
      {"a response", response},
      {"QDCOUNT 0", qd0},
      {"QDCOUNT 2", qd2},
      {"header only", header},
      {"label running past the end", header + "\x3f"
                                              "abc"s},
      {"label length 64", header + "\x40" + std::string(64, 'a') + "\0"s + tail},
      {"reserved label type 0x80", header + "\x80\x01"s + tail},
      {"no type and class", header + "\x01"
                                     "a\0"s},
      {"pointer to itself", header + "\xc0\x0c"s + tail},
      {"label then pointer back to it", header +
                                            "\x01"
                                            "a\xc0\x0c"s +
                                            tail},
      {"pointer forward", header + "\xc0\x20"s + tail + std::string(32, '\0')},
      {"pointer into the header", header + "\xc0\x02"s + tail},
      {"'.' in a label", header +
                             "\x03"
                             "a.b\0"s +
                             tail},
      {"space in a label", header +
                               "\x03"
                               "a b\0"s +
                               tail},
      {"NUL in a label", header +
                             "\x03"
                             "a\0b\0"s +
                             tail},
      {"two OPT records", two_opts},
      {"OPT with a name", valid.substr(0, valid.size() - 11) +
                              "\x01"
                              "a\0"s +
                              valid.substr(valid.size() - 10)},
  };
  for (const auto& [what, wire] : cases) {
    INFO(what);
    std::string error;
    CHECK_FALSE(dns::parse_query(wire, &error));
    CHECK_FALSE(error.empty());
  }
  std::string long_name;  // 4 labels of 63: 255 characters
  for (int i = 0; i < 4; ++i) long_name += "\x3f" + std::string(63, 'a');
  std::string error;
  CHECK_FALSE(dns::parse_query(header + long_name + "\0"s + tail, &error));
  CHECK(error == "name too long");

  // Every proper prefix of a valid query is truncated somewhere.
  for (std::size_t n = 0; n < valid.size(); ++n) {
    INFO(n);
    CHECK_FALSE(dns::parse_query(valid.substr(0, n)));
  }
  REQUIRE(dns::parse_query(valid));
}

TEST_CASE("DNS records after the question may use compression pointers", "[dns]") {
  // An answer record named www.<pointer to the question name>.
  auto wire = dns::build_query(3, "Example.com", dns::kTypeA);
  wire[7] = 1;  // ANCOUNT
  wire += "\x03www\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01\x02\x03\x04"s;
  auto q = dns::parse_query(wire);
  REQUIRE(q);
  CHECK(q->question.name == "example.com");
  CHECK_FALSE(q->has_edns);
  wire[2] = static_cast<char>(0x81);  // now it reads as a response
  auto parsed = dns::parse_response(wire);
  REQUIRE(parsed);
  CHECK(parsed->addresses == Strings{"1.2.3.4"});
}

TEST_CASE("DNS query ids, also of garbage", "[dns]") {
  CHECK_FALSE(dns::query_id(""));
  CHECK_FALSE(dns::query_id("\x12"s));
  CHECK(dns::query_id("\x12\x34"s) == 0x1234);
  CHECK(dns::query_id("\xab\xcd\x01"s) == 0xabcd);
  CHECK_FALSE(dns::query_id("\xab\xcd\x81"s));  // a response: never answered
}

TEST_CASE("DNS answers that do not fit are dropped and TC set", "[dns]") {
  dns::Answer many;
  for (int i = 0; i < 100; ++i) {
    many.ipv4.push_back({10, 0, 0, static_cast<std::uint8_t>(i)});
    many.ipv6.push_back(kDoc6);
  }
  struct Case {
    std::uint16_t type;
    bool edns;
    std::size_t limit, per_record, fits;
  };
  // 12 header + 14 "allowed.test" + 4, + 11 for the OPT.
  for (auto c : {Case{dns::kTypeA, false, 512, 16, (512 - 30) / 16},
                 Case{dns::kTypeA, true, 1232, 16, (1232 - 41) / 16},
                 Case{dns::kTypeAAAA, false, 512, 28, (512 - 30) / 28},
                 Case{dns::kTypeAAAA, true, 1232, 28, (1232 - 41) / 28}}) {
    INFO("type " << c.type << " edns " << c.edns);
    auto q = dns::parse_query(dns::build_query(1, "allowed.test", c.type, c.edns));
    REQUIRE(q);
    auto response = dns::build_response(*q, many);
    CHECK(response.size() <= c.limit);
    CHECK(response.size() + c.per_record > c.limit);  // as many as fit
    auto parsed = dns::parse_response(response);
    REQUIRE(parsed);
    CHECK(parsed->truncated);
    CHECK(parsed->addresses.size() == c.fits);
  }

  dns::Answer few;
  few.ipv4.assign(many.ipv4.begin(), many.ipv4.begin() + 30);  // exactly fits in 512
  auto q = dns::parse_query(dns::build_query(1, "allowed.test", dns::kTypeA));
  REQUIRE(q);
  auto response = dns::build_response(*q, few);
  CHECK(response.size() == 510);
  auto parsed = dns::parse_response(response);
  REQUIRE(parsed);
  CHECK_FALSE(parsed->truncated);
  CHECK(parsed->addresses.size() == 30);
}

TEST_CASE("a query as dig sends it parses and is answered byte for byte", "[dns]") {
  // dig example.com A: RD and AD set, EDNS with 1232 bytes and a client cookie.
  auto wire = from_hex(
      "d29a 0120 0001 0000 0000 0001"
      "07 6578616d706c65 03 636f6d 00 0001 0001"
      "00 0029 04d0 00000000 000c 000a 0008 3c3f1e8c7a2b915e");
  std::string error;
  auto q = dns::parse_query(wire, &error);
  INFO(error);
  REQUIRE(q);
  CHECK(q->id == 0xd29a);
  CHECK(q->recursion_desired);
  CHECK(q->question.name == "example.com");
  CHECK(q->question.type == dns::kTypeA);
  CHECK(q->question.qclass == dns::kClassIN);
  CHECK(q->has_edns);

  dns::Answer answer;
  answer.ipv4 = {{93, 184, 215, 14}};
  CHECK(dns::build_response(*q, answer) == from_hex("d29a 8180 0001 0001 0000 0001"
                                                    "07 6578616d706c65 03 636f6d 00 0001 0001"
                                                    "c00c 0001 0001 0000001e 0004 5db8d70e"
                                                    "00 0029 04d0 00000000 0000"));
}

TEST_CASE("mangled DNS messages never crash the parsers", "[dns]") {
  std::mt19937 random(12345);
  const std::string seeds[] = {
      dns::build_query(1, "allowed.test", dns::kTypeA, true),
      dns::build_response(*dns::parse_query(dns::build_query(2, "a.b.c", dns::kTypeAAAA, true)),
                          {dns::Rcode::no_error, {}, {kLoopback6, kDoc6}, 30}),
  };
  for (int i = 0; i < 20000; ++i) {
    std::string wire = seeds[i % 2];
    for (int flips = 1 + random() % 4; flips > 0; --flips) {
      auto at = random() % wire.size();
      wire[at] = random() % 3 == 0 ? static_cast<char>(0xc0) : static_cast<char>(random());
    }
    if (random() % 4 == 0) wire.resize(random() % wire.size());
    if (auto q = dns::parse_query(wire)) dns::build_response(*q, {});
    dns::parse_response(wire);
    dns::query_id(wire);
  }
}
