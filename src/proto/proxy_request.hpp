// The request head a client sends to an HTTP proxy (RFC 9110 §9.3.6,
// RFC 9112 §3.2): `CONNECT host:port` for a tunnel (HTTPS), or a request
// with an absolute URL (`GET http://host/path`) for plain HTTP. Pure; the
// local engine's egress proxy uses it (docs/networking.md, "Egress").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spritescript::proto {

struct ProxyRequest {
  bool connect = false;  // CONNECT: a tunnel; else one forwarded request
  std::string method;
  std::string host;  // as named: a DNS name or an IP literal (no brackets)
  int port = 0;
  std::string target;   // origin-form ("/path?q"), forwarded requests only
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;
};

// Parses a head (request line and headers, up to and excluding the blank
// line). nullopt with `error` set (one line, what is wrong) when it is not a
// proxy request: malformed, an origin-form target, or a scheme other than
// http:// (HTTPS goes through CONNECT).
std::optional<ProxyRequest> parse_proxy_request(std::string_view head, std::string& error);

// The head to send upstream for a forwarded request: origin-form target,
// hop-by-hop and proxy headers dropped, `Connection: close` (one request per
// upstream connection), ending with the blank line.
std::string forwarded_head(const ProxyRequest& request);

}  // namespace spritescript::proto
