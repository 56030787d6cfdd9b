#include "proto/api_error.hpp"

#include "proto/json_fields.hpp"

#include <boost/json.hpp>

namespace json = boost::json;

namespace spritescript::proto {
namespace {

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

}  // namespace

ApiError parse_error_body(int status, std::string_view body) {
  ApiError e;
  e.status = status;
  json::error_code ec;
  json::value doc = json::parse(json::string_view(body.data(), body.size()), ec);
  if (!ec && doc.is_object()) {
    const json::object& o = doc.as_object();
    e.code = string_field(o, "error");
    e.message = string_field(o, "message");
    e.retry_after_seconds = fields::int_of(o, "retry_after_seconds");
    e.limit = fields::int_of(o, "limit");
    e.window_seconds = fields::int_of(o, "window_seconds");
    e.current_count = fields::int_of(o, "current_count");
    if (e.message.empty()) {
      // {"errors": ["invalid x", ...]}: validation errors joined.
      if (const json::value* errs = o.if_contains("errors"); errs && errs->is_array()) {
        for (const json::value& item : errs->as_array()) {
          if (!item.is_string()) continue;
          if (!e.message.empty()) e.message += "; ";
          e.message += item.as_string();
        }
      }
    }
    // Docs examples put human text in "error": {"error":"sprite not found"}.
    if (e.message.empty() && e.code.find(' ') != std::string::npos) e.message = e.code;
  } else if (!body.empty()) {
    e.message = std::string(body.substr(0, 1000));
    while (!e.message.empty() && (e.message.back() == '\n' || e.message.back() == '\r')) {
      e.message.pop_back();
    }
  }
  if (e.message.empty()) e.message = "API error (status " + std::to_string(status) + ")";
  return e;
}

std::string error_body(const ApiError& error) {
  json::object o;
  o["error"] = error.code.empty() ? std::string(kind_for_status(error.status)) : error.code;
  o["message"] = error.message.empty() ? "error" : error.message;
  if (error.retry_after_seconds) o["retry_after_seconds"] = *error.retry_after_seconds;
  if (error.limit) o["limit"] = *error.limit;
  if (error.window_seconds) o["window_seconds"] = *error.window_seconds;
  if (error.current_count) o["current_count"] = *error.current_count;
  return json::serialize(o);
}

std::string_view kind_for_status(int status) {
  switch (status) {
    case 400:
    case 422:
      return "usage";
    case 401:
    case 403:
      return "unauthorized";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 429:
      return "rate_limited";
    default:
      return "api";
  }
}

}  // namespace spritescript::proto
