#include "proto/signals.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <utility>

namespace spritescript::proto {
namespace {

// Linux (x86_64 and arm64) numbering.
constexpr std::array<std::pair<std::string_view, int>, 28> kSignals = {{
    {"HUP", 1},   {"INT", 2},     {"QUIT", 3},  {"ILL", 4},     {"TRAP", 5},  {"ABRT", 6},
    {"BUS", 7},   {"FPE", 8},     {"KILL", 9},  {"USR1", 10},   {"SEGV", 11}, {"USR2", 12},
    {"PIPE", 13}, {"ALRM", 14},   {"TERM", 15}, {"STKFLT", 16}, {"CHLD", 17}, {"CONT", 18},
    {"STOP", 19}, {"TSTP", 20},   {"TTIN", 21}, {"TTOU", 22},   {"URG", 23},  {"XCPU", 24},
    {"XFSZ", 25}, {"VTALRM", 26}, {"PROF", 27}, {"WINCH", 28},
}};

}  // namespace

std::optional<int> parse_signal(std::string_view name) {
  if (name.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) {
    int n = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
    if (ec != std::errc() || end != name.data() + name.size() || n < 1 || n > 64) {
      return std::nullopt;
    }
    return n;
  }
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view bare = upper;
  if (bare.size() > 3 && bare.substr(0, 3) == "SIG") bare.remove_prefix(3);
  for (const auto& [signal, number] : kSignals) {
    if (signal == bare) return number;
  }
  return std::nullopt;
}

std::string signal_name(int signo) {
  for (const auto& [signal, number] : kSignals) {
    if (number == signo) return "SIG" + std::string(signal);
  }
  return "SIG" + std::to_string(signo);
}

}  // namespace spritescript::proto
