// Lenient readers of JSON object members, the way the SDKs read the API's
// bodies: a missing or mistyped member is "absent", numbers saturate
// instead of overflowing (casting an out-of-range double is undefined
// behaviour, and wrapping would turn an exit code of 2^32 into 0), and NaN
// reads as 0 (Boost.JSON 1.81 parses 0e320 as NaN). Shared by the proto
// decoders and the engine; not part of the client's API.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spritescript::proto::fields {

// A number, or a string of decimal digits; nullopt when absent or neither.
std::optional<std::int64_t> int64_of(const boost::json::object& o, std::string_view key);
// The same, saturated to int.
std::optional<int> int_of(const boost::json::object& o, std::string_view key);
// A string, or an integer as its digits (ids sent either way); "" otherwise.
std::string text_of(const boost::json::object& o, std::string_view key);
// The strings of an array member (other items skipped); empty otherwise.
std::vector<std::string> strings_of(const boost::json::object& o, std::string_view key);
// True only for a JSON true.
bool flag_of(const boost::json::object& o, std::string_view key);

}  // namespace spritescript::proto::fields
