#include "proto/values.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>

namespace spritescript::proto {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Nanoseconds per unit, for the unit at the start of `s` (longest match).
std::optional<std::pair<std::int64_t, std::size_t>> unit_at(std::string_view s) {
  struct Unit {
    std::string_view name;
    std::int64_t ns;
  };
  static constexpr Unit kUnits[] = {
      {"ns", 1},           {"us", 1000},      {"\xC2\xB5s", 1000},  // µs (micro sign)
      {"\xCE\xBCs", 1000},                                          // μs (Greek mu)
      {"ms", 1000000},     {"s", 1000000000}, {"m", 60LL * 1000000000}, {"h", 3600LL * 1000000000}};
  for (const Unit& u : kUnits) {
    if (s.substr(0, u.name.size()) == u.name) return std::pair{u.ns, u.name.size()};
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    std::size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < s.size() && is_digit(s[i])) value = value * 10 + (s[i++] - '0'), digits = true;
    if (i < s.size() && s[i] == '.') {
      long double scale = 0.1L;
      for (++i; i < s.size() && is_digit(s[i]); ++i, scale /= 10) {
        value += (s[i] - '0') * scale;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    auto unit = unit_at(s.substr(i));
    if (!unit) return std::nullopt;  // Go requires a unit on every number
    total += value * static_cast<long double>(unit->first);
    s.remove_prefix(i + unit->second);
  }
  // Go accepts one more nanosecond below zero than above it: the minimum
  // Duration (what format_go_duration writes for it) must parse back.
  constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::uint64_t limit = negative ? kMax + 1 : kMax;
  if (total > static_cast<long double>(limit)) return std::nullopt;
  auto magnitude = static_cast<std::uint64_t>(std::roundl(total));  // <= 2^63: fits
  if (magnitude > limit) return std::nullopt;
  if (!negative) return std::chrono::nanoseconds(static_cast<std::int64_t>(magnitude));
  // -2^63 has no positive counterpart: negate in unsigned arithmetic.
  return std::chrono::nanoseconds(static_cast<std::int64_t>(0 - magnitude));
}

std::string format_go_duration(std::chrono::nanoseconds d) {
  std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  std::uint64_t u =
      ns < 0 ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
  char buf[64];
  // Under a second: the largest unit that keeps a whole part ("1.5ms").
  auto fraction = [&](std::uint64_t unit, const char* name) {
    std::uint64_t whole = u / unit, rest = u % unit;
    std::string out = std::to_string(whole);
    if (rest) {
      std::snprintf(buf, sizeof buf, "%0*llu",
                    unit == 1000      ? 3
                    : unit == 1000000 ? 6
                                      : 9,
                    static_cast<unsigned long long>(rest));
      std::string digits = buf;
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    return sign + out + name;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return fraction(1000, "\xC2\xB5s");  // Go writes µs
  if (u < 1000000000) return fraction(1000000, "ms");
  // A second or more: h, m and fractional seconds ("1h0m0s", "1m30.5s").
  std::uint64_t hours = u / 3600000000000ULL;
  u %= 3600000000000ULL;
  std::uint64_t minutes = u / 60000000000ULL;
  u %= 60000000000ULL;
  std::string seconds = fraction(1000000000, "s").substr(sign.size());
  std::string out = sign;
  if (hours) out += std::to_string(hours) + "h";
  if (hours || minutes) out += std::to_string(minutes) + "m";
  return out + seconds;
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  // Whole seconds and the nanoseconds after them, in integer arithmetic:
  // floor<seconds> overflows converting back for the earliest time points.
  auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  std::int64_t secs = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) frac += 1000000000, --secs;
  auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (frac) {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    std::string digits = buf;
    while (digits.back() == '0') digits.pop_back();
    out += digits;
  }
  return out + "Z";
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    if (pos + len > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (!is_digit(s[i])) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, y) || s.size() < 20 || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' ||
      !num(8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) ||
      s[13] != ':' || !num(14, 2, mi) || s[16] != ':' || !num(17, 2, sec)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::size_t i = 19;
  std::int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    std::int64_t scale = 100000000;
    std::size_t start = ++i;
    for (; i < s.size() && is_digit(s[i]); ++i, scale /= 10) frac_ns += (s[i] - '0') * scale;
    if (i == start) return std::nullopt;
  }
  int offset_minutes = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
    // UTC
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh, om;
    if (!num(i + 1, 2, oh) || !num(i + 4, 2, om)) return std::nullopt;
    offset_minutes = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} - minutes{offset_minutes};
  // A time_point counts nanoseconds in an int64 (years 1677 to 2262): a time
  // outside that is "overflowing", not undefined behaviour.
  std::int64_t secs = tp.time_since_epoch().count(), ns = 0;
  if (secs < 0 && frac_ns > 0) {  // (secs + 1) s - (1 s - frac): no overflow at the bottom
    ++secs;
    frac_ns -= 1000000000;
  }
  if (__builtin_mul_overflow(secs, std::int64_t{1000000000}, &ns) ||
      __builtin_add_overflow(ns, frac_ns, &ns)) {
    return std::nullopt;
  }
  return system_clock::time_point{duration_cast<system_clock::duration>(nanoseconds{ns})};
}

std::optional<bool> parse_query_bool(std::string_view s) {
  if (s == "true" || s == "1") return true;
  if (s == "false" || s == "0") return false;
  return std::nullopt;
}

std::optional<unsigned> parse_octal_mode(std::string_view s) {
  if (s.empty() || s.size() > 4) return std::nullopt;
  unsigned mode = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  return mode;
}

std::string format_octal_mode(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace spritescript::proto
