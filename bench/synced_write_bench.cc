// etherply_synced_write_bench: the machine's floor for one durable op. Synced
// writes through EtherPly's own store (RocksDB with the server's options),
// one at a time, at a fixed pace, with no network and no threads between.
// bench/run_peers.sh sets it beside the relay: an op that must be on disk
// before anyone sees it cannot reach its readers sooner than the relay's
// latency plus one such write.
//
//   etherply_synced_write_bench DIR [OPS] [RATE]
//
// DIR: a directory for a fresh database (created; must not hold one).
// OPS (default 1000) writes, each of a ~120-byte change and a heads record
// as an op writes them, at RATE (default 200) a second; 0: back to back.
// Output: one JSON line,
//   {"ops":..,"rate":..,"write_us":{"p50":..,"p99":..,"max":..}}
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "samples.h"
#include "storage/store.h"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::fprintf(stderr, "usage: etherply_synced_write_bench DIR [OPS] [RATE]\n");
    return 2;
  }
  long ops = argc > 2 ? std::atol(argv[2]) : 1000;
  long rate = argc > 3 ? std::atol(argv[3]) : 200;
  if (ops <= 0 || rate < 0) {
    std::fprintf(stderr, "etherply_synced_write_bench: OPS must be > 0 and RATE >= 0\n");
    return 2;
  }
  auto store = etherply::storage::OpenRocksDbStore(argv[1]);
  if (!store.ok()) {
    std::fprintf(stderr, "etherply_synced_write_bench: %s\n", store.status().ToString().c_str());
    return 1;
  }
  etherply::bench::Samples samples;
  samples.Reserve(ops);
  const std::string change(120, 'c'), heads(40, 'h');
  Clock::time_point start = Clock::now();
  for (long i = 0; i < ops; ++i) {
    if (rate > 0)
      std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000 / rate));
    etherply::storage::WriteBatch batch;
    batch.Put("c/synced-write-bench/" + std::to_string(i), change);
    batch.Put("h/synced-write-bench", heads);
    Clock::time_point t0 = Clock::now();
    if (auto s = (*store)->Write(batch); !s.ok()) {
      std::fprintf(stderr, "etherply_synced_write_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    samples.Add(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  }
  etherply::bench::Summary s = samples.Summarize();
  std::printf("{\"ops\":%ld,\"rate\":%ld,\"write_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f}}\n",
              ops, rate, s.p50_us, s.p99_us, s.max_us);
  return 0;
}
