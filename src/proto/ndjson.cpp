#include "proto/ndjson.hpp"

namespace spritescript::proto {

bool NdjsonSplitter::feed(std::string_view bytes) {
  if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
  auto newline = buffer_.find('\n', start_);
  if (newline == std::string::npos) return buffer_.size() - start_ <= max_line_;
  // Check only the tail: lines before the last newline are taken out whole.
  auto tail = buffer_.size() - buffer_.rfind('\n') - 1;
  return tail <= max_line_;
}

std::optional<std::string> NdjsonSplitter::next_line() {
  while (true) {
    auto newline = buffer_.find('\n', start_);
    if (newline == std::string::npos) return std::nullopt;
    std::string line = buffer_.substr(start_, newline - start_);
    start_ = newline + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) return line;
  }
}

std::optional<std::string> NdjsonSplitter::finish() {
  if (auto line = next_line()) return line;
  std::string rest = buffer_.substr(start_);
  buffer_.clear();
  start_ = 0;
  if (!rest.empty() && rest.back() == '\r') rest.pop_back();
  if (rest.find_first_not_of(" \t") == std::string::npos) return std::nullopt;
  return rest;
}

}  // namespace spritescript::proto
