// Document chunks (chunk type 00, FORMAT.md §6): what `save()` writes.
//
// Grammar of a document body:
//   body   := actors heads change_meta op_meta change_data op_data head_index?
//   actors := uleb(n) (uleb(len) byte{len}){n}      sorted by bytes
//   heads  := uleb(n) hash{n}                       sorted
//   *_meta := uleb(n) (uleb(spec) uleb(len)){n}     sorted by spec without the
//             deflate bit (8); a deflated column is raw DEFLATE of its bytes
//   head_index := uleb{n}                           each head's change row
// Change columns (one row per change, in a topological order): actor (1),
// seq (3, delta), maxOp (19, delta), time (35, delta), message (53), deps
// (64 group, 67 delta of row indices), extra bytes (86 meta, 87 raw).
// Op columns (every op but deletes, in the order of §6.4): obj (1, 2), key
// (17, 19, 21), id (33, 35), insert (52), action (66), value (86, 87), succ
// (128 group, 129, 131), expand (148), mark name (165).
#pragma once

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

}  // namespace etherply::automerge
