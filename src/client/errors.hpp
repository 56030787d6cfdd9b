// Typed client errors (issue 4): every failure of a client call is an Error
// with a kind from the same vocabulary as the Lua side's sprites.error
// (docs/errors.md), the HTTP status and the API's error body when there was
// one. Messages never contain the token: they are built from the operation,
// the URL path and the server's words only.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace spritescript::client {

enum class ErrorKind {
  not_found,     // 404: no such sprite, session, checkpoint
  conflict,      // 409: e.g. the name is taken
  unauthorized,  // 401/403: missing or wrong token
  rate_limited,  // 429 (retry_after says when to try again)
  capacity,      // no capacity for the sprite right now
  usage,         // 400/422: the request itself is wrong
  api,           // any other refusal (5xx included)
  timeout,       // a deadline passed
  network,       // connect, TLS, or the connection broke
  protocol,      // the server answered something that breaks the protocol
  cancelled,     // the caller cancelled the operation
};

std::string_view kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, int status = 0, std::string code = {},
        std::optional<std::chrono::seconds> retry_after = std::nullopt)
      : std::runtime_error(message),
        kind_(kind),
        status_(status),
        code_(std::move(code)),
        retry_after_(retry_after) {}

  ErrorKind kind() const { return kind_; }
  int status() const { return status_; }             // 0 when no response
  const std::string& code() const { return code_; }  // the body's "error" (fs: "code"), if any
  std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }

 private:
  ErrorKind kind_;
  int status_;
  std::string code_;
  std::optional<std::chrono::seconds> retry_after_;
};

// The Error for an HTTP error response of `op` (e.g. "create sprite
// ci-7"): the kind from the status and body, the message from the body
// (spec §1.6), Retry-After in seconds when the header or body says it.
// The filesystem's body {"error","code","path"} (§10.1) keeps its errno
// name as code() and in the message; the kind comes from it (ENOENT
// not_found; EEXIST, ENOTEMPTY, EBUSY conflict; EINVAL, ENOTDIR, EISDIR
// usage; EACCES, EPERM api: a permission inside the sprite, not the token),
// else from the status.
Error error_from_response(std::string_view op, int status, std::string_view body,
                          std::string_view retry_after_header);

}  // namespace spritescript::client
