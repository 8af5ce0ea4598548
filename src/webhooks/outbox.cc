// The outbox's records. Keys: "w/o/" seq (pending) and "w/d/" seq (dead),
// seq 8 bytes big-endian. Value, for both:
//
//   record = meta %x0A body
//   meta   = a JSON object on one line (JSON text never holds a raw LF):
//            {"workspace_id":S,"id":S,"attempts":N,"first_attempt":N,
//             "last_error":S}            and in a dead letter also "dead_at":N
//            id:            the webhook-id (EventId), kept for the record's
//                           life (one staged by an older build keeps the
//                           older form, "evt_" + the change hash)
//            attempts:      attempts made so far (0 when staged or replayed)
//            first_attempt: Unix ms of the first attempt, 0 before it
//            last_error:    why the last attempt failed ("HTTP 500", ...)
//            dead_at:       Unix ms when it became a dead letter
//   body   = the request body, byte for byte as POSTed on every attempt:
//            {"type":"doc.updated","timestamp":ISO,"data":{"workspace_id":S,
//             "change":S,"heads":[S...],"key":S,"value":V,["deleted":true,]
//             "author":S,"op_timestamp":N}}   (deleted: a key undo or
//             restore removed; value is then null)
//
// A record that does not parse is logged and left where it is.
#include "webhooks/outbox.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstdio>

#include "base/hex.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/utc.h"

namespace etherply::webhooks {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kOutboxPrefix = "w/o/";
constexpr std::string_view kDeadPrefix = "w/d/";
// The outbox's epoch: 8 bytes big-endian, one more at each Open; a run
// numbers its events from epoch << kEpochShift.
constexpr std::string_view kEpochKey = "w/epoch";
constexpr int kEpochShift = 40;
constexpr size_t kMaxListLimit = 1000;
// How long past attempt_timeout a request may stay unanswered before it is
// deemed lost (the poster promised a callback; this guards against a bug).
constexpr auto kLostGrace = std::chrono::seconds(5);

std::string SeqKey(std::string_view prefix, uint64_t seq) {
  std::string k(prefix);
  for (int shift = 56; shift >= 0; shift -= 8) k.push_back(static_cast<char>(seq >> shift));
  return k;
}

std::optional<uint64_t> SeqOfKey(std::string_view prefix, std::string_view key) {
  if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return std::nullopt;
  uint64_t seq = 0;
  for (char c : key.substr(prefix.size())) seq = seq << 8 | static_cast<uint8_t>(c);
  return seq;
}

int64_t UnixMs(Clock::WallTime t) {
  return duration_cast<milliseconds>(t.time_since_epoch()).count();
}

std::string Seconds(Clock::MonoTime::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", duration_cast<milliseconds>(d).count() / 1000.0);
  return buf;
}

struct Meta {
  std::string workspace_id;
  std::string id;
  int attempts = 0;
  int64_t first_attempt_ms = 0;
  std::string last_error;
  int64_t dead_at_ms = 0;  // dead letters only
};

std::string EncodeRecord(const Meta& m, std::string_view body, bool dead) {
  json::object o;
  o["workspace_id"] = m.workspace_id;
  o["id"] = m.id;
  o["attempts"] = m.attempts;
  o["first_attempt"] = m.first_attempt_ms;
  o["last_error"] = m.last_error;
  if (dead) o["dead_at"] = m.dead_at_ms;
  std::string out = json::serialize(o);
  out += '\n';
  out += body;
  return out;
}

struct Record {
  Meta meta;
  std::string_view body;  // into the decoded value
};

Result<Record> DecodeRecord(std::string_view value) {
  size_t lf = value.find('\n');
  if (lf == std::string_view::npos) return Status::Corruption("webhook record without a body");
  boost::system::error_code ec;
  json::value v = json::parse(value.substr(0, lf), ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (!o) return Status::Corruption("webhook record's metadata is not a JSON object");
  Record r;
  r.body = value.substr(lf + 1);
  auto str = [&](std::string_view k, std::string& out) {
    const json::value* f = o->if_contains(k);
    if (!f || !f->is_string()) return false;
    out = std::string(f->as_string());
    return true;
  };
  auto num = [&](std::string_view k, int64_t& out) {
    const json::value* f = o->if_contains(k);
    if (!f || !f->is_int64()) return false;
    out = f->as_int64();
    return true;
  };
  int64_t attempts = 0;
  if (!str("workspace_id", r.meta.workspace_id) || !str("id", r.meta.id) ||
      !num("attempts", attempts) || !num("first_attempt", r.meta.first_attempt_ms) ||
      !str("last_error", r.meta.last_error) || attempts < 0 || attempts > 1'000'000)
    return Status::Corruption("webhook record's metadata misses a field");
  r.meta.attempts = static_cast<int>(attempts);
  num("dead_at", r.meta.dead_at_ms);
  return r;
}

}  // namespace

// --- Events ----------------------------------------------------------------------------

std::string EventId(const Event& event) {
  // The change hash alone is not enough: the same token making the same
  // first change in two workspaces makes the same change, hash included.
  Sha256 h;
  h.Update(AsBytes(event.workspace_id));
  h.Update(AsBytes(std::string_view("\0", 1)));
  h.Update(AsBytes(event.change));
  std::string id = "evt_" + ToHex(h.Finish());
  if (event.part > 0) id += "." + std::to_string(event.part);
  return id;
}

Result<Leftovers> FindLeftovers(storage::Store& store) {
  Leftovers found;
  for (auto [prefix, flag] : {std::pair{kOutboxPrefix, &found.pending}, {kDeadPrefix, &found.dead}})
    if (Status s = store.Scan(prefix,
                              [&](std::string_view, std::string_view) {
                                *flag = true;
                                return false;  // one is enough
                              });
        !s.ok())
      return s.WithContext("reading the webhook outbox");
  return found;
}

std::string EventBody(const Event& e, Clock::WallTime time) {
  std::string out = R"({"type":"doc.updated","timestamp":")";
  out += Iso8601Millis(UnixMs(time));
  out += R"(","data":{"workspace_id":)";
  out += json::serialize(json::string_view(e.workspace_id));
  out += R"(,"change":)";
  out += json::serialize(json::string_view(e.change));
  out += R"(,"heads":[)";
  for (size_t i = 0; i < e.heads.size(); ++i) {
    if (i) out += ',';
    out += json::serialize(json::string_view(e.heads[i]));
  }
  out += R"(],"key":)";
  out += json::serialize(json::string_view(e.key));
  out += R"(,"value":)";
  out += e.value_json.empty() ? "null" : e.value_json;
  if (e.deleted) out += R"(,"deleted":true)";
  out += R"(,"author":)";
  out += json::serialize(json::string_view(e.author));
  out += R"(,"op_timestamp":)";
  out += std::to_string(e.op_timestamp);
  out += "}}";
  return out;
}

