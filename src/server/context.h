// What every session of a server shares: options, the hub of workspaces,
// counters. Internal to src/server/.
#pragma once

#include <atomic>
#include <cstdint>

#include "server/backups.h"
#include "server/server.h"
#include "server/waiting_list.h"
#include "server/workspace.h"

namespace etherply::server {

struct ServerContext {
  ServerOptions options;
  Hub* hub = nullptr;
  storage::Store* store = nullptr;         // for /v1/status
  webhooks::Webhooks* webhooks = nullptr;  // null when not configured
  replication::Replicator* replicator = nullptr;  // null when not configured
  Backups* backups = nullptr;                     // null when not configured
  std::atomic<size_t> connections{0};
  // HTTP connections: those waiting for their request, answering one, or
  // kept alive between requests (an upgrade moves one to `connections`).
  std::atomic<size_t> http_connections{0};
  // Connections of both kinds at once, and HTTP ones (so that idle HTTP
  // connections cannot take the WebSocket ones' room), set at start within
  // the open-file limit. A connection beyond either makes room by closing
  // the HTTP connection that has waited longest on its client (WaitingList);
  // with none waiting, it is answered 503 as it is accepted.
  size_t max_sockets = SIZE_MAX;
  size_t max_http_connections = SIZE_MAX;
  // The HTTP connections waiting on their client: for a request (kept alive
  // between two, too), for it to take an answer, or for it to close.
  WaitingList waiting;
  // Connections whose reads wait for their ops to be durable
  // (ServerOptions::max_inflight_op_bytes).
  std::atomic<size_t> reads_paused{0};
  // Set once the server is stopping: a WebSocket accepted from then on is
  // closed at once with 1001, as the ones before it were.
  std::atomic<bool> stopping{false};
};

}  // namespace etherply::server
