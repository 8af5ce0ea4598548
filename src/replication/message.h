// Stream messages: how a node's own changes travel on JetStream
// (doc/replication.md). A message carries changes of one workspace:
//
//   subject  etherply.changes.<origin node>
//   data     change-chunk+                  (FORMAT.md §3), in commit order
//   headers  Etherply-Workspace  the workspace ID
//            Etherply-Timestamp  ts *(SP ts)  the ops' Unix microseconds
//                                (decimal), one per change, in the same order
//            Nats-Msg-Id         hex(hash) of a message of one change; of
//                                several, hex(SHA-256(hash_1 || ... || hash_n))
//
// The message ID names exactly its set of changes, so JetStream drops a
// message published again after a failure, and never a message that holds
// a change the first one did not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "automerge/types.h"
#include "base/status.h"
#include "replication/outbox.h"

namespace etherply::replication {

struct ChangeMessage {
  std::string workspace;
  std::string data;        // the change chunks, concatenated
  std::string timestamps;  // the Etherply-Timestamp header
  automerge::ChangeHash id{};
  size_t changes = 0;
};

// Packs outbox records (oldest first) into messages: one per workspace, in
// the order of each workspace's first record, holding that workspace's
// records in order; a workspace's next message is begun where the data
// would grow past `max_bytes` (a larger change goes alone).
std::vector<ChangeMessage> PackChanges(const std::vector<Outbox::Item>& items, size_t max_bytes);

// The timestamps of an Etherply-Timestamp header for a message of `n`
// changes. Fails with kInvalidArgument unless it holds exactly `n`
// decimal integers separated by single spaces.
Result<std::vector<int64_t>> ParseTimestamps(std::string_view header, size_t n);

}  // namespace etherply::replication