std::string StatsToJson(const Stats& s) {
  json::object o;
  o["delivered"] = s.delivered;
  o["retried"] = s.retried;
  o["dead"] = s.dead;
  o["pending"] = s.pending;
  o["in_flight"] = s.in_flight;
  o["last_error"] = s.last_error;
  return json::serialize(o);
}

// --- Opening ----------------------------------------------------------------------------

Result<std::unique_ptr<Webhooks>> Webhooks::Open(Options options, storage::Store& store,
                                                 HttpPoster& poster, Clock& clock) {
  auto url = ParseHttpUrl(options.url);
  if (!url.ok()) return url.status();
  auto key = SigningKey::Parse(options.secret);
  if (!key.ok()) return key.status();
  if (options.attempt_timeout.count() <= 0)
    return Status::InvalidArgument("the webhook attempt timeout must be positive");
  if (options.max_attempts < 1)
    return Status::InvalidArgument("webhook events need at least one attempt");
  if (options.backoff_base.count() <= 0 || options.backoff_cap < options.backoff_base)
    return Status::InvalidArgument(
        "the webhook backoff's base must be above 0 and at most its cap (" +
        std::to_string(options.backoff_cap.count()) + " ms)");
  if (options.retry_after_cap.count() < 0)
    return Status::InvalidArgument("the webhook Retry-After cap must not be negative");
  if (options.concurrency < 1)
    return Status::InvalidArgument("webhook concurrency must be at least 1");

  std::unique_ptr<Webhooks> w(
      new Webhooks(std::move(options), std::move(*url), std::move(*key), store, poster, clock));
  uint64_t max_seq = 0, dead = 0, bad = 0;
  {
    std::lock_guard work(w->work_mu_);
    auto now = clock.Monotonic();
    Status s = store.Scan(kOutboxPrefix, [&](std::string_view k, std::string_view v) {
      auto seq = SeqOfKey(kOutboxPrefix, k);
      auto record = DecodeRecord(v);
      if (seq) max_seq = std::max(max_seq, *seq);
      if (!seq || !record.ok()) {
        ++bad;
        return true;
      }
      Entry e;
      e.seq = *seq;
      e.id = record->meta.id;
      e.attempts = record->meta.attempts;
      e.first_attempt_ms = record->meta.first_attempt_ms;
      e.last_error = record->meta.last_error;
      e.due = now;
      w->Insert(record->meta.workspace_id, std::move(e));
      return true;
    });
    if (s.ok())
      s = store.Scan(kDeadPrefix, [&](std::string_view k, std::string_view) {
        if (auto seq = SeqOfKey(kDeadPrefix, k)) max_seq = std::max(max_seq, *seq);
        ++dead;
        return true;
      });
    if (!s.ok()) return s.WithContext("reading the webhook outbox");
    w->Publish();
  }
  // Sequence numbers are never reused, not even those of events delivered
  // (and deleted) before a restart, which a dead-letter cursor may still
  // name: each Open takes the next epoch, past the stored one and the
  // highest stored number's, and numbers from epoch << kEpochShift on. A
  // run would need 2^40 events (35 years at 1,000 a second) to reach the
  // next epoch's numbers.
  uint64_t epoch = 0;
  if (auto stored = store.Get(kEpochKey); stored.ok()) {
    auto e = SeqOfKey("", *stored);
    if (!e) return Status::Corruption("the webhook outbox's epoch is not 8 bytes");
    epoch = *e;
  } else if (stored.status().code() != Status::Code::kNotFound) {
    return stored.status().WithContext("reading the webhook outbox");
  }
  epoch = std::max(epoch, max_seq >> kEpochShift);
  if (epoch >= (uint64_t{1} << (64 - kEpochShift)) - 1)
    return Status::Corruption("the webhook outbox's epoch is exhausted");
  ++epoch;
  storage::WriteBatch batch;
  batch.Put(std::string(kEpochKey), SeqKey("", epoch));
  if (Status s = store.Write(batch); !s.ok()) return s.WithContext("starting the webhook outbox");
  {
    std::lock_guard lock(w->shared_->mu);
    w->shared_->next_seq = std::max(max_seq + 1, epoch << kEpochShift);
  }
  if (bad)
    LogError("webhooks: " + std::to_string(bad) +
             " outbox records cannot be read; left as they are");
  LogInfo("webhooks: delivering to " + w->url_.Origin() + "; " + std::to_string(w->pending_) +
          " pending events, " + std::to_string(dead) + " dead letters");
  return w;
}

