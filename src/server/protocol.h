// The WebSocket protocol of /v1/sync (doc/protocol.md), as pure functions.
//
// Client to server, one JSON text message each:
//   {"type":"op","payload":{"key":K,"value":V,"timestamp":T?}}
//     K a non-empty string, V any JSON value, T optional Unix microseconds
// Server to client:
//   {"type":"init","data":{...},"heads":["<hex>",...]}
//   {"type":"op","payload":{"key":K,"value":V,"timestamp":T}}
//   {"type":"error","code":C,"message":"..."}
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "automerge/document.h"
#include "automerge/transaction.h"
#include "base/status.h"

namespace etherply::server {

struct OpMessage {
  std::string key;
  boost::json::value value;
  std::optional<int64_t> timestamp;
};

// How deep an op's value may nest (arrays and objects): a deeper one is
// refused rather than recursed into without bound. A message adds two
// levels (the message and its payload).
inline constexpr size_t kMaxValueDepth = 64;

// Parses one client message. kInvalidArgument, with a message for the
// client, when it is not JSON (or nests deeper, or holds a number larger,
// than a value may), not an op, or misses a field.
Result<OpMessage> ParseClientMessage(std::string_view text);

// Sets key `key` of map `obj` to `value` in the transaction: objects become
// maps, arrays lists, strings plain string values, integers that fit int64
// ints, larger ones that fit uint64 uints (exact, as the document's JSON
// shows them), other numbers f64. `mode` says how a scalar the key already
// shows is recorded (automerge::PutMode).
Status PutJson(automerge::Transaction& tx, const automerge::ObjId& obj, std::string_view key,
               const boost::json::value& value, automerge::PutMode mode);

// JSON text of a value, numbers written as JavaScript writes them.
void AppendJson(std::string& out, const boost::json::value& v);

std::string InitMessage(const automerge::Document& doc);
std::string OpBroadcast(const OpMessage& op, int64_t timestamp);
// The op message for a root key's value as JSON text; nullopt: the key was
// deleted ({"key":K,"value":null,"deleted":true,...}).
std::string KeyMessage(std::string_view key, const std::optional<std::string>& value_json,
                       int64_t timestamp);
// An error message, shared as Client::Send takes it.
std::shared_ptr<const std::string> ErrorMessage(int code, std::string_view message);

}  // namespace etherply::server
