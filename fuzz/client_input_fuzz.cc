// Fuzz target: what a WebSocket client controls before any document is
// touched: its token (auth/jwt.h) and its messages (server/protocol.h).
//
// Input: any bytes, read as a token and as a message.
// Properties: no crash, sanitizer report or hang; a token accepted under one
// secret is refused under another; an op that parses is stored as the
// server stores it, and the document then reads back, as JSON, the value
// that the op's broadcast carried (what `init` shows a client that joins
// later equals what the clients already there were sent).
#include <boost/json/parse.hpp>
#include <string>
#include <string_view>

#include "auth/jwt.h"
#include "automerge/document.h"
#include "automerge/transaction.h"
#include "fuzz.h"
#include "server/protocol.h"

using namespace etherply;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto op = server::ParseClientMessage(text); op.ok()) {
    FUZZ_CHECK(!op->key.empty());
    automerge::Document doc;
    automerge::Transaction tx(doc, automerge::ActorId{1, 2, 3});
    auto put =
        server::PutJson(tx, automerge::kRoot, op->key, op->value, automerge::PutMode::kAlways);
    if (put.ok()) {
      FUZZ_CHECK(tx.Commit().ok());
      std::string sent;
      server::AppendJson(sent, op->value);
      std::optional<std::string> stored = doc.RootValueJson(op->key);
      FUZZ_CHECK(stored.has_value());
      if (boost::json::parse(sent) != boost::json::parse(*stored)) {
        std::fprintf(stderr, "broadcast %s\nstored    %s\n", sent.c_str(), stored->c_str());
        FUZZ_CHECK(!"the stored value reads back as the broadcast one");
      }
    }
  }
  static const uint8_t kSecret[] = "a development secret of 32 bytes";
  static const uint8_t kOther[] = "another secret, also of 32 bytes";
  constexpr int64_t kNow = 1'800'000'000;
  if (auth::VerifyToken(text, ByteView(kSecret, 32), kNow).ok())
    FUZZ_CHECK(!auth::VerifyToken(text, ByteView(kOther, 32), kNow).ok());
  return 0;
}
