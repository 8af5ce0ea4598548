#include "automerge/chunk.h"

#include <cstring>

#include "base/coding.h"
#include "base/deflate.h"
#include "base/sha256.h"

namespace etherply::automerge {

namespace {

ChangeHash HashOf(uint8_t type, ByteView body) {
  uint8_t header[11] = {type};  // the type and the body's length (LEB128)
  size_t n = 1;
  for (uint64_t v = body.size();;) {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    header[n++] = byte | (v != 0 ? 0x80 : 0);
    if (v == 0) break;
  }
  Sha256 h;
  h.Update(ByteView(header, n));
  h.Update(body);
  return h.Finish();
}

// A chunk around body whose hash is already known (a read chunk, checked).
Chunk MakeChunk(ChunkType type, ByteView body, const ChangeHash& hash) {
  Chunk c{type, hash, BeginChunk(type, body.size()), 0};
  c.body_offset = c.bytes.size();
  Append(c.bytes, body);
  std::memcpy(c.bytes.data() + 4, hash.data(), 4);
  return c;
}

}  // namespace

Result<Chunk> ReadChunk(Reader& r) {
  Reader in = r;
  auto magic = in.Take(4);
  if (!magic.ok()) return Status::Incomplete("chunk header ends early");
  if (std::memcmp(magic->data(), kMagic, 4) != 0)
    return Status::Corruption("not an Automerge chunk (bad magic bytes)");
  auto checksum = in.Take(4);
  auto type = in.Byte();
  if (!checksum.ok() || !type.ok()) return Status::Incomplete("chunk header ends early");
  auto len = in.Uleb();
  if (!len.ok()) return len.status().WithContext("chunk length");
  auto body = in.Take(*len);
  if (!body.ok()) return Status::Incomplete("chunk body runs past the end of the input");

  Chunk chunk;
  switch (*type) {
    case 0:
    case 1: {
      ChangeHash hash = HashOf(*type, *body);
      if (std::memcmp(hash.data(), checksum->data(), 4) != 0)
        return Status::Corruption("chunk checksum mismatch");
      chunk = MakeChunk(static_cast<ChunkType>(*type), *body, hash);
      break;
    }
    case 2: {
      auto inflated = Inflate(*body, kMaxInflatedSize);
      if (!inflated.ok()) return inflated.status().WithContext("compressed change");
      ChangeHash hash = HashOf(1, *inflated);
      if (std::memcmp(hash.data(), checksum->data(), 4) != 0)
        return Status::Corruption("compressed change checksum mismatch");
      chunk = MakeChunk(ChunkType::kChange, *inflated, hash);
      break;
    }
    case 3:
      return Status::Unsupported("bundle chunks (type 3) are not supported");
    default:
      return Status::Corruption("unknown chunk type " + std::to_string(*type));
  }
  r = in;
  return chunk;
}

Result<std::vector<Chunk>> ReadChunks(ByteView file) {
  Reader r(file);
  std::vector<Chunk> chunks;
  while (!r.empty()) {
    size_t at = r.position();
    auto c = ReadChunk(r);
    if (!c.ok()) return c.status().WithContext("chunk at byte " + std::to_string(at));
    chunks.push_back(std::move(*c));
  }
  return chunks;
}

Bytes BeginChunk(ChunkType type, size_t body_size) {
  Bytes out;
  out.reserve(9 + UlebSize(body_size) + body_size);
  out.insert(out.end(), kMagic, kMagic + 4);
  out.insert(out.end(), 4, 0);  // the checksum, filled in by EndChunk
  out.push_back(static_cast<uint8_t>(type));
  AppendUleb(out, body_size);
  return out;
}

ChangeHash EndChunk(Bytes& chunk) {
  Sha256 h;
  h.Update(ByteView(chunk).subspan(8));  // type, length, body
  ChangeHash hash = h.Finish();
  std::memcpy(chunk.data() + 4, hash.data(), 4);
  return hash;
}

Chunk WriteChunk(ChunkType type, ByteView body) {
  return MakeChunk(type, body, HashOf(static_cast<uint8_t>(type), body));
}

}  // namespace etherply::automerge
