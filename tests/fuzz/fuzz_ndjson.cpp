// NdjsonSplitter fed the input in random pieces (the split points come from a
// PRNG seeded with the input, so a crash reproduces from the file alone).
// Properties: the lines that come out are exactly the input's non-blank lines
// (a trailing "\r" stripped), whatever the split; feed() fails exactly when
// the unterminated tail is longer than max_line.
#include "fuzz_check.hpp"
#include "proto/ndjson.hpp"

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace spritescript::proto;

namespace {

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t") == std::string_view::npos;
}

std::string strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::string(line);
}

// The reference: split on '\n', drop one trailing '\r', skip blank lines.
std::vector<std::string> expected_lines(std::string_view input) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (true) {
    std::size_t newline = input.find('\n', start);
    std::string line = strip_cr(input.substr(start, newline == std::string_view::npos
                                                        ? std::string_view::npos
                                                        : newline - start));
    if (!blank(line)) lines.push_back(std::move(line));
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  return lines;
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// One pass over `input` with a given max_line; returns false when a feed
// failed (the stream is then abandoned, as the client does).
void run(std::string_view input, std::size_t max_line, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  NdjsonSplitter splitter(max_line);
  std::vector<std::string> got;
  std::size_t pos = 0;
  std::size_t last_newline_end = 0;  // where the unterminated tail starts
  while (pos < input.size()) {
    // Piece sizes: mostly small (0 included), sometimes large.
    std::size_t n = rng() % 4 == 0 ? rng() % (input.size() - pos + 1) : rng() % 8;
    n = std::min(n, input.size() - pos);
    std::string_view piece = input.substr(pos, n);
    pos += n;
    if (auto nl = piece.rfind('\n'); nl != std::string_view::npos) {
      last_newline_end = pos - n + nl + 1;
    }
    bool ok = splitter.feed(piece);
    std::size_t tail = pos - last_newline_end;
    FUZZ_CHECK(ok == (tail <= max_line));
    if (!ok) return;
    // Drain sometimes, not always: lines may pile up in the buffer.
    if (rng() % 2 == 0) {
      while (auto line = splitter.next_line()) got.push_back(std::move(*line));
    }
  }
  while (auto line = splitter.next_line()) got.push_back(std::move(*line));
  if (auto last = splitter.finish()) got.push_back(std::move(*last));
  FUZZ_CHECK(!splitter.finish());
  FUZZ_CHECK(!splitter.next_line());

  auto want = expected_lines(input);
  FUZZ_CHECK(got == want);
  for (const auto& line : got) {
    FUZZ_CHECK(line.find('\n') == std::string::npos);
    FUZZ_CHECK(!blank(line));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::uint64_t seed = fnv1a(input);
  run(input, std::size_t{16} * 1024 * 1024, seed);  // the default: never hit
  run(input, 1 + seed % 64, seed ^ 0x9e3779b97f4a7c15ULL);  // a small limit
  return 0;
}
