#include "proto/exec_frames.hpp"

#include "proto/json_fields.hpp"

#include <boost/json.hpp>

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

using fields::flag_of;
using fields::int64_of;
using fields::int_of;
using fields::text_of;

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
    m.session.session_id = text_of(o, "session_id");
    m.session.command = text_of(o, "command");
    m.session.created = int64_of(o, "created").value_or(0);
    m.session.tty = flag_of(o, "tty");
    m.session.is_owner = flag_of(o, "is_owner");
    m.session.cols = int_of(o, "cols").value_or(0);
    m.session.rows = int_of(o, "rows").value_or(0);
    if (const auto* offset = o.if_contains("replay_offset"); offset && offset->is_number()) {
      auto value = int64_of(o, "replay_offset").value_or(-1);
      if (value >= 0) m.session.replay_offset = static_cast<std::uint64_t>(value);
    }
  } else if (t == "exit") {
    m.type = ControlMessage::Type::exit;
    m.exit_code = int_of(o, "exit_code").value_or(0);
  } else if (t == "port_opened" || t == "port_closed") {
    m.type = ControlMessage::Type::port;
    m.port.opened = t == "port_opened";
    m.port.port = int_of(o, "port").value_or(0);
    m.port.address = text_of(o, "address");
    m.port.pid = int_of(o, "pid").value_or(0);
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
