// Fuzz target: the history API (server/history.h) on documents of any
// history, as peers may have made them.
//
// Input: as change_chunk_fuzz.cc's (documents.h, ChunkOf), loaded
// into a filled document. For (at most the first 8 of) its changes:
// the history page after it, the state at it, its undo and a restore to it,
// each edit applied in a transaction of its own.
// Properties: no crash, sanitizer report or hang; a restore to a change
// makes the document read as the state at that change did.
#include <boost/json/parse.hpp>

#include "documents.h"
#include "server/history.h"

using namespace etherply;
using namespace etherply::automerge;

namespace {

// {"data":D,"heads":[...]} -> D
boost::json::value DataOf(const std::string& state) {
  return boost::json::parse(state).as_object().at("data");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<Bytes> chunk = fuzz::ChunkOf(data, size);
  if (!chunk) return 0;
  Document doc;
  fuzz::FillDocument(doc);
  if (!doc.LoadIncremental(*chunk).ok()) return 0;
  const ActorId editor{9, 9, 9};
  size_t n = std::min<size_t>(doc.changes().size(), 8);
  for (size_t i = 0; i < n; ++i) {
    const ChangeHash hash = doc.changes().hash(i);
    (void)server::HistoryPage(doc, 3, HashToHex(hash));
    auto state = server::StateAt(doc, {hash});
    FUZZ_CHECK(state.ok());

    auto undo = server::PlanUndo(doc, hash);
    FUZZ_CHECK(undo.ok());
    {
      Transaction tx(doc, editor);
      if (server::ApplyPlan(tx, *undo, 0).ok())
        (void)tx.Commit();
      else
        tx.Rollback();
    }

    auto restore = server::PlanRestore(doc, {hash});
    FUZZ_CHECK(restore.ok());
    Transaction tx(doc, editor);
    auto applied = server::ApplyPlan(tx, *restore, 0);
    if (!applied.ok()) std::fprintf(stderr, "restore: %s\n", applied.status().ToString().c_str());
    FUZZ_CHECK(applied.ok());
    FUZZ_CHECK(tx.Commit().ok());
    if (DataOf(*state) != boost::json::parse(doc.ToJson())) {
      std::fprintf(stderr, "state at %zu: %s\nrestored:   %s\n", i, state->c_str(),
                   doc.ToJson().c_str());
      FUZZ_CHECK(!"a restore makes the document read as the state it restores");
    }
  }
  return 0;
}