Webhooks::Webhooks(Options options, HttpUrl url, SigningKey key, storage::Store& store,
                   HttpPoster& poster, Clock& clock)
    : options_(std::move(options)),
      url_(std::move(url)),
      key_(std::move(key)),
      store_(store),
      poster_(poster),
      clock_(clock),
      shared_(std::make_shared<Shared>()),
      rng_(options_.random_seed ? options_.random_seed : std::random_device{}()) {}

Webhooks::~Webhooks() {
  Stop();
  std::lock_guard lock(shared_->mu);
  shared_->closed = true;
}

void Webhooks::Start() {
  std::lock_guard t(thread_mu_);
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void Webhooks::Stop() {
  std::lock_guard t(thread_mu_);
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  thread_.join();
}

// --- The op path ------------------------------------------------------------------------

uint64_t Webhooks::Stage(const Event& event, storage::WriteBatch& batch) {
  Meta meta;
  meta.workspace_id = event.workspace_id;
  meta.id = EventId(event);
  std::string record = EncodeRecord(meta, EventBody(event, clock_.Now()), false);
  uint64_t seq;
  {
    std::lock_guard lock(shared_->mu);
    seq = shared_->next_seq++;
  }
  batch.Put(SeqKey(kOutboxPrefix, seq), std::move(record));
  return seq;
}

void Webhooks::Committed(uint64_t seq, const Status& write_status) {
  if (!write_status.ok()) return;  // never stored: nothing to deliver
  {
    std::lock_guard lock(shared_->mu);
    shared_->committed.push_back(seq);
  }
  shared_->cv.notify_one();
}

// --- The delivery thread ----------------------------------------------------------------

void Webhooks::Run() {
  std::unique_lock lock(shared_->mu);
  while (!shared_->stopping) {
    std::vector<uint64_t> committed = std::exchange(shared_->committed, {});
    std::vector<Completion> completions = std::exchange(shared_->completions, {});
    shared_->wake = false;
    lock.unlock();

    std::vector<Outgoing> out;
    Clock::MonoTime next;
    {
      std::lock_guard work(work_mu_);
      auto now = clock_.Monotonic();
      for (uint64_t seq : std::exchange(unread_, {})) Load(seq, now);
      for (uint64_t seq : committed) Load(seq, now);
      for (Completion& c : completions) Complete(c.token, c.response, now);
      std::vector<uint64_t> lost;
      for (const auto& [token, f] : in_flight_)
        if (f.deadline <= now) lost.push_back(token);
      for (uint64_t token : lost)
        Complete(token, Status::IoError("the HTTP client never answered"), now);
      out = StartDue(now);
      next = NextWake(now);
      Publish();
    }
    // Outside every lock: a poster that calls back at once, or (against its
    // contract) blocks, cannot deadlock or stall Stage.
    for (Outgoing& o : out) {
      poster_.Post(options_.url, o.headers, std::move(o.body), options_.attempt_timeout,
                   [shared = shared_, token = o.token](Result<HttpResponse> r) {
                     {
                       std::lock_guard l(shared->mu);
                       if (shared->closed) return;
                       shared->completions.push_back(Completion{token, std::move(r)});
                     }
                     shared->cv.notify_one();
                   });
    }

    lock.lock();
    if (!shared_->stopping && !shared_->wake && shared_->committed.empty() &&
        shared_->completions.empty())
      clock_.WaitUntil(lock, shared_->cv, next);
  }
}

void Webhooks::Load(uint64_t seq, Clock::MonoTime now) {
  auto value = store_.Get(SeqKey(kOutboxPrefix, seq));
  if (!value.ok()) {
    if (value.status().code() == Status::Code::kNotFound) {
      LogError("webhooks: event #" + std::to_string(seq) +
               " was reported written but is not in the store; not delivered");
    } else {
      LogError("webhooks: cannot read event #" + std::to_string(seq) + ": " +
               value.status().ToString() + "; will retry");
      unread_.push_back(seq);
    }
    return;
  }
  auto record = DecodeRecord(*value);
  if (!record.ok()) {
    LogError("webhooks: event #" + std::to_string(seq) + ": " + record.status().ToString());
    return;
  }
  Entry e;
  e.seq = seq;
  e.id = record->meta.id;
  e.attempts = record->meta.attempts;
  e.first_attempt_ms = record->meta.first_attempt_ms;
  e.last_error = record->meta.last_error;
  e.due = now;
  Insert(record->meta.workspace_id, std::move(e));
}

void Webhooks::Insert(const std::string& workspace, Entry entry) {
  uint64_t seq = entry.seq;
  if (lanes_[workspace].events.emplace(seq, std::move(entry)).second) ++pending_;
  Reschedule(workspace);
}

void Webhooks::Reschedule(const std::string& workspace) {
  auto it = lanes_.find(workspace);
  if (it == lanes_.end()) return;
  Lane& lane = it->second;
  if (lane.at) {
    ready_.erase(*lane.at);
    lane.at.reset();
  }
  if (lane.busy) return;
  if (lane.events.empty()) {
    lanes_.erase(it);
    return;
  }
  const Entry& head = lane.events.begin()->second;
  lane.at = ReadyKey{head.due, head.seq, workspace};
  ready_.insert(*lane.at);
}

void Webhooks::Erase(const std::string& workspace, uint64_t seq) {
  auto it = lanes_.find(workspace);
  if (it == lanes_.end()) return;
  if (it->second.events.erase(seq)) --pending_;
  Reschedule(workspace);
}

std::vector<Webhooks::Outgoing> Webhooks::StartDue(Clock::MonoTime now) {
  std::vector<Outgoing> out;
  while (in_flight_.size() < static_cast<size_t>(options_.concurrency) && !ready_.empty()) {
    auto [due, seq, workspace] = *ready_.begin();
    if (due > now || hold_until_ > now) break;
    Lane& lane = lanes_.at(workspace);
    ready_.erase(ready_.begin());
    lane.at.reset();
    Entry& e = lane.events.at(seq);
    if (e.step == Step::kDelete) {
      Delete(workspace, e, now);
      continue;
    }
    if (e.step == Step::kBury) {
      Bury(workspace, e, now);
      continue;
    }
    auto value = store_.Get(SeqKey(kOutboxPrefix, seq));
    auto record = value.ok() ? DecodeRecord(*value) : Result<Record>(value.status());
    if (!record.ok()) {
      if (value.ok() || value.status().code() == Status::Code::kNotFound) {
        // Gone or unreadable: nothing to send; it stays where it is.
        LogError("webhooks: " + e.id + " (workspace " + workspace +
                 "): " + record.status().ToString() + "; dropped from delivery");
        Erase(workspace, seq);
      } else {
        LogError("webhooks: cannot read " + e.id + ": " + record.status().ToString());
        e.due = now + options_.backoff_base;
        Reschedule(workspace);
      }
      continue;
    }
    auto wall = clock_.Now();
    if (e.first_attempt_ms == 0) e.first_attempt_ms = UnixMs(wall);
    int64_t ts = duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count();
    Outgoing o;
    o.token = next_token_++;
    o.body = std::string(record->body);
    o.headers = {{"content-type", "application/json"},
                 {"webhook-id", e.id},
                 {"webhook-timestamp", std::to_string(ts)},
                 {"webhook-signature", key_.Sign(e.id, ts, o.body)}};
    in_flight_[o.token] = InFlight{workspace, seq, now + options_.attempt_timeout + kLostGrace};
    lane.busy = true;
    out.push_back(std::move(o));
  }
  return out;
}

Clock::MonoTime Webhooks::NextWake(Clock::MonoTime now) const {
  Clock::MonoTime next = now + std::chrono::hours(1);
  if (!ready_.empty() && in_flight_.size() < static_cast<size_t>(options_.concurrency))
    next = std::min(next, std::max(std::get<0>(*ready_.begin()), hold_until_));
  for (const auto& [token, f] : in_flight_) next = std::min(next, f.deadline);
  if (!unread_.empty()) next = std::min(next, now + options_.backoff_base);
  return next;
}

void Webhooks::Complete(uint64_t token, const Result<HttpResponse>& response, Clock::MonoTime now) {
  auto it = in_flight_.find(token);
  if (it == in_flight_.end()) return;  // already given up on
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  Lane& lane = lanes_.at(f.workspace);
  lane.busy = false;
  Entry& e = lane.events.at(f.seq);
  if (!response.ok()) return Fail(f.workspace, e, response.status().message(), std::nullopt, now);
  int status = response->status;
  if (status >= 200 && status <= 299) return Delete(f.workspace, e, now);
  std::optional<std::chrono::seconds> retry_after;
  if ((status == 429 || status == 503) && response->retry_after)
    retry_after = ParseRetryAfter(*response->retry_after, clock_.Now());
  Fail(f.workspace, e, "HTTP " + std::to_string(status), retry_after, now);
}

Clock::MonoTime::duration Webhooks::Backoff(int failures) {
  int64_t base = options_.backoff_base.count(), cap = options_.backoff_cap.count();
  int64_t ceiling = cap;
  if (failures - 1 < 40) ceiling = std::min(cap, base << (failures - 1));
  return milliseconds(std::uniform_int_distribution<int64_t>(0, ceiling)(rng_));
}

void Webhooks::Fail(const std::string& workspace, Entry& e, std::string error,
                    std::optional<std::chrono::seconds> retry_after, Clock::MonoTime now) {
  ++e.attempts;
  e.last_error = std::move(error);
  {
    std::lock_guard lock(shared_->mu);
    shared_->stats.last_error = e.last_error;
  }
  std::string what = "webhooks: " + e.id + " (workspace " + workspace + ") attempt " +
                     std::to_string(e.attempts) + " of " + std::to_string(options_.max_attempts) +
                     " failed: " + e.last_error;
  // The receiver asked the whole sender to wait, not just this event: the
  // hold applies even when this was the event's last attempt.
  std::optional<Clock::MonoTime::duration> asked;
  if (retry_after) {
    asked = std::min<Clock::MonoTime::duration>(*retry_after, options_.retry_after_cap);
    hold_until_ = std::max(hold_until_, now + *asked);
    what += " (Retry-After " + Seconds(*asked) + ")";
  }
  if (e.attempts >= options_.max_attempts) {
    LogWarn(what);
    return Bury(workspace, e, now);
  }
  Clock::MonoTime::duration delay = Backoff(e.attempts);
  if (asked) delay = std::max(delay, *asked);
  e.due = now + delay;
  LogWarn(what + "; next attempt in " + Seconds(delay));
  {
    std::lock_guard lock(shared_->mu);
    ++shared_->stats.retried;
  }
  // Keep the count across restarts, so that a restart does not renew the
  // budget. Best effort: on failure the count in memory goes on.
  std::string key = SeqKey(kOutboxPrefix, e.seq);
  auto value = store_.Get(key);
  auto record = value.ok() ? DecodeRecord(*value) : Result<Record>(value.status());
  if (record.ok()) {
    record->meta.attempts = e.attempts;
    record->meta.first_attempt_ms = e.first_attempt_ms;
    record->meta.last_error = e.last_error;
    storage::WriteBatch batch;
    batch.Put(key, EncodeRecord(record->meta, record->body, false));
    Status s = store_.Write(batch);
    if (!s.ok()) LogError("webhooks: cannot record the attempt of " + e.id + ": " + s.ToString());
  }
  Reschedule(workspace);
}

void Webhooks::Delete(const std::string& workspace, Entry& e, Clock::MonoTime now) {
  storage::WriteBatch batch;
  batch.Delete(SeqKey(kOutboxPrefix, e.seq));
  if (Status s = store_.Write(batch); !s.ok()) {
    // Delivered, but the record stays: the workspace waits until it is
    // deleted, so that a restart cannot resend it after later events.
    LogError("webhooks: " + e.id + " was delivered but cannot be removed: " + s.ToString() +
             "; retrying");
    e.step = Step::kDelete;
    e.due = now + options_.backoff_base;
    return Reschedule(workspace);
  }
  {
    std::lock_guard lock(shared_->mu);
    ++shared_->stats.delivered;
  }
  Erase(workspace, e.seq);
}

void Webhooks::Bury(const std::string& workspace, Entry& e, Clock::MonoTime now) {
  std::string key = SeqKey(kOutboxPrefix, e.seq);
  auto value = store_.Get(key);
  auto record = value.ok() ? DecodeRecord(*value) : Result<Record>(value.status());
  Status s = record.status();
  if (s.ok()) {
    Meta meta = record->meta;
    meta.attempts = e.attempts;
    meta.first_attempt_ms = e.first_attempt_ms;
    meta.last_error = e.last_error;
    meta.dead_at_ms = UnixMs(clock_.Now());
    storage::WriteBatch batch;
    batch.Delete(key);
    batch.Put(SeqKey(kDeadPrefix, e.seq), EncodeRecord(meta, record->body, true));
    s = store_.Write(batch);
  }
  if (!s.ok() && s.code() != Status::Code::kNotFound) {
    LogError("webhooks: cannot move " + e.id + " to the dead letters: " + s.ToString() +
             "; retrying");
    e.step = Step::kBury;
    e.due = now + options_.backoff_base;
    return Reschedule(workspace);
  }
  if (s.ok()) {
    LogError("webhooks: " + e.id + " (workspace " + workspace + ") is dead after " +
             std::to_string(e.attempts) + " attempts (last: " + e.last_error +
             "); see GET /v1/admin/webhooks/dead");
    std::lock_guard lock(shared_->mu);
    ++shared_->stats.dead;
  }
  Erase(workspace, e.seq);
}

void Webhooks::Publish() {
  std::lock_guard lock(shared_->mu);
  shared_->stats.pending = pending_;
  shared_->stats.in_flight = in_flight_.size();
}

// --- Admin ------------------------------------------------------------------------------

Result<std::string> Webhooks::ListDead(size_t limit, std::string_view cursor) {
  if (limit < 1 || limit > kMaxListLimit)
    return Status::InvalidArgument("limit must be 1 to " + std::to_string(kMaxListLimit));
  uint64_t after = 0;
  if (!cursor.empty()) {
    auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), after);
    if (ec != std::errc() || end != cursor.data() + cursor.size())
      return Status::InvalidArgument("bad cursor");
  }
  std::string out = R"({"dead":[)";
  size_t count = 0;
  std::optional<uint64_t> last;
  bool more = false;
  Status bad;
  Status s = store_.Scan(kDeadPrefix, [&](std::string_view k, std::string_view v) {
    auto seq = SeqOfKey(kDeadPrefix, k);
    if (!seq || (!cursor.empty() && *seq <= after)) return true;
    if (count == limit) {
      more = true;
      return false;
    }
    auto record = DecodeRecord(v);
    if (!record.ok()) {
      LogError("webhooks: dead letter #" + std::to_string(*seq) + ": " +
               record.status().ToString());
      return true;
    }
    json::object o;
    o["id"] = record->meta.id;
    o["workspace_id"] = record->meta.workspace_id;
    o["attempts"] = record->meta.attempts;
    o["first_attempt"] = Iso8601Millis(record->meta.first_attempt_ms);
    o["dead_at"] = Iso8601Millis(record->meta.dead_at_ms);
    o["last_error"] = record->meta.last_error;
    std::string item = json::serialize(o);
    item.pop_back();  // '}': the body goes in as written, not re-encoded
    item += R"(,"event":)";
    item += record->body;
    item += '}';
    // Full: the page ends before this item, which opens the next one. A
    // single item larger than the cap still makes a page of its own.
    if (count > 0 && out.size() + 1 + item.size() > kMaxDeadPageBytes) {
      more = true;
      return false;
    }
    if (count++) out += ',';
    out += item;
    last = *seq;
    return true;
  });
  if (!s.ok()) return s;
  out += R"(],"next_cursor":)";
  out += more && last ? "\"" + std::to_string(*last) + "\"" : "null";
  out += '}';
  return out;
}

