// parse_error_body on arbitrary bodies (spec §1.6). Properties: it never
// throws, the message is never empty, the status is kept; what error_body
// writes for the result parses back to the same code and message.
#include "fuzz_check.hpp"
#include "proto/api_error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace spritescript::proto;

namespace {

// Strict UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF),
// what Boost.JSON's parser accepts inside a string.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  for (int status : {0, 404, 429, 500}) {
    ApiError e = parse_error_body(status, body);  // an exception fails the run
    FUZZ_CHECK(e.status == status);
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(!kind_for_status(status).empty());

    // Server side: error_body of what we read is a JSON object that reads back
    // the same (when the message is text a JSON string can carry: a raw
    // non-JSON body may hold any bytes).
    std::string written = error_body(e);
    FUZZ_CHECK(!written.empty());
    bool textual = valid_utf8(e.message) && valid_utf8(e.code);
    if (textual) {
      ApiError back = parse_error_body(status, written);
      FUZZ_CHECK(back.message == e.message);
      FUZZ_CHECK(back.code == (e.code.empty() ? std::string(kind_for_status(status)) : e.code));
      FUZZ_CHECK(back.retry_after_seconds == e.retry_after_seconds);
      FUZZ_CHECK(back.limit == e.limit);
      FUZZ_CHECK(back.window_seconds == e.window_seconds);
      FUZZ_CHECK(back.current_count == e.current_count);
    }
  }
  return 0;
}
