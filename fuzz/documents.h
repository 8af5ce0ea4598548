// Documents and document properties shared by the Automerge fuzz targets.
#pragma once

#include <optional>

#include "automerge/change.h"
#include "automerge/chunk.h"
#include "automerge/document.h"
#include "automerge/transaction.h"
#include "fuzz.h"

namespace etherply::fuzz {

// The chunk that change_chunk's and history's input stands for: its first
// byte's low bit picks the type (0 document, 1 change), the rest is the body,
// wrapped with the right checksum so that mutations reach the decoders.
// Nullopt for an empty input.
inline std::optional<Bytes> ChunkOf(const uint8_t* data, size_t size) {
  if (size == 0) return std::nullopt;
  auto type = (data[0] & 1) ? automerge::ChunkType::kChange : automerge::ChunkType::kDocument;
  return automerge::WriteChunk(type, ByteView(data + 1, size - 1)).bytes;
}

// A small document to apply input to: a map key, a list and a text, from
// two actors, the second's change concurrent with the first's.
inline void FillDocument(automerge::Document& d) {
  using namespace automerge;
  const ActorId a{1, 2, 3, 4}, b{5, 6, 7, 8};
  {
    Transaction tx(d, a);
    FUZZ_CHECK(tx.Put(kRoot, "k", ScalarValue{int64_t{1}}).ok());
    auto list = tx.PutObject(kRoot, "list", ObjType::kList);
    FUZZ_CHECK(list.ok() && tx.Insert(*list, 0, ScalarValue{std::string("x")}).ok());
    auto text = tx.PutObject(kRoot, "text", ObjType::kText);
    FUZZ_CHECK(text.ok() && tx.SpliceText(*text, 0, 0, "hello").ok());
    FUZZ_CHECK(tx.Commit().ok());
  }
  Transaction tx(d, b);
  FUZZ_CHECK(tx.Put(kRoot, "k", ScalarValue{std::string("v")}).ok());
  FUZZ_CHECK(tx.Commit().ok());
}

// Every change re-encodes to its own bytes and deletes only what it names as
// preds. A document that holds one that does not (an unknown column, an
// encoding longer than it needs, a delete with no preds) loads, in the
// reference too, but what either of them saves of it does not load again: a
// document chunk cannot carry such a change (doc/sync.md).
inline bool AllChangesCanonical(const automerge::Document& d) {
  for (size_t i = 0; i < d.changes().size(); ++i) {
    auto decoded = automerge::DecodeChangeChunks(d.changes().bytes(i));
    if (!decoded.ok() || decoded->size() != 1) return false;
    automerge::StoredChange& sc = decoded->front();
    for (const automerge::ChangeOp& op : sc.change.ops)
      if (op.action == automerge::Action::kDelete && op.pred.empty()) return false;
    if (automerge::EncodeChange(std::move(sc.change)).bytes != sc.bytes) return false;
  }
  return true;
}

// Save loads again, to the same heads, changes and JSON.
inline void CheckSaveLoadsAgain(const automerge::Document& d) {
  automerge::Document again;
  Status s = again.LoadIncremental(d.Save());
  if (!s.ok()) std::fprintf(stderr, "loading the saved document: %s\n", s.ToString().c_str());
  FUZZ_CHECK(s.ok());
  FUZZ_CHECK(again.heads() == d.heads());
  FUZZ_CHECK(again.changes().size() == d.changes().size());
  FUZZ_CHECK(again.ToJson() == d.ToJson());
}

}  // namespace etherply::fuzz
