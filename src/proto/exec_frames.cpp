#include "proto/exec_frames.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace spritescript::proto {

namespace json = boost::json;

std::string encode_frame(StreamId id, std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 1);
  frame.push_back(static_cast<char>(id));
  frame.append(payload);
  return frame;
}

std::string encode_exit_frame(int code) {
  std::string frame(2, static_cast<char>(StreamId::exit));
  frame[1] = static_cast<char>(static_cast<unsigned>(code) & 0xffU);
  return frame;
}

std::optional<Frame> decode_frame(std::string_view message) {
  if (message.empty()) return std::nullopt;
  auto id = static_cast<std::uint8_t>(message[0]);
  if (id > static_cast<std::uint8_t>(StreamId::stdin_eof)) return std::nullopt;
  return Frame{static_cast<StreamId>(id), message.substr(1)};
}

int exit_code_of(const Frame& exit_frame) {
  if (exit_frame.payload.empty()) return 0;
  return static_cast<unsigned char>(exit_frame.payload[0]);
}

namespace {

// Doubles beyond the range saturate (casting one is undefined behaviour);
// int32_field saturates too, so an exit code of 2^32 does not wrap to 0.
std::int64_t int_field(const json::object& o, std::string_view key) {
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  // Above 2^63 wraps negative, as before: replay_offset ignores such a value.
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) {
    // 2^63 is exact as a double; kMax is not (it rounds up to 2^63).
    // Boost.JSON 1.81 reads 0e320 (zero with an exponent past 308) as NaN.
    double d = v->as_double();
    if (std::isnan(d)) return 0;
    if (d >= 9223372036854775808.0) return kMax;
    if (d <= -9223372036854775808.0) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(d);
  }
  if (v->is_string()) {
    try {
      return std::stoll(std::string(v->as_string()));
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

std::string string_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return {};
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  return {};
}

int int32_field(const json::object& o, std::string_view key) {
  return static_cast<int>(std::clamp<std::int64_t>(int_field(o, key),
                                                   std::numeric_limits<int>::min(),
                                                   std::numeric_limits<int>::max()));
}

bool bool_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_bool() && v->as_bool();
}

}  // namespace

std::optional<ControlMessage> parse_control_message(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& o = value.as_object();
  const auto* type = o.if_contains("type");
  if (!type || !type->is_string()) return std::nullopt;
  std::string_view t = type->as_string();
  ControlMessage m;
  if (t == "session_info") {
    m.type = ControlMessage::Type::session_info;
    m.session.session_id = string_field(o, "session_id");
    m.session.command = string_field(o, "command");
    m.session.created = int_field(o, "created");
    m.session.tty = bool_field(o, "tty");
    m.session.is_owner = bool_field(o, "is_owner");
    m.session.cols = int32_field(o, "cols");
    m.session.rows = int32_field(o, "rows");
    if (const auto* offset = o.if_contains("replay_offset"); offset && offset->is_number()) {
      auto value = int_field(o, "replay_offset");
      if (value >= 0) m.session.replay_offset = static_cast<std::uint64_t>(value);
    }
  } else if (t == "exit") {
    m.type = ControlMessage::Type::exit;
    m.exit_code = int32_field(o, "exit_code");
  } else if (t == "port_opened" || t == "port_closed") {
    m.type = ControlMessage::Type::port;
    m.port.opened = t == "port_opened";
    m.port.port = int32_field(o, "port");
    m.port.address = string_field(o, "address");
    m.port.pid = int32_field(o, "pid");
  } else if (t == "keepalive") {
    m.type = ControlMessage::Type::keepalive;
  }
  return m;
}

std::string resize_message(int cols, int rows) {
  json::object o;
  o["type"] = "resize";
  o["cols"] = cols;
  o["rows"] = rows;
  return json::serialize(o);
}

std::string signal_message(std::string_view signal) {
  json::object o;
  o["type"] = "signal";
  o["signal"] = signal;
  return json::serialize(o);
}

}  // namespace spritescript::proto
