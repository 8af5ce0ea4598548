// The NATS JetStream replicator (replicator.h); the only file that includes
// nats.h. doc/replication.md describes the subjects and the protocol.
//
// The outbox and its record format: outbox.h.
// Stream messages (stream ETHERPLY, subject etherply.changes.<origin node>):
//   message.h.
// Core NATS subjects:
//   etherply.nodes            announcement:  node-id SP region; header
//                             Etherply-Run: the announcing process's
//                             random name (a node ID heard from another
//                             process is shared)
//   etherply.digest.<node>    request:  (uleb(len) workspace uleb(n) hash{n})*
//                             reply:    uleb(index)*  the workspaces whose
//                                       heads differ from the responder's
//   etherply.sync.<node>      request: one Automerge sync message; headers
//                             Etherply-Workspace, Etherply-Session;
//                             reply: the responder's next message, or empty;
//                             or empty with header Etherply-Error: why the
//                             responder cannot answer
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "automerge/sync.h"
#include "base/coding.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/random.h"
#include "replication/message.h"
#include "replication/outbox.h"
#include "replication/replicator.h"
#include "storage/layout.h"

namespace etherply::replication {

namespace {

constexpr char kStream[] = "ETHERPLY";
constexpr char kChangeSubjects[] = "etherply.changes.>";
constexpr char kAnnounceSubject[] = "etherply.nodes";
constexpr char kWorkspaceHeader[] = "Etherply-Workspace";
constexpr char kTimestampHeader[] = "Etherply-Timestamp";
constexpr char kSessionHeader[] = "Etherply-Session";
constexpr char kRunHeader[] = "Etherply-Run";
constexpr char kErrorHeader[] = "Etherply-Error";
// The publisher takes up to kPublishBatch records from the outbox at a time,
// packs each workspace's into messages of up to kMessageBytes of changes
// (less if the server's max_payload is smaller), and keeps up to
// kPublishWindow published records waiting for acknowledgments.
// kMessageBytes is only a packing target: a larger change goes alone, in a
// message up to what max_payload takes (PayloadLimit).
constexpr size_t kPublishBatch = 512;
constexpr size_t kPublishWindow = 4 * kPublishBatch;
constexpr size_t kMessageBytes = 16 << 10;
// How long NATS may be away before the log says so (then every 30 s).
constexpr int64_t kQuietRetryMillis = 5'000;
// Room left in max_payload for a message's headers: the timestamps (up to
// 20 digits and a space per record), the workspace ID, the message ID.
constexpr size_t kHeaderRoom = 16 << 10;
static_assert(kPublishBatch * 21 + 4096 <= kHeaderRoom);
constexpr int kFetchBatch = 1024;
// Stream messages being applied at once (below the consumer's MaxAckPending).
constexpr size_t kMaxInFlight = 2 * kFetchBatch;
// A message that failed to apply for a storage error comes again after a
// delay, doubling from the first to the last while the failures go on, as
// the publisher's retries do: JetStream would otherwise send it again at
// once, and a node with a full disk would spin, rereading the workspace.
constexpr int64_t kFirstRetryMillis = 100;
constexpr int64_t kLastRetryMillis = 5'000;
// A digest request holds about this many bytes at most.
constexpr size_t kDigestBytes = 256 << 10;
// A peer not heard from for this many intervals is no longer synced with.
// An interval here is --anti-entropy-interval plus the request timeout: the
// thread that announces also waits on JetStream and on peers, up to a
// timeout each, so with a short interval a JetStream that does not answer
// would otherwise delay every node's announcements past the horizon, and
// no node would sync with any other just when the stream fails.
constexpr int kPeerExpiryIntervals = 3;
// Rounds of one sync session before it is left to the next pass.
constexpr int kMaxSyncRounds = 64;

int64_t NowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t WallNanos() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

std::string NatsError(natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::string m = natsStatus_GetText(s);
  if (jerr != 0) m += " (JetStream error " + std::to_string(static_cast<int>(jerr)) + ")";
  // What an operator does about the errors of a misconfigured NATS.
  if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
    m += ": JetStream is not enabled on this NATS server (start it with -js)";
  if (jerr == JSStreamReplicasNotSupportedErr)
    m += ": this NATS server is not clustered, so --nats-replicas must be 1";
  return m;
}

// The items of a comma-separated list, empty ones included ("" is one).
std::vector<std::string_view> SplitList(std::string_view list) {
  std::vector<std::string_view> items;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = std::min(list.find(',', start), list.size());
    items.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

// The servers of a comma-separated NATS URL list, each checked (see
// CheckOptions).
Result<std::vector<std::string>> NatsUrls(std::string_view list) {
  std::vector<std::string> urls;
  for (std::string_view url : SplitList(list)) {
    auto bad = [&](std::string_view why) {
      return Status::InvalidArgument("NATS URL \"" + RedactedUrls(url) + "\" " + std::string(why) +
                                     " (want nats://host:port, e.g. nats://127.0.0.1:4222)");
    };
    if (url.empty()) return bad("is empty");
    std::string_view rest = url;
    if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
      if (rest.substr(0, scheme) != "nats" && rest.substr(0, scheme) != "tls")
        return bad("has a scheme other than nats:// or tls://");
      rest.remove_prefix(scheme + 3);
    }
    if (size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
    if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
      if (slash + 1 < rest.size()) return bad("has a path");
      rest.remove_suffix(1);
    }
    std::string_view host = rest, port;
    if (rest.starts_with('[')) {  // [IPv6]
      size_t close = rest.find(']');
      if (close == std::string_view::npos) return bad("has an unclosed [");
      host = rest.substr(0, close + 1);
      if (close + 1 < rest.size()) {
        if (rest[close + 1] != ':') return bad("has something after its host");
        port = rest.substr(close + 2);
      }
    } else if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    if (host.empty()) return bad("has no host");
    if (port.data() != nullptr) {
      uint32_t n = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
      if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 1 ||
          n > 65535)
        return bad("has a port that is not from 1 to 65535");
    }
    urls.emplace_back(url);
  }
  return urls;
}

// Waits for one result from another thread, giving up when `stopping` is set.
template <typename T>
class Waiter {
 public:
  void Set(T value) {
    std::lock_guard lock(mu_);
    value_ = std::move(value);
    cv_.notify_all();
  }
  std::optional<T> Wait(const std::atomic<bool>& stopping) {
    std::unique_lock lock(mu_);
    while (!value_ && !stopping) cv_.wait_for(lock, std::chrono::milliseconds(100));
    return std::move(value_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

class NatsReplicator final : public Replicator {
 public:
  NatsReplicator(Options options, storage::Store& store, std::unique_ptr<Outbox> outbox)
      : options_(std::move(options)),
        store_(store),
        outbox_(std::move(outbox)),
        publish_subject_("etherply.changes." + options_.node_id),
        durable_("etherply_" + options_.node_id),
        run_(ToHex(RandomBytes(16))) {}

  ~NatsReplicator() override { Stop(); }

  void Start(Sink& sink) override {
    sink_ = &sink;
    natsOptions* opts = nullptr;
    natsOptions_Create(&opts);
    std::vector<std::string> urls = NatsUrls(options_.nats_url).value();  // CheckOptions passed
    std::vector<const char*> servers;
    for (const auto& u : urls) servers.push_back(u.c_str());
    natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetName(opts, ("etherply " + options_.node_id).c_str());
    natsOptions_SetMaxReconnect(opts, -1);
    natsOptions_SetReconnectWait(opts, 250);
    natsOptions_SetTimeout(opts, 2000);
    natsOptions_SetRetryOnFailedConnect(opts, true, &NatsReplicator::OnReconnected, this);
    natsOptions_SetDisconnectedCB(opts, &NatsReplicator::OnDisconnected, this);
    natsOptions_SetReconnectedCB(opts, &NatsReplicator::OnReconnected, this);
    natsOptions_SetClosedCB(opts, &NatsReplicator::OnClosed, this);
    natsStatus s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
      LogError("replication: cannot start a NATS connection: " + NatsError(s));
    } else {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = options_.request_timeout.count();
      jo.PublishAsync.MaxPending = kPublishWindow;
      jo.PublishAsync.AckHandler = &NatsReplicator::OnPublishAck;
      jo.PublishAsync.AckHandlerClosure = this;
      natsConnection_JetStream(&js_, nc_, &jo);
    }
    LogInfo("replication: node " + options_.node_id + " connecting to " +
            RedactedUrls(options_.nats_url));
    publisher_ = std::thread([this] { PublishLoop(); });
    consumer_ = std::thread([this] { ConsumeLoop(); });
    control_ = std::thread([this] { ControlLoop(); });
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    outbox_->Close();
    for (std::thread* t : {&publisher_, &consumer_, &control_})
      if (t->joinable()) t->join();
    {
      // Messages still being applied are not acknowledged: JetStream
      // delivers them again after the next start.
      std::lock_guard lock(in_flight_->mu);
      in_flight_->closed = true;
    }
    // Publishes still in flight are answered (or time out) before the
    // context goes: their callback uses this object.
    if (js_) WaitForPublishes();
    // Unsubscribing before closing stops the callbacks that use this object.
    for (natsSubscription* sub : {announce_sub_, digest_sub_, sync_sub_, pull_sub_})
      if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
      }
    if (js_) jsCtx_Destroy(js_);
    if (nc_) {
      natsConnection_Close(nc_);
      // The connection's callbacks run on nats.c's own thread, in order, and
      // use this object: once the closed one has run, none is left to come.
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::seconds(10), [this] { return closed_; }))
        LogWarn("replication: the NATS connection did not report its close");
      lock.unlock();
      natsConnection_Destroy(nc_);
    }
    js_ = nullptr;
    nc_ = nullptr;
  }

