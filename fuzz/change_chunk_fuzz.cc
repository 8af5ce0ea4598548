// Fuzz target: the change and document decoders, behind a valid checksum.
//
// Input: a type byte and a chunk body, wrapped with the right checksum
// (documents.h, ChunkOf), then loaded into an empty document and into a
// filled one.
// Properties:
//  - no crash, sanitizer report or hang, whatever the bytes;
//  - a failed load changes nothing (Document::LoadIncremental is atomic);
//  - what loads saves to a document that loads again to the same heads,
//    changes and JSON, when every change is canonical (documents.h).
#include "documents.h"

using namespace etherply;
using namespace etherply::automerge;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<Bytes> input = fuzz::ChunkOf(data, size);
  if (!input) return 0;
  const Bytes& chunk = *input;

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
