// The engine's DNS codec (src/proto/dns.*) on arbitrary datagrams: a query
// that parses gets responses that parse back with its id and question and
// the rcode given; parse_response never crashes on anything.
#include "fuzz_check.hpp"
#include "proto/dns.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace spritescript::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)dns::parse_response(input);
  auto query = dns::parse_query(input);
  if (!query) {
    if (auto id = dns::query_id(input)) {
      auto error = dns::parse_response(dns::build_error(*id, dns::Rcode::format_error));
      FUZZ_CHECK(error && error->id == *id && error->rcode == dns::Rcode::format_error);
    }
    return 0;
  }
  dns::Answer answer;
  for (std::size_t i = 0; i < size % 40; ++i) {  // enough to need truncation sometimes
    answer.ipv4.push_back({10, 0, static_cast<std::uint8_t>(i), 1});
    answer.ipv6.push_back({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(i)});
  }
  for (auto rcode : {dns::Rcode::no_error, dns::Rcode::refused, dns::Rcode::name_error}) {
    answer.rcode = rcode;
    std::string response = dns::build_response(*query, answer);
    FUZZ_CHECK(response.size() <= (query->has_edns ? 1232u : 512u));
    auto parsed = dns::parse_response(response);
    FUZZ_CHECK(parsed);
    FUZZ_CHECK(parsed->id == query->id);
    // A name that cannot be encoded gets a bare SERVFAIL (dns.hpp).
    FUZZ_CHECK(parsed->rcode == rcode || parsed->rcode == dns::Rcode::server_failure);
    if (parsed->rcode == rcode) FUZZ_CHECK(parsed->question == query->question.name);
    if (rcode != dns::Rcode::no_error) FUZZ_CHECK(parsed->addresses.empty());
  }
  return 0;
}
