// The applied changes of a document, kept compactly (doc/design.md, "The
// change log").
//
// A change is a row of fixed-size fields (author as a document actor index,
// seq, maxOp, number of ops, time, deps as row indices) plus its hash and
// the part of its chunk that the fields do not determine: the body from the
// message on (message, other actors, op columns, extra bytes). The chunk is
// rebuilt from the row on demand, exactly: a chunk is stored that way only if
// rebuilding it gives back its bytes (canonical LEB128 in the header); any
// other chunk is kept whole. Hashes live in an open-addressing table of row
// indices. Rows, hashes and bytes grow in blocks that end at one huge page
// (base/block_array.h, base/huge_pages.h), so appending never copies more
// than the first block, and a large log costs one page fault per 2 MiB.
//
// Rows are appended in application order (a topological order); the newest
// rows can be taken back (Truncate), which is how a failed batch is undone.
//
// Thread-safety: none; owned by one Document. Reads through a const
// ChangeLog are safe from several threads if nothing writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <vector>

#include "automerge/change.h"
#include "automerge/types.h"
#include "base/block_array.h"
#include "base/bytes.h"
#include "base/huge_pages.h"

namespace etherply::automerge {

class ChangeLog {
 public:
  // actors: the owning document's actor table (actor indices in rows refer
  // to it); it must outlive the log and only ever grow while rows use it.
  explicit ChangeLog(const std::vector<ActorId>* actors);

  size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }

  // Row i's fields. i < size(). A reference is valid until the next Append
  // or Truncate.
  const ChangeHash& hash(size_t i) const { return hashes_[i]; }
  uint32_t actor(size_t i) const { return rows_[i].actor; }
  uint64_t seq(size_t i) const { return rows_[i].seq; }
  uint64_t num_ops(size_t i) const { return rows_[i].num_ops; }
  // The greatest op counter of the change (start_op - 1 when it has no ops).
  uint64_t max_op(size_t i) const { return rows_[i].max_op; }
  uint64_t start_op(size_t i) const { return uint64_t{rows_[i].max_op} + 1 - rows_[i].num_ops; }
  int64_t time(size_t i) const { return rows_[i].time; }
  // The rows of the change's deps, in the order of their hashes.
  std::span<const uint32_t> deps(size_t i) const;

  // The exact chunk bytes of row i.
  Bytes bytes(size_t i) const;
  // Row i as a StoredChange: bytes, hash and every header field (deps,
  // actor, seq, start_op, time, message, other actors, num_ops, extra); the
  // ops are left out (ReadChange decodes them).
  StoredChange Get(size_t i) const;
  StoredChange operator[](size_t i) const { return Get(i); }
  StoredChange back() const { return Get(size() - 1); }

  // The row of a hash, if present.
  std::optional<uint32_t> Find(const ChangeHash& h) const;
  bool Contains(const ChangeHash& h) const { return Find(h).has_value(); }

  // Appends a change as the next row. `actor` is its author's index in the
  // actor table; every dep must already be a row (the caller checks).
  // Returns the new row's index.
  uint32_t Append(const StoredChange& sc, uint32_t actor);
  // Appends a row from its parts: `chunk` is the whole change chunk (as
  // StoredChange::bytes), `dep_rows` the rows of its deps in hash order.
  uint32_t Append(ByteView chunk, const ChangeHash& hash, uint32_t actor, uint64_t seq,
                  uint64_t start_op, uint64_t num_ops, int64_t time, bool empty_message,
                  std::span<const uint32_t> dep_rows);
  // Drops the rows from n on (n <= size()).
  void Truncate(size_t n);

  // Bytes held, for tests and benchmarks.
  size_t MemoryUsage() const;

  // An input iterator over the rows as StoredChanges (each made on demand).
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = StoredChange;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = StoredChange;

    Iterator() = default;
    Iterator(const ChangeLog* log, size_t i) : log_(log), i_(i) {}
    StoredChange operator*() const { return log_->Get(i_); }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++i_;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.i_ == b.i_; }

   private:
    const ChangeLog* log_ = nullptr;
    size_t i_ = 0;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, size()); }

 private:
  // 40 bytes. An actor index takes 30 bits: a document with 2^30 actors
  // would need tens of gigabytes for its actor table alone.
  struct Row {
    uint32_t block;   // where the stored bytes are: blocks_[block]
    uint32_t offset;  //   from this offset
    uint32_t length;  //   this many
    uint32_t actor : 30;
    uint32_t whole : 1;          // the stored bytes are the whole chunk, not the tail
    uint32_t empty_message : 1;  // a message that is "" rather than none (change.h)
    uint32_t seq;
    uint32_t max_op;
    uint32_t num_ops;
    uint32_t deps;  // first dep in deps_; the count runs to the next row's
    int64_t time;
  };
  static_assert(sizeof(Row) == 40);

  // Writes the chunk of row i, given its tail (the body from the message
  // on), into out.
  void Rebuild(size_t i, ByteView tail, Bytes& out) const;
  // Writes the chunk of row i up to its tail, for a tail of tail_size bytes,
  // into out (reserving room for the tail).
  void WriteHeader(size_t i, size_t tail_size, Bytes& out) const;
  ByteView Stored(const Row& row) const;
  // Stores bytes in the arena, returning (block, offset).
  std::pair<uint32_t, uint32_t> Store(ByteView b);
  void Insert(uint32_t row);
  void Place(uint64_t entry);  // into a table with room for it
  void Erase(uint32_t row);
  size_t SlotOf(const ChangeHash& h) const;

  const std::vector<ActorId>* actors_;
  BlockArray<Row> rows_;
  BlockArray<ChangeHash> hashes_;
  std::vector<uint32_t> deps_;
  using Block = std::vector<uint8_t, HugePageAllocator<uint8_t>>;
  std::vector<Block> blocks_;  // the byte arena, each block reserved once
  // Open addressing: 0 is empty, else (tag << 32) | (row + 1), the tag being
  // the hash's first 32 bits (which also pick the home slot), so that a probe
  // rarely needs to read hashes_ and growing never does.
  using Table = std::vector<uint64_t, HugePageAllocator<uint64_t>>;
  Table table_;
  Bytes scratch_;                      // Append's rebuild buffer
  std::vector<uint32_t> dep_scratch_;  // Append's dep rows
};

}  // namespace etherply::automerge
