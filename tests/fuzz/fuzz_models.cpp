// The JSON models a client reads (spec §2.1, §2.3, §5.1, §5.2) on arbitrary
// bodies. Property: only ModelError escapes parse_sprite, parse_sprite_page
// and parse_sessions; parse_progress_event never throws. What parses is
// consistent (names never empty, `json` re-parses to the same sprite).
#include "fuzz_check.hpp"
#include "proto/models.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

using namespace spritescript::proto;

namespace {

bool same(const Sprite& a, const Sprite& b) {
  return a.name == b.name && a.id == b.id && a.organization == b.organization &&
         a.status == b.status && a.url == b.url && a.url_settings.auth == b.url_settings.auth &&
         a.url_settings.private_access == b.url_settings.private_access && a.labels == b.labels &&
         a.created_at == b.created_at && a.updated_at == b.updated_at;
}

void check_sprite(const Sprite& s) {
  FUZZ_CHECK(!s.name.empty());
  // `json` is the object as received: parsing it again gives the same sprite.
  Sprite again = parse_sprite(s.json);
  FUZZ_CHECK(same(s, again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);

  try {
    check_sprite(parse_sprite(body));
  } catch (const ModelError&) {
  }

  try {
    SpritePage page = parse_sprite_page(body);
    for (const auto& s : page.sprites) check_sprite(s);
  } catch (const ModelError&) {
  }

  try {
    (void)parse_sessions(body);
  } catch (const ModelError&) {
  }

  if (auto event = parse_progress_event(body)) {
    FUZZ_CHECK(event->json == body);
    if (event->exit_code) FUZZ_CHECK(body.find("exit_code") != std::string_view::npos);
  }
  return 0;
}
