// What every session of a server shares: options, the hub of workspaces,
// counters. Internal to src/server/.
#pragma once

#include <atomic>

#include "server/server.h"
#include "server/workspace.h"

namespace etherply::server {

struct ServerContext {
  ServerOptions options;
  Hub* hub = nullptr;
  storage::Store* store = nullptr;         // for /v1/status
  webhooks::Webhooks* webhooks = nullptr;  // null when not configured
  replication::Replicator* replicator = nullptr;  // null when not configured
  std::atomic<size_t> connections{0};
  // Connections whose reads wait for their ops to be durable
  // (ServerOptions::max_inflight_op_bytes).
  std::atomic<size_t> reads_paused{0};
  // Set once the server is stopping: a WebSocket accepted from then on is
  // closed at once with 1001, as the ones before it were.
  std::atomic<bool> stopping{false};
};

}  // namespace etherply::server
