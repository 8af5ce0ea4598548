// An allocator for large arrays that asks the kernel for transparent huge
// pages (madvise(MADV_HUGEPAGE)): an array of tens of megabytes, touched once
// from end to end while a document loads, then costs one page fault per
// 2 MiB instead of one per 4 KiB (doc/design.md, "Huge pages for large
// arrays"). Arrays under 1 MiB come from the ordinary heap, so that small
// documents never hold a 2 MiB page for a few bytes; larger ones take their
// own mapping, rounded up to whole huge pages and aligned to one. Where the
// kernel gives no huge pages (THP "never"), the mapping is ordinary memory.
//
// Thread-safety: stateless; allocate and deallocate from any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>

namespace etherply {

// A huge page, and the size from which an allocation takes a mapping of its
// own (rounded up to whole huge pages).
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
inline constexpr std::size_t kLargeBytes = kHugePageBytes / 2;

// The next block of an array that grows in blocks of `unit`-byte elements:
// twice `current` elements, but from kLargeBytes on a whole huge page's
// worth, since such a block takes a 2 MiB mapping anyway. The rule of every
// array here that grows towards huge pages.
constexpr std::size_t NextBlock(std::size_t current, std::size_t unit) {
  const std::size_t most = std::max<std::size_t>(1, kHugePageBytes / unit);
  const std::size_t next = std::min(2 * current, most);
  return next * unit >= kLargeBytes ? most : next;
}

// The untyped part: `bytes` of memory, as described above; null when the
// kernel refuses the mapping.
void* AllocateLarge(std::size_t bytes);
void FreeLarge(void* p, std::size_t bytes);

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    void* p = AllocateLarge(n * sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) { FreeLarge(p, n * sizeof(T)); }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace etherply
