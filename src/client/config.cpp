#include "client/config.hpp"

#include <cstdlib>

#ifndef SPRITESCRIPT_VERSION
#define SPRITESCRIPT_VERSION "dev"
#endif

namespace spritescript::client {

namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string host_of(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool truthy(const std::string& v) {
  auto l = lower(trim(v));
  return !l.empty() && l != "0" && l != "false" && l != "no" && l != "off";
}

}  // namespace

bool no_proxy_matches(const std::string& no_proxy, const std::string& host) {
  std::string h = lower(host);
  std::size_t pos = 0;
  while (pos <= no_proxy.size()) {
    auto comma = no_proxy.find(',', pos);
    std::string entry = lower(trim(no_proxy.substr(pos, comma - pos)));
    pos = comma == std::string::npos ? no_proxy.size() + 1 : comma + 1;
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (auto colon = entry.find(':'); colon != std::string::npos) entry.resize(colon);
    if (entry.front() == '.') entry.erase(0, 1);
    if (h == entry) return true;
    if (h.size() > entry.size() && h.compare(h.size() - entry.size(), entry.size(), entry) == 0 &&
        h[h.size() - entry.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

Config config_from_environment(const std::map<std::string, std::string>* env) {
  auto get = [env](const char* name) -> std::string {
    if (env) {
      auto it = env->find(name);
      return it == env->end() ? std::string() : it->second;
    }
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  Config c;
  c.api_url = trim(get("SPRITES_API_URL"));
  if (c.api_url.empty()) c.api_url = trim(get("SPRITE_URL"));
  c.token = trim(get("SPRITE_TOKEN"));
  if (c.token.empty()) c.token = trim(get("SPRITES_TOKEN"));
  if (c.api_url.empty() && !c.token.empty()) c.api_url = kDefaultApiUrl;
  c.ca_file = get("SPRITES_CA_FILE");
  c.insecure = truthy(get("SPRITES_INSECURE"));
  c.trace = truthy(get("SPRITESCRIPT_TRACE"));
  c.user_agent = std::string("spritescript/") + SPRITESCRIPT_VERSION;
  std::string proxy = get("HTTPS_PROXY");
  if (proxy.empty()) proxy = get("https_proxy");
  std::string no_proxy = get("NO_PROXY");
  if (no_proxy.empty()) no_proxy = get("no_proxy");
  if (!proxy.empty() && c.api_url.rfind("https://", 0) == 0 &&
      !no_proxy_matches(no_proxy, host_of(c.api_url))) {
    c.proxy = proxy.find("://") == std::string::npos ? "http://" + proxy : proxy;
  }
  return c;
}

}  // namespace spritescript::client
