#include "proto/proxy_request.hpp"

#include "proto/values.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace spritescript::proto {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// "host:port", "[v6]:port", or "host" with `default_port`.
bool split_authority(std::string_view authority, int default_port, std::string& host, int& port) {
  std::string_view port_text;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port_text = rest.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      host = std::string(authority.substr(0, colon));
      port_text = authority.substr(colon + 1);
    } else {
      host = std::string(authority);
    }
  }
  if (host.empty()) return false;
  port = default_port;
  if (!port_text.empty() || authority.ends_with(":")) {
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size()) return false;
  }
  return port >= 1 && port <= 65535;
}

// Headers for this hop only, and every Proxy-* header (they are ours).
bool is_hop_by_hop(std::string_view name) {
  if (name.size() >= 6 && iequals(name.substr(0, 6), "proxy-")) return true;
  for (std::string_view hop : {"connection", "keep-alive", "te", "trailer", "upgrade"}) {
    if (iequals(name, hop)) return true;
  }
  return false;
}

// RFC 9110 token characters: what a method and a header name are made of.
bool is_token(std::string_view text) {
  constexpr std::string_view kSeparators = "\"(),/:;<=>?@[\\]{}";
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](unsigned char c) {
    return c > 32 && c < 127 && kSeparators.find(static_cast<char>(c)) == std::string_view::npos;
  });
}

// A field value must not smuggle a line break (or a NUL) upstream.
bool is_field_value(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

}  // namespace

std::optional<ProxyRequest> parse_proxy_request(std::string_view head, std::string& error) {
  ProxyRequest request;
  auto line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  auto first_space = line.find(' ');
  auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    error = "malformed request line (expected METHOD TARGET HTTP/1.x)";
    return std::nullopt;
  }
  request.method = std::string(line.substr(0, first_space));
  std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  const bool visible = std::all_of(target.begin(), target.end(), [](unsigned char c) {
    return c > 32 && c < 127;  // nothing that could end the line upstream
  });
  if (!is_token(request.method) || target.empty() || !visible) {
    error = "malformed request line (expected METHOD TARGET HTTP/1.x)";
    return std::nullopt;
  }
  request.version = std::string(line.substr(last_space + 1));
  if (!request.version.starts_with("HTTP/1.")) {
    error = "not an HTTP/1 request";
    return std::nullopt;
  }
  while (line_end != std::string_view::npos) {
    std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    std::string_view field = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    if (field.empty()) continue;
    auto colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon)) ||
        !is_field_value(field.substr(colon + 1))) {
      error = "malformed header line";
      return std::nullopt;
    }
    request.headers.emplace_back(std::string(field.substr(0, colon)),
                                 std::string(trim(field.substr(colon + 1))));
  }
  if (request.method == "CONNECT") {
    request.connect = true;
    if (!split_authority(target, 0, request.host, request.port)) {
      error = "CONNECT needs host:port";
      return std::nullopt;
    }
    return request;
  }
  constexpr std::string_view kHttp = "http://";
  if (target.size() < kHttp.size() || !iequals(target.substr(0, kHttp.size()), kHttp)) {
    error = target.starts_with("/") ? "this is an HTTP proxy: ask for an absolute URL "
                                      "(http://host/path), or CONNECT host:port"
                                    : "only http:// URLs are forwarded; HTTPS goes through CONNECT";
    return std::nullopt;
  }
  target.remove_prefix(kHttp.size());
  auto path = target.find_first_of("/?#");
  std::string_view authority = target.substr(0, path);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);  // user:password@ is the origin's business, not ours
  }
  if (!split_authority(authority, 80, request.host, request.port)) {
    error = "the URL has no valid host[:port]";
    return std::nullopt;
  }
  request.target = path == std::string_view::npos ? "/" : std::string(target.substr(path));
  if (request.target.front() != '/') request.target.insert(0, "/");
  return request;
}

std::string forwarded_head(const ProxyRequest& request) {
  std::string head = request.method + " " + request.target + " " + request.version + "\r\n";
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    if (is_hop_by_hop(name)) continue;
    has_host = has_host || iequals(name, "host");
    head += name + ": " + value + "\r\n";
  }
  if (!has_host) {
    const bool v6 = request.host.find(':') != std::string::npos;
    head += "Host: " + (v6 ? "[" + request.host + "]" : request.host) +
            (request.port == 80 ? "" : ":" + std::to_string(request.port)) + "\r\n";
  }
  head += "Connection: close\r\n\r\n";
  return head;
}

}  // namespace spritescript::proto
