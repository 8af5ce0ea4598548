// One HTTP connection: reads requests, routes them, and hands WebSocket
// upgrades to a WebSocketSession.
//
// Routes (doc/protocol.md, doc/history_api.md, doc/webhooks.md):
//   GET  /healthz                              200 "ok"
//   GET  /readyz                               200 "ready"; 503 while writes fail or stopping
//   GET  /v1/status                            JSON: connections, workspaces, replication
//   GET  /v1/sync/{workspace}                  WebSocket upgrade (read scope)
//   GET  /v1/workspaces/{workspace}/doc        the Automerge document (read scope)
//   GET  /v1/history/{workspace}[/state]       history, state at heads (read scope)
//   POST /v1/history/{workspace}/undo|restore  (write scope)
//   GET  /v1/admin/webhooks/stats|dead, POST .../dead/{id}/replay  (admin scope)
// HEAD is answered wherever GET is, with GET's headers and no body; a 405
// names what is allowed (Allow). Targets in the absolute form a proxy
// sends (http://host/path) are served as their path.
// Errors: 400 bad workspace ID or request (or not valid HTTP/1.x); 401 (with
// WWW-Authenticate: Bearer) a token missing, invalid, not covering the
// workspace or granting no scope; 403 a token that lacks the write scope
// (undo, restore) or the admin scope over '*' (admin routes); 404 unknown
// path, 405 wrong method, 413 request body over 1 MiB, 431 request line and
// headers over 8 KiB, 426 sync without an upgrade, 503 too many
// connections (WebSocket ones over ServerOptions::max_connections, or
// connections of any kind over ServerContext::max_sockets, answered as they
// are accepted). An op's 403 (read-only token) is a WebSocket message.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/context.h"

namespace etherply::server {

// Serves a connection just accepted, or answers it 503 if the server holds
// as many as it may (ServerContext). Called by the acceptor alone, one
// connection at a time.
void StartHttpSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<ServerContext> ctx);

}  // namespace etherply::server
