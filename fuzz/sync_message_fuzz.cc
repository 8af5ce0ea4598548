// Fuzz target: sync messages (automerge/sync.h), as a peer would send them.
//
// Input: one message. It is decoded, then received by an empty document and
// by a filled one that has already sent its first message.
// Properties:
//  - no crash, sanitizer report or hang;
//  - a refused message changes neither the document nor the sync state;
//  - after an accepted one the next message can be made, and the document
//    saves to one that loads again (when every change is canonical).
#include "automerge/sync.h"
#include "documents.h"

using namespace etherply;
using namespace etherply::automerge;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView message(data, size);
  (void)DecodeSyncMessage(message);
  (void)SyncState::Decode(message);
  for (bool filled : {false, true}) {
    Document doc;
    SyncState state;
    if (filled) {
      fuzz::FillDocument(doc);
      (void)GenerateSyncMessage(doc, state);
    }
    const Bytes doc_before = doc.Save();
    const SyncState state_before = state;
    if (!ReceiveSyncMessage(doc, state, message).ok()) {
      FUZZ_CHECK(doc.Save() == doc_before);
      FUZZ_CHECK(state == state_before);
      continue;
    }
    (void)GenerateSyncMessage(doc, state);
    if (fuzz::AllChangesCanonical(doc)) fuzz::CheckSaveLoadsAgain(doc);
  }
  return 0;
}
