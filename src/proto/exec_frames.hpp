// Exec stream framing (shared/spec/sprites-api.md §3.4-§3.6, §4): the binary
// frames of non-TTY exec (one stream-id byte, then the payload, no length),
// and the JSON control messages both directions use. Pure: no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace spritescript::proto {

enum class StreamId : std::uint8_t {
  stdin_data = 0x00,
  stdout_data = 0x01,
  stderr_data = 0x02,
  exit = 0x03,
  stdin_eof = 0x04,
};

// One binary frame: `id` then `payload`.
std::string encode_frame(StreamId id, std::string_view payload);
// The 2-byte exit frame; `code` is taken modulo 256 as the wire carries it.
std::string encode_exit_frame(int code);

struct Frame {
  StreamId id;
  std::string_view payload;  // points into the decoded message
};
// nullopt for an empty message or an unknown stream id (both are ignored by
// every client, §3.4).
std::optional<Frame> decode_frame(std::string_view message);
// The exit code an exit frame carries: payload[0], or 0 when empty (§3.4).
int exit_code_of(const Frame& exit_frame);

// Server -> client text messages (§3.6.2). Unknown types are kept as
// `other` with their raw text so a caller can pass them on.
struct SessionInfo {
  std::string session_id;  // a string of digits; integers are accepted too (§3.6.3)
  std::string command;
  std::int64_t created = 0;  // Unix seconds
  bool tty = false;
  bool is_owner = false;
  int cols = 0;
  int rows = 0;
  // spritescript's extension on attach: the offset, in bytes of output
  // since the process started, where the replayed output begins. With it a
  // client that lost its connection resumes without loss or duplicates.
  std::optional<std::uint64_t> replay_offset;
};
struct PortEvent {
  bool opened = true;  // port_opened, else port_closed
  int port = 0;
  std::string address;
  int pid = 0;
};
struct ControlMessage {
  enum class Type { session_info, exit, port, keepalive, other };
  Type type = Type::other;
  SessionInfo session;  // session_info
  int exit_code = 0;    // exit
  PortEvent port;       // port_opened / port_closed
};
// nullopt when `text` is not a JSON object with a string "type".
std::optional<ControlMessage> parse_control_message(std::string_view text);

// Client -> server messages (§3.6.1). `signal` may carry a SIG prefix or not.
std::string resize_message(int cols, int rows);
std::string signal_message(std::string_view signal);

}  // namespace spritescript::proto
