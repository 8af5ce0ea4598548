// Stream messages: how a node's own changes travel on JetStream
// (doc/replication.md). A message carries changes of one workspace:
//
//   subject  etherply.changes.<origin node>
//   data     change-chunk+                  (FORMAT.md §3), in commit order
//   headers  Etherply-Workspace  the workspace ID
//            Etherply-Timestamp  ts *(SP ts)  the ops' Unix microseconds
//                                (decimal), one per change, in the same order
//            Nats-Msg-Id         hex(SHA-256("etherply.changes/1" 0x00
//                                workspace 0x00 hash_1 .. hash_n)), the
//                                hashes as their 32 bytes
//
// The message ID names exactly its workspace and set of changes, so
// JetStream drops a message published again after a failure, and never a
// message that holds a change the first one did not (nor the same changes
// made in another workspace: equal ops by one author within a second hash
// alike).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "replication/outbox.h"

namespace etherply::replication {

struct ChangeMessage {
  std::string workspace;   // the Etherply-Workspace header
  std::string data;        // the change chunks, concatenated
  std::string timestamps;  // the Etherply-Timestamp header
  Sha256Digest id{};       // the Nats-Msg-Id header's bytes
  size_t changes = 0;      // how many change chunks `data` holds
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
