#include "server/http_session.h"

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <optional>

#include "auth/jwt.h"
#include "automerge/json.h"
#include "base/json_parse.h"
#include "base/log.h"
#include "base/workspace_id.h"
#include "server/history.h"
#include "server/protocol.h"
#include "server/ws_session.h"
#include "webhooks/outbox.h"

namespace etherply::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace urls = boost::urls;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kMaxRequestBody = 1 << 20;
// The request line and headers (Beast's default), read before any token is
// checked, so kept small: room for a /state query of about 120 heads.
constexpr uint32_t kMaxRequestHeader = 8 << 10;

// Whether `ec` says the request could not be parsed or is too large (Beast's
// HTTP errors), rather than that the connection failed.
bool IsHttpParseError(beast::error_code ec) {
  return ec && ec.category() == http::make_error_code(http::error::bad_method).category();
}

Status WriteHealth(const ServerContext& ctx) {
  return ctx.store ? ctx.store->WriteHealth() : Status::Ok();
}

// GET /v1/status: the node's counters, whether writes succeed (after a
// failed one, the last error, until one succeeds) and replication's state;
// "status" sums them up: "stopping", else "degraded" while writes fail or
// replication is on but not replicating, else "ok".
std::string StatusJson(const ServerContext& ctx) {
  std::string storage = "{\"writable\":true}";
  Status health = WriteHealth(ctx);
  if (!health.ok()) {
    storage = "{\"writable\":false,\"error\":";
    automerge::AppendJsonString(storage, health.message());
    storage += '}';
  }
  std::optional<replication::Replicator::Report> replication;
  if (ctx.replicator) replication = ctx.replicator->State();
  const char* status = ctx.stopping                                                 ? "stopping"
                       : !health.ok() || (replication && !replication->replicating) ? "degraded"
                                                                                    : "ok";
  return "{\"status\":\"" + std::string(status) +
         "\",\"connections\":" + std::to_string(ctx.connections) +
         ",\"reads_paused\":" + std::to_string(ctx.reads_paused) +
         ",\"workspaces\":" + std::to_string(ctx.hub->loaded()) + ",\"storage\":" + storage +
         ",\"replication\":" + (replication ? replication->json : std::string("null")) + "}";
}

Response JsonError(const Request& req, http::status status, std::string_view message) {
  boost::json::object err{{"code", static_cast<int>(status)}, {"message", message}};
  Response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = boost::json::serialize(boost::json::object{{"error", err}}) + "\n";
  if (status == http::status::unauthorized)
    res.set(http::field::www_authenticate, "Bearer realm=\"etherply\"");
  res.prepare_payload();
  return res;
}

// 200 with a text/plain body (the health routes).
Response PlainText(const Request& req, std::string body) {
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, "text/plain");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

// The bearer token of a request: the Authorization header, else ?token=.
std::optional<std::string> TokenOf(const Request& req, const urls::url_view& url) {
  auto auth = req.find(http::field::authorization);
  if (auth != req.end()) {
    // RFC 6750 §2.1: "Bearer" 1*SP b64token, the scheme in any case.
    std::string_view v = auth->value();
    if (v.size() <= 7 || !beast::iequals(v.substr(0, 7), "Bearer ")) return std::string();
    v.remove_prefix(std::min(v.find_first_not_of(' ', 7), v.size()));
    return std::string(v);  // empty if nothing follows: invalid
  }
  auto it = url.params().find("token");
  if (it != url.params().end()) return std::string((*it).value);
  return std::nullopt;
}

// A client's Sec-WebSocket-Key: 16 bytes in base64, 22 characters and "==".
bool IsWebSocketKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/';
  });
}