  uint64_t Stage(std::string_view workspace, const automerge::StoredChange& change,
                 int64_t timestamp, storage::WriteBatch& batch) override {
    return outbox_->Stage(workspace, change, timestamp, batch);
  }

  void Committed(uint64_t ticket, const Status& status) override {
    outbox_->Committed(ticket, status);
  }

  Report State() const override {
    std::lock_guard lock(mu_);
    Report report;
    report.replicating = Connected() && pull_sub_ && !IdClashLocked();
    std::string& out = report.json;
    out = "{\"node\":";
    AppendString(out, options_.node_id);
    out += ",\"region\":";
    AppendString(out, options_.region);
    out += ",\"connected\":";
    out += Connected() ? "true" : "false";
    out += ",\"stream_ready\":";
    out += pull_sub_ ? "true" : "false";
    out += ",\"node_id_clash\":";
    out += IdClashLocked() ? "true" : "false";
    out += ",\"publish_backlog\":" + std::to_string(outbox_->backlog());
    out += ",\"published\":" + std::to_string(published_);
    out += ",\"too_large\":" + std::to_string(too_large_);
    {
      std::lock_guard in_lock(in_flight_->mu);
      out += ",\"received\":" + std::to_string(in_flight_->received);
      out += ",\"dropped\":" + std::to_string(in_flight_->dropped + (sink_ ? sink_->dropped() : 0));
    }
    out += ",\"consumer_pending\":" + std::to_string(consumer_pending_);
    out += ",\"lag_ms\":" + std::to_string(lag_ms_);
    out += ",\"peers\":[";
    bool first = true;
    for (const auto& [id, peer] : peers_) {
      if (!first) out += ',';
      first = false;
      out += "{\"node\":";
      AppendString(out, id);
      out += ",\"region\":";
      AppendString(out, peer.region);
      out += ",\"last_seen_ms\":" + std::to_string(NowMillis() - peer.seen_ms) + "}";
    }
    out += "],\"anti_entropy\":{\"passes\":" + std::to_string(passes_);
    out += ",\"sessions\":" + std::to_string(sessions_run_);
    out += ",\"errors\":" + std::to_string(ae_errors_) + "}}";
    return report;
  }

 private:
  struct Peer {
    std::string region;
    int64_t seen_ms = 0;
  };
  struct Repair {       // of a workspace's gap (RepairGaps)
    int64_t at_ms = 0;  // when last tried
    int failures = 0;   // failed repairs in a row
  };
  struct Session {
    std::shared_ptr<automerge::SyncState> state;
    int64_t used_ms = 0;
  };

