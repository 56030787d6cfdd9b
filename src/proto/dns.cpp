#include "proto/dns.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace spritescript::proto::dns {
namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameText = 253;
constexpr std::uint16_t kFlagQR = 0x8000, kFlagTC = 0x0200, kFlagRD = 0x0100, kFlagRA = 0x0080;
constexpr std::uint16_t kPointerToQuestion = 0xC000 | kHeaderSize;

std::nullopt_t fail(std::string* error, const char* why) {
  if (error) *error = why;
  return std::nullopt;
}

void put16(std::string& out, std::uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}

void put32(std::string& out, std::uint32_t v) {
  put16(out, static_cast<std::uint16_t>(v >> 16));
  put16(out, static_cast<std::uint16_t>(v & 0xFFFF));
}

void put_header(std::string& out, std::uint16_t id, std::uint16_t flags, std::uint16_t qd,
                std::uint16_t an, std::uint16_t ar) {
  put16(out, id);
  put16(out, flags);
  put16(out, qd);
  put16(out, an);
  put16(out, 0);  // NSCOUNT
  put16(out, ar);
}

// A minimal OPT: root name, UDP payload size in the class, extended rcode,
// version and flags all 0, no options.
void put_opt(std::string& out) {
  out += '\0';
  put16(out, kTypeOPT);
  put16(out, kMaxUdpEdns);
  put32(out, 0);
  put16(out, 0);
}

struct Header {
  std::uint16_t id, flags, qdcount, ancount, nscount, arcount;
};

struct Record {
  std::string name;
  std::uint16_t type, rclass;
  std::string_view rdata;
};

// A cursor over a whole message (names point into it). Every read checks
// bounds; the first failure's reason goes to `error`.
struct Reader {
  std::string_view msg;
  std::string* error;
  std::size_t pos = 0;

  bool fail(const char* why) {
    dns::fail(error, why);
    return false;
  }

  std::uint8_t byte(std::size_t at) const { return static_cast<std::uint8_t>(msg[at]); }

  bool u16(std::uint16_t& v) {
    if (msg.size() - pos < 2) return fail("truncated message");
    v = static_cast<std::uint16_t>(byte(pos) << 8 | byte(pos + 1));
    pos += 2;
    return true;
  }

  bool header(Header& h) {
    if (msg.size() < kHeaderSize) return fail("short header");
    return u16(h.id) && u16(h.flags) && u16(h.qdcount) && u16(h.ancount) && u16(h.nscount) &&
           u16(h.arcount);
  }

  bool name(std::string& out) {
    out.clear();
    std::size_t at = pos, segment = pos;  // segment: where the labels read last start
    bool jumped = false;
    while (true) {
      if (at >= msg.size()) return fail("truncated name");
      std::uint8_t len = byte(at);
      if ((len & 0xC0) == 0xC0) {
        if (at + 1 >= msg.size()) return fail("truncated name");
        std::size_t target = (len & 0x3F) << 8 | byte(at + 1);
        // Strictly backwards each time, so there is no loop to follow.
        if (target >= segment || target < kHeaderSize) return fail("bad compression pointer");
        if (!jumped) pos = at + 2;
        jumped = true;
        at = segment = target;
        continue;
      }
      if (len > 63) return fail("bad label length");  // 0x40 and 0x80: reserved label types
      if (len == 0) {
        if (!jumped) pos = at + 1;
        return true;
      }
      if (msg.size() - at - 1 < len) return fail("truncated name");
      if (!out.empty()) out += '.';
      for (std::size_t i = at + 1; i <= at + len; ++i) {
        char c = msg[i];
        if (static_cast<std::uint8_t>(c) < 0x21 || c == '.') return fail("bad byte in name");
        out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
      if (out.size() > kMaxNameText) return fail("name too long");
      at += 1 + len;
    }
  }

  bool question(Question& q) { return name(q.name) && u16(q.type) && u16(q.qclass); }

  bool record(Record& r) {
    std::uint16_t ttl_hi, ttl_lo, rdlength;
    if (!(name(r.name) && u16(r.type) && u16(r.rclass) && u16(ttl_hi) && u16(ttl_lo) &&
          u16(rdlength)))
      return false;
    if (msg.size() - pos < rdlength) return fail("truncated record data");
    r.rdata = msg.substr(pos, rdlength);
    pos += rdlength;
    return true;
  }
};

std::string format_address(std::string_view rdata) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(rdata.size() == 4 ? AF_INET : AF_INET6, rdata.data(), text, sizeof text);
  return text;
}

}  // namespace

std::optional<std::string> encode_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.size() > kMaxNameText) return std::nullopt;
  std::string out;
  while (!name.empty()) {
    std::size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63) return std::nullopt;
    out += static_cast<char>(label.size());
    out += label;
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (dot != std::string_view::npos && name.empty()) return std::nullopt;  // "a..": empty label
  }
  out += '\0';
  return out;
}

