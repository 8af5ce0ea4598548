// Latency samples for the bench tools: collected as they come, summarized
// once at the end into nearest-rank percentiles.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace etherply::bench {

struct Summary {
  size_t n = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;
};

// Latencies in nanoseconds; summarized once, at the end.
class Samples {
 public:
  void Reserve(size_t n) { ns_.reserve(n); }
  void Add(int64_t ns) { ns_.push_back(ns); }

  // Nearest-rank percentiles. Sorts the samples.
  Summary Summarize() {
    Summary s;
    s.n = ns_.size();
    if (ns_.empty()) return s;
    std::sort(ns_.begin(), ns_.end());
    auto rank = [&](double q) {
      size_t i = static_cast<size_t>(std::ceil(q * ns_.size()));
      return ns_[std::clamp<size_t>(i, 1, ns_.size()) - 1] / 1e3;
    };
    s.p50_us = rank(0.50);
    s.p99_us = rank(0.99);
    s.max_us = ns_.back() / 1e3;
    return s;
  }

 private:
  std::vector<int64_t> ns_;
};

}  // namespace etherply::bench
