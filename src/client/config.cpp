#include "client/config.hpp"

#include <openssl/evp.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

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

// --- the sprite CLI's login ---------------------------------------------------

namespace json = boost::json;

// A small file's contents; nullopt when it cannot be read or is too big
// (a config or a token is a few KiB).
std::optional<std::string> read_small_file(const std::string& path) {
  constexpr std::size_t kLimit = std::size_t{1} << 20;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rbe"), std::fclose);
  if (!f) return std::nullopt;
  std::string out;
  char buffer[8192];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0;) {
    out.append(buffer, n);
    if (out.size() > kLimit) return std::nullopt;
  }
  if (std::ferror(f.get())) return std::nullopt;
  return out;
}

// The JSON object in the file; nullptr-like (empty optional) for anything else.
std::optional<json::object> read_json_object(const std::string& path) {
  auto text = read_small_file(path);
  if (!text) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string string_at(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string())
                                                  : std::string();
}

const json::object* object_at(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_object() ? &it->value().as_object() : nullptr;
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string trim_space(const std::string& s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  std::size_t b = 0, e = s.size();
  while (b < e && space(s[b])) ++b;
  while (e > b && space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// A token that can go in a header as it is: printable ASCII, no spaces.
bool plausible_token(const std::string& token) {
  if (token.empty() || token.size() > 8192) return false;
  for (unsigned char c : token) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// A name safe as one path component.
bool safe_component(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find_first_of("/\\") == std::string::npos &&
         s.find('\0') == std::string::npos;
}

std::string colons_to_dashes(std::string s) {
  for (auto& c : s) {
    if (c == ':') c = '-';
  }
  return s;
}

// The CLI's file keyring: ROOT/keyring/SERVICE/KEY with ':' written '-'
// ("sprites:org:https://api.sprites.dev:personal" is the directory
// "sprites-org-https-" and the file "api.sprites.dev-personal").
std::string keyring_token(const std::string& home, const std::string& user,
                          const std::string& key) {
  if (key.empty() || key.find('\0') != std::string::npos) return {};
  std::vector<std::string> parts;
  const std::string encoded = colons_to_dashes(key);
  for (std::size_t pos = 0; pos <= encoded.size();) {
    auto slash = encoded.find('/', pos);
    std::string part = encoded.substr(pos, slash == std::string::npos ? slash : slash - pos);
    pos = slash == std::string::npos ? encoded.size() + 1 : slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return {};  // never outside the keyring
    parts.push_back(std::move(part));
  }
  if (parts.empty()) return {};
  std::string relative;
  for (const auto& part : parts) relative += "/" + part;
  std::vector<std::string> services;
  if (safe_component(user)) services.push_back("sprites-cli:" + user);
  services.push_back("sprites-cli:manual-tokens");
  services.push_back("sprites-cli");
  for (const auto& service : services) {
    for (const char* root : {"/.sprites", "/.sprite"}) {
      auto text = read_small_file(home + root + "/keyring/" + colons_to_dashes(service) + relative);
      if (!text) continue;
      std::string token = trim_space(*text);
      if (plausible_token(token)) return token;
    }
  }
  return {};
}

// The orgs filed under `url` in one config ("urls" keys compared without
// trailing slashes).
const json::object* orgs_for(const json::object& config, const std::string& url) {
  const json::object* urls = object_at(config, "urls");
  if (!urls) return nullptr;
  for (const auto& entry : *urls) {
    if (!entry.value().is_object()) continue;
    if (without_trailing_slashes(std::string(entry.key())) == url) {
      return object_at(entry.value().as_object(), "orgs");
    }
  }
  return nullptr;
}

std::string sha256_prefix_hex(const std::string& data, std::size_t bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) return {};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes && i < size; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

}  // namespace

std::optional<CliLogin> sprite_cli_login(const std::string& home, const std::string& api_url) {
  if (home.empty()) return std::nullopt;
  const std::string dir = home + "/.sprites";
  auto main = read_json_object(dir + "/sprites.json");
  if (!main) return std::nullopt;
  if (auto it = main->find("version"); it != main->end()) {
    const json::value& v = it->value();
    bool one = (v.is_string() && v.as_string() == "1") || (v.is_int64() && v.as_int64() == 1) ||
               (v.is_uint64() && v.as_uint64() == 1);
    if (!one) return std::nullopt;  // a format this reader does not know
  }
  std::string selected_url, selected_org;
  if (const json::object* sel = object_at(*main, "current_selection")) {
    selected_url = without_trailing_slashes(trim(string_at(*sel, "url")));
    selected_org = string_at(*sel, "org");
  }
  CliLogin login;
  login.api_url = without_trailing_slashes(trim(api_url));
  if (login.api_url.empty()) login.api_url = selected_url.empty() ? kDefaultApiUrl : selected_url;
  if (login.api_url.rfind("https://", 0) != 0 && login.api_url.rfind("http://", 0) != 0) {
    return std::nullopt;
  }
  const bool same_url =
      selected_url.empty() ? login.api_url == kDefaultApiUrl : login.api_url == selected_url;

  // The user's own config first (as the CLI merges them), then the main one.
  const std::string user = string_at(*main, "current_user");
  std::vector<json::object> configs;
  if (safe_component(user)) {
    std::string path;
    if (auto it = main->find("users"); it != main->end() && it->value().is_array()) {
      for (const auto& u : it->value().as_array()) {
        if (u.is_object() && string_at(u.as_object(), "id") == user) {
          path = string_at(u.as_object(), "config_path");
        }
      }
    }
    if (!path.empty() && path.front() != '/') path = dir + "/" + path;
    auto user_config = path.empty() ? std::nullopt : read_json_object(path);
    if (!user_config) {
      user_config =
          read_json_object(dir + "/users/" + user + "-" + sha256_prefix_hex(user, 8) + ".json");
    }
    if (user_config) configs.push_back(std::move(*user_config));
  }
  configs.push_back(std::move(*main));

  for (const auto& config : configs) {
    const json::object* orgs = orgs_for(config, login.api_url);
    if (!orgs || orgs->empty()) continue;
    const json::object* org = nullptr;
    std::string org_name;
    if (same_url && !selected_org.empty()) {
      org = object_at(*orgs, selected_org);
      org_name = selected_org;
    }
    if (!org && orgs->size() == 1 && orgs->begin()->value().is_object()) {
      org = &orgs->begin()->value().as_object();
      org_name = std::string(orgs->begin()->key());
    }
    if (!org) continue;
    std::string token;
    for (const char* field : {"token", "api_token"}) {
      token = trim_space(string_at(*org, field));
      if (plausible_token(token)) break;
      token.clear();
    }
    if (token.empty()) {
      std::string owner = string_at(*org, "user_id");
      token = keyring_token(home, owner.empty() ? user : owner, string_at(*org, "keyring_key"));
    }
    if (!token.empty()) {
      login.org = org_name;
      login.token = std::move(token);
      return login;
    }
  }
  return std::nullopt;
}

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
  if (!c.token.empty()) {
    c.token_source = "SPRITE_TOKEN";
  } else {
    c.token = trim(get("SPRITES_TOKEN"));
    if (!c.token.empty()) c.token_source = "SPRITES_TOKEN";
  }
  if (c.token.empty()) {
    // The `sprite` CLI's login: its token for this URL (or its own URL).
    if (auto login = sprite_cli_login(get("HOME"), c.api_url)) {
      c.token = std::move(login->token);
      if (c.api_url.empty()) c.api_url = login->api_url;
      c.token_source = "~/.sprites/sprites.json";
    }
  }
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
