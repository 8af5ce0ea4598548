// The chunk container (FORMAT.md §2). A reader of untrusted bytes: every
// malformed chunk must give an error value, and the tests below are mostly
// about which one. "Need more bytes" (kIncomplete, the reader left where it
// was, so that a caller can wait for more input) is kept apart from "these
// bytes are wrong" (kCorruption). Compressed changes (type 2) come back
// inflated, as the type-1 chunk whose hash names the change.
#include "automerge/chunk.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/coding.h"
#include "base/deflate.h"
#include "base/sha256.h"
#include "base/testutil.h"

namespace etherply::automerge {
namespace {

using Code = Status::Code;

using testutil::B;

Bytes Concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) Append(out, p);
  return out;
}

// The worked example of FORMAT.md §3.3: a whole change chunk and its hash.
const Bytes kExampleChange =
    B("856f4a83ccb2a194015400100123456789abcdef0123456789abcdef01010000000a01040204110413061507"
      "3402420456045703700200010300000103010002020000017d0002017f03666f6f000301037f0403017f0003"
      "166261720400");
const Bytes kExampleHash = B("ccb2a19403412d8b75754313c8533a0dbccf781ed85e30b8cfbec6762370f04a");

// A document with no changes, as FORMAT.md §2 gives it.
const Bytes kEmptyDocument = B("856f4a83 b81a9544 00 04 00000000");

// A chunk built by hand: magic, the given checksum, type, uleb(len), body.
Bytes RawChunk(ByteView checksum, uint8_t type, ByteView body) {
  Bytes out(kMagic, kMagic + 4);
  Append(out, checksum);
  out.push_back(type);
  AppendUleb(out, body.size());
  Append(out, body);
  return out;
}

// The checksum a chunk of this type and body must carry.
Bytes ChecksumOf(uint8_t type, ByteView body) {
  Bytes hashed{type};
  AppendUleb(hashed, body.size());
  Append(hashed, body);
  Sha256Digest d = Sha256Of(hashed);
  return Bytes(d.begin(), d.begin() + 4);
}

Bytes Body(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

Bytes ExampleBody() { return Bytes(kExampleChange.begin() + 10, kExampleChange.end()); }

// Reads one chunk and checks the failure code and that the reader stayed put.
void ExpectReadFails(ByteView bytes, Code code) {
  Reader r(bytes);
  auto c = ReadChunk(r);
  ASSERT_FALSE(c.ok()) << "read " << bytes.size() << " bytes as a chunk";
  EXPECT_EQ(c.status().code(), code) << c.status().ToString();
  EXPECT_EQ(r.position(), 0u) << "a failed read must not advance the reader";
}

// ---------------------------------------------------------------------------
// Well-formed chunks.

TEST(Chunk, ReadsTheWorkedExample) {
  Reader r(kExampleChange);
  auto c = ReadChunk(r);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->type, ChunkType::kChange);
  EXPECT_EQ(Bytes(c->hash.begin(), c->hash.end()), kExampleHash);
  EXPECT_EQ(c->bytes, kExampleChange);
  EXPECT_EQ(c->body_offset, 10u);
  EXPECT_EQ(Bytes(c->body().begin(), c->body().end()), ExampleBody());
  EXPECT_TRUE(r.empty());
}

TEST(Chunk, ReadsTheEmptyDocument) {
  auto chunks = ReadChunks(kEmptyDocument);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].type, ChunkType::kDocument);
  EXPECT_EQ((*chunks)[0].bytes, kEmptyDocument);
  EXPECT_EQ(Bytes((*chunks)[0].body().begin(), (*chunks)[0].body().end()), B("00000000"));
}

