// An array that grows at its end without moving what it holds once its
// first block is full, for large append-mostly tables such as a document's
// change log. Its first block grows by NextBlock (doubling, so that a small
// array holds little, up to one huge page of elements); from then on it
// adds a block of one huge page at a time, from HugePageAllocator
// (base/huge_pages.h), so that a table of tens of megabytes costs one page
// fault per 2 MiB and appending never copies more than that first block.
// push_back invalidates references into the first block while it grows.
// Elements are held by value; T must be trivially copyable.
//
// Thread-safety: none; reads through a const BlockArray are safe from
// several threads if nothing writes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "base/huge_pages.h"

namespace etherply {

template <typename T>
class BlockArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Elements per full block: one huge page's worth.
  static constexpr size_t kBlock = std::max<size_t>(1, kHugePageBytes / sizeof(T));

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](size_t i) { return blocks_[i / kBlock][i % kBlock]; }
  const T& operator[](size_t i) const { return blocks_[i / kBlock][i % kBlock]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  // By value: `value` may be an element of this array.
  void push_back(T value) {
    if (blocks_.empty() || blocks_.back().size() == kBlock) {
      blocks_.emplace_back();
      // Only the first block grows by doubling; later ones start whole.
      if (blocks_.size() > 1) blocks_.back().reserve(kBlock);
    }
    Block& last = blocks_.back();
    if (last.size() == last.capacity())
      last.reserve(std::max<size_t>(16, NextBlock(last.capacity(), sizeof(T))));
    last.push_back(value);
    ++size_;
  }

  // Drops the elements from n on (n <= size()).
  void Truncate(size_t n) {
    if (n >= size_) return;
    blocks_.resize((n + kBlock - 1) / kBlock);
    if (!blocks_.empty()) blocks_.back().resize(n - (blocks_.size() - 1) * kBlock);
    size_ = n;
  }

  // Bytes reserved for elements.
  size_t MemoryUsage() const {
    size_t n = 0;
    for (const Block& b : blocks_) n += b.capacity() * sizeof(T);
    return n;
  }

 private:
  using Block = std::vector<T, HugePageAllocator<T>>;
  std::vector<Block> blocks_;
  size_t size_ = 0;
};

}  // namespace etherply
