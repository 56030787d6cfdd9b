// decode_frame and parse_control_message on arbitrary WebSocket messages
// (spec §3.4, §3.6.2). Properties: a decoded frame re-encodes to the same
// bytes; only empty messages and unknown ids are rejected; exit codes stay in
// 0..255; control-message parsing never throws.
#include "fuzz_check.hpp"
#include "proto/exec_frames.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace spritescript::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view message(reinterpret_cast<const char*>(data), size);

  // Binary frames.
  if (auto frame = decode_frame(message)) {
    FUZZ_CHECK(!message.empty());
    FUZZ_CHECK(static_cast<std::uint8_t>(message[0]) <= 0x04);
    FUZZ_CHECK(frame->payload.data() == message.data() + 1);
    FUZZ_CHECK(encode_frame(frame->id, frame->payload) == message);
    if (frame->id == StreamId::exit) {
      int code = exit_code_of(*frame);
      FUZZ_CHECK(code >= 0 && code <= 255);
      if (frame->payload.size() == 1) FUZZ_CHECK(encode_exit_frame(code) == message);
      if (frame->payload.empty()) FUZZ_CHECK(code == 0);
    }
  } else {
    FUZZ_CHECK(message.empty() || static_cast<std::uint8_t>(message[0]) > 0x04);
  }

  // Text frames: any outcome but an exception or a sanitizer report.
  if (auto control = parse_control_message(message)) {
    if (control->type == ControlMessage::Type::exit) {
      // The exit message as a server writes it parses back to the same code.
      std::string again = "{\"type\":\"exit\",\"exit_code\":" + std::to_string(control->exit_code) + "}";
      auto reparsed = parse_control_message(again);
      FUZZ_CHECK(reparsed && reparsed->type == ControlMessage::Type::exit &&
                 reparsed->exit_code == control->exit_code);
    }
  }

  // The exit frame encoder agrees with the decoder for every code.
  if (size >= 4) {
    int code = static_cast<int>(static_cast<std::uint32_t>(data[0]) << 24 | data[1] << 16 |
                                data[2] << 8 | data[3]);
    std::string exit = encode_exit_frame(code);
    auto frame = decode_frame(exit);
    FUZZ_CHECK(frame && frame->id == StreamId::exit);
    FUZZ_CHECK(exit_code_of(*frame) == (static_cast<unsigned>(code) & 0xffU));
  }
  return 0;
}