TEST(Chunk, WriteThenReadRoundTrips) {
  for (ChunkType type : {ChunkType::kDocument, ChunkType::kChange}) {
    for (size_t n : {0, 1, 127, 128, 300, 20000}) {
      Bytes body = Body(n, static_cast<uint8_t>(n));
      Chunk w = WriteChunk(type, body);
      EXPECT_EQ(w.type, type);
      EXPECT_EQ(Bytes(w.body().begin(), w.body().end()), body);
      EXPECT_EQ(w.body_offset, 9 + UlebSize(n));
      EXPECT_EQ(w.bytes.size(), w.body_offset + n);
      // The hash is SHA-256 of the chunk without magic and checksum; the
      // checksum is its first four bytes.
      Sha256Digest h = Sha256Of(ByteView(w.bytes).subspan(8));
      EXPECT_TRUE(std::equal(h.begin(), h.end(), w.hash.begin()));
      EXPECT_TRUE(std::equal(kMagic, kMagic + 4, w.bytes.begin()));
      EXPECT_TRUE(std::equal(h.begin(), h.begin() + 4, w.bytes.begin() + 4));
      EXPECT_EQ(w.bytes[8], static_cast<uint8_t>(type));

      Reader r(w.bytes);
      auto c = ReadChunk(r);
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      EXPECT_EQ(c->type, type);
      EXPECT_EQ(c->hash, w.hash);
      EXPECT_EQ(c->bytes, w.bytes);
      EXPECT_EQ(c->body_offset, w.body_offset);
      EXPECT_TRUE(r.empty());
    }
  }
}

TEST(Chunk, WriteChunkOfTheExampleBodyGivesTheExampleBytes) {
  Chunk w = WriteChunk(ChunkType::kChange, ExampleBody());
  EXPECT_EQ(w.bytes, kExampleChange);
  EXPECT_EQ(Bytes(w.hash.begin(), w.hash.end()), kExampleHash);
}

TEST(Chunk, ReadChunkAdvancesOverExactlyOneChunk) {
  Chunk a = WriteChunk(ChunkType::kChange, Body(5, 1));
  Chunk b = WriteChunk(ChunkType::kDocument, Body(200, 2));
  Bytes file = Concat({a.bytes, b.bytes});
  Reader r(file);
  auto first = ReadChunk(r);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(r.position(), a.bytes.size());
  auto second = ReadChunk(r);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->bytes, b.bytes);
  EXPECT_TRUE(r.empty());
}

TEST(Chunk, ReadChunksReadsEveryChunkInOrder) {
  std::vector<Chunk> written;
  Bytes file;
  for (int i = 0; i < 5; ++i) {
    written.push_back(WriteChunk(i % 2 ? ChunkType::kDocument : ChunkType::kChange,
                                 Body(i * 50, static_cast<uint8_t>(i))));
    Append(file, written.back().bytes);
  }
  auto chunks = ReadChunks(file);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_EQ((*chunks)[i].type, written[i].type);
    EXPECT_EQ((*chunks)[i].bytes, written[i].bytes);
    EXPECT_EQ((*chunks)[i].hash, written[i].hash);
  }
}

TEST(Chunk, EmptyInputHasNoChunks) {
  auto chunks = ReadChunks(ByteView());
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  EXPECT_TRUE(chunks->empty());
}

// ---------------------------------------------------------------------------
// Compressed changes (type 2).

TEST(Chunk, CompressedChangeIsReturnedInflatedWithTheUncompressedHash) {
  Bytes body = ExampleBody();
  Bytes compressed = Deflate(body);
  // The checksum is that of the uncompressed type-1 chunk.
  Bytes chunk = RawChunk(ChecksumOf(1, body), 2, compressed);
  Reader r(chunk);
  auto c = ReadChunk(r);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->type, ChunkType::kChange);
  EXPECT_EQ(Bytes(c->hash.begin(), c->hash.end()), kExampleHash);
  EXPECT_EQ(c->bytes, kExampleChange);
  EXPECT_EQ(Bytes(c->body().begin(), c->body().end()), body);
  EXPECT_TRUE(r.empty());
}

TEST(Chunk, LargeCompressedChangeInflates) {
  Bytes body(5000, 0x61);  // compresses well; inflated length needs a 2-byte uLEB
  Bytes chunk = RawChunk(ChecksumOf(1, body), 2, Deflate(body));
  ASSERT_LT(chunk.size(), body.size());
  auto chunks = ReadChunks(chunk);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), 1u);
  EXPECT_EQ((*chunks)[0].bytes, WriteChunk(ChunkType::kChange, body).bytes);
}

