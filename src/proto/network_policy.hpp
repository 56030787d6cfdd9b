// A sprite's network policy (shared/spec/sprites-api.md §8.1): parsing,
// validation and the decision for one host name. Pure; the local engine
// enforces it (docs/networking.md, "Egress and the network policy").
//
// Decision: names compare case-insensitively, a trailing dot ignored. Of the
// rules that match, the most specific wins: an exact name, then the
// wildcard with the longest suffix ("*.a.example.com" over "*.example.com"),
// then "*". The same pattern with both actions: deny wins. "*.example.com"
// matches every name below example.com, at any depth, not example.com
// itself. `include: defaults` stands for the allow rules of
// default_allowed_domains(), where it is listed. A policy with rules denies
// what none matches; no rules at all means unrestricted.
#pragma once

#include <boost/json/fwd.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spritescript::proto {

struct PolicyRule {
  std::string domain;   // "example.com", "*.example.com" or "*"; empty for an include
  std::string action;   // "allow" | "deny"; empty for an include
  std::string include;  // "defaults"; empty for a domain rule
};

struct NetworkPolicy {
  std::vector<PolicyRule> rules;
  bool unrestricted() const { return rules.empty(); }
};

// nullopt with `error` set (one line: which rule, what is wrong) when `v`
// is not a valid policy object. Domains are stored lowercased, without a
// trailing dot.
std::optional<NetworkPolicy> parse_network_policy(const boost::json::value& v, std::string& error);
// {"rules":[...]}, empty fields left out (as Go sends it).
boost::json::object to_json(const NetworkPolicy& policy);

// The domains `include: defaults` allows: GitHub, npm, PyPI, Docker Hub,
// common package mirrors and the major AI APIs.
const std::vector<std::string>& default_allowed_domains();

// Lowercase, no trailing dot; "" when `host` is not a DNS name or an IPv4
// literal (an IPv6 literal is returned as it is, lowercased).
std::string normalize_host(std::string_view host);

struct PolicyDecision {
  bool allowed = true;
  std::string rule;  // the deciding pattern ("" when no rule matched or unrestricted)
};
PolicyDecision decide(const NetworkPolicy& policy, std::string_view host);

}  // namespace spritescript::proto
