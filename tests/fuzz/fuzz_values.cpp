// Value encodings (spec §1.7): Go durations, RFC 3339 timestamps, octal
// modes, query booleans, signal names. Properties: parsing never crashes;
// parse(format(x)) == x for every duration, every representable time point
// and every mode; whatever parses formats to text that parses to the same
// value.
#include "fuzz_check.hpp"
#include "proto/signals.hpp"
#include "proto/values.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

using namespace spritescript::proto;
using std::chrono::nanoseconds;
using std::chrono::system_clock;

namespace {

std::int64_t int64_from(const std::uint8_t* data, std::size_t size) {
  std::uint64_t u = 0;
  if (size > 0) std::memcpy(&u, data, size < 8 ? size : 8);
  return static_cast<std::int64_t>(u);
}

void durations(std::string_view text, std::int64_t n) {
  // From text: what parses formats to Go's spelling, which parses back exactly.
  if (auto d = parse_go_duration(text)) {
    std::string formatted = format_go_duration(*d);
    auto again = parse_go_duration(formatted);
    FUZZ_CHECK(again && *again == *d);
  }
  // From a value: every int64 nanosecond count round trips.
  std::string formatted = format_go_duration(nanoseconds(n));
  auto back = parse_go_duration(formatted);
  FUZZ_CHECK(back && back->count() == n);
}

void timestamps(std::string_view text, std::int64_t n) {
  if (auto t = parse_rfc3339(text)) {
    std::string formatted = format_rfc3339(*t);
    auto again = parse_rfc3339(formatted);
    FUZZ_CHECK(again && *again == *t);
  }
  // system_clock counts nanoseconds here, so every time point is 1677..2262:
  // four-digit years, all of which format and parse back.
  system_clock::time_point t{std::chrono::duration_cast<system_clock::duration>(nanoseconds(n))};
  std::string formatted = format_rfc3339(t);
  auto back = parse_rfc3339(formatted);
  FUZZ_CHECK(back && *back == t);
}

void modes(std::string_view text, std::int64_t n) {
  if (auto m = parse_octal_mode(text)) {
    FUZZ_CHECK(*m <= 07777);
    FUZZ_CHECK(format_octal_mode(*m).size() == 4);
    FUZZ_CHECK(parse_octal_mode(format_octal_mode(*m)) == m);
  }
  unsigned mode = static_cast<unsigned>(n) & 07777;
  FUZZ_CHECK(parse_octal_mode(format_octal_mode(mode)) == mode);
}

void others(std::string_view text, std::int64_t n) {
  if (auto b = parse_query_bool(text)) FUZZ_CHECK(text == "true" || text == "false" || text == "1" || text == "0");
  if (auto signo = parse_signal(text)) {
    FUZZ_CHECK(*signo >= 1 && *signo <= 64);
    (void)signal_name(*signo);
  }
  (void)signal_name(static_cast<int>(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::int64_t n = int64_from(data, size);
  durations(text, n);
  timestamps(text, n);
  modes(text, n);
  others(text, n);
  return 0;
}