TEST(Chunk, CompressedChangeBetweenPlainChunks) {
  Bytes body = Body(400, 9);
  Chunk before = WriteChunk(ChunkType::kChange, Body(3, 1));
  Chunk after = WriteChunk(ChunkType::kDocument, Body(4, 2));
  Bytes file = Concat({before.bytes, RawChunk(ChecksumOf(1, body), 2, Deflate(body)), after.bytes});
  auto chunks = ReadChunks(file);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[0].bytes, before.bytes);
  EXPECT_EQ((*chunks)[1].bytes, WriteChunk(ChunkType::kChange, body).bytes);
  EXPECT_EQ((*chunks)[2].bytes, after.bytes);
}

TEST(Chunk, CompressedChangeWithTheChecksumOfTheCompressedBytesFails) {
  Bytes body = ExampleBody();
  Bytes compressed = Deflate(body);
  ExpectReadFails(RawChunk(ChecksumOf(2, compressed), 2, compressed), Code::kCorruption);
}

TEST(Chunk, CompressedChangeWithATypeZeroChecksumFails) {
  Bytes body = ExampleBody();
  ExpectReadFails(RawChunk(ChecksumOf(0, body), 2, Deflate(body)), Code::kCorruption);
}

TEST(Chunk, InvalidDeflateStreamFails) {
  Bytes garbage = B("ffffffff00112233");  // 0xff: a reserved block type (BTYPE=11)
  ExpectReadFails(RawChunk(B("00000000"), 2, garbage), Code::kCorruption);
}

TEST(Chunk, TruncatedDeflateStreamFails) {
  Bytes body = Body(1000, 3);
  Bytes compressed = Deflate(body);
  compressed.resize(compressed.size() / 2);
  ExpectReadFails(RawChunk(ChecksumOf(1, body), 2, compressed), Code::kCorruption);
}

TEST(Chunk, DeflateStreamWithTrailingBytesFails) {
  Bytes body = ExampleBody();
  Bytes compressed = Deflate(body);
  compressed.push_back(0);
  ExpectReadFails(RawChunk(ChecksumOf(1, body), 2, compressed), Code::kCorruption);
}

TEST(Chunk, EmptyCompressedBodyFails) {
  ExpectReadFails(RawChunk(ChecksumOf(1, {}), 2, {}), Code::kCorruption);
}

// ---------------------------------------------------------------------------
// Malformed chunks.

TEST(Chunk, BadMagicFails) {
  for (size_t i = 0; i < 4; ++i) {
    Bytes bad = kExampleChange;
    bad[i] ^= 0x01;
    ExpectReadFails(bad, Code::kCorruption);
  }
}

TEST(Chunk, ForeignBytesAreNotAChunk) {
  ExpectReadFails(AsBytes("{\"json\": true}"), Code::kCorruption);
  ExpectReadFails(B("1f8b0800000000000003"), Code::kCorruption);  // gzip
}

TEST(Chunk, ChecksumMismatchWhenABodyByteIsFlipped) {
  for (size_t i = 10; i < kExampleChange.size(); ++i) {
    Bytes bad = kExampleChange;
    bad[i] ^= 0x20;
    ExpectReadFails(bad, Code::kCorruption);
  }
}

TEST(Chunk, ChecksumMismatchWhenAChecksumByteIsFlipped) {
  for (size_t i = 4; i < 8; ++i) {
    Bytes bad = kExampleChange;
    bad[i] ^= 0x80;
    ExpectReadFails(bad, Code::kCorruption);
  }
}

TEST(Chunk, ChecksumCoversTheType) {
  // The body of a change, with the change's checksum, relabelled a document.
  Bytes bad = kExampleChange;
  bad[8] = 0;
  ExpectReadFails(bad, Code::kCorruption);
}

TEST(Chunk, TruncatedHeaderIsIncomplete) {
  for (size_t n = 1; n < 10; ++n)
    ExpectReadFails(ByteView(kExampleChange).first(n), Code::kIncomplete);
}

