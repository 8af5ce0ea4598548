// Document chunks (chunk type 00, FORMAT.md §6): what `save()` writes.
//
// Grammar of a document body:
//   body   := actors heads change_meta op_meta change_data op_data head_index
//   actors := uleb(n) (uleb(len) byte{len}){n}      sorted by bytes; only
//             actors that authored a change
//   heads  := uleb(n) hash{n}                       sorted
//   *_meta := uleb(n) (uleb(spec) uleb(len)){n}     sorted by spec without the
//             deflate bit (8); empty columns are left out
//   *_data := the columns' bytes back to back, in metadata order; a column of
//             256 bytes or more is written as raw DEFLATE (level 6) with the
//             deflate bit set, a shorter one as it is (the reference's rule)
//   head_index := uleb{n}                           each head's change row
//                                                   (absent in very old files)
// Change columns (one row per change, in the order they were applied, which
// is topological): actor (1), seq (3, delta), maxOp (19, delta), time (35,
// delta), message (53; null: none), deps (64 group, 67 delta of row indices,
// in the order of the change's sorted dep hashes), extra bytes (86 meta of
// type bytes, always present; 87 raw).
// Op columns (every op but deletes): obj (1, 2; null: root), key (17, 19, 21:
// a map key string, or a list element, HEAD being actor null and counter 0),
// id (33, 35), insert (52, plain boolean), action (66), value (86, 87), succ
// (128 group, 129, 131; Lamport order), expand (148, maybe-boolean), mark
// name (165).
// Op order (§6.4): the root object first, then the others by object ID in
// Lamport order. In a map, ops by key (UTF-8 bytes), then by ID. In a list or
// text, elements in document order, each its insert op (keyed by the element
// it was inserted after) followed by the ops that update it (keyed by the
// element), by ID. A delete appears only as an ID in its preds' succ lists.
// Actor indices everywhere refer to the sorted actor list.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/change.h"
#include "automerge/chunk.h"

namespace etherply::automerge {

// Rebuilds every change of a document chunk with its exact bytes and hash
// (FORMAT.md §6.5), in the chunk's order, and checks that their heads equal
// the stored heads. Fails with kCorruption on any malformed column, an op
// that fits no change, a gap in a change's ops, a dep on a later row, or
// mismatching heads.
Result<std::vector<StoredChange>> DecodeDocumentChunk(const Chunk& chunk);

// The same, streaming: gives each rebuilt change (with its ops) to `each` as
// soon as it is made, in the chunk's order, so that the changes of a large
// document are never all held at once. `each` may move the change away or
// leave it (its buffers then serve the next change). Stops at the first
// failure of `each` or `ops` and returns it.
//
// When `ops` is given and the changes' heads have matched the stored ones,
// a second pass gives the document itself: ops->actors once, then ops->op
// for every op in document order (the grammar above), so that a loader can
// build its op set directly instead of replaying the changes.
struct DocumentOp;
struct DocumentOps {
  // The chunk's actors, sorted by bytes: the OpIds of every op index them.
  std::function<Status(std::span<const ActorId>)> actors;
  std::function<Status(const DocumentOp&)> op;
};
Status ForEachDocumentChange(const Chunk& chunk, const std::function<Status(StoredChange&)>& each,
                             const DocumentOps* ops = nullptr);

// One row of the change columns. deps are row indices of earlier rows.
struct DocumentChange {
  uint32_t actor;
  uint64_t seq;
  uint64_t max_op;
  int64_t time;
  std::optional<std::string_view> message;  // nullopt: none
  std::span<const uint64_t> deps;
  ByteView extra;
};

// One row of the op columns. prop is set for a map key; otherwise elem is
// the list element (for an insert, the element it goes after; counter 0:
// HEAD). Deletes are not ops of a document: they appear only in succ.
struct DocumentOp {
  OpId obj;
  std::optional<std::string_view> prop;
  OpId elem;
  OpId id;
  bool insert;
  Action action;
  const ScalarValue& value;
  std::span<const OpId> succ;  // in Lamport order
  bool expand;
  const std::optional<std::string>& mark_name;
};

// Writes a document chunk row by row, so that a large document is never
// copied into an intermediate form. Callers add changes and ops in the
// orders of the grammar above; the writer does not check them.
//
// Thread-safety: a single-threaded value.
class DocumentChunkWriter {
 public:
  // actors: the document's actors, sorted by bytes.
  explicit DocumentChunkWriter(std::vector<ActorId> actors);
  ~DocumentChunkWriter();

  void AddChange(const DocumentChange& c);
  void AddOp(const DocumentOp& op);
  // The complete chunk (header included). heads: sorted, with their rows.
  Bytes Finish(const std::vector<std::pair<ChangeHash, uint64_t>>& heads);

 private:
  struct Columns;
  std::vector<ActorId> actors_;
  std::unique_ptr<Columns> cols_;
};

}  // namespace etherply::automerge
