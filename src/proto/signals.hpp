// Signal names as exec clients send them (spec §3.6.1, §5.2): "TERM",
// "SIGTERM", "sigterm" or a number all mean the same signal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace spritescript::proto {

// The Linux signal number, or nullopt for an unknown name.
std::optional<int> parse_signal(std::string_view name);
// "SIGTERM" for 15; "SIG<n>" for numbers without a name.
std::string signal_name(int signo);

}  // namespace spritescript::proto
