// The API's error bodies (shared/spec/sprites-api.md §1.6) and the error
// kinds spritescript derives from them. The kinds are the same vocabulary as
// the Lua side's sprites.error (docs/errors.md), so an HTTP failure maps to
// one exit code wherever it surfaces.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spritescript::proto {

struct ApiError {
  int status = 0;       // HTTP status
  std::string code;     // "error": machine code, e.g. "sprite_not_found"
  std::string message;  // human text, never empty after parse_error_body
  std::optional<int> retry_after_seconds;
  std::optional<int> limit;
  std::optional<int> window_seconds;
  std::optional<int> current_count;
};

// What a client makes of an error response, following the SDKs: a JSON
// {"error","message",...} body; a JSON {"errors": [...]} validation body;
// any other body as raw text; an empty one as "API error (status N)".
ApiError parse_error_body(int status, std::string_view body);

// The body a server sends: {"error":"<code>","message":"<text>"} plus the
// rate-limit fields that are set. Always a non-empty JSON object.
std::string error_body(const ApiError& error);

// The error kind for an HTTP status: not_found, conflict, unauthorized,
// rate_limited, usage (400/422), api (anything else).
std::string_view kind_for_status(int status);

}  // namespace spritescript::proto
