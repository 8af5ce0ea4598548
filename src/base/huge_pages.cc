#include "base/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace etherply {
namespace {

std::size_t Mapped(std::size_t bytes) {
  return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

}  // namespace

void* AllocateLarge(std::size_t bytes) {
  if (bytes < kLargeBytes) return std::malloc(bytes == 0 ? 1 : bytes);
  if (bytes > SIZE_MAX - 2 * kHugePageBytes) return nullptr;  // rounding up would wrap
  const std::size_t size = Mapped(bytes);
  // Map one huge page more than needed and trim it to an aligned range: the
  // kernel backs only aligned 2 MiB ranges with huge pages.
  void* raw = mmap(nullptr, size + kHugePageBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const std::uintptr_t end = start + size + kHugePageBytes;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - (aligned + size));
  void* p = reinterpret_cast<void*>(aligned);
  // Advice only: without transparent huge pages the range stays ordinary.
  (void)madvise(p, size, MADV_HUGEPAGE);
  return p;
}

void FreeLarge(void* p, std::size_t bytes) {
  if (!p) return;
  if (bytes < kLargeBytes) {
    std::free(p);
  } else {
    munmap(p, Mapped(bytes));
  }
}

}  // namespace etherply
