#include "cli/serve_command.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "auth/jwt.h"
#include "base/log.h"
#include "base/workspace_id.h"
#include "cli/flags.h"
#include "cli/secret.h"
#include "replication/replicator.h"
#include "server/server.h"
#include "webhooks/http_client.h"
#include "webhooks/outbox.h"
#include "webhooks/signing.h"

namespace etherply::cli {

namespace {

// Network threads: more than cores only adds switches; the cap turns a typo
// into an error rather than the system's thread limit.
constexpr int kMaxThreads = 256;

constexpr const char* kServeUsage =
    "usage: etherply serve [options]\n"
    "\n"
    "Serves WebSocket sync at /v1/sync/{workspace} and the HTTP API.\n"
    "A DURATION is 90 or 90s, 15m, 2h, 7d, up to 365d. SIGINT, SIGTERM and\n"
    "SIGHUP (its terminal closed; not under nohup) stop the server gracefully,\n"
    "a second SIGINT or SIGTERM at once (within 3 s, even with a thread stuck\n"
    "on the disk: exit status 1 then). Exit status: 0 after a stop; 2 for a\n"
    "bad flag or setting, found before anything is done; 1 when the server\n"
    "fails to start or run.\n"
    "\n"
    "  --listen HOST:PORT          where to listen (default 127.0.0.1:8080)\n"
    "  --data-dir DIR              where data lives (default ./data)\n"
    "  --wal-recovery MODE         strict (default): refuse to start on a write-ahead\n"
    "                              log damaged before its end; point-in-time: start,\n"
    "                              dropping every write after the damage for good\n"
    "  --backup-dir DIR            where POST /v1/admin/backups writes copies of the\n"
    "                              store while it runs (doc/storage.md); none without it\n"
    "  --backup-keep N             after each backup, remove the oldest beyond N\n"
    "                              (default 0: keep every one; needs --backup-dir)\n"
    "  --jwt-secret-file FILE      the HS256 secret (else $ETHERPLY_JWT_SECRET);\n"
    "                              at least 32 bytes; the file's trailing newlines\n"
    "                              (\\n or \\r\\n) are not part of it\n"
    "  --jwt-audience NAME         tokens must name NAME in their aud claim; without\n"
    "                              it, tokens that name any audience are refused\n"
    "  --max-message-bytes N       largest client message (default 1048576);\n"
    "                              larger ones close the socket with 1009\n"
    "  --max-send-queue-bytes N    bytes queued for a client that does not read\n"
    "                              before it is closed with 1008 (default 16777216;\n"
    "                              at least 1024)\n"
    "  --max-inflight-op-bytes N   a client's messages not yet answered (ops\n"
    "                              waiting for the disk) before its socket is read\n"
    "                              no further until some are (default 1048576)\n"
    "  --idle-timeout DURATION     close connections that send nothing for this long\n"
    "                              (default 60s)\n"
    "  --ping-interval DURATION    ping quiet connections this often (default 20s;\n"
    "                              at least every half --idle-timeout in any case)\n"
    "  --max-connections N         WebSocket connections at once (default 10000);\n"
    "                              HTTP ones come on top, up to 1024 more, within\n"
    "                              the open-file limit (raised at start to the hard one)\n"
    "  --threads N                 network threads, 1 to 256 (default 2)\n"
    "  --warm-workspaces N         workspaces kept loaded after their last client\n"
    "                              leaves, 0 to 1000000 (default 64)\n"
    "  --webhook-url URL           POST a doc.updated event per change (http/https;\n"
    "                              doc/webhooks.md)\n"
    "  --webhook-secret SECRET     whsec_ + base64 of 24-64 bytes (else\n"
    "                              $ETHERPLY_WEBHOOK_SECRET, which keeps it out of ps);\n"
    "                              required with --webhook-url; this flag and the\n"
    "                              three below need --webhook-url\n"
    "  --webhook-attempts N        attempts before an event is a dead letter (default 36)\n"
    "  --webhook-backoff DURATION  base of the retry backoff (default 2s; cap 1h)\n"
    "  --webhook-timeout DURATION  time allowed per attempt (default 10s)\n"
    "  --nats-url URL[,URL...]     replicate with the other nodes over NATS JetStream\n"
    "                              (doc/replication.md); without it the node runs alone\n"
    "  --node-id ID                this node's name, [A-Za-z0-9_-]{1,64} (default: a\n"
    "                              random one kept in the data dir)\n"
    "  --region NAME               a label shown in /v1/status\n"
    "  --nats-replicas N           stream replicas when this node creates the stream,\n"
    "                              1 to 5 (default 1; 3 on a NATS cluster)\n"
    "  --anti-entropy-interval DURATION\n"
    "                              how often heads are compared with every peer and\n"
    "                              gaps repaired (default 30s; ms allowed, e.g. 500ms)\n";

constexpr const char* kTokenUsage =
    "usage: etherply token --sub NAME --workspace ID [--workspace ID...]\n"
    "                      [--scope \"read write\"] [--ttl 1h] [--audience NAME]\n"
    "\n"
    "Prints an HS256 JWT signed with the server's secret (--jwt-secret-file\n"
    "FILE, whose trailing newlines are not part of it, else\n"
    "$ETHERPLY_JWT_SECRET). Scopes: read, write, admin; write implies read,\n"
    "admin implies both. --workspace takes a workspace ID (1 to 128 of A-Z\n"
    "a-z 0-9 . _ -, not . or ..), or '*' for every workspace. --ttl is a duration: 90 or 90s,\n"
    "15m, 2h, 7d, up to 365d. --audience writes the aud claim, for a server\n"
    "started with --jwt-audience NAME. Exit status 2 for a usage error.\n";

bool WantsHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int Usage(const char* usage, const Status& s) {
  std::fprintf(stderr, "%s\n\n%s", s.message().c_str(), usage);
  return 2;
}

}  // namespace

int RunServeCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::fputs(kServeUsage, stdout);
    return 0;
  }
  Flags flags({"listen",
               "data-dir",
               "wal-recovery",
               "backup-dir",
               "backup-keep",
               "jwt-secret-file",
               "jwt-audience",
               "max-message-bytes",
               "max-send-queue-bytes",
               "max-inflight-op-bytes",
               "idle-timeout",
               "ping-interval",
               "max-connections",
               "threads",
               "warm-workspaces",
               "webhook-url",
               "webhook-secret",
               "webhook-attempts",
               "webhook-backoff",
               "webhook-timeout",
               "nats-url",
               "node-id",
               "region",
               "nats-replicas",
               "anti-entropy-interval"},
              {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return Usage(kServeUsage, s);
  if (!flags.positional().empty())
    return Usage(kServeUsage, Status::InvalidArgument("unexpected argument " + flags.positional()[0]));

  server::ServerOptions o;
  if (auto listen = flags.Get("listen")) {
    auto colon = listen->rfind(':');
    if (colon == std::string::npos) return Usage(kServeUsage, Status::InvalidArgument("--listen wants HOST:PORT"));
    o.host = listen->substr(0, colon);
    if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
      o.host = o.host.substr(1, o.host.size() - 2);
    if (o.host.empty())
      return Usage(kServeUsage, Status::InvalidArgument(
                                    "--listen wants a host before the port: 127.0.0.1:PORT for "
                                    "this machine only, 0.0.0.0:PORT for every IPv4 interface"));
    auto port = ParseCount(listen->substr(colon + 1));
    if (!port.ok() || *port > 65535) return Usage(kServeUsage, Status::InvalidArgument("bad port in --listen"));
    o.port = static_cast<uint16_t>(*port);
  }
  if (auto d = flags.Get("data-dir")) {
    if (d->empty())
      return Usage(kServeUsage, Status::InvalidArgument("--data-dir must not be empty"));
    o.data_dir = *d;
  }
  if (auto w = flags.Get("wal-recovery")) {
    if (*w == "point-in-time")
      o.wal_recovery = storage::WalRecovery::kPointInTime;
    else if (*w != "strict")
      return Usage(kServeUsage,
                   Status::InvalidArgument("--wal-recovery takes strict or point-in-time"));
  }
  if (auto a = flags.Get("jwt-audience")) {
    if (a->empty())
      return Usage(kServeUsage, Status::InvalidArgument("--jwt-audience must not be empty"));
    o.jwt_audience = *a;
  }
  if (auto d = flags.Get("backup-dir")) {
    if (d->empty())
      return Usage(kServeUsage, Status::InvalidArgument("--backup-dir must not be empty"));
    o.backup_dir = *d;
  }
  // An integer from `min` up to `max` and what the field holds, checked
  // before it is narrowed into the field.
  auto count = [&](const char* name, auto& field, uint64_t max = UINT64_MAX,
                   uint64_t min = 1) -> Status {
    using T = std::remove_reference_t<decltype(field)>;
    max = std::min<uint64_t>(max, std::numeric_limits<T>::max());
    if (auto v = flags.Get(name)) {
      auto n = ParseCount(*v);
      if (!n.ok() || *n < min || *n > max)
        return Status::InvalidArgument(std::string("--") + name + " wants an integer from " +
                                       std::to_string(min) + " to " + std::to_string(max));
      field = static_cast<T>(*n);
    }
    return Status::Ok();
  };
  for (Status s :
       {count("max-message-bytes", o.max_message_bytes),
        // Bounded so that 4x it and an init beside it cannot overflow; at
        // least what 4x must hold for the handshake's answer and a pong.
        count("max-send-queue-bytes", o.max_send_queue_bytes, uint64_t{1} << 40, 1024),
        count("max-inflight-op-bytes", o.max_inflight_op_bytes),
        count("max-connections", o.max_connections), count("threads", o.threads, kMaxThreads),
        count("backup-keep", o.backup_keep, 1'000'000, 0)})
    if (!s.ok()) return Usage(kServeUsage, s);
  if (o.backup_dir.empty() && flags.Has("backup-keep"))
    return Usage(kServeUsage, Status::InvalidArgument("--backup-keep needs --backup-dir"));
  if (auto v = flags.Get("warm-workspaces")) {
    auto n = ParseCount(*v);
    if (!n.ok() || *n > 1'000'000)
      return Usage(kServeUsage,
                   Status::InvalidArgument("--warm-workspaces wants an integer from 0 to 1000000"));
    o.warm_workspaces = *n;
  }
  // A duration of at least one second (one millisecond for --anti-entropy-interval)
  // and at most kMaxDurationSeconds.
  auto duration = [&](const char* name, auto& field) -> Status {
    using D = std::remove_reference_t<decltype(field)>;
    constexpr bool kMillis = std::is_same_v<D, std::chrono::milliseconds>;
    if (auto v = flags.Get(name)) {
      auto d = kMillis ? ParseMillis(*v) : ParseDuration(*v);
      if (!d.ok())
        return Status::InvalidArgument(std::string("--") + name + " " + d.status().message());
      if (*d == 0)
        return Status::InvalidArgument(std::string("--") + name + " must be at least 1" +
                                       (kMillis ? "ms" : "s"));
      field = D(*d);
    }
    return Status::Ok();
  };
  // An empty URL (an unset shell variable, say) is a mistake, not a way to
  // turn webhooks or replication off: leave the flag out for that.
  for (const char* name : {"webhook-url", "nats-url"})
    if (auto v = flags.Get(name); v && v->empty())
      return Usage(kServeUsage,
                   Status::InvalidArgument(std::string("--") + name +
                                           " must not be empty (leave it out to run without)"));
  if (auto u = flags.Get("webhook-url")) o.webhook_url = *u;
  for (Status s :
       {duration("idle-timeout", o.idle_timeout), duration("ping-interval", o.ping_interval),
        count("webhook-attempts", o.webhook_max_attempts),
        duration("webhook-backoff", o.webhook_backoff_base),
        duration("webhook-timeout", o.webhook_timeout),
        duration("anti-entropy-interval", o.anti_entropy_interval)})
    if (!s.ok()) return Usage(kServeUsage, s);
  if (o.webhook_url.empty()) {
    for (const char* name :
         {"webhook-secret", "webhook-attempts", "webhook-backoff", "webhook-timeout"})
      if (flags.Has(name))
        return Usage(kServeUsage,
                     Status::InvalidArgument(std::string("--") + name + " needs --webhook-url"));
  } else {
    if (o.webhook_backoff_base > webhooks::Options{}.backoff_cap)
      return Usage(kServeUsage, Status::InvalidArgument(
                                    "--webhook-backoff is at most 1h, the cap on every wait"));
    if (auto u = webhooks::ParseHttpUrl(o.webhook_url); !u.ok()) return Usage(kServeUsage, u.status());
    std::string whsec = flags.Get("webhook-secret").value_or("");
    if (whsec.empty())
      if (const char* env = std::getenv("ETHERPLY_WEBHOOK_SECRET")) whsec = env;
    if (whsec.empty())
      return Usage(kServeUsage, Status::InvalidArgument(
                                    "--webhook-url needs a secret: --webhook-secret or "
                                    "$ETHERPLY_WEBHOOK_SECRET (whsec_ + base64 of 24-64 bytes)"));
    if (auto k = webhooks::SigningKey::Parse(whsec); !k.ok()) return Usage(kServeUsage, k.status());
    o.webhook_secret = std::move(whsec);
  }
  o.nats_url = flags.Get("nats-url").value_or("");
  for (const char* name : {"node-id", "region"})
    if (auto v = flags.Get(name); v && v->empty())
      return Usage(kServeUsage,
                   Status::InvalidArgument(std::string("--") + name +
                                           " must not be empty (leave it out for the default)"));
  o.node_id = flags.Get("node-id").value_or("");
  o.region = flags.Get("region").value_or("");
  // JetStream's own bound on a stream's replicas.
  if (Status s = count("nats-replicas", o.nats_replicas, 5); !s.ok()) return Usage(kServeUsage, s);
  if (o.nats_url.empty())
    for (const char* name : {"node-id", "region", "nats-replicas", "anti-entropy-interval"})
      if (flags.Has(name))
        return Usage(kServeUsage,
                     Status::InvalidArgument(std::string("--") + name + " needs --nats-url"));
  if (!o.node_id.empty() && !replication::IsValidNodeId(o.node_id))
    return Usage(kServeUsage, Status::InvalidArgument("--node-id must be 1-64 of A-Z a-z 0-9 _ -"));
  auto secret = LoadJwtSecret(flags.Get("jwt-secret-file"));
  if (!secret.ok()) {
    std::fprintf(stderr, "etherply serve: %s\n", secret.status().message().c_str());
    return 2;
  }
  o.jwt_secret = std::move(*secret);

  // A closed log pipe (serve 2>&1 | head) must not kill the server, from
  // its first line on: writes to it fail instead (sockets never raise
  // SIGPIPE: Asio sends with MSG_NOSIGNAL).
  std::signal(SIGPIPE, SIG_IGN);
  {
    server::Server server(std::move(o));
    if (Status s = server.Start(); !s.ok()) {
      std::fprintf(stderr, "etherply serve: %s\n", s.ToString().c_str());
      // InvalidArgument is a setting that Start found wrong (a --listen host
      // that is no address), a configuration error like those above;
      // anything else (a port in use, a store that cannot open) is a failure.
      return s.code() == Status::Code::kInvalidArgument ? 2 : 1;
    }
    server.Run();
  }  // what was queued is written, the store closed
  LogInfo("stopped");
  return 0;
}

int RunTokenCommand(int argc, char** argv) {
  if (WantsHelp(argc, argv)) {
    std::fputs(kTokenUsage, stdout);
    return 0;
  }
  Flags flags({"sub", "scope", "workspace", "ttl", "jwt-secret-file", "audience"}, {});
  if (Status s = flags.Parse(argc, argv); !s.ok()) return Usage(kTokenUsage, s);
  // A stray word is most often a value that lost its quotes (--scope read
  // write): refused rather than dropped.
  if (!flags.positional().empty())
    return Usage(kTokenUsage,
                 Status::InvalidArgument("unexpected argument " + flags.positional()[0]));
  auth::Claims c;
  c.sub = flags.Get("sub").value_or("");
  if (c.sub.empty()) return Usage(kTokenUsage, Status::InvalidArgument("--sub is required"));
  if (auto a = flags.Get("audience")) {
    if (a->empty())
      return Usage(kTokenUsage, Status::InvalidArgument("--audience must not be empty"));
    c.aud = {*a};
  }
  c.workspaces = flags.GetAll("workspace");
  if (c.workspaces.empty()) return Usage(kTokenUsage, Status::InvalidArgument("--workspace is required"));
  for (const std::string& w : c.workspaces)
    if (w != "*" && !IsValidWorkspaceId(w))
      return Usage(kTokenUsage,
                   Status::InvalidArgument("--workspace \"" + w + "\" is not a workspace ID (" +
                                           kWorkspaceIdRule + ") or *"));
  std::string scope = flags.Get("scope").value_or("read write");
  // The server ignores words it does not know (a token may carry other
  // services' scopes); one minted here names only EtherPly's.
  for (size_t at = 0; at < scope.size();) {
    size_t end = std::min(scope.find(' ', at), scope.size());
    std::string word = scope.substr(at, end - at);
    if (!word.empty() && word != "read" && word != "write" && word != "admin")
      return Usage(kTokenUsage, Status::InvalidArgument("unknown scope \"" + word +
                                                        "\": --scope takes read, write, admin"));
    at = end + 1;
  }
  c.scopes = auth::Scopes::Parse(scope);
  if (c.scopes.empty())
    return Usage(kTokenUsage,
                 Status::InvalidArgument("--scope names no scope: read, write, admin"));
  auto ttl = ParseDuration(flags.Get("ttl").value_or("1h"));
  if (!ttl.ok())
    return Usage(kTokenUsage, Status::InvalidArgument("--ttl " + ttl.status().message()));
  if (*ttl == 0) return Usage(kTokenUsage, Status::InvalidArgument("--ttl must be at least 1s"));
  auto secret = LoadJwtSecret(flags.Get("jwt-secret-file"));
  if (!secret.ok()) {
    std::fprintf(stderr, "etherply token: %s\n", secret.status().message().c_str());
    return 2;
  }
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  c.iat = now;
  c.exp = now + *ttl;
  std::printf("%s\n", auth::MintToken(c, *secret).c_str());
  return 0;
}

}  // namespace etherply::cli