Status Webhooks::Replay(std::string_view id) {
  std::lock_guard work(work_mu_);
  std::optional<uint64_t> found;
  std::optional<Record> record;
  std::string value;
  Status s = store_.Scan(kDeadPrefix, [&](std::string_view k, std::string_view v) {
    auto seq = SeqOfKey(kDeadPrefix, k);
    auto r = DecodeRecord(v);
    if (!seq || !r.ok() || r->meta.id != id) return true;
    found = seq;
    value = std::string(v);
    return false;
  });
  if (!s.ok()) return s;
  if (!found) return Status::NotFound("no dead webhook event " + std::string(id));
  record = *DecodeRecord(value);
  Meta meta = record->meta;
  meta.attempts = 0;
  meta.first_attempt_ms = 0;
  meta.last_error.clear();
  storage::WriteBatch batch;
  batch.Delete(SeqKey(kDeadPrefix, *found));
  batch.Put(SeqKey(kOutboxPrefix, *found), EncodeRecord(meta, record->body, false));
  if (s = store_.Write(batch); !s.ok()) return s;
  Entry e;
  e.seq = *found;
  e.id = meta.id;
  e.due = clock_.Monotonic();
  Insert(meta.workspace_id, std::move(e));
  Publish();
  LogInfo("webhooks: " + meta.id + " (workspace " + meta.workspace_id +
          ") replayed from the dead letters");
  {
    std::lock_guard lock(shared_->mu);
    shared_->wake = true;
  }
  shared_->cv.notify_one();
  return Status::Ok();
}

Stats Webhooks::stats() const {
  std::lock_guard lock(shared_->mu);
  return shared_->stats;
}

}  // namespace etherply::webhooks
