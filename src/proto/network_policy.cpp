#include "proto/network_policy.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <tuple>

namespace json = boost::json;

namespace spritescript::proto {
namespace {

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// A lowercased DNS name (or IPv4 literal): labels of 1-63 label characters,
// none starting or ending with '-'.
bool is_dns_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  char previous = '.';
  for (char c : name) {
    if (c == '.') {
      if (label == 0 || previous == '-') return false;
      label = 0;
    } else if (!is_label_char(c) || ++label > 63 || (c == '-' && previous == '.')) {
      return false;
    }
    previous = c;
  }
  return label > 0 && previous != '-';
}

std::string lowercase_without_dot(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// "" when `pattern` is acceptable as a rule's domain.
std::string pattern_problem(const std::string& pattern) {
  if (pattern == "*") return "";
  std::string_view name = pattern;
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (!is_dns_name(name)) {
    return "is not a domain name, \"*.\" followed by one, or \"*\"";
  }
  return "";
}

// How specific a matching pattern is: exact beats any wildcard, a longer
// wildcard suffix beats a shorter one, and "*" comes last.
using Specificity = std::tuple<int, std::size_t>;

std::optional<Specificity> match(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return Specificity{0, 0};
  if (pattern.starts_with("*.")) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    if (host.size() > suffix.size() && host.ends_with(suffix)) {
      return Specificity{1, suffix.size()};
    }
    return std::nullopt;
  }
  if (pattern == host) return Specificity{2, 0};
  return std::nullopt;
}

}  // namespace

const std::vector<std::string>& default_allowed_domains() {
  static const std::vector<std::string> domains = {
      // GitHub: the site, its API, raw content, releases and packages
      "github.com", "*.github.com", "*.githubusercontent.com", "*.githubassets.com", "ghcr.io",
      // npm and yarn
      "npmjs.com", "*.npmjs.com", "*.npmjs.org", "registry.yarnpkg.com",
      // PyPI
      "pypi.org", "*.pypi.org", "*.pythonhosted.org",
      // Docker Hub
      "docker.io", "*.docker.io", "*.docker.com",
      // Other language registries
      "crates.io", "*.crates.io", "static.rust-lang.org", "proxy.golang.org", "sum.golang.org",
      "rubygems.org", "*.rubygems.org",
      // Debian and Ubuntu archives (apt)
      "deb.debian.org", "security.debian.org", "*.ubuntu.com",
      // AI APIs
      "*.anthropic.com", "*.openai.com", "generativelanguage.googleapis.com"};
  return domains;
}

std::string normalize_host(std::string_view host) {
  std::string name = lowercase_without_dot(host);
  if (name.find(':') != std::string::npos) return name;  // IPv6 literal
  return is_dns_name(name) ? name : std::string();
}

std::optional<NetworkPolicy> parse_network_policy(const json::value& v, std::string& error) {
  const json::object* object = v.if_object();
  if (!object) {
    error = "the policy must be a JSON object like {\"rules\":[...]}";
    return std::nullopt;
  }
  const json::value* rules = object->if_contains("rules");
  if (!rules || !rules->is_array()) {
    error = "the policy needs \"rules\", an array (an empty one for no restriction)";
    return std::nullopt;
  }
  NetworkPolicy policy;
  std::size_t index = 0;
  for (const json::value& item : rules->as_array()) {
    const std::string where = "rule " + std::to_string(++index) + ": ";  // counted from 1
    const json::object* rule = item.if_object();
    if (!rule) {
      error = where + "must be an object with \"domain\" and \"action\", or \"include\"";
      return std::nullopt;
    }
    auto text = [&](const char* key) -> std::optional<std::string> {
      const json::value* field = rule->if_contains(key);
      if (!field || field->is_null()) return std::string();
      if (!field->is_string()) return std::nullopt;
      return std::string(field->as_string());
    };
    auto domain = text("domain");
    auto action = text("action");
    auto include = text("include");
    if (!domain || !action || !include) {
      error = where + "\"domain\", \"action\" and \"include\" must be strings";
      return std::nullopt;
    }
    PolicyRule parsed;
    if (!include->empty()) {
      if (!domain->empty()) {
        error = where + "has both \"domain\" and \"include\"; a rule is one or the other";
        return std::nullopt;
      }
      if (*include != "defaults") {
        error = where + "unknown include \"" + *include + "\" (only \"defaults\" exists)";
        return std::nullopt;
      }
      parsed.include = *include;
    } else {
      if (domain->empty()) {
        error = where + "needs \"domain\" (with \"action\") or \"include\"";
        return std::nullopt;
      }
      parsed.domain = lowercase_without_dot(*domain);
      // ("*." loses its dot like any name, and must not become "*".)
      std::string problem = pattern_problem(*domain == "*"         ? "*"
                                            : parsed.domain == "*" ? ""
                                                                   : parsed.domain);
      if (!problem.empty()) {
        error = where + "domain \"" + *domain + "\" " + problem;
        return std::nullopt;
      }
      if (*action != "allow" && *action != "deny") {
        error = where + "action must be \"allow\" or \"deny\", not \"" + *action + "\"";
        return std::nullopt;
      }
      parsed.action = *action;
    }
    policy.rules.push_back(std::move(parsed));
  }
  return policy;
}

json::object to_json(const NetworkPolicy& policy) {
  json::array rules;
  for (const PolicyRule& rule : policy.rules) {
    json::object r;
    if (!rule.include.empty()) {
      r["include"] = rule.include;
    } else {
      r["domain"] = rule.domain;
      r["action"] = rule.action;
    }
    rules.push_back(std::move(r));
  }
  return json::object{{"rules", std::move(rules)}};
}

PolicyDecision decide(const NetworkPolicy& policy, std::string_view host) {
  if (policy.unrestricted()) return {true, ""};
  const std::string name = lowercase_without_dot(host);
  std::optional<Specificity> best;
  PolicyDecision decision{false, ""};
  auto consider = [&](const std::string& pattern, bool allow) {
    auto specificity = match(pattern, name);
    if (!specificity) return;
    if (!best || *specificity > *best || (*specificity == *best && !allow)) {
      best = specificity;
      decision = {allow, pattern};
    }
  };
  for (const PolicyRule& rule : policy.rules) {
    if (rule.include.empty()) {
      consider(rule.domain, rule.action == "allow");
    } else {
      for (const std::string& domain : default_allowed_domains()) consider(domain, true);
    }
  }
  return decision;
}

}  // namespace spritescript::proto
