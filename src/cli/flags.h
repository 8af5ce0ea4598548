// A small command-line flag parser: --name VALUE, --name=VALUE, repeated
// flags, and boolean flags. Unknown flags and missing values are errors.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace etherply::cli {

class Flags {
 public:
  // `with_value`: flags that take a value; `booleans`: flags that do not.
  Flags(std::set<std::string> with_value, std::set<std::string> booleans)
      : with_value_(std::move(with_value)), booleans_(std::move(booleans)) {}

  // Parses argv[first..argc). Positional arguments are kept in order.
  Status Parse(int argc, char** argv, int first = 1);

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::set<std::string> with_value_, booleans_;
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// The longest duration any flag takes: 365 days. Far longer ones overflow
// the clocks' nanoseconds (about 292 years) when a timer is set, and a year
// already means "never" to a connection or a token.
inline constexpr int64_t kMaxDurationSeconds = int64_t{365} * 24 * 3600;

// "90" or "90s", "15m", "2h", "7d" as seconds, from 0 to
// kMaxDurationSeconds. The error's message is for the caller to put after the
// flag's name: "wants a duration such as 60s, 5m, 2h or 1d, up to 365d".
Result<int64_t> ParseDuration(std::string_view s);
// A duration in milliseconds: "250ms", or anything ParseDuration takes; the
// same bound and the same kind of message.
Result<int64_t> ParseMillis(std::string_view s);
Result<uint64_t> ParseCount(std::string_view s);

}  // namespace etherply::cli