TEST(Chunk, TruncatedBodyIsIncomplete) {
  for (size_t n = 10; n < kExampleChange.size(); ++n)
    ExpectReadFails(ByteView(kExampleChange).first(n), Code::kIncomplete);
}

TEST(Chunk, TruncatedTwoByteLengthIsIncomplete) {
  Chunk w = WriteChunk(ChunkType::kDocument, Body(300, 4));
  ASSERT_EQ(w.body_offset, 11u);
  for (size_t n = 1; n < w.bytes.size(); ++n)
    ExpectReadFails(ByteView(w.bytes).first(n), Code::kIncomplete);
}

TEST(Chunk, TruncatedCompressedChangeIsIncomplete) {
  Bytes body = ExampleBody();
  Bytes chunk = RawChunk(ChecksumOf(1, body), 2, Deflate(body));
  for (size_t n = 1; n < chunk.size(); ++n)
    ExpectReadFails(ByteView(chunk).first(n), Code::kIncomplete);
}

TEST(Chunk, OverlongLengthFails) {
  // Length 4 written as 84 00: an overlong uLEB.
  Bytes bad = B("856f4a83 b81a9544 00 8400 00000000");
  ExpectReadFails(bad, Code::kCorruption);
}

TEST(Chunk, LengthBeyondSixtyFourBitsFails) {
  Bytes bad = B("856f4a83 00000000 01 ffffffffffffffffff7f 00");
  ExpectReadFails(bad, Code::kCorruption);
}

TEST(Chunk, HugeLengthIsIncompleteNotACrash) {
  Bytes bad = B("856f4a83 00000000 01 ffffffffffffffff7f 00");  // 2^63 - 1
  ExpectReadFails(bad, Code::kIncomplete);
}

TEST(Chunk, UnknownChunkTypeFails) {
  for (uint8_t type : {4, 5, 0x42, 0x80, 0xff}) {
    Bytes body = Body(6, type);
    ExpectReadFails(RawChunk(ChecksumOf(type, body), type, body), Code::kCorruption);
  }
}

TEST(Chunk, BundleChunkIsUnsupported) {
  Bytes body = Body(12, 3);
  ExpectReadFails(RawChunk(ChecksumOf(3, body), 3, body), Code::kUnsupported);
}

TEST(Chunk, ReadChunksFailsOnTheFirstBadChunk) {
  Chunk good = WriteChunk(ChunkType::kChange, Body(8, 1));
  Bytes bad_magic = Concat({good.bytes, B("00112233")});
  auto r1 = ReadChunks(bad_magic);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kCorruption);

  Bytes flipped = Concat({good.bytes, good.bytes, good.bytes});
  flipped.back() ^= 1;
  auto r2 = ReadChunks(flipped);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), Code::kCorruption);
}

TEST(Chunk, ReadChunksReportsATrailingPartialChunkAsIncomplete) {
  Chunk good = WriteChunk(ChunkType::kChange, Body(8, 1));
  for (size_t cut = 1; cut < good.bytes.size(); ++cut) {
    Bytes file = good.bytes;
    Append(file, ByteView(good.bytes).first(cut));
    auto r = ReadChunks(file);
    ASSERT_FALSE(r.ok()) << "cut " << cut;
    EXPECT_EQ(r.status().code(), Code::kIncomplete) << r.status().ToString();
  }
}

TEST(Chunk, SingleBitFlipsNeverCrash) {
  Bytes body = ExampleBody();
  Bytes compressed = RawChunk(ChecksumOf(1, body), 2, Deflate(body));
  for (const Bytes* original : std::vector<const Bytes*>{&kExampleChange, &compressed}) {
    for (size_t i = 0; i < original->size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes b = *original;
        b[i] ^= static_cast<uint8_t>(1 << bit);
        Reader r(b);
        auto c = ReadChunk(r);
        if (!c.ok()) {
          EXPECT_EQ(r.position(), 0u);
        } else {
          // Only a flip that keeps the checksum right can pass: none here
          // but flips in the compressed stream that inflate to the same body.
          EXPECT_EQ(c->bytes, kExampleChange) << "byte " << i << " bit " << bit;
        }
      }
    }
  }
}

}  // namespace
}  // namespace etherply::automerge
