// Lenient JSON readers the end-to-end tests share: a body that is not an
// object reads as empty, a missing or mistyped member as "" or -1, so a
// CHECK on the value fails with what was there instead of throwing.
#pragma once

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace e2e {

inline boost::json::object parse_object(std::string_view text) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

inline std::string string_field(const boost::json::object& o, const char* key) {
  const boost::json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

inline std::int64_t int_field(const boost::json::object& o, const char* key) {
  const boost::json::value* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  return -1;
}

}  // namespace e2e
