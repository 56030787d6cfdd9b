// Request targets as the Sprites API uses them: percent-decoded path
// segments and a query with repeated keys in order (spec §1.1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spritescript::proto {

struct Target {
  std::vector<std::string> segments;  // "/v1/sprites/a%20b" -> v1, sprites, "a b"
  std::vector<std::pair<std::string, std::string>> query;  // in order, repeated keys kept

  // The first value of `key`, or nullopt.
  std::optional<std::string> param(std::string_view key) const;
  // Every value of `key`, in order (cmd=a&cmd=b).
  std::vector<std::string> params(std::string_view key) const;
};

// nullopt when the target is not origin-form or has a bad %-escape.
std::optional<Target> parse_target(std::string_view target);

// Percent-decoding ('+' is a space in queries only).
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace spritescript::proto
