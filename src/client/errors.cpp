#include "client/errors.hpp"

#include "proto/api_error.hpp"
#include "proto/json_fields.hpp"

#include <boost/json/parse.hpp>

#include <charconv>

namespace spritescript::client {

std::string_view kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::not_found:
      return "not_found";
    case ErrorKind::conflict:
      return "conflict";
    case ErrorKind::unauthorized:
      return "unauthorized";
    case ErrorKind::rate_limited:
      return "rate_limited";
    case ErrorKind::capacity:
      return "capacity";
    case ErrorKind::usage:
      return "usage";
    case ErrorKind::api:
      return "api";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::network:
      return "network";
    case ErrorKind::protocol:
      return "protocol";
    case ErrorKind::cancelled:
      return "cancelled";
  }
  return "api";
}

namespace {

ErrorKind kind_of(int status, std::string_view code) {
  // Sprites says "no capacity" with codes rather than one status (§1.6).
  if (code.find("capacity") != std::string_view::npos ||
      code == "concurrent_sprite_limit_exceeded") {
    return ErrorKind::capacity;
  }
  std::string_view kind = proto::kind_for_status(status);
  if (kind == "not_found") return ErrorKind::not_found;
  if (kind == "conflict") return ErrorKind::conflict;
  if (kind == "unauthorized") return ErrorKind::unauthorized;
  if (kind == "rate_limited") return ErrorKind::rate_limited;
  if (kind == "usage") return ErrorKind::usage;
  return ErrorKind::api;
}

std::optional<std::chrono::seconds> parse_seconds(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || value < 0) return std::nullopt;
  return std::chrono::seconds(value);
}

// The filesystem endpoints' body (spec §10.1): {"error": text, "code":
// "ENOENT", "path": "/abs"}; nullopt for any other body.
struct FsErrorBody {
  std::string text, code, path;
};

std::optional<FsErrorBody> fs_error_body(std::string_view body) {
  if (body.empty() || body.front() != '{') return std::nullopt;
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& o = value.as_object();
  const auto* code = o.if_contains("code");
  if (!code || !code->is_string() || code->as_string().empty()) return std::nullopt;
  return FsErrorBody{proto::fields::text_of(o, "error"), std::string(code->as_string()),
                     proto::fields::text_of(o, "path")};
}

// errno names first (a permission inside the sprite is no token problem),
// then the status.
ErrorKind fs_kind_of(int status, std::string_view code) {
  if (code == "ENOENT") return ErrorKind::not_found;
  if (code == "EEXIST" || code == "ENOTEMPTY" || code == "EBUSY") return ErrorKind::conflict;
  if (code == "EINVAL" || code == "ENOTDIR" || code == "EISDIR") return ErrorKind::usage;
  if (code == "EACCES" || code == "EPERM") return ErrorKind::api;
  return kind_of(status, code);
}

}  // namespace

Error error_from_response(std::string_view op, int status, std::string_view body,
                          std::string_view retry_after_header) {
  if (auto fs = fs_error_body(body)) {
    // "read /x of box: no such file or directory: /home/sprite/x (ENOENT, HTTP 404)"
    std::string message(op);
    message += ": ";
    message += fs->text.empty() ? "failed" : fs->text;
    if (!fs->path.empty() && fs->text.find(fs->path) == std::string::npos) {
      message += ": " + fs->path;
    }
    message += " (" + fs->code + ", HTTP " + std::to_string(status) + ")";
    return {fs_kind_of(status, fs->code), message, status, fs->code,
            parse_seconds(retry_after_header)};
  }
  proto::ApiError parsed = proto::parse_error_body(status, body);
  auto retry_after = parse_seconds(retry_after_header);
  if (!retry_after && parsed.retry_after_seconds) {
    retry_after = std::chrono::seconds(*parsed.retry_after_seconds);
  }
  std::string message(op);
  message += ": ";
  message += parsed.message;
  message += " (HTTP " + std::to_string(status) + ")";
  return Error(kind_of(status, parsed.code), message, status, parsed.code, retry_after);
}

}  // namespace spritescript::client
