// Webhook delivery: a durable outbox in the store, drained by one thread.
//
// The life of one event (doc/webhooks.md has the user's view):
//   1. On the op path, Stage(event, batch) builds the event's body and adds
//      its record to the op's own write batch, under a fresh sequence
//      number. No I/O, no waiting: a mutex held for an increment.
//   2. The batch is written, synced, with the op's change (or not at all:
//      then the event never existed). The op path reports the outcome with
//      Committed(seq, status).
//   3. The delivery thread reads the record back from the store, so only a
//      durable event is ever sent, and POSTs it, signed for this attempt.
//   4. A 2xx deletes the record. Anything else (another status, a network
//      error, no answer within attempt_timeout) is retried after a backoff
//      with full jitter, or after Retry-After on a 429 or 503. After
//      max_attempts the record moves to the dead letters in one atomic
//      batch; an admin may list them and replay one.
//   5. On restart, Open resumes every record still in the outbox.
//
// Guarantees: at least once (a receiver may see an event twice, e.g. when a
// 2xx is lost or the process stops between sending and deleting; it
// deduplicates on webhook-id). Per workspace, events are delivered strictly
// in the order they were staged, which is the order of their changes: an
// event is not sent before every earlier one of its workspace was delivered
// or went dead. Workspaces do not wait for one another, up to `concurrency`
// requests at once. A replayed dead letter is the exception: it is sent when
// replayed, after later events of its workspace.
//
// Keys (8-byte big-endian sequence numbers, so key order is staging order):
//   w/o/<seq>   an event waiting for delivery (the outbox)
//   w/d/<seq>   a dead letter
// The value grammar is at the top of outbox.cc.
//
// Thread-safety: every public method may be called from any thread. Stage
// and Committed never block on I/O, on the network or on the delivery
// thread. ListDead and Replay read and write the store and may wait for the
// delivery thread's current store write. Callbacks of the HttpPoster may
// arrive after Stop or destruction; they are then ignored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "storage/store.h"
#include "webhooks/clock.h"
#include "webhooks/http_client.h"
#include "webhooks/signing.h"

namespace etherply::webhooks {

struct Options {
  // Where events are POSTed: http:// or https://.
  std::string url;
  // "whsec_" + base64 of the key (signing.h).
  std::string secret;

