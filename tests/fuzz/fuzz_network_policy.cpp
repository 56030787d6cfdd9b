// Network policies (src/proto/network_policy.*) from arbitrary JSON: a
// policy that parses survives to_json and back unchanged, and decides the
// same for any name both times; deciding never crashes.
#include "fuzz_check.hpp"
#include "proto/network_policy.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace spritescript::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // The input's first line is a host name to decide; the rest the policy.
  auto newline = input.find('\n');
  std::string_view host = input.substr(0, newline);
  std::string_view text = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) return 0;
  std::string error;
  auto policy = parse_network_policy(v, error);
  if (!policy) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  std::string again_error;
  auto again = parse_network_policy(to_json(*policy), again_error);
  FUZZ_CHECK(again);
  FUZZ_CHECK(boost::json::serialize(to_json(*again)) == boost::json::serialize(to_json(*policy)));
  for (std::string_view name : {host, std::string_view("github.com"), std::string_view("a.b.test")}) {
    auto first = decide(*policy, name);
    auto second = decide(*again, name);
    FUZZ_CHECK(first.allowed == second.allowed && first.rule == second.rule);
    if (policy->unrestricted()) FUZZ_CHECK(first.allowed);
  }
  (void)normalize_host(host);
  return 0;
}
