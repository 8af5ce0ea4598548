#include "cli/flags.h"

#include <charconv>

namespace etherply::cli {

Status Flags::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (booleans_.count(name)) {
      if (value) return Status::InvalidArgument("--" + name + " takes no value");
      values_.emplace(name, "");
    } else if (with_value_.count(name)) {
      if (!value) {
        if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      values_.emplace(name, *value);
    } else {
      return Status::InvalidArgument("unknown flag --" + name);
    }
  }
  return Status::Ok();
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  auto range = values_.equal_range(name);
  if (range.first == range.second) return std::nullopt;
  return std::prev(range.second)->second;  // the last one wins
}

std::vector<std::string> Flags::GetAll(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

Result<uint64_t> ParseCount(std::string_view s) {
  uint64_t v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size())
    return Status::InvalidArgument("not a non-negative integer: " + std::string(s));
  return v;
}

namespace {

constexpr const char* kSecondsForms = "60s, 5m, 2h or 1d";
constexpr const char* kMillisForms = "500ms, 60s, 5m, 2h or 1d";

Status NotADuration(const char* forms, std::string_view s) {
  return Status::InvalidArgument(std::string("wants a duration such as ") + forms + ", up to " +
                                 std::to_string(kMaxDurationSeconds / 86400) + "d, not \"" +
                                 std::string(s) + "\"");
}

// "90", "90s", "15m", "2h", "7d" as seconds, if within the bound.
std::optional<int64_t> ParseSeconds(std::string_view s) {
  int64_t unit = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 's': unit = 1; s.remove_suffix(1); break;
      case 'm': unit = 60; s.remove_suffix(1); break;
      case 'h': unit = 3600; s.remove_suffix(1); break;
      case 'd': unit = 86400; s.remove_suffix(1); break;
      default: break;
    }
  }
  auto n = ParseCount(s);
  if (!n.ok() || *n > static_cast<uint64_t>(kMaxDurationSeconds / unit)) return std::nullopt;
  return static_cast<int64_t>(*n) * unit;
}

}  // namespace

Result<int64_t> ParseDuration(std::string_view s) {
  if (auto seconds = ParseSeconds(s)) return *seconds;
  return NotADuration(kSecondsForms, s);
}

Result<int64_t> ParseMillis(std::string_view s) {
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms") {
    auto n = ParseCount(s.substr(0, s.size() - 2));
    if (n.ok() && *n <= static_cast<uint64_t>(kMaxDurationSeconds) * 1000)
      return static_cast<int64_t>(*n);
  } else if (auto seconds = ParseSeconds(s)) {
    return *seconds * 1000;
  }
  return NotADuration(kMillisForms, s);
}

}  // namespace etherply::cli
