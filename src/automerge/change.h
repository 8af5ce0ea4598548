// Change chunks (FORMAT.md §3-§5): the unit of history, identified by hash.
//
// Grammar of a change body (chunk type 01):
//   body    := deps actor seq start_op time message others
//              column_meta column_data extra
//   deps    := uleb(n) hash{n}                 32-byte hashes, sorted
//   actor   := uleb(len) byte{len}
//   seq     := uleb            start_op := uleb (non-zero, < 2^32)
//   time    := sleb            message  := uleb(len) utf8{len} (0: none)
//   others  := uleb(n) (uleb(len) byte{len}){n}   sorted, see §3.1
//   column_meta := uleb(n) (uleb(spec) uleb(len)){n}  sorted by spec, no
//                  deflate bit; column_data is their bytes back to back
//   extra   := byte*                            kept verbatim (author, ...)
// Op columns (§5): obj (1,2) key (17,19,21) insert (52) action (66)
// value (86,87) pred (112,113,115) expand (148) mark name (165).
//
// Ops reference actors by index into the change's actor table: 0 is the
// change's author, 1.. are `other_actors`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "automerge/types.h"
#include "base/bytes.h"
#include "base/status.h"

namespace etherply::automerge {

// A key: a map property, or a list element (elem.counter == 0 is HEAD).
struct Key {
  std::optional<std::string> prop;  // set for map keys
  OpId elem;                        // for list keys when prop is empty

  static Key Map(std::string p) { return {std::move(p), {}}; }
  static Key Elem(OpId e) { return {std::nullopt, e}; }
  bool is_map() const { return prop.has_value(); }
  friend bool operator==(const Key&, const Key&) = default;
};

struct ChangeOp {
  OpId obj;  // counter 0: the root object
  Key key;
  bool insert = false;
  Action action = Action::kSet;
  ScalarValue value;
  std::vector<OpId> pred;  // sorted in Lamport order
  bool expand = false;
  std::optional<std::string> mark_name;
};

struct Change {
  std::vector<ChangeHash> deps;  // sorted ascending
  ActorId actor;
  uint64_t seq = 0;
  uint64_t start_op = 0;
  int64_t time = 0;
  std::string message;  // empty: none
  // A message that is the empty string rather than none. Change chunks
  // cannot tell them apart (both are length 0, so the hash is the same), but
  // a document chunk can, and saving such a document again must keep it.
  bool empty_message = false;
  std::vector<ActorId> other_actors;
  // The ops. A Document keeps its changes without them (its op set holds
  // them, and the bytes keep them exactly); ReadChange decodes them again.
  std::vector<ChangeOp> ops;
  uint64_t num_ops = 0;  // set by EncodeChange and DecodeChange
  Bytes extra;

  // The actor bytes of index i of this change's actor table.
  const ActorId& ActorAt(uint32_t i) const { return i == 0 ? actor : other_actors[i - 1]; }
  uint64_t max_op() const { return start_op + num_ops - 1; }
};

// A change together with its exact bytes and hash. Changes received from
// elsewhere keep the bytes they came with, unknown columns included.
struct StoredChange {
  Change change;
  Bytes bytes;  // the uncompressed type-01 chunk
  ChangeHash hash;
};

// Encodes canonically, exactly as the reference does for the same change.
// The actor table must already be canonical (see NormalizeActors).
StoredChange EncodeChange(Change change);

// EncodeChange for many changes: keeps its column buffers from one change to
// the next (a document load encodes every change it holds), so that a
// change costs one allocation, its chunk.
//
// Thread-safety: none; one encoder per thread.
class ChangeEncoder {
 public:
  ChangeEncoder();
  ~ChangeEncoder();
  ChangeEncoder(const ChangeEncoder&) = delete;
  ChangeEncoder& operator=(const ChangeEncoder&) = delete;

  StoredChange Encode(Change change);

 private:
  struct Columns;
  std::unique_ptr<Columns> cols_;
};

// Builds the actor table of §3.1 for ops whose OpIds carry indices into
// `table` (any order, author anywhere): sets other_actors to every other
// actor that appears, sorted, and rewrites the ops' indices to match.
// `author_index` is the author's index in `table`.
void NormalizeActors(Change& change, const std::vector<ActorId>& table, uint32_t author_index);

// Decodes and validates a change chunk body (a Chunk of type kChange; bytes
// is the whole chunk, hash its hash). Fails with kCorruption and a message on
// any malformed or inconsistent field; on success every op is well-formed:
// valid actions, actor indices inside the table, counters < 2^32, values
// consistent with their metadata, keys of the right kind.
Result<StoredChange> DecodeChange(Bytes chunk_bytes, const ChangeHash& hash, size_t body_offset);

// The change with its ops, decoded again from its bytes.
Result<Change> ReadChange(const StoredChange& change);

// Reads every change of an Automerge file: change chunks (compressed or
// not) and document chunks (whose changes are rebuilt), in any mix.
Result<std::vector<StoredChange>> DecodeChangeChunks(ByteView file);

}  // namespace etherply::automerge