  // Time allowed for one attempt, from connecting to the response header.
  // Longer tolerates slow receivers; shorter frees a slot sooner.
  std::chrono::milliseconds attempt_timeout{10'000};
  // Attempts per event before it becomes a dead letter, the first included.
  // Retry n (n >= 1) waits a uniformly random time in
  // [0, min(backoff_cap, backoff_base * 2^(n-1))] ("full jitter"), so the
  // first retry comes within 2 s and later ones spread out to an hour. The
  // defaults (36, 2 s, 1 h) give at most ~25 h of retries, ~12.5 h expected.
  int max_attempts = 36;
  std::chrono::milliseconds backoff_base{2'000};
  std::chrono::milliseconds backoff_cap{3'600'000};
  // A Retry-After on a 429 or 503 is obeyed up to this long: the event waits
  // at least that long, and no other request starts before then.
  std::chrono::seconds retry_after_cap{3'600};
  // Requests in flight at once (at most one per workspace). More drains a
  // backlog across many workspaces faster, and loads the receiver more.
  int concurrency = 4;
  // Seeds the jitter; 0 takes a random seed.
  uint64_t random_seed = 0;
};

// The most bytes of dead letters one ListDead page holds (unless its only
// item is larger): bodies carry values of up to the message limit, so a page
// of 1000 could otherwise take a GiB to build and send.
inline constexpr size_t kMaxDeadPageBytes = 8 << 20;

// One change, as the op path knows it. Stage copies what it needs.
struct Event {
  std::string workspace_id;
  std::string change;              // the change's hash, lowercase hex
  std::vector<std::string> heads;  // the document's heads after it, hex
  std::string key;                 // the root key the op set
  std::string value_json;          // the value set: one JSON value, embedded as given
  bool deleted = false;            // the key was deleted (undo, restore): value_json null
  std::string author;              // the token's sub
  int64_t op_timestamp = 0;        // the op's time, Unix microseconds
  // A change that sets several keys (an undo, a restore) has one event per
  // key; part numbers them from 0, and the webhook-id of part n > 0 ends
  // in ".<n>" (EventId).
  uint32_t part = 0;
};

struct Stats {
  // Since Open.
  uint64_t delivered = 0;  // 2xx received and record deleted
  uint64_t retried = 0;    // failed attempts followed by a retry
  uint64_t dead = 0;       // events moved to the dead letters
  // Now.
  uint64_t pending = 0;    // events in the outbox known to delivery
  uint64_t in_flight = 0;  // requests not yet answered
  std::string last_error;  // of the last failed attempt; "" if none
};

// {"delivered":N,"retried":N,"dead":N,"pending":N,"in_flight":N,"last_error":S}
std::string StatsToJson(const Stats& stats);

// The body POSTed for an event (exposed for tests and docs):
// {"type":"doc.updated","timestamp":"<ISO 8601, UTC, ms>","data":{...}}.
std::string EventBody(const Event& event, Clock::WallTime time);
// The webhook-id, the same on every attempt: "evt_" + the SHA-256, in hex,
// of the workspace ID, a zero byte and the change hash (hex), so that the
// same change in two workspaces makes two IDs; part n > 0 adds "." n.
std::string EventId(const Event& event);

// What a store holds of webhooks from an earlier run, for a server started
// without them to say so: pending events wait, unsent, until a start with
// webhooks again.
struct Leftovers {
  bool pending = false;  // an event not yet delivered
  bool dead = false;     // a dead letter
};
Result<Leftovers> FindLeftovers(storage::Store& store);

class Webhooks {
 public:
  // Checks the options (a usable URL, a valid secret, positive limits),
  // reads the outbox to resume it and finds the next sequence number. Fails
  // with kInvalidArgument on bad options (never quoting the secret) or with
  // the store's error. Delivery starts with Start(). The store, poster and
  // clock must outlive the returned object.
  static Result<std::unique_ptr<Webhooks>> Open(Options options, storage::Store& store,
                                                HttpPoster& poster, Clock& clock);
  // Stop()s.
  ~Webhooks();
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // Starts the delivery thread. Call once.
  void Start();
  // Stops the delivery thread. Requests in flight are abandoned; their
  // events stay in the outbox and are sent again after the next Open.
  // Idempotent.
  void Stop();

  // Adds `event`'s record to `batch` and returns its sequence number. Cheap
  // and non-blocking. The caller must write the batch and then call
  // Committed with this number, exactly once. The events of one workspace
  // must be staged and written in the same order (e.g. both on its strand).
  uint64_t Stage(const Event& event, storage::WriteBatch& batch);
  // Reports the outcome of writing the batch that holds event `seq`: OK
  // means durable, so it will be delivered; an error means it was never
  // stored and is forgotten. Non-blocking; callable from the writer thread.
  void Committed(uint64_t seq, const Status& write_status);

  // Dead letters, oldest first, at most `limit` (1 to 1000) after `cursor`
  // ("" for the first page), as JSON:
  //   {"dead":[{"id":S,"workspace_id":S,"attempts":N,"first_attempt":ISO,
  //             "dead_at":ISO,"last_error":S,"event":{the body}}...],
  //    "next_cursor":S or null}
  // A page also ends before the dead letter that would take it over
  // kMaxDeadPageBytes, but always holds at least one; next_cursor is null on
  // the last page only, and continues right after the page's last item.
  // kInvalidArgument for a bad limit or cursor; the store's error otherwise.
  // Cost: one pass over the dead letters up to the page's end.
  Result<std::string> ListDead(size_t limit, std::string_view cursor);
  // Moves dead letter `id` ("evt_...") back to the outbox with a fresh
  // budget and wakes delivery. kNotFound if there is no such dead letter;
  // the store's error if the move fails (then nothing changed).
  Status Replay(std::string_view id);

  Stats stats() const;

 private:
  // (due, seq, workspace) of an idle lane's head: the order of attempts.
  using ReadyKey = std::tuple<Clock::MonoTime, uint64_t, std::string>;
  // How the head of a lane moves on.
  enum class Step { kSend, kDelete, kBury };

  // An event in the outbox, without its body (read from the store per
  // attempt, so memory holds only this much per pending event).
  struct Entry {
    uint64_t seq = 0;
    std::string id;
    int attempts = 0;
    int64_t first_attempt_ms = 0;  // Unix ms of the first attempt; 0 before
    std::string last_error;
    Clock::MonoTime due;
    Step step = Step::kSend;
  };
  // One workspace's pending events, in staging order.
  struct Lane {
    std::map<uint64_t, Entry> events;
    bool busy = false;           // the head is in flight
    std::optional<ReadyKey> at;  // the head's key in ready_, if there
  };
  struct InFlight {
    std::string workspace;
    uint64_t seq;
    Clock::MonoTime deadline;  // past it, the poster is deemed lost
  };
  // A finished attempt, as the poster's callback hands it over.
  struct Completion {
    uint64_t token;
    Result<HttpResponse> response;
  };
  // A request to make once the work mutex is released.
  struct Outgoing {
    uint64_t token;
    HttpHeaders headers;
    std::string body;
  };
  // What the delivery thread, Stage and the poster callbacks share. Held by
  // shared_ptr so that a late callback finds it alive after destruction.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool closed = false;                  // guarded by mu: drop results
    bool stopping = false;                // guarded by mu
    bool wake = false;                    // guarded by mu: re-evaluate now
    uint64_t next_seq = 1;                // guarded by mu
    std::vector<uint64_t> committed;      // guarded by mu: durable, unread
    std::vector<Completion> completions;  // guarded by mu
    Stats stats;                          // guarded by mu
  };

  Webhooks(Options options, HttpUrl url, SigningKey key, storage::Store& store, HttpPoster& poster,
           Clock& clock);

  void Run();
  // Each of these runs with work_mu_ held.
  void Load(uint64_t seq, Clock::MonoTime now);
  void Insert(const std::string& workspace, Entry entry);
  void Reschedule(const std::string& workspace);
  void Complete(uint64_t token, const Result<HttpResponse>& response, Clock::MonoTime now);
  void Fail(const std::string& workspace, Entry& e, std::string error,
            std::optional<std::chrono::seconds> retry_after, Clock::MonoTime now);
  void Delete(const std::string& workspace, Entry& e, Clock::MonoTime now);
  void Bury(const std::string& workspace, Entry& e, Clock::MonoTime now);
  void Erase(const std::string& workspace, uint64_t seq);
  std::vector<Outgoing> StartDue(Clock::MonoTime now);
  Clock::MonoTime NextWake(Clock::MonoTime now) const;
  Clock::MonoTime::duration Backoff(int failures);
  void Publish();  // pending and in-flight counts into shared_->stats

  // Constant after construction.
  const Options options_;
  const HttpUrl url_;
  const SigningKey key_;
  storage::Store& store_;
  HttpPoster& poster_;
  Clock& clock_;
  const std::shared_ptr<Shared> shared_;

  // The delivery state: used by the delivery thread, and by Replay.
  std::mutex work_mu_;                           // taken before shared_->mu, never after
  std::unordered_map<std::string, Lane> lanes_;  // guarded by work_mu_
  std::set<ReadyKey> ready_;                     // guarded by work_mu_
  std::map<uint64_t, InFlight> in_flight_;       // guarded by work_mu_
  std::vector<uint64_t> unread_;  // guarded by work_mu_: committed, store read failed
  uint64_t pending_ = 0;          // guarded by work_mu_: entries in lanes_
  uint64_t next_token_ = 1;       // guarded by work_mu_
  Clock::MonoTime hold_until_;    // guarded by work_mu_: Retry-After pause
  std::mt19937_64 rng_;           // guarded by work_mu_

  std::mutex thread_mu_;  // serialises Start and Stop
  std::thread thread_;    // guarded by thread_mu_
};

}  // namespace etherply::webhooks
