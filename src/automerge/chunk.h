// The chunk container (FORMAT.md §2).
//
// Grammar:
//   file     := chunk+
//   chunk    := magic checksum type uleb(len) body{len}
//   magic    := 85 6f 4a 83
//   checksum := the first 4 bytes of SHA-256(type ‖ uleb(len) ‖ body)
//   type     := 00 document | 01 change | 02 compressed change
// A compressed change's body is the raw DEFLATE of a change body; its
// checksum is that of the uncompressed type-01 chunk, and so is its hash.
#pragma once

#include <optional>
#include <vector>

#include "automerge/types.h"
#include "base/bytes.h"
#include "base/coding.h"
#include "base/status.h"

namespace etherply::automerge {

enum class ChunkType : uint8_t { kDocument = 0, kChange = 1, kCompressedChange = 2 };

inline constexpr uint8_t kMagic[4] = {0x85, 0x6f, 0x4a, 0x83};

// Inflated bodies larger than this are rejected (a decompression-bomb guard).
inline constexpr size_t kMaxInflatedSize = size_t{1} << 30;

// The same guard for run-length encoding, with which a few bytes of columns
// declare billions of rows: a change chunk of more ops, or a document chunk
// of more changes or more op IDs (its ops and their succ entries), is
// refused (kCorruption) once its rows pass the limit, so that what a chunk
// costs to decode is bounded by these, not by what it claims.
inline constexpr uint64_t kMaxChangeOps = uint64_t{1} << 24;
inline constexpr uint64_t kMaxDocumentChanges = uint64_t{1} << 24;
inline constexpr uint64_t kMaxDocumentOpIds = uint64_t{1} << 25;

// One verified chunk. A compressed change is returned inflated, as the
// equivalent type-01 chunk.
struct Chunk {
  ChunkType type;
  ChangeHash hash;  // SHA-256(type ‖ uleb(len) ‖ body) of the uncompressed chunk
  Bytes bytes;      // the whole (uncompressed) chunk: header and body
  size_t body_offset;

  ByteView body() const { return ByteView(bytes).subspan(body_offset); }
};

// Reads the next chunk from r, verifying magic and checksum. Fails with
// kCorruption on a bad magic, checksum, type or DEFLATE stream, and with
// kIncomplete when the input ends inside the chunk; r does not advance then.
Result<Chunk> ReadChunk(Reader& r);

// Reads every chunk of a file. Fails on the first bad chunk.
Result<std::vector<Chunk>> ReadChunks(ByteView file);

// A complete chunk of the given type around body, with its hash.
Chunk WriteChunk(ChunkType type, ByteView body);

// A chunk written in place: BeginChunk gives the header of a chunk whose body
// will be body_size bytes, with room reserved for them; the caller appends
// exactly that body; EndChunk fills in the checksum and returns the hash.
Bytes BeginChunk(ChunkType type, size_t body_size);
ChangeHash EndChunk(Bytes& chunk);

}  // namespace etherply::automerge
