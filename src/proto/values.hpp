// Value encodings of the Sprites API (shared/spec/sprites-api.md §1.7): Go
// duration strings, RFC 3339 timestamps, query-string booleans, octal modes.
// Pure functions, used by the client and the local engine alike.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace spritescript::proto {

// Go's time.Duration syntax: "5s", "1m30s", "500ms", "1.5h", "0s", "-2us".
// Units: ns, us (or µs), ms, s, m, h. nullopt when malformed or overflowing.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

// Formats like Go's Duration.String(): "0s", "500ms", "1m30s", "1h0m0s".
std::string format_go_duration(std::chrono::nanoseconds d);

// "2026-01-13T10:30:00Z", or with fractional seconds when there are any
// ("...:00.250Z"). Always UTC.
std::string format_rfc3339(std::chrono::system_clock::time_point t);

// Accepts "Z" or a numeric offset and optional fractional seconds.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// Query-string booleans: "true"/"false", also "1"/"0" (§1.7).
std::optional<bool> parse_query_bool(std::string_view text);

// ASCII case-insensitive equality (header names, host names).
bool iequals(std::string_view a, std::string_view b);

// File modes as 4-digit octal strings: "0644" <-> 0644.
std::optional<unsigned> parse_octal_mode(std::string_view text);
std::string format_octal_mode(unsigned mode);

}  // namespace spritescript::proto