// ?limit=: `absent` without one; 0 unless it is all decimal digits (so
// that the route's range check refuses it).
size_t LimitParam(const urls::url_view& url, size_t absent) {
  auto it = url.params().find("limit");
  if (it == url.params().end()) return absent;
  std::string v = (*it).value;
  size_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() ? n : 0;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(net::ip::tcp::socket socket, std::shared_ptr<ServerContext> ctx)
      : stream_(std::move(socket)), ctx_(std::move(ctx)) {
    ++ctx_->http_connections;
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~HttpSession() {
    if (waiting_) ctx_->waiting.Remove(waiting_);
    --ctx_->http_connections;
  }

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::DoRead, shared_from_this()));
  }

 private:
  void DoRead() {
    head_ = false;  // until a HEAD request is read
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    parser_->header_limit(kMaxRequestHeader);
    stream_.expires_after(ctx_->options.handshake_timeout);
    WaitForClient();
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  // Before an operation that waits on the client (a request to come, an
  // answer to be taken, the client to close): until it completes, the
  // acceptor may pick this connection to close, to make room for a new one.
  // The pick cancels the operation on this connection's strand.
  void WaitForClient() {
    waiting_ = ctx_->waiting.Add(
        [weak = weak_from_this(), executor = stream_.get_executor()](uint64_t ticket) {
          net::post(executor, [weak, ticket] {
            auto self = weak.lock();
            if (self && self->waiting_ == ticket) self->stream_.cancel();
          });
        });
  }

  // After such an operation completes: false if the acceptor picked this
  // connection meanwhile, which then ends here, whatever the operation did
  // (even a request read whole goes unanswered, as if the pick had come a
  // moment sooner), so that every pick closes one connection.
  bool DoneWaiting() {
    bool listed = ctx_->waiting.Remove(waiting_);
    waiting_ = 0;
    return listed;
  }

  void OnRead(beast::error_code ec, size_t) {
    if (!DoneWaiting()) return;
    if (ec == http::error::end_of_stream) return DoClose();
    if (ec == http::error::partial_message) return;  // the client went away
    if (IsHttpParseError(ec)) {
      // A request that cannot be parsed, or is too large, is answered
      // (then the connection closes): nothing of it is read further.
      Request req;
      req.version(11);
      req.keep_alive(false);
      if (ec == http::error::body_limit)
        return Write(JsonError(req, http::status::payload_too_large,
                               "request body over " + std::to_string(kMaxRequestBody) + " bytes"));
      if (ec == http::error::header_limit)
        return Write(JsonError(
            req, http::status::request_header_fields_too_large,
            "request line and headers over " + std::to_string(kMaxRequestHeader) + " bytes"));
      return Write(
          JsonError(req, http::status::bad_request, "malformed HTTP request: " + ec.message()));
    }
    if (ec) return;  // timeouts and resets: nothing to answer
    Handle(parser_->release());
  }

  // The claims of the request's valid token; writes 401 and returns
  // nullopt if it has none.
  std::optional<auth::Claims> Authenticate(const Request& req, const urls::url_view& url) {
    auto token = TokenOf(req, url);
    if (!token) {
      Write(JsonError(req, http::status::unauthorized, "missing token"));
      return std::nullopt;
    }
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    auto claims =
        auth::VerifyToken(*token, ctx_->options.jwt_secret, now, ctx_->options.jwt_audience);
    if (!claims.ok()) {
      LogWarn("rejected " + peer_ + ": " + claims.status().message());
      Write(JsonError(req, http::status::unauthorized, claims.status().message()));
      return std::nullopt;
    }
    return std::move(*claims);
  }

  // Authenticate, then the admin scope over every workspace (the admin
  // routes); writes 401 or 403 and returns false without it.
  bool AuthenticateAdmin(const Request& req, const urls::url_view& url) {
    auto claims = Authenticate(req, url);
    if (!claims) return false;
    if (claims->CoversWorkspace("*") && claims->scopes.Has(auth::Scope::kAdmin)) return true;
    Write(JsonError(req, http::status::forbidden,
                    "this needs the admin scope over every workspace ('*')"));
    return false;
  }

  void Handle(Request req) {
    head_ = req.method() == http::verb::head;  // whatever the answer, no body
    // A refused WebSocket upgrade ends the connection at once (spec §1).
    if (beast::websocket::is_upgrade(req)) req.keep_alive(false);
    // The origin form (/path?query), or the absolute form a proxy sends
    // (http://host/path?query, RFC 9112 §3.2.2).
    auto parsed = urls::parse_origin_form(req.target());
    if (!parsed) {
      auto absolute = urls::parse_absolute_uri(req.target());
      if (absolute && (absolute->scheme_id() == urls::scheme::http ||
                       absolute->scheme_id() == urls::scheme::https))
        parsed = absolute;
    }
    if (!parsed) return Write(JsonError(req, http::status::bad_request, "bad request target"));
    urls::url_view url = *parsed;
    std::vector<std::string> seg;
    for (auto s : url.segments()) seg.emplace_back(s);

    if (seg.size() == 1 && seg[0] == "healthz") {
      if (!MethodIs(req, http::verb::get)) return;
      return Write(PlainText(req, "ok\n"));
    }
    if (seg.size() == 1 && seg[0] == "readyz") {
      // Whether this node takes writes now: 503 while they fail (a full
      // disk: until one succeeds again) and once the server is stopping.
      if (!MethodIs(req, http::verb::get)) return;
      if (ctx_->stopping)
        return Write(
            JsonError(req, http::status::service_unavailable, "the server is shutting down"));
      // After a failed write, tries the store again: with no client
      // writing, nothing else would find that the disk came back.
      if (Status health = ctx_->store ? ctx_->store->RetryWrites() : Status::Ok(); !health.ok())
        return Write(JsonError(req, http::status::service_unavailable,
                               "writes are failing: " + health.message()));
      return Write(PlainText(req, "ready\n"));
    }
    if (seg.size() == 2 && seg[0] == "v1" && seg[1] == "status") {
      if (!MethodIs(req, http::verb::get)) return;
      return Reply(req, StatusJson(*ctx_));
    }
    if (seg.size() >= 3 && seg[0] == "v1" && seg[1] == "admin" && seg[2] == "webhooks")
      return WebhooksAdmin(std::move(req), url, seg);
    if (seg.size() == 3 && seg[0] == "v1" && seg[1] == "admin" && seg[2] == "backups")
      return WriteBackup(std::move(req), url);
    enum class Route { kSync, kDoc, kHistory, kState, kUndo, kRestore } route;
    bool v1 = seg.size() >= 3 && seg[0] == "v1";
    if (v1 && seg.size() == 3 && seg[1] == "sync") {
      route = Route::kSync;
    } else if (v1 && seg.size() == 4 && seg[1] == "workspaces" && seg[3] == "doc") {
      route = Route::kDoc;
    } else if (v1 && seg[1] == "history" && seg.size() == 3) {
      route = Route::kHistory;
    } else if (v1 && seg[1] == "history" && seg.size() == 4 && seg[3] == "state") {
      route = Route::kState;
    } else if (v1 && seg[1] == "history" && seg.size() == 4 && seg[3] == "undo") {
      route = Route::kUndo;
    } else if (v1 && seg[1] == "history" && seg.size() == 4 && seg[3] == "restore") {
      route = Route::kRestore;
    } else {
      return Write(JsonError(req, http::status::not_found, "no such path"));
    }
    bool writes = route == Route::kUndo || route == Route::kRestore;
    if (!MethodIs(req, writes ? http::verb::post : http::verb::get)) return;
    // A missing or invalid token is refused first, whatever else is wrong.
    auto claims = Authenticate(req, url);
    if (!claims) return;
    const std::string& workspace = seg[2];
    if (!IsValidWorkspaceId(workspace))
      return Write(JsonError(req, http::status::bad_request,
                             std::string("invalid workspace ID: ") + kWorkspaceIdRule));
    // A token that grants nothing in this workspace is not valid here: 401,
    // as the spec refuses a handshake (§2); its 403 means a write with a
    // read-only token (§6). Write implies read, so no read scope is no scope.
    if (!claims->CoversWorkspace(workspace))
      return Write(JsonError(req, http::status::unauthorized,
                             "the token does not cover workspace " + workspace));
    if (!claims->scopes.Has(auth::Scope::kRead))
      return Write(JsonError(req, http::status::unauthorized,
                             "the token grants no scope (read, write or admin)"));
    if (writes && !claims->scopes.Has(auth::Scope::kWrite))
      return Write(JsonError(req, http::status::forbidden, "this token may read but not write"));

    switch (route) {
      case Route::kDoc: return ExportDocument(std::move(req), workspace);
      case Route::kHistory: return ListHistory(std::move(req), url, workspace);
      case Route::kState: return ShowState(std::move(req), url, workspace);
      case Route::kUndo:
      case Route::kRestore: return Edit(std::move(req), workspace, *claims, route == Route::kUndo);
      case Route::kSync: break;
    }
    if (!beast::websocket::is_upgrade(req))
      return Write(JsonError(req, http::status::upgrade_required, "this path takes a WebSocket"));
    if (!IsWebSocketKey(req[http::field::sec_websocket_key]))
      return Write(JsonError(req, http::status::bad_request,
                             "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455)"));
    // RFC 6455 §4.4: an unknown version gets 426 naming the one spoken.
    if (auto version = req[http::field::sec_websocket_version]; version != "13") {
      Response res = JsonError(
          req, version.empty() ? http::status::bad_request : http::status::upgrade_required,
          "Sec-WebSocket-Version must be 13 (RFC 6455)");
      res.set(http::field::sec_websocket_version, "13");
      return Write(std::move(res));
    }
    if (ctx_->connections.load() >= ctx_->options.max_connections)
      return Write(JsonError(req, http::status::service_unavailable, "too many connections"));
    // What the parser read past the request is the client's first frames.
    std::make_shared<WebSocketSession>(std::move(stream_), ctx_, ctx_->hub->Get(workspace),
                                       std::move(*claims), peer_)
        ->Run(std::move(req), beast::buffers_to_string(buffer_.data()));
  }

  // /v1/admin/webhooks/stats (GET), /dead (GET ?limit=&cursor=),
  // /dead/{id}/replay (POST); admin scope over every workspace.
  void WebhooksAdmin(Request req, const urls::url_view& url, const std::vector<std::string>& seg) {
    bool stats = seg.size() == 4 && seg[3] == "stats";
    bool dead = seg.size() == 4 && seg[3] == "dead";
    bool replay = seg.size() == 6 && seg[3] == "dead" && seg[5] == "replay";
    if (!stats && !dead && !replay) return Write(JsonError(req, http::status::not_found, "no such path"));
    if (!MethodIs(req, replay ? http::verb::post : http::verb::get)) return;
    if (!AuthenticateAdmin(req, url)) return;
    webhooks::Webhooks* hooks = ctx_->webhooks;
    if (!hooks) return Write(JsonError(req, http::status::not_found, "webhooks are not configured"));
    if (stats) return Reply(req, webhooks::StatsToJson(hooks->stats()));
    if (dead) {
      std::string cursor;
      if (auto it = url.params().find("cursor"); it != url.params().end())
        cursor = std::string((*it).value);
      return Reply(req, hooks->ListDead(LimitParam(url, 100), cursor));
    }
    Status s = hooks->Replay(seg[4]);
    if (!s.ok()) return Reply(req, s);
    Reply(req, "{\"replayed\":\"" + seg[4] + "\"}", http::status::accepted);
  }

  // POST /v1/admin/backups: a copy of the store in --backup-dir, written
  // while the server runs (doc/storage.md "Backups"); 201 with its path,
  // and those of the old backups --backup-keep removed, once it is
  // complete. Admin scope over every workspace.
  void WriteBackup(Request req, const urls::url_view& url) {
    if (!MethodIs(req, http::verb::post)) return;
    if (!AuthenticateAdmin(req, url)) return;
    if (!ctx_->backups)
      return Write(JsonError(req, http::status::not_found,
                             "backups are not configured: start the server with --backup-dir DIR"));
    auto self = shared_from_this();
    auto request = std::make_shared<Request>(std::move(req));
    bool started =
        ctx_->backups->Write(*ctx_->store, [self, request](Result<Backups::Written> written) {
          Result<std::string> body = written.status();
          if (written.ok()) {
            body = std::string("{\"backup\":");
            automerge::AppendJsonString(*body, written->path);
            *body += ",\"removed\":[";
            for (size_t i = 0; i < written->removed.size(); ++i) {
              if (i) *body += ',';
              automerge::AppendJsonString(*body, written->removed[i]);
            }
            *body += "]}";
          }
          self->ReplyLater(std::move(*request), std::move(body), http::status::created);
        });
    if (!started)
      Write(JsonError(*request, http::status::conflict,
                      "a backup is being written; ask again once it is done"));
  }

  // Writes a JSON result, or the error a Status maps to.
  void Reply(const Request& req, const Result<std::string>& result,
             http::status ok_status = http::status::ok) {
    if (result.ok()) {
      Response res{ok_status, req.version()};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      res.body() = *result + "\n";
      res.prepare_payload();
      return Write(std::move(res));
    }
    http::status code = http::status::internal_server_error;
    switch (result.status().code()) {
      case Status::Code::kInvalidArgument: code = http::status::bad_request; break;
      case Status::Code::kNotFound: code = http::status::not_found; break;
      default: break;
    }
    Write(JsonError(req, code, result.status().message()));
  }

  // Runs fn's result back on this session's executor.
  void ReplyLater(Request req, Result<std::string> result,
                  http::status ok_status = http::status::ok) {
    net::post(stream_.get_executor(), [self = shared_from_this(), req = std::move(req),
                                       result = std::move(result), ok_status] {
      self->Reply(req, result, ok_status);
    });
  }

  void ListHistory(Request req, const urls::url_view& url, const std::string& workspace) {
    size_t limit = LimitParam(url, 100);
    if (limit < 1 || limit > 1000)
      return Write(JsonError(req, http::status::bad_request, "limit must be 1 to 1000"));
    std::optional<std::string> cursor;
    if (auto it = url.params().find("cursor"); it != url.params().end())
      cursor = std::string((*it).value);
    auto self = shared_from_this();
    ctx_->hub->Get(workspace)->Read(
        [limit, cursor](const automerge::Document& doc) { return HistoryPage(doc, limit, cursor); },
        [self, req = std::move(req)](Result<std::string> r) mutable {
          self->ReplyLater(std::move(req), std::move(r));
        });
  }

  void ShowState(Request req, const urls::url_view& url, const std::string& workspace) {
    auto it = url.params().find("heads");
    if (it == url.params().end())
      return Write(JsonError(req, http::status::bad_request, "give ?heads=H1,H2"));
    auto heads = automerge::HashesFromHexList(std::string((*it).value));
    if (!heads.ok()) return Write(JsonError(req, http::status::bad_request, heads.status().message()));
    auto self = shared_from_this();
    ctx_->hub->Get(workspace)->Read(
        [heads = *heads](const automerge::Document& doc) { return StateAt(doc, heads); },
        [self, req = std::move(req)](Result<std::string> r) mutable {
          self->ReplyLater(std::move(req), std::move(r));
        });
  }

  // POST undo {"change":H} or restore {"heads":[H,...]}.
  void Edit(Request req, const std::string& workspace, const auth::Claims& claims, bool undo) {
    auto body = ParseJson(req.body(), 16);
    const boost::json::object* obj = body.ok() ? body->if_object() : nullptr;
    std::vector<automerge::ChangeHash> hashes;
    const boost::json::value* field = obj ? obj->if_contains(undo ? "change" : "heads") : nullptr;
    if (undo && field && field->is_string()) {
      auto h = automerge::HashFromHex(field->get_string());
      if (h.ok()) hashes.push_back(*h);
    } else if (!undo && field && field->is_array()) {
      for (const auto& v : field->get_array()) {
        auto h = v.is_string() ? automerge::HashFromHex(v.get_string())
                               : Result<automerge::ChangeHash>(Status::InvalidArgument("x"));
        if (!h.ok()) {
          hashes.clear();
          break;
        }
        hashes.push_back(*h);
      }
    }
    if (hashes.empty())
      return Write(JsonError(req, http::status::bad_request,
                             undo ? "body must be {\"change\":\"<hash>\"}"
                                  : "body must be {\"heads\":[\"<hash>\",...]}"));
    auto plan = std::make_shared<EditPlan>();
    auto timestamp = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    Workspace::Edit edit = [plan, hashes, undo, timestamp](automerge::Transaction& tx,
                                                          const automerge::Document& doc)
        -> Result<Workspace::EditOutput> {
      auto p = undo ? PlanUndo(doc, hashes[0]) : PlanRestore(doc, hashes);
      if (!p.ok()) return p.status();
      *plan = std::move(*p);
      auto messages = ApplyPlan(tx, *plan, timestamp);
      if (!messages.ok()) return messages.status();
      Workspace::EditOutput out{std::move(*messages), {}, timestamp};
      for (KeyEdit& e : plan->edits) {
        out.keys.emplace_back(e.key, e.value_json);
        e.value.reset();  // written: only the skipped keys are answered
      }
      return out;
    };
    auto self = shared_from_this();
    ctx_->hub->Get(workspace)->Mutate(
        claims, edit,
        [self, plan, undo, req = std::move(req)](Result<Workspace::EditResult> r) mutable {
          if (!r.ok()) return self->ReplyLater(std::move(req), r.status());
          std::string out = "{\"change\":";
          out += r->change ? "\"" + automerge::HashToHex(*r->change) + "\"" : "null";
          out += ",\"heads\":[";
          for (size_t i = 0; i < r->heads.size(); ++i)
            out += (i ? ",\"" : "\"") + automerge::HashToHex(r->heads[i]) + "\"";
          out += "]";
          if (undo) {
            out += ",\"skipped\":[";
            for (size_t i = 0; i < plan->skipped.size(); ++i) {
              if (i) out += ',';
              automerge::AppendJsonString(out, plan->skipped[i]);
            }
            out += "]";
          }
          self->ReplyLater(std::move(req), out + "}");
        });
  }

  void ExportDocument(Request req, const std::string& workspace) {
    auto self = shared_from_this();
    ctx_->hub->Get(workspace)->Export([self, req = std::move(req)](Result<std::string> bytes) {
      net::post(self->stream_.get_executor(), [self, req, bytes = std::move(bytes)]() mutable {
        if (!bytes.ok())
          return self->Write(JsonError(req, http::status::internal_server_error,
                                       "the workspace cannot be loaded"));
        Response res{http::status::ok, req.version()};
        res.set(http::field::content_type, "application/octet-stream");
        res.keep_alive(req.keep_alive());
        res.body() = std::move(*bytes);
        res.prepare_payload();
        self->Write(std::move(res));
      });
    });
  }

  // Whether the request's method is `want` (HEAD passing for GET); writes
  // 405, with the Allow header, if not.
  bool MethodIs(const Request& req, http::verb want) {
    if (req.method() == want || (want == http::verb::get && head_)) return true;
    bool get = want == http::verb::get;
    Response res = JsonError(req, http::status::method_not_allowed, get ? "use GET" : "use POST");
    res.set(http::field::allow, get ? "GET, HEAD" : "POST");
    Write(std::move(res));
    return false;
  }

  // Every response names the server; one to HEAD has the headers of GET's
  // (its Content-Length too) and no body.
  void Write(Response res) {
    res.set(http::field::server, "etherply");
    if (head_) {
      size_t length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    auto sp = std::make_shared<Response>(std::move(res));
    // A client that does not read its answers (pipelining request after
    // request) holds the write: it may be closed for room meanwhile, and the
    // write gets the whole timeout, not what the read left of it.
    stream_.expires_after(ctx_->options.handshake_timeout);
    WaitForClient();
    http::async_write(stream_, *sp, [self = shared_from_this(), sp](beast::error_code ec, size_t) {
      if (!self->DoneWaiting() || ec) return;
      if (!sp->keep_alive()) return self->LingeringClose();
      self->DoRead();
    });
  }

  // Ends the connection after a response that closes it: shuts down our
  // side, then reads and drops what the client still sends (the rest of a
  // refused body) until it closes or 2 s pass. Closing with unread bytes
  // would make the kernel reset the connection, and the client could lose
  // the response (RFC 9112 §9.6).
  void LingeringClose() {
    DoClose();
    stream_.expires_after(std::chrono::seconds(2));
    Drain();
  }

  void Drain() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    WaitForClient();
    stream_.async_read_some(net::buffer(*scratch),
                            [self = shared_from_this(), scratch](beast::error_code ec, size_t) {
                              if (self->DoneWaiting() && !ec) self->Drain();
                            });
  }

  void DoClose() {
    beast::error_code ec;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<ServerContext> ctx_;
  std::string peer_;
  bool head_ = false;  // the request being answered is a HEAD
  // The WaitingList ticket while an operation waits on the client, else 0.
  uint64_t waiting_ = 0;
};

// Connections a full server accepts beyond its caps while the ones it
// closed to make room finish closing (within the descriptors
// server.cc's kReservedFds keeps back).
constexpr size_t kClosingRoom = 16;

// The connection counts and caps, for the log.
std::string Counts(const ServerContext& ctx) {
  return std::to_string(ctx.connections.load()) + " WebSocket and " +
         std::to_string(ctx.http_connections.load()) + " HTTP connections (at most " +
         std::to_string(ctx.max_sockets) + " in all, " + std::to_string(ctx.max_http_connections) +
         " HTTP)";
}

// A connection over ServerContext's caps, answered 503 as it is
// accepted and closed unread: a fresh socket's send buffer takes the answer
// whole, so nothing waits. What the client sent already is read first, as
// closing with it unread would reset the connection before the answer.
void RefuseBusy(net::ip::tcp::socket socket, const ServerContext& ctx) {
  static const std::string kAnswer = [] {
    std::string body = R"({"error":{"code":503,"message":"too many connections"}})"
                       "\n";
    return "HTTP/1.1 503 Service Unavailable\r\nServer: etherply\r\n"
           "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  static ThrottledWarning warning(std::chrono::seconds(10));
  warning.Warn(
      "refused a connection with 503, no HTTP connection waiting on its client to make room: " +
      Counts(ctx));
  beast::error_code ec;
  socket.non_blocking(true, ec);
  std::array<char, 8192> unread;
  socket.read_some(net::buffer(unread), ec);
  socket.write_some(net::buffer(kAnswer), ec);
  socket.shutdown(net::ip::tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

}  // namespace

void StartHttpSession(net::ip::tcp::socket socket, std::shared_ptr<ServerContext> ctx) {
  // Called by the acceptor alone, one connection at a time: nothing else
  // adds to the counts between this check and the session's constructor.
  size_t http = ctx->http_connections.load();
  size_t all = http + ctx->connections.load();
  if (http >= ctx->max_http_connections || all >= ctx->max_sockets) {
    // Full. The connection that has waited longest on its client makes
    // room; it closes on its own strand, so until it has, the counts may
    // run over the caps, by at most kClosingRoom.
    if (http >= ctx->max_http_connections + kClosingRoom ||
        all >= ctx->max_sockets + kClosingRoom || !ctx->waiting.CloseOldest())
      return RefuseBusy(std::move(socket), *ctx);
    static ThrottledWarning warning(std::chrono::seconds(10));
    warning.Warn(
        "closed the HTTP connection that had waited longest on its client, to make room: " +
        Counts(*ctx));
  }
  std::make_shared<HttpSession>(std::move(socket), std::move(ctx))->Run();
}

}  // namespace etherply::server