  static void AppendString(std::string& out, std::string_view s) {
    // Node IDs and regions are checked or plain; escape quotes and controls.
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      out += c;
    }
    out += '"';
  }

  bool Connected() const { return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

  // Sleeps up to `ms`, waking early on Stop or a wake (something a sleeper
  // may wait for has changed: the connection, the stream) since `since`, a
  // Wakes() taken before the sleeper checked what it waits for, so that a
  // wake in between is not lost. Returns false when stopping.
  bool Sleep(int64_t ms, uint64_t since) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms),
                 [&] { return stopping_.load() || wakes_ != since; });
    return !stopping_;
  }
  bool Sleep(int64_t ms) { return Sleep(ms, Wakes()); }
  uint64_t Wakes() const {
    std::lock_guard lock(mu_);
    return wakes_;
  }
  // Called with mu_ held.
  void WakeLocked() {
    ++wakes_;
    cv_.notify_all();
  }

  static void OnDisconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    if (!self->stopping_)  // Stop closes the connection: no news then
      LogWarn("replication: disconnected from NATS; changes wait in the outbox");
    std::lock_guard lock(self->mu_);
    self->WakeLocked();
  }
  static void OnClosed(natsConnection*, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    std::lock_guard lock(self->mu_);
    self->closed_ = true;
    self->cv_.notify_all();
  }
  // Also the callback of a first connection made late (NATS was away at start).
  static void OnReconnected(natsConnection*, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    LogInfo("replication: connected to NATS");
    std::lock_guard lock(self->mu_);
    self->WakeLocked();
  }
  // JetStream's answer to one asynchronous publish (a nats.c thread).
  static void OnPublishAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr*, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    const char* id = nullptr;
    {
      std::lock_guard lock(self->ack_mu_);
      // A message ID is 32 bytes in hex, as a change hash is.
      Result<Sha256Digest> msg_id = Status::Corruption("no message ID");
      if (ack && natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id)
        msg_id = automerge::HashFromHex(id);
      if (msg_id.ok()) {
        ++self->acked_[*msg_id];
      } else {
        self->publish_failed_ = true;
      }
    }
    self->ack_cv_.notify_one();
    natsMsg_Destroy(msg);
  }

  // --- publishing ----------------------------------------------------------
  //
  // A pipeline: the publisher publishes what the outbox hands out, each
  // workspace's records packed into messages (message.h), while up to
  // kPublishWindow earlier records wait for JetStream's acknowledgments, and
  // removes records from the outbox oldest first as the acknowledgments of
  // all their batch's messages arrive. After a failed publish (an error, or
  // no acknowledgment within the request timeout) or a lost connection it
  // lets what is in flight settle and publishes again from the oldest record
  // left; JetStream drops the duplicates by message ID.

  // The records of one Next and the IDs of the messages published for
  // them; `complete` once each of their messages was published (or, too
  // large for NATS, left out).
  struct Sent {
    std::vector<Outbox::Item> items;
    std::vector<Sha256Digest> ids;
    bool complete = false;
    size_t too_large = 0;  // records left out
  };

  void PublishLoop() {
    std::deque<Sent> in_flight;  // oldest first
    int64_t backoff_ms = 100;
    while (!stopping_) {
      bool ready;
      uint64_t wakes;
      {
        std::lock_guard lock(mu_);
        ready = stream_ready_ && Connected();
        wakes = wakes_;
      }
      if (!ready || publish_failed_) {
        // A failure may come with nothing in flight (the first publish of a
        // batch refused, a late timeout): the outbox is rewound all the same.
        if (!in_flight.empty() || publish_failed_) Abandon(in_flight);
        if (!ready) {
          if (!Sleep(200, wakes)) return;
        } else {
          if (!Sleep(backoff_ms, wakes)) return;
          backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
        }
        continue;
      }
      if (Retire(in_flight) > 0) backoff_ms = 100;
      const size_t records = Records(in_flight);
      if (records < kPublishWindow) {
        Sent sent;
        sent.items = outbox_->Next(std::min(kPublishBatch, kPublishWindow - records),
                                   std::chrono::milliseconds(in_flight.empty() ? 500 : 0));
        if (!sent.items.empty()) {
          const size_t limit = PayloadLimit();
          sent.complete = true;
          for (const ChangeMessage& m : PackChanges(sent.items, std::min(kMessageBytes, limit))) {
            if (m.data.size() > limit) {  // one change, too large to send
              LogError("replication: a change of " + std::to_string(m.data.size()) +
                       " bytes in workspace " + m.workspace + " is over what NATS takes (" +
                       std::to_string(limit) + " bytes of data; raise max_payload in the " +
                       "nats-server configuration): it stays on this node, as neither the " +
                       "stream nor anti-entropy can carry it");
              ++sent.too_large;
              continue;
            }
            if (!Publish(m)) {
              sent.complete = false;
              break;
            }
            sent.ids.push_back(m.id);
          }
          // Pushed even if a publish failed: it is then never acknowledged
          // as a whole, so Abandon leaves its records in the outbox.
          in_flight.push_back(std::move(sent));
          continue;
        }
      }
      if (!in_flight.empty()) {
        // Nothing new to publish, or the window is full: wait for an answer.
        std::unique_lock lock(ack_mu_);
        ack_cv_.wait_for(lock, std::chrono::milliseconds(2),
                         [&] { return publish_failed_ || Acknowledged(in_flight.front()); });
      }
    }
  }

  // The records waiting for acknowledgments.
  static size_t Records(const std::deque<Sent>& in_flight) {
    size_t n = 0;
    for (const Sent& sent : in_flight) n += sent.items.size();
    return n;
  }

  // Whether every message of `sent` was published and acknowledged. Called
  // with ack_mu_ held.
  bool Acknowledged(const Sent& sent) const {
    if (!sent.complete) return false;
    for (const auto& id : sent.ids)
      if (!acked_.count(id)) return false;
    return true;
  }

  // The most change data a message may hold: what the server's
  // max_payload leaves beside kHeaderRoom (at least 1). A hard limit, not
  // the packing target: a change this large still goes, alone.
  size_t PayloadLimit() const {
    int64_t max_payload = natsConnection_GetMaxPayload(nc_);
    int64_t room = max_payload - static_cast<int64_t>(kHeaderRoom);
    return static_cast<size_t>(std::max<int64_t>(room, 1));
  }

  // Publishes one message asynchronously; false (and publish_failed_ set)
  // if the client refused it.
  bool Publish(const ChangeMessage& m) {
    const std::string id = automerge::HashToHex(m.id);
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, publish_subject_.c_str(), nullptr, m.data.data(),
                                  static_cast<int>(m.data.size()));
    if (s == NATS_OK) {
      natsMsgHeader_Set(msg, kWorkspaceHeader, m.workspace.c_str());
      natsMsgHeader_Set(msg, kTimestampHeader, m.timestamps.c_str());
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MsgId = id.c_str();
      po.MaxWait = options_.request_timeout.count();  // then OnPublishAck reports a failure
      s = js_PublishMsgAsync(js_, &msg, &po);
      natsMsg_Destroy(msg);  // no-op once the client owns it
    }
    if (s == NATS_OK) return true;
    LogWarn("replication: publish: " + NatsError(s));
    publish_failed_ = true;
    return false;
  }

  // Removes the records of the acknowledged batches at the front of
  // `in_flight` from the outbox; returns how many.
  size_t Retire(std::deque<Sent>& in_flight) {
    std::vector<Outbox::Item> done;
    size_t too_large = 0;
    {
      std::lock_guard lock(ack_mu_);
      while (!in_flight.empty() && Acknowledged(in_flight.front())) {
        Sent& sent = in_flight.front();
        for (const auto& id : sent.ids) {
          auto it = acked_.find(id);
          if (it != acked_.end() && --it->second == 0) acked_.erase(it);
        }
        too_large += sent.too_large;
        std::move(sent.items.begin(), sent.items.end(), std::back_inserter(done));
        in_flight.pop_front();
      }
      // Nothing waits for an answer now: what is left are late second
      // answers to messages published again after a failure.
      if (in_flight.empty()) acked_.clear();
    }
    if (done.empty()) return 0;
    if (Status s = outbox_->Remove(done); !s.ok()) {
      // They stay in the outbox, handed out: only a rewind offers them (and
      // what follows them) again, to be published and removed once more.
      LogError("replication: deleting published outbox records: " + s.ToString());
      publish_failed_ = true;
      return 0;
    }
    std::lock_guard lock(mu_);
    published_ += done.size() - too_large;
    too_large_ += too_large;
    return done.size();
  }

  // Waits (up to the request timeout) until every asynchronous publish has
  // been answered and its callback has returned.
  natsStatus WaitForPublishes() {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = options_.request_timeout.count();
    return js_PublishAsyncComplete(js_, &po);
  }

  // After a failure: waits (up to the request timeout) for the answers to
  // what is in flight, removes what was acknowledged, and makes the outbox
  // hand out the rest again.
  void Abandon(std::deque<Sent>& in_flight) {
    if (natsStatus s = WaitForPublishes(); s != NATS_OK)
      LogWarn("replication: waiting for JetStream acknowledgments: " + NatsError(s));
    Retire(in_flight);
    in_flight.clear();
    {
      std::lock_guard lock(ack_mu_);
      acked_.clear();
      publish_failed_ = false;
    }
    outbox_->Rewind();
  }

  // --- consuming -----------------------------------------------------------

  // Creates the stream if it is missing, then this node's durable consumer.
  Status SetUpStream() {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = kStream;
    const char* subjects[] = {kChangeSubjects};
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = options_.replicas;
    cfg.Duplicates = int64_t{10} * 60 * 1'000'000'000;  // 10 minutes of message IDs
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
    if (si) jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr != JSStreamNameExistErr)
      return Status::IoError("creating stream " + std::string(kStream) + ": " + NatsError(s, jerr));
    // The node's durable consumer is made here and the subscription binds to
    // it: nats.c deletes a consumer that its own subscribe call created when
    // that subscription is unsubscribed (Stop), and the node would then get
    // the whole stream again at its next start.
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable_.c_str();
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = options_.request_timeout.count() * 6 * 1'000'000;
    cc.MaxAckPending = 4 * kFetchBatch;
    jsConsumerInfo* ci = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&ci, js_, kStream, &cc, nullptr, &jerr);
    if (ci) jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
      // js_AddConsumer updates an existing consumer; it fails when a setting
      // that cannot change differs. The node then uses the consumer as it
      // is, and says so.
      jsErrCode add_err = jerr;
      ci = nullptr;
      jerr = static_cast<jsErrCode>(0);
      if (js_GetConsumerInfo(&ci, js_, kStream, durable_.c_str(), nullptr, &jerr) != NATS_OK)
        return Status::IoError("creating consumer " + durable_ + ": " + NatsError(s, add_err));
      jsConsumerInfo_Destroy(ci);
      LogWarn("replication: consumer " + durable_ +
              " kept with its own settings: " + NatsError(s, add_err));
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = kStream;
    so.Consumer = durable_.c_str();
    natsSubscription* sub = nullptr;
    jerr = static_cast<jsErrCode>(0);
    s = js_PullSubscribe(&sub, js_, kChangeSubjects, durable_.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK)
      return Status::IoError("binding to consumer " + durable_ + ": " + NatsError(s, jerr));
    std::lock_guard lock(mu_);
    pull_sub_ = sub;
    stream_ready_ = true;
    WakeLocked();  // the publisher may go
    return Status::Ok();
  }

  // Called by the consumer thread only (it alone hands messages to Apply).
  void DropSubscription() {
    natsSubscription* sub;
    {
      std::lock_guard lock(mu_);
      sub = pull_sub_;
      pull_sub_ = nullptr;
      stream_ready_ = false;
    }
    if (!sub) return;
    // The messages being applied are acknowledged through their subscription
    // (nats.c reads msg->sub), so it must outlive them.
    if (!WaitForNoneInFlight()) {
      // Stopping: Stop destroys it once the callbacks no longer touch messages.
      std::lock_guard lock(mu_);
      pull_sub_ = sub;
      return;
    }
    natsSubscription_Destroy(sub);
  }

  void ConsumeLoop() {
    std::string last_error;
    while (!stopping_) {
      if (resubscribe_.exchange(false)) DropSubscription();
      natsSubscription* sub;
      uint64_t wakes;
      {
        std::lock_guard lock(mu_);
        sub = pull_sub_;
        wakes = wakes_;
      }
      if (!sub) {
        if (!Connected()) {
          if (!Sleep(200, wakes)) return;
          continue;
        }
        if (Status s = SetUpStream(); !s.ok()) {
          if (s.message() != last_error) LogWarn("replication: " + s.message());
          last_error = s.message();
          if (!Sleep(1000)) return;
          continue;
        }
        LogInfo("replication: stream " + std::string(kStream) + " and consumer " + durable_ +
                " ready");
        last_error.clear();
        continue;
      }
      if (!WaitForRoom()) return;
      natsMsgList list{nullptr, 0};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s = natsSubscription_Fetch(&list, sub, kFetchBatch, 1000, &jerr);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (!Connected()) {
          if (!Sleep(200, wakes)) return;
          continue;
        }
        LogWarn("replication: fetch: " + NatsError(s, jerr) + "; setting up the consumer again");
        DropSubscription();
        if (!Sleep(500)) return;
        continue;
      }
      Apply(list);
      natsMsgList_Destroy(&list);
    }
  }

  // Messages handed to the Sink and not yet acknowledged. Shared with the
  // callbacks, which may outlive Stop (they then leave the messages alone).
  struct InFlight {
    std::mutex mu;
    std::condition_variable cv;
    size_t messages = 0;         // guarded by mu
    uint64_t received = 0;       // guarded by mu: changes applied (or dropped as bad)
    uint64_t dropped = 0;        // guarded by mu: messages dropped as never applicable
    std::set<std::string> gaps;  // guarded by mu: workspaces with changes waiting for deps
    bool closed = false;         // guarded by mu: Stop was called
    // Guarded by mu: the delay before the next failed message comes again;
    // back to the first once a group applies.
    int64_t retry_ms = kFirstRetryMillis;
    // A failing disk fails every message: said once in a while.
    ThrottledWarning retry_warning{std::chrono::seconds(30)};
  };

  // A stream message's changes, decoded, or why it can never apply.
  struct Decoded {
    std::string workspace;
    std::vector<automerge::StoredChange> changes;
    std::vector<int64_t> timestamps;  // empty: dated by the changes' own time
    // Why a timestamp header was ignored: the changes still apply, dated by
    // their own time (the timestamps only date the broadcasts).
    Status bad_timestamps;
  };
  static Result<Decoded> Decode(natsMsg* msg) {
    const char* ws = nullptr;
    const char* ts = nullptr;
    natsMsgHeader_Get(msg, kWorkspaceHeader, &ws);
    natsMsgHeader_Get(msg, kTimestampHeader, &ts);
    auto changes = automerge::DecodeChangeChunks(
        AsBytes(std::string_view(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))));
    if (!changes.ok()) return changes.status();
    if (changes->empty()) return Status::Corruption("no changes");
    if (!ws) return Status::Corruption("no workspace header");
    Decoded d{ws, std::move(*changes), {}, {}};
    if (ts) {
      auto parsed = ParseTimestamps(ts, d.changes.size());
      if (parsed.ok())
        d.timestamps = std::move(*parsed);
      else
        d.bad_timestamps = parsed.status();
    }
    return d;
  }

  // Messages of one workspace, applied as one batch of changes.
  struct Group {
    std::vector<automerge::StoredChange> changes;
    Timestamps timestamps;
    std::vector<natsMsg*> msgs;  // owned until acknowledged
    void Add(Decoded d, natsMsg* msg) {
      for (size_t k = 0; k < d.timestamps.size(); ++k)
        timestamps[d.changes[k].hash] = d.timestamps[k];
      changes.insert(changes.end(), std::make_move_iterator(d.changes.begin()),
                     std::make_move_iterator(d.changes.end()));
      msgs.push_back(msg);
    }
  };

  // Applies fetched messages, each workspace's in order (its strand keeps
  // the order across batches), without waiting: the next fetch overlaps
  // with these writes, so the group committer joins them. A message is
  // acknowledged once its changes are durable here (or can never apply).
  void Apply(natsMsgList& list) {
    std::map<std::string, Group> groups;
    const std::string own_subject = publish_subject_;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* msg = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        std::lock_guard lock(mu_);
        consumer_pending_ = meta->NumPending;
        lag_ms_ = std::max<int64_t>(0, (WallNanos() - meta->Timestamp) / 1'000'000);
        jsMsgMetaData_Destroy(meta);
      }
      if (own_subject == natsMsg_GetSubject(msg)) {  // our own change: already here
        natsMsg_Ack(msg, nullptr);
        continue;
      }
      auto decoded = Decode(msg);
      if (!decoded.ok()) {
        LogError(std::string("replication: dropping a malformed message on ") +
                 natsMsg_GetSubject(msg) + ": " + decoded.status().ToString());
        natsMsg_Ack(msg, nullptr);
        std::lock_guard lock(in_flight_->mu);
        ++in_flight_->dropped;
        continue;
      }
      if (!decoded->bad_timestamps.ok())
        LogWarn(std::string("replication: a message on ") + natsMsg_GetSubject(msg) + ": " +
                decoded->bad_timestamps.ToString() + "; its changes are dated by their own time");
      std::string ws = decoded->workspace;
      groups[ws].Add(std::move(*decoded), msg);
      list.Msgs[i] = nullptr;  // the group owns it now
    }
    for (auto& [ws, g] : groups) ApplyGroup(sink_, in_flight_, ws, std::move(g));
  }

  // Hands a group to the Sink, to be settled by the outcome (Settle).
  // Static, as Settle is: the callback may outlive Stop.
  static void ApplyGroup(Sink* sink, const std::shared_ptr<InFlight>& in_flight,
                         const std::string& ws, Group g) {
    {
      std::lock_guard lock(in_flight->mu);
      in_flight->messages += g.msgs.size();
    }
    const size_t changes = g.changes.size();
    sink->ApplyRemote(ws, std::move(g.changes), std::move(g.timestamps),
                      [sink, in_flight, ws, msgs = std::move(g.msgs), changes](Result<bool> r) {
                        Settle(sink, in_flight, ws, msgs, changes, r);
                      });
  }

  // Acknowledges a group's messages by the outcome of applying them:
  // applied or never applicable (corrupt), acknowledged; a storage error,
  // refused, to come again after a delay (kFirstRetryMillis doubling to
  // kLastRetryMillis while the errors go on). A group of several messages that is corrupt is
  // applied again one message at a time, so that a message that can never
  // apply takes only itself down. After Stop, the messages are left alone:
  // they come again.
  static void Settle(Sink* sink, const std::shared_ptr<InFlight>& in_flight, const std::string& ws,
                     const std::vector<natsMsg*>& msgs, size_t changes, const Result<bool>& r) {
    const Status s = r.ok() ? Status::Ok() : r.status();
    const bool split = s.code() == Status::Code::kCorruption && msgs.size() > 1;
    if (split && !Closed(*in_flight)) {
      LogWarn("replication: " + std::to_string(msgs.size()) + " messages of " + ws +
              " cannot apply together (" + s.ToString() + "); applying each alone");
      // Counted in flight again before these are counted out below.
      for (natsMsg* msg : msgs) {
        Group one;
        one.Add(*Decode(msg), msg);  // decoded once already
        ApplyGroup(sink, in_flight, ws, std::move(one));
      }
    }
    std::lock_guard lock(in_flight->mu);
    // A change waits for deps: a message was lost or is late (a pull
    // request can expire with a message in flight; JetStream sends it again
    // only after the ack wait). Ask the peers now.
    if (r.ok() && *r) in_flight->gaps.insert(ws);
    in_flight->messages -= msgs.size();
    in_flight->cv.notify_all();
    if (in_flight->closed || split) return;  // they come again, or went alone
    const bool retry = !s.ok() && s.code() != Status::Code::kCorruption;
    const int64_t delay_ms = retry ? in_flight->retry_ms : 0;
    in_flight->retry_ms = retry ? std::min(delay_ms * 2, kLastRetryMillis) : kFirstRetryMillis;
    if (retry)
      in_flight->retry_warning.Warn("replication: applying changes: " + s.ToString() +
                                    "; will retry in " + std::to_string(delay_ms) +
                                    " ms (the delay doubles up to " +
                                    std::to_string(kLastRetryMillis / 1000) + " s)");
    else if (!s.ok())
      LogError("replication: applying changes: " + s.ToString() + "; dropped");
    for (natsMsg* msg : msgs) {
      retry ? natsMsg_NakWithDelay(msg, delay_ms, nullptr) : natsMsg_Ack(msg, nullptr);
      natsMsg_Destroy(msg);
    }
    if (retry) return;
    in_flight->received += changes;
    if (!s.ok()) in_flight->dropped += msgs.size();
  }
  static bool Closed(InFlight& in_flight) {
    std::lock_guard lock(in_flight.mu);
    return in_flight.closed;
  }

  // Waits while the most messages are in flight; false when stopping.
  bool WaitForRoom() { return WaitForInFlightBelow(kMaxInFlight); }
  // Waits until every fetched message has been acknowledged or refused;
  // false when stopping.
  bool WaitForNoneInFlight() { return WaitForInFlightBelow(1); }
  bool WaitForInFlightBelow(size_t n) {
    std::unique_lock lock(in_flight_->mu);
    while (in_flight_->messages >= n && !stopping_)
      in_flight_->cv.wait_for(lock, std::chrono::milliseconds(100));
    return !stopping_;
  }

  // --- peers and anti-entropy --------------------------------------------------

  void ControlLoop() {
    bool subscribed = false;
    int64_t next_pass = 0;
    int64_t down_since = NowMillis();  // not connected since
    int64_t next_warning = down_since + kQuietRetryMillis;
    while (!stopping_) {
      const uint64_t wakes = Wakes();
      if (!Connected()) {
        // nats.c retries quietly: the operator hears of it after 5 s, then
        // every 30 s.
        if (int64_t now = NowMillis(); now >= next_warning) {
          LogWarn("replication: no NATS server of " + RedactedUrls(options_.nats_url) +
                  " has answered for " + std::to_string((now - down_since) / 1000) +
                  " s; retrying (changes wait in the outbox)");
          next_warning = now + 30'000;
        }
        if (!Sleep(200, wakes)) return;
        continue;
      }
      down_since = NowMillis();
      next_warning = down_since + kQuietRetryMillis;
      if (!subscribed) {
        subscribed = SubscribePeers();
        announce_ = subscribed;
      }
      // Announce each interval, and at once when a new peer appears, so that
      // a node that starts is known to the others (and knows them) at once.
      if (announce_.exchange(false) || NowMillis() >= next_pass) Announce();
      if (NowMillis() >= next_pass) {
        next_pass = NowMillis() + options_.anti_entropy_interval.count();
        CheckConsumer();
        AntiEntropyPass();
      }
      RepairGaps();
      if (!Sleep(100)) return;
    }
  }

  void Announce() {
    PublishWithHeader(nc_, kAnnounceSubject, options_.node_id + " " + options_.region, kRunHeader,
                      run_);
  }

  // Publishes `data` to `subject` with one header, best effort (core NATS:
  // a message lost is sent again, or its sender times out).
  static void PublishWithHeader(natsConnection* nc, const char* subject, std::string_view data,
                                const char* header, const std::string& value) {
    natsMsg* msg = nullptr;
    if (natsMsg_Create(&msg, subject, nullptr, data.data(), static_cast<int>(data.size())) !=
        NATS_OK)
      return;
    natsMsgHeader_Set(msg, header, value.c_str());
    natsConnection_PublishMsg(nc, msg);
    natsMsg_Destroy(msg);
  }

  bool SubscribePeers() {
    std::string digest = "etherply.digest." + options_.node_id;
    std::string sync = "etherply.sync." + options_.node_id;
    natsSubscription *a = nullptr, *d = nullptr, *s = nullptr;
    if (natsConnection_Subscribe(&a, nc_, kAnnounceSubject, &NatsReplicator::OnAnnounce, this) !=
            NATS_OK ||
        natsConnection_Subscribe(&d, nc_, digest.c_str(), &NatsReplicator::OnDigest, this) !=
            NATS_OK ||
        natsConnection_Subscribe(&s, nc_, sync.c_str(), &NatsReplicator::OnSyncRequest, this) !=
            NATS_OK) {
      for (natsSubscription* sub : {a, d, s})
        if (sub) natsSubscription_Destroy(sub);
      return false;
    }
    announce_sub_ = a;
    digest_sub_ = d;
    sync_sub_ = s;
    return true;
  }

  // The consumer can vanish (JetStream storage lost, stream deleted); the
  // consumer thread then sets it up again.
  void CheckConsumer() {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&ci, js_, kStream, durable_.c_str(), nullptr, &jerr);
    if (ci) {
      std::lock_guard lock(mu_);
      consumer_pending_ = ci->NumPending;
      jsConsumerInfo_Destroy(ci);
    }
    if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr || jerr == JSStreamNotFoundErr) {
      bool had;
      {
        std::lock_guard lock(mu_);
        had = pull_sub_ != nullptr;
      }
      if (had) {
        LogWarn("replication: consumer " + durable_ + " is gone; setting it up again");
        resubscribe_ = true;
      }
    }
  }

  static void OnAnnounce(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    std::string_view text(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    size_t sp = text.find(' ');
    std::string id(text.substr(0, sp));
    const char* run = nullptr;
    if (id == self->options_.node_id && natsMsgHeader_Get(msg, kRunHeader, &run) == NATS_OK &&
        run && self->run_ != run) {
      std::lock_guard lock(self->mu_);
      if (!self->IdClashLocked()) {
        LogError("replication: another node announces this node's ID " + id + " (region " +
                 std::string(sp == std::string_view::npos ? "" : text.substr(sp + 1)) +
                 "): node IDs must be unique. Nodes sharing one share its stream consumer, "
                 "so each gets only part of the stream. Give each node its own --node-id "
                 "(a node started without one on a copy of another's data dir takes that "
                 "node's ID)");
        self->announce_ = true;  // so that the other knows it at once too
      }
      self->id_clash_ms_ = NowMillis();
    } else if (IsValidNodeId(id) && id != self->options_.node_id) {
      std::lock_guard lock(self->mu_);
      Peer& p = self->peers_[id];
      if (p.seen_ms == 0) {
        LogInfo("replication: peer " + id + " seen");
        self->announce_ = true;  // let it know us without waiting an interval
      }
      p.region = sp == std::string_view::npos ? "" : std::string(text.substr(sp + 1));
      p.seen_ms = NowMillis();
    }
    natsMsg_Destroy(msg);
  }

  // Every workspace stored here with its heads record.
  std::vector<std::pair<std::string, std::string>> LocalHeads() {
    std::vector<std::pair<std::string, std::string>> out;
    Status s = store_.Scan(storage::kHeadsPrefix, [&](std::string_view key, std::string_view v) {
      out.emplace_back(std::string(key.substr(storage::kHeadsPrefix.size())), std::string(v));
      return true;
    });
    if (!s.ok()) LogError("replication: reading heads: " + s.ToString());
    return out;
  }

  static void OnDigest(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    Reader r(AsBytes(std::string_view(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))));
    Bytes reply;
    for (uint64_t index = 0; !r.empty(); ++index) {
      auto ws = r.LengthPrefixed();
      auto n = ws.ok() ? r.Uleb() : Result<uint64_t>(ws.status());
      auto heads =
          n.ok() && *n <= 1024 ? r.Take(*n * 32) : Result<ByteView>(Status::Corruption(""));
      if (!heads.ok()) break;  // a malformed digest: answer what was read
      auto mine = self->store_.Get(storage::HeadsKey(AsChars(*ws)));
      if (!mine.ok() || AsBytes(*mine).size() != heads->size() ||
          !std::equal(heads->begin(), heads->end(), AsBytes(*mine).begin()))
        AppendUleb(reply, index);
    }
    if (const char* to = natsMsg_GetReply(msg))
      natsConnection_Publish(nc, to, reply.data(), static_cast<int>(reply.size()));
    natsMsg_Destroy(msg);
  }

  static void OnSyncRequest(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<NatsReplicator*>(closure);
    const char* ws = nullptr;
    const char* session = nullptr;
    natsMsgHeader_Get(msg, kWorkspaceHeader, &ws);
    natsMsgHeader_Get(msg, kSessionHeader, &session);
    const char* to = natsMsg_GetReply(msg);
    if (ws && session && to) {
      std::shared_ptr<automerge::SyncState> state;
      {
        std::lock_guard lock(self->mu_);
        int64_t now = NowMillis();
        for (auto it = self->sessions_.begin(); it != self->sessions_.end();)
          it = now - it->second.used_ms > 120'000 ? self->sessions_.erase(it) : std::next(it);
        Session& sn = self->sessions_[std::string(ws) + "\n" + session];
        if (!sn.state) sn.state = self->NewSyncState();
        sn.used_ms = now;
        state = sn.state;
      }
      std::string_view data(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
      auto w = std::make_shared<Waiter<Result<std::optional<Bytes>>>>();
      self->sink_->Sync(ws, state, Bytes(AsBytes(data).begin(), AsBytes(data).end()),
                        [w](Result<std::optional<Bytes>> r) { w->Set(std::move(r)); });
      auto r = w->Wait(self->stopping_);
      if (r && r->ok()) {
        const Bytes empty;
        const Bytes& out = **r ? ***r : empty;
        natsStatus s = natsConnection_Publish(nc, to, out.data(), static_cast<int>(out.size()));
        // No answer can go: the node that asked is told why, rather than
        // left to time out.
        if (s != NATS_OK)
          PublishWithHeader(nc, to, {}, kErrorHeader,
                            self->SyncFailed(ws, "the peer that asked", out.size(), s));
      } else if (r) {
        LogWarn(std::string("replication: sync request for ") + ws + ": " + r->status().ToString());
        PublishWithHeader(nc, to, {}, kErrorHeader, r->status().ToString());
      }
    }
    natsMsg_Destroy(msg);
  }

  // The time since which a node heard from counts as live.
  int64_t Horizon() const {
    return NowMillis() - kPeerExpiryIntervals * (options_.anti_entropy_interval.count() +
                                                 options_.request_timeout.count());
  }

  // Whether another process announced this node's ID lately. Needs mu_.
  bool IdClashLocked() const { return id_clash_ms_ != 0 && id_clash_ms_ >= Horizon(); }

  // The peers heard from lately.
  std::vector<std::string> LivePeers() {
    std::vector<std::string> peers;
    std::lock_guard lock(mu_);
    int64_t horizon = Horizon();
    for (const auto& [id, p] : peers_)
      if (p.seen_ms >= horizon) peers.push_back(id);
    return peers;
  }

  void AntiEntropyPass() {
    std::vector<std::string> peers = LivePeers();
    if (peers.empty()) return;
    auto local = LocalHeads();
    for (const std::string& peer : peers) {
      for (size_t begin = 0; begin < local.size() && !stopping_;) {
        Bytes digest;
        size_t end = begin;
        while (end < local.size() && digest.size() < kDigestBytes) {
          AppendUleb(digest, local[end].first.size());
          Append(digest, AsBytes(local[end].first));
          AppendUleb(digest, local[end].second.size() / 32);
          Append(digest, AsBytes(local[end].second));
          ++end;
        }
        natsMsg* reply = nullptr;
        std::string subject = "etherply.digest." + peer;
        natsStatus s = natsConnection_Request(&reply, nc_, subject.c_str(), digest.data(),
                                              static_cast<int>(digest.size()),
                                              options_.request_timeout.count());
        if (s != NATS_OK) {
          AntiEntropyFailed("digest request to " + peer + ": " + NatsError(s));
          break;  // the peer is away; the next pass tries again
        }
        Reader r(AsBytes(std::string_view(natsMsg_GetData(reply), natsMsg_GetDataLength(reply))));
        std::vector<size_t> differing;
        while (!r.empty()) {
          auto i = r.Uleb();
          if (!i.ok() || *i >= end - begin) break;
          differing.push_back(begin + *i);
        }
        natsMsg_Destroy(reply);
        for (size_t i : differing) {
          if (stopping_) return;
          SyncWith(peer, local[i].first);
        }
        begin = end;
      }
    }
    std::lock_guard lock(mu_);
    ++passes_;
  }

  // The wait before a workspace's gap is repaired again: a second after a
  // repair, and after the first that failed; then doubling with each failed
  // one up to the anti-entropy interval (a peer away, a full disk here).
  int64_t RepairWait(const Repair& r) const {
    int64_t wait = int64_t{1000} << std::min(std::max(r.failures - 1, 0), 16);
    return std::min(wait, std::max<int64_t>(1000, options_.anti_entropy_interval.count()));
  }

  // Syncs each workspace with changes waiting for deps with every peer, at
  // most once a second; a repair that failed is tried again (RepairWait)
  // until one succeeds, not left to the next anti-entropy pass.
  void RepairGaps() {
    std::set<std::string> gaps;
    {
      std::lock_guard lock(in_flight_->mu);
      gaps.swap(in_flight_->gaps);
    }
    int64_t now = NowMillis();
    for (auto it = repairs_.begin(); it != repairs_.end();)
      it = it->second.failures == 0 && now - it->second.at_ms > RepairWait(it->second)
               ? repairs_.erase(it)
               : std::next(it);
    if (gaps.empty()) return;
    std::vector<std::string> peers = LivePeers();
    for (const std::string& ws : gaps) {
      auto found = repairs_.find(ws);
      if (found != repairs_.end() && now - found->second.at_ms <= RepairWait(found->second)) {
        std::lock_guard lock(in_flight_->mu);  // repaired a moment ago: keep it for later
        in_flight_->gaps.insert(ws);
        continue;
      }
      Repair& r = repairs_[ws];
      r.at_ms = now;
      if (r.failures == 0)
        LogInfo("replication: " + ws + " has changes waiting for deps; syncing with " +
                std::to_string(peers.size()) + " peer(s)");
      bool ok = true;
      for (const std::string& peer : peers) ok = SyncWith(peer, ws) && ok;
      if (ok) {
        r.failures = 0;
      } else {
        ++r.failures;
        std::lock_guard lock(in_flight_->mu);
        in_flight_->gaps.insert(ws);
      }
    }
  }

  // Runs the sync protocol on one workspace with one peer until neither
  // side has more to say; false if a step failed (counted and logged), or
  // if the rounds ran out or the node stops first.
  bool SyncWith(const std::string& peer, const std::string& workspace) {
    {
      std::lock_guard lock(mu_);
      ++sessions_run_;
    }
    auto state = NewSyncState();
    std::string session = std::to_string(std::random_device{}()) + std::to_string(NowMillis());
    std::string subject = "etherply.sync." + peer;
    std::optional<Bytes> incoming;
    for (int round = 0; round < kMaxSyncRounds && !stopping_; ++round) {
      auto w = std::make_shared<Waiter<Result<std::optional<Bytes>>>>();
      sink_->Sync(workspace, state, std::move(incoming),
                  [w](Result<std::optional<Bytes>> r) { w->Set(std::move(r)); });
      auto out = w->Wait(stopping_);
      if (!out) return false;
      if (!out->ok()) {
        AntiEntropyFailed("sync of " + workspace + " with " + peer + ": " +
                          out->status().ToString());
        return false;
      }
      if (!**out) return true;  // converged: nothing more to say
      natsMsg* req = nullptr;
      const Bytes& m = ***out;
      natsMsg_Create(&req, subject.c_str(), nullptr, reinterpret_cast<const char*>(m.data()),
                     static_cast<int>(m.size()));
      natsMsgHeader_Set(req, kWorkspaceHeader, workspace.c_str());
      natsMsgHeader_Set(req, kSessionHeader, session.c_str());
      natsMsg* reply = nullptr;
      natsStatus s = natsConnection_RequestMsg(&reply, nc_, req, options_.request_timeout.count());
      natsMsg_Destroy(req);
      if (s != NATS_OK) {
        SyncFailed(workspace.c_str(), peer, m.size(), s);
        return false;
      }
      const char* error = nullptr;
      if (natsMsgHeader_Get(reply, kErrorHeader, &error) == NATS_OK && error) {
        AntiEntropyFailed("sync of " + workspace + " with " + peer + ": " + peer +
                          " answered: " + error);
        natsMsg_Destroy(reply);
        return false;
      }
      std::string_view data(natsMsg_GetData(reply), natsMsg_GetDataLength(reply));
      incoming.reset();
      if (!data.empty()) incoming = Bytes(AsBytes(data).begin(), AsBytes(data).end());
      natsMsg_Destroy(reply);
    }
    if (!stopping_)
      AntiEntropyFailed("sync of " + workspace + " with " + peer + ": not done after " +
                        std::to_string(kMaxSyncRounds) + " rounds");
    return false;
  }

  // A sync state for a session with a peer: its messages must fit in what
  // NATS takes, so a large gap is closed over several rounds.
  std::shared_ptr<automerge::SyncState> NewSyncState() const {
    auto state = std::make_shared<automerge::SyncState>();
    state->max_message_bytes = PayloadLimit();
    return state;
  }

  // Counts and logs (throttled: a pass can fail for every workspace) an
  // anti-entropy step that failed; the next pass (or gap repair) tries
  // again.
  void AntiEntropyFailed(const std::string& what) {
    {
      std::lock_guard lock(mu_);
      ++ae_errors_;
    }
    ae_warning_.Warn("replication: anti-entropy: " + what + "; to be tried again");
  }

  // A sync message of `bytes` for `workspace` could not go to `peer`. Over
  // what NATS takes, it holds one change that alone is too large (the rest
  // go in messages that fit): no pass can ever carry it, so this is said
  // once per workspace, as an error. Otherwise the peer is away or slow.
  // Returns what failed, for the peer that asked.
  std::string SyncFailed(const char* workspace, const std::string& peer, size_t bytes,
                         natsStatus s) {
    if (bytes <= PayloadLimit()) {
      AntiEntropyFailed("sync of " + std::string(workspace) + " with " + peer + ": " +
                        NatsError(s));
      return NatsError(s);
    }
    bool first;
    {
      std::lock_guard lock(mu_);
      ++ae_errors_;
      first = too_large_to_sync_.insert(workspace).second;
    }
    std::string why = "workspace " + std::string(workspace) + " holds a change of about " +
                      std::to_string(bytes) + " bytes, over what NATS takes (" +
                      std::to_string(PayloadLimit()) + " bytes of data; raise max_payload in " +
                      "the nats-server configuration)";
    if (first)
      LogError("replication: " + why + ": anti-entropy cannot carry it to " + peer +
               " or any other node (" + NatsError(s) + ")");
    return why;
  }

  // Constant after construction.
  const Options options_;
  storage::Store& store_;
  const std::unique_ptr<Outbox> outbox_;
  const std::string publish_subject_;
  const std::string durable_;
  const std::string run_;                     // this process's name in announcements (kRunHeader)
  Sink* sink_ = nullptr;                      // set by Start
  natsConnection* nc_ = nullptr;              // set by Start
  jsCtx* js_ = nullptr;                       // set by Start
  natsSubscription* announce_sub_ = nullptr;  // control thread, then Stop
  natsSubscription* digest_sub_ = nullptr;
  natsSubscription* sync_sub_ = nullptr;

  const std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
  std::map<std::string, Repair> repairs_;  // control thread: by workspace
  std::atomic<bool> stopping_{false};
  std::atomic<bool> publish_failed_{false};  // set by OnPublishAck and Publish
  std::mutex ack_mu_;
  std::condition_variable ack_cv_;
  // Guarded by ack_mu_: message ID → answers.
  std::unordered_map<Sha256Digest, int, automerge::ChangeHashHash> acked_;
  std::atomic<bool> resubscribe_{false};
  std::atomic<bool> announce_{false};
  std::thread publisher_, consumer_, control_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  natsSubscription* pull_sub_ = nullptr;  // guarded by mu_
  bool stream_ready_ = false;             // guarded by mu_
  uint64_t wakes_ = 0;                    // guarded by mu_: see Sleep
  bool closed_ = false;                   // guarded by mu_: the connection's last callback has run
  std::map<std::string, Peer> peers_;     // guarded by mu_
  int64_t id_clash_ms_ = 0;  // guarded by mu_: when another process last announced our ID
  std::unordered_map<std::string, Session> sessions_;  // guarded by mu_
  uint64_t published_ = 0;                             // guarded by mu_
  uint64_t too_large_ = 0;                             // guarded by mu_: records NATS cannot take
  uint64_t consumer_pending_ = 0;                      // guarded by mu_
  int64_t lag_ms_ = 0;                                 // guarded by mu_
  uint64_t passes_ = 0, sessions_run_ = 0, ae_errors_ = 0;  // guarded by mu_
  // Guarded by mu_: the workspaces already logged as holding a change too
  // large for a sync message.
  std::set<std::string> too_large_to_sync_;
  ThrottledWarning ae_warning_{std::chrono::seconds(30)};
};

}  // namespace

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string RedactedUrls(std::string_view urls) {
  std::string out;
  bool first = true;
  for (std::string_view url : SplitList(urls)) {
    if (!std::exchange(first, false)) out += ',';
    if (size_t at = url.rfind('@'); at != std::string_view::npos) {
      size_t scheme = url.find("://");
      size_t from = scheme == std::string_view::npos || scheme > at ? 0 : scheme + 3;
      out.append(url.substr(0, from)).append("***").append(url.substr(at));
    } else {
      out.append(url);
    }
  }
  return out;
}

Status CheckOptions(const Options& options) {
  if (!options.node_id.empty() && !IsValidNodeId(options.node_id))
    return Status::InvalidArgument("node id must be 1-64 of A-Z a-z 0-9 _ -: " + options.node_id);
  if (auto urls = NatsUrls(options.nats_url); !urls.ok()) return urls.status();
  if (options.replicas < 1 || options.replicas > 5)
    return Status::InvalidArgument("stream replicas must be 1 to 5");
  if (options.anti_entropy_interval.count() <= 0)
    return Status::InvalidArgument("the anti-entropy interval must be positive");
  return Status::Ok();
}

Result<std::unique_ptr<Replicator>> OpenNatsReplicator(Options options, storage::Store& store) {
  if (options.node_id.empty()) return Status::InvalidArgument("no node id");
  if (Status s = CheckOptions(options); !s.ok()) return s;
  auto outbox = Outbox::Open(store);
  if (!outbox.ok()) return outbox.status().WithContext("replication outbox");
  auto r = std::make_unique<NatsReplicator>(std::move(options), store, std::move(*outbox));
  return std::unique_ptr<Replicator>(std::move(r));
}

}  // namespace etherply::replication
