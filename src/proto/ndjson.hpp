// Newline-delimited JSON streams (checkpoint and restore progress, session
// kill, the sprite list watch): bytes arrive in arbitrary pieces; lines come
// out whole. Pure: no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace spritescript::proto {

class NdjsonSplitter {
 public:
  // A line longer than this fails the stream (a server that never sends a
  // newline must not grow the client without bound).
  explicit NdjsonSplitter(std::size_t max_line = std::size_t{16} * 1024 * 1024)
      : max_line_(max_line) {}

  // Appends bytes from the stream. False when the pending line grew past
  // the limit.
  bool feed(std::string_view bytes);
  // The next complete line without its "\n" (and "\r"); blank lines are
  // skipped. nullopt when no complete line is buffered.
  std::optional<std::string> next_line();
  // At the end of the stream: the last line when it had no newline.
  std::optional<std::string> finish();

 private:
  std::string buffer_;
  std::size_t start_ = 0;
  std::size_t max_line_;
};

}  // namespace spritescript::proto