std::optional<Query> parse_query(std::string_view datagram, std::string* error) {
  Reader r{datagram, error};
  Header h;
  if (!r.header(h)) return std::nullopt;
  if (h.flags & kFlagQR) return fail(error, "not a query");
  if (h.qdcount != 1) return fail(error, "QDCOUNT is not 1");
  Query q;
  q.id = h.id;
  q.opcode = static_cast<std::uint8_t>(h.flags >> 11 & 0xF);
  q.recursion_desired = h.flags & kFlagRD;
  if (!r.question(q.question)) return std::nullopt;
  // Queries carry nothing but the OPT after the question; every record still
  // has to be well formed. Each takes 11 bytes or more: the counts are bounded.
  Record rec;
  for (unsigned i = 0, n = h.ancount + h.nscount + h.arcount; i < n; ++i) {
    if (!r.record(rec)) return std::nullopt;
    if (rec.type != kTypeOPT) continue;
    if (i < h.ancount + h.nscount || !rec.name.empty()) return fail(error, "misplaced OPT");
    if (q.has_edns) return fail(error, "two OPT records");  // RFC 6891 §6.1.1: FORMERR
    q.has_edns = true;
  }
  return q;
}

std::optional<std::uint16_t> query_id(std::string_view datagram) {
  if (datagram.size() < 2) return std::nullopt;
  if (datagram.size() > 2 && (static_cast<std::uint8_t>(datagram[2]) & 0x80)) return std::nullopt;
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(datagram[0]) << 8 |
                                    static_cast<std::uint8_t>(datagram[1]));
}

std::string build_response(const Query& query, const Answer& answer) {
  auto qname = encode_name(query.question.name);
  if (!qname) return build_error(query.id, Rcode::server_failure);

  std::vector<std::string_view> rdatas;
  std::uint16_t type = query.question.type;
  if (answer.rcode == Rcode::no_error && type == kTypeA) {
    for (const auto& a : answer.ipv4)
      rdatas.emplace_back(reinterpret_cast<const char*>(a.data()), a.size());
  } else if (answer.rcode == Rcode::no_error && type == kTypeAAAA) {
    for (const auto& a : answer.ipv6)
      rdatas.emplace_back(reinterpret_cast<const char*>(a.data()), a.size());
  }

  // Everything but the answers, then as many answers as fit: each is a
  // pointer to the question name, type, class, TTL, length and data.
  std::size_t limit = query.has_edns ? kMaxUdpEdns : kMaxUdpPlain;
  std::size_t fixed = kHeaderSize + qname->size() + 4 + (query.has_edns ? 11 : 0);
  std::size_t count = rdatas.size();
  if (count > 0) count = std::min(count, (limit - fixed) / (12 + rdatas[0].size()));
  // A 253-character name still leaves room in 512 bytes: fixed < limit.

  std::uint16_t flags =
      kFlagQR | (query.opcode & 0xF) << 11 | kFlagRA | static_cast<std::uint16_t>(answer.rcode);
  if (query.recursion_desired) flags |= kFlagRD;
  if (count < rdatas.size()) flags |= kFlagTC;

  std::string out;
  put_header(out, query.id, flags, 1, static_cast<std::uint16_t>(count), query.has_edns ? 1 : 0);
  out += *qname;
  put16(out, type);
  put16(out, query.question.qclass);
  for (std::size_t i = 0; i < count; ++i) {
    put16(out, kPointerToQuestion);
    put16(out, type);
    put16(out, kClassIN);
    put32(out, answer.ttl);
    put16(out, static_cast<std::uint16_t>(rdatas[i].size()));
    out += rdatas[i];
  }
  if (query.has_edns) put_opt(out);
  return out;
}

std::string build_error(std::uint16_t id, Rcode rcode) {
  std::string out;
  put_header(out, id, kFlagQR | kFlagRA | static_cast<std::uint16_t>(rcode), 0, 0, 0);
  return out;
}

std::string build_query(std::uint16_t id, const std::string& name, std::uint16_t type, bool edns) {
  auto qname = encode_name(name);
  if (!qname) return {};
  std::string out;
  put_header(out, id, kFlagRD, 1, 0, edns ? 1 : 0);
  out += *qname;
  put16(out, type);
  put16(out, kClassIN);
  if (edns) put_opt(out);
  return out;
}

std::optional<ParsedResponse> parse_response(std::string_view datagram) {
  Reader r{datagram, nullptr};
  Header h;
  if (!r.header(h) || !(h.flags & kFlagQR) || h.qdcount > 1) return std::nullopt;
  ParsedResponse p;
  p.id = h.id;
  p.rcode = static_cast<Rcode>(h.flags & 0xF);
  p.truncated = h.flags & kFlagTC;
  Question q;
  if (h.qdcount == 1) {
    if (!r.question(q)) return std::nullopt;
    p.question = q.name;
  }
  Record rec;
  for (unsigned i = 0; i < h.ancount; ++i) {
    if (!r.record(rec)) return std::nullopt;
    if ((rec.type == kTypeA && rec.rdata.size() == 4) ||
        (rec.type == kTypeAAAA && rec.rdata.size() == 16))
      p.addresses.push_back(format_address(rec.rdata));
  }
  return p;
}

}  // namespace spritescript::proto::dns
