// Request targets (spec §1.1) on arbitrary bytes. Properties: parse_target
// never crashes; a parsed target re-encoded with percent_encode parses to the
// same segments and query; percent_decode inverts percent_encode; param() is
// the first of params().
#include "fuzz_check.hpp"
#include "proto/http_target.hpp"
#include "proto/models.hpp"  // percent_encode

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace spritescript::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto target = parse_target(text)) {
    FUZZ_CHECK(!text.empty() && text[0] == '/');
    std::string rebuilt;
    for (const auto& segment : target->segments) {
      FUZZ_CHECK(!segment.empty());
      rebuilt += "/" + percent_encode(segment);
    }
    if (rebuilt.empty()) rebuilt = "/";
    for (std::size_t i = 0; i < target->query.size(); ++i) {
      const auto& [key, value] = target->query[i];
      rebuilt += (i == 0 ? "?" : "&") + percent_encode(key) + "=" + percent_encode(value);
      auto all = target->params(key);
      FUZZ_CHECK(!all.empty());
      FUZZ_CHECK(target->param(key) == all.front());
    }
    auto again = parse_target(rebuilt);
    FUZZ_CHECK(again);
    FUZZ_CHECK(again->segments == target->segments);
    FUZZ_CHECK(again->query == target->query);
  }

  for (bool plus_is_space : {false, true}) {
    (void)percent_decode(text, plus_is_space);
    auto decoded = percent_decode(percent_encode(text), plus_is_space);
    FUZZ_CHECK(decoded && *decoded == text);
  }
  return 0;
}
