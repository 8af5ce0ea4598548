// Fuzz target: the change and document decoders, behind a valid checksum.
//
// Input: a type byte (its low bit: 0 document, 1 change) and a chunk body.
// The target wraps the body in a chunk with the right checksum, so that
// mutations reach the decoders instead of failing the checksum, then loads
// it into an empty document and into a filled one.
// Properties:
//  - no crash, sanitizer report or hang, whatever the bytes;
//  - a failed load changes nothing (Document::LoadIncremental is atomic);
//  - what loads saves to a document that loads again to the same heads,
//    changes and JSON, when every change is canonical (documents.h).
#include "automerge/chunk.h"
#include "documents.h"

using namespace etherply;
using namespace etherply::automerge;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  ChunkType type = (data[0] & 1) ? ChunkType::kChange : ChunkType::kDocument;
  Bytes chunk = WriteChunk(type, ByteView(data + 1, size - 1)).bytes;

  Document empty;
  if (empty.LoadIncremental(chunk).ok()) {
    if (fuzz::AllChangesCanonical(empty)) fuzz::CheckSaveLoadsAgain(empty);
  } else {
    FUZZ_CHECK(empty.changes().size() == 0 && empty.queued() == 0 && empty.heads().empty());
    FUZZ_CHECK(empty.ToJson() == "{}");
  }

  Document filled;
  fuzz::FillDocument(filled);
  const Bytes before = filled.Save();
  if (filled.LoadIncremental(chunk).ok()) {
    if (fuzz::AllChangesCanonical(filled)) fuzz::CheckSaveLoadsAgain(filled);
  } else {
    FUZZ_CHECK(filled.Save() == before);
  }
  return 0;
}
