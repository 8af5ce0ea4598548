// etherply_sync_peer: one C++ sync peer (a Document and the SyncState for
// one remote peer), driven line by line by tests/interop/sync_test.mjs,
// which plays the reference peer.
//
// Input, one JSON object per line; output, one JSON object per line for
// each, {"ok":true,...} or {"ok":false,"error":"<message>"}:
//   {"cmd":"load","bytes":"<hex>"}       chunks into the document
//   {"cmd":"put","actor":"<hex>","key":K,"value":<int>}
//                                         a local edit (time 0) -> "hash"
//   {"cmd":"generate"}                   -> "message": "<hex>" | null
//   {"cmd":"receive","message":"<hex>"}   ReceiveSyncMessage
//   {"cmd":"decode","message":"<hex>"}    DecodeSyncMessage only
//   {"cmd":"encode_state"}               -> "state": "<hex>"
//   {"cmd":"restart","state":"<hex>"|null}
//                                         a new connection, from a persisted
//                                         state or from nothing
//   {"cmd":"report"}                     -> "heads", "json", "changes", "queued"
// The process ends at the end of its input.
#include <boost/json.hpp>
#include <exception>
#include <iostream>
#include <string>

#include "automerge/document.h"
#include "automerge/sync.h"
#include "automerge/transaction.h"
#include "base/hex.h"
#include "base/json_parse.h"

namespace json = boost::json;
using namespace etherply;
using namespace etherply::automerge;

namespace {

struct Peer {
  Document doc;
  SyncState state;
};

Result<Bytes> HexArg(const json::object& cmd, std::string_view name) {
  const json::value* v = cmd.if_contains(name);
  if (!v || !v->is_string()) return Status::InvalidArgument(std::string(name) + ": hex expected");
  return FromHex(v->as_string());
}

// Runs one command; fills `out` (the "ok" member is set by the caller).
Status Run(Peer& p, const json::object& cmd, json::object& out) {
  const json::value* name = cmd.if_contains("cmd");
  if (!name || !name->is_string()) return Status::InvalidArgument("cmd: string expected");
  std::string_view c = name->as_string();
  if (c == "load") {
    auto bytes = HexArg(cmd, "bytes");
    if (!bytes.ok()) return bytes.status();
    return p.doc.LoadIncremental(*bytes);
  }
  if (c == "put") {
    auto actor = HexArg(cmd, "actor");
    if (!actor.ok()) return actor.status();
    Transaction tx(p.doc, *actor);
    if (Status s = tx.Put(kRoot, cmd.at("key").as_string(), cmd.at("value").to_number<int64_t>());
        !s.ok())
      return s;
    auto hash = tx.Commit({.time = 0});
    if (!hash.ok()) return hash.status();
    if (*hash) out["hash"] = HashToHex(**hash);
    return Status::Ok();
  }
  if (c == "generate") {
    auto m = GenerateSyncMessage(p.doc, p.state);
    if (m)
      out["message"] = ToHex(*m);
    else
      out["message"] = nullptr;
    return Status::Ok();
  }
  if (c == "receive" || c == "decode") {
    auto bytes = HexArg(cmd, "message");
    if (!bytes.ok()) return bytes.status();
    if (c == "receive") return ReceiveSyncMessage(p.doc, p.state, *bytes);
    return DecodeSyncMessage(*bytes).status();
  }
  if (c == "encode_state") {
    out["state"] = ToHex(p.state.Encode());
    return Status::Ok();
  }
  if (c == "restart") {
    const json::value* v = cmd.if_contains("state");
    if (!v || v->is_null()) {
      p.state = SyncState();
      return Status::Ok();
    }
    auto bytes = HexArg(cmd, "state");
    if (!bytes.ok()) return bytes.status();
    auto state = SyncState::Decode(*bytes);
    if (!state.ok()) return state.status();
    p.state = std::move(*state);
    return Status::Ok();
  }
  if (c == "report") {
    json::array heads;
    for (const ChangeHash& h : p.doc.heads()) heads.emplace_back(HashToHex(h));
    out["heads"] = std::move(heads);
    out["json"] = p.doc.ToJson();  // as text: the test compares it character for character
    out["changes"] = p.doc.changes().size();
    out["queued"] = p.doc.queued();
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown cmd " + std::string(c));
}

}  // namespace

int main() {
  Peer peer;
  std::string line;
  while (std::getline(std::cin, line)) {
    json::object out;
    Status s;
    auto cmd = ParseJson(line);
    if (!cmd.ok())
      s = cmd.status();
    else if (!cmd->is_object())
      s = Status::InvalidArgument("a JSON object expected");
    else
      try {
        s = Run(peer, cmd->as_object(), out);
      } catch (const std::exception& e) {  // a member of the wrong type (Boost.JSON throws)
        s = Status::InvalidArgument(e.what());
      }
    out["ok"] = s.ok();
    if (!s.ok()) out["error"] = s.ToString();
    std::cout << json::serialize(out) << std::endl;
  }
  return 0;
}
