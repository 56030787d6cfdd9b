// DNS messages (RFC 1035, EDNS from RFC 6891) for the engine's stub resolver,
// which answers the A/AAAA queries of a sandboxed sprite. Only what a stub
// needs: one-question queries in, answers built from addresses out.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spritescript::proto::dns {

enum class Rcode : std::uint8_t {
  no_error = 0,
  format_error = 1,
  server_failure = 2,
  name_error = 3,  // NXDOMAIN
  not_implemented = 4,
  refused = 5,
};

constexpr std::uint16_t kTypeA = 1, kTypeAAAA = 28, kTypeOPT = 41, kClassIN = 1;
// Without EDNS a UDP answer must fit in 512 bytes; with it we advertise (and
// keep to) 1232, the DNS Flag Day 2020 size that avoids IP fragmentation.
constexpr std::size_t kMaxUdpPlain = 512, kMaxUdpEdns = 1232;

struct Question {
  std::string name;  // lowercase, no trailing dot, e.g. "allowed.test"; "" is the root
  std::uint16_t type = 0;
  std::uint16_t qclass = 0;
};

struct Query {
  std::uint16_t id = 0;
  bool recursion_desired = false;
  std::uint8_t opcode = 0;  // any opcode parses: the caller answers not_implemented
  Question question;
  bool has_edns = false;  // an OPT record in the additional section
};

// A query datagram: exactly one question (QDCOUNT == 1), QR bit clear, every
// record well formed. Names: labels of 1-63 bytes, at most 253 characters as
// text, no '.' nor bytes below 0x21 in a label; ASCII is lowercased.
// Compression pointers must point before the labels read last, so following
// them always ends. nullopt when malformed; `error` then gets a short reason.
std::optional<Query> parse_query(std::string_view datagram, std::string* error = nullptr);

// The id of a datagram at least 2 bytes long, to answer FORMERR to garbage.
// nullopt for shorter ones and for responses (QR set): answering those could
// bounce messages between two servers forever.
std::optional<std::uint16_t> query_id(std::string_view datagram);

// The text form of a name as a wire name (trailing dot optional, "" or "." is
// the root); nullopt for an empty label, one over 63 bytes or over 253 in all.
std::optional<std::string> encode_name(std::string_view name);

struct Answer {
  Rcode rcode = Rcode::no_error;
  std::vector<std::array<std::uint8_t, 4>> ipv4;
  std::vector<std::array<std::uint8_t, 16>> ipv6;
  std::uint32_t ttl = 30;
};

// The response to `query`: QR=1, same id and opcode, RD copied, RA=1, AA=0;
// the question echoed (lowercase); for no_error, A records of answer.ipv4 to
// an A question or AAAA records of answer.ipv6 to an AAAA one (the other
// family is left out), each naming the question by pointer. An OPT record
// when the query had one. Answers that do not fit in 512 bytes (1232 with
// EDNS) are dropped and TC set. A question name that cannot be encoded (not
// one from parse_query) gets a bare server_failure.
std::string build_response(const Query& query, const Answer& answer);

// A bare error response, no question section: for a datagram that could not
// be parsed but has an id.
std::string build_error(std::uint16_t id, Rcode rcode);

// A query with one question and RD set (tests and benchmarks); "" when the
// name cannot be encoded.
std::string build_query(std::uint16_t id, const std::string& name, std::uint16_t type,
                        bool edns = false);

// A response, for tests: its A/AAAA addresses as text ("1.2.3.4", "::1").
struct ParsedResponse {
  std::uint16_t id = 0;
  Rcode rcode{};
  bool truncated = false;
  std::string question;  // "" when there is no question section
  std::vector<std::string> addresses;
};
std::optional<ParsedResponse> parse_response(std::string_view datagram);

}  // namespace spritescript::proto::dns
