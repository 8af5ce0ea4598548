// One HTTP connection: reads requests, routes them, and hands WebSocket
// upgrades to a WebSocketSession.
//
// Routes (doc/protocol.md, doc/history_api.md, doc/webhooks.md):
//   GET  /healthz                              200 "ok"
//   GET  /v1/status                            JSON: connections, workspaces, replication
//   GET  /v1/sync/{workspace}                  WebSocket upgrade (read scope)
//   GET  /v1/workspaces/{workspace}/doc        the Automerge document (read scope)
//   GET  /v1/history/{workspace}[/state]       history, state at heads (read scope)
//   POST /v1/history/{workspace}/undo|restore  (write scope)
//   GET  /v1/admin/webhooks/stats|dead, POST .../dead/{id}/replay  (admin scope)
// Errors: 400 bad workspace ID or request, 401 missing or invalid token
// (with WWW-Authenticate: Bearer), 403 token does not cover the workspace
// or lacks the scope, 404 unknown path, 405 wrong method, 413 request body
// too large, 426 sync without an upgrade, 503 too many connections.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/context.h"

namespace etherply::server {

void StartHttpSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> ctx);

}  // namespace etherply::server
