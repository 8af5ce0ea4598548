// Webhook delivery, as a specification: what is signed and how, what is
// sent and when, and above all what happens when the receiver, the network
// or the store fails. Delivery tests use a fake poster, a fake clock and
// MemoryStore; the Beast client is tested against a real local server, over
// HTTP and HTTPS.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <future>

#include "storage/memory_store.h"
#include "webhooks/clock.h"
#include "webhooks/http_client.h"
#include "webhooks/outbox.h"
#include "webhooks/signing.h"

namespace etherply::webhooks {
namespace {

using namespace std::chrono_literals;
using storage::MemoryStore;
using storage::WriteBatch;

// The example of the Standard Webhooks specification: a 24-byte key.
constexpr char kSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// --- Fakes -------------------------------------------------------------------------------

// Time stands still until Advance. Starts at 2026-01-02T03:04:05.678Z.
class FakeClock final : public Clock {
 public:
  WallTime Now() override {
    std::lock_guard l(mu_);
    return wall_;
  }
  MonoTime Monotonic() override {
    std::lock_guard l(mu_);
    return mono_;
  }
  // Polls: Advance does not know the waiter's condition variable.
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 MonoTime) override {
    cv.wait_for(lock, 1ms);
  }
  void Advance(std::chrono::milliseconds d) {
    std::lock_guard l(mu_);
    wall_ += d;
    mono_ += d;
  }

 private:
  std::mutex mu_;
  WallTime wall_{std::chrono::milliseconds(1767323045678)};
  MonoTime mono_{std::chrono::hours(1000)};
};

// Records every request; the test answers them, in any order, or not at all.
class FakePoster final : public HttpPoster {
 public:
  struct Request {
    std::string url;
    HttpHeaders headers;
    std::string body;
    std::chrono::milliseconds timeout;
    std::string Header(std::string_view name) const {
      for (const auto& [n, v] : headers)
        if (n == name) return v;
      return "";
    }
  };

  void Post(const std::string& url, const HttpHeaders& headers, std::string body,
            std::chrono::milliseconds timeout, Callback done) override {
    std::unique_lock l(mu_);
    requests_.push_back({url, headers, std::move(body), timeout});
    callbacks_.push_back(std::move(done));
    cv_.notify_all();
    cv_.wait(l, [&] { return !hang_; });  // a poster that breaks its contract
  }

  // Waits (real time) until at least n requests were made.
  bool WaitFor(size_t n) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, 5s, [&] { return requests_.size() >= n; });
  }
  size_t count() {
    std::lock_guard l(mu_);
    return requests_.size();
  }
  Request at(size_t i) {
    std::lock_guard l(mu_);
    return requests_.at(i);
  }
  void Answer(size_t i, Result<HttpResponse> r) {
    Callback done;
    {
      std::lock_guard l(mu_);
      done = std::move(callbacks_.at(i));
    }
    ASSERT_TRUE(done) << "request " << i << " answered twice";
    done(std::move(r));
  }
  void Hang(bool on) {
    std::lock_guard l(mu_);
    hang_ = on;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
  std::vector<Callback> callbacks_;
  bool hang_ = false;
};

Result<HttpResponse> Reply(int status, std::optional<std::string> retry_after = std::nullopt) {
  return HttpResponse{status, std::move(retry_after)};
}

// Gives the delivery thread time to do what it should not.
void Settle() { std::this_thread::sleep_for(50ms); }

template <typename F>
bool Eventually(F f) {
  for (auto end = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(1ms))
    if (f()) return true;
  return f();
}

Options TestOptions() {
  Options o;
  o.url = "https://hooks.example/etherply?tenant=7";
  o.secret = kSecret;
  o.random_seed = 42;
  return o;
}

Event MakeEvent(std::string workspace, std::string change) {
  Event e;
  e.workspace_id = std::move(workspace);
  e.change = change;
  e.heads = {change};
  e.key = "title";
  e.value_json = R"("hello")";
  e.author = "alice";
  e.op_timestamp = 1767323045000000;
  return e;
}

// The webhook-id of MakeEvent(workspace, change).
std::string Id(std::string workspace, std::string change) {
  return EventId(MakeEvent(std::move(workspace), std::move(change)));
}

// A Webhooks over a store that may outlive it (to test restarts).
struct Rig {
  explicit Rig(MemoryStore& s, Options o = TestOptions()) : store(s) {
    auto opened = Webhooks::Open(std::move(o), store, poster, clock);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    hooks = std::move(*opened);
    hooks->Start();
  }

  // What the op path does: stage into the op's batch, write, report.
  uint64_t Commit(const Event& e) {
    WriteBatch batch;
    batch.Put("c/" + e.workspace_id + "/x", "the change");
    uint64_t seq = hooks->Stage(e, batch);
    hooks->Committed(seq, store.Write(batch));
    return seq;
  }

  // Commits `e` and answers its attempt, the poster's next, with `reply`:
  // with max_attempts 1, a dead letter.
  void CommitDead(const Event& e, Result<HttpResponse> reply) {
    size_t n = poster.count();
    uint64_t dead = hooks->stats().dead;
    Commit(e);
    ASSERT_TRUE(poster.WaitFor(n + 1));
    poster.Answer(n, std::move(reply));
    ASSERT_TRUE(Eventually([&] { return hooks->stats().dead == dead + 1; }));
  }

  size_t Count(std::string_view prefix) {
    size_t n = 0;
    EXPECT_TRUE(store.Scan(prefix, [&](std::string_view, std::string_view) { return ++n; }).ok());
    return n;
  }

  MemoryStore& store;
  FakeClock clock;
  FakePoster poster;
  std::unique_ptr<Webhooks> hooks;  // last: stopped before the fakes go
};

// --- Signing -----------------------------------------------------------------------------

TEST(Webhooks, SignatureMatchesAnIndependentImplementation) {
  auto key = SigningKey::Parse(kSecret);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  // The specification's own example. Computed with:
  //   node -e 'const c=require("crypto");
  //     const k=Buffer.from("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","base64");
  //     console.log(c.createHmac("sha256",k)
  //       .update("msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}")
  //       .digest("base64"))'
  EXPECT_EQ(key->Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // One of our bodies, with non-ASCII bytes. Same command, with
  //   .update("evt_ab.1767323045." + <the body below>)
  std::string body =
      R"({"type":"doc.updated","timestamp":"2026-01-02T03:04:05.678Z","data":{"workspace_id":"w1",)"
      R"("change":"ab","heads":["ab"],"key":"k","value":{"x":[1,2.5,"é"]},"author":"alice",)"
      R"("op_timestamp":1767323045678000}})";
  EXPECT_EQ(key->Sign("evt_ab", 1767323045, body),
            "v1,3xqLsNhWL1llgIHcOJZDgC616fuMkK5WCfm/XE5Dysk=");
}

TEST(Webhooks, SecretMustBeWhsecBase64OfEnoughBytes) {
  struct Case {
    std::string secret;
    std::string error;  // a part of the message
  } cases[] = {
      {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"},         // bare base64
      {"0123456789abcdef0123456789abcdef", "whsec_"},         // hex
      {"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"},   // prefix is case-sensitive
      {"whsec_", "bytes"},                                    // empty key
      {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "base64"},    // length not a multiple of 4
      {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w", "base64"},   // not the alphabet
      {"whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", "base64"},  // whitespace
      {"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=", "base64"},   // non-zero unused bits
      {"whsec_c2hvcnQ=", "5 bytes"},                          // "short"
      {"whsec_" + Base64Encode(Bytes(65, 7)), "65 bytes"},
  };
  for (const Case& c : cases) {
    auto key = SigningKey::Parse(c.secret);
    ASSERT_FALSE(key.ok()) << c.secret;
    EXPECT_EQ(key.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(key.status().message().find(c.error), std::string::npos)
        << c.secret << ": " << key.status().message();
    if (c.secret.size() > 6) {  // never quoted
      EXPECT_EQ(key.status().message().find(c.secret.substr(6)), std::string::npos);
    }
  }
  EXPECT_TRUE(SigningKey::Parse("whsec_" + Base64Encode(Bytes(24, 1))).ok());
  EXPECT_TRUE(SigningKey::Parse("whsec_" + Base64Encode(Bytes(64, 1))).ok());
}

TEST(Webhooks, Base64RoundTripsAndRejectsOtherSpellings) {
  for (size_t n = 0; n < 10; ++n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(250 - i * 7);
    auto back = Base64Decode(Base64Encode(b));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, b);
  }
  EXPECT_EQ(Base64Encode(AsBytes("short")), "c2hvcnQ=");
  for (const char* bad : {"c2hvcnQ", "c2hvcnQ==", "c2hvcn=Q", "c2hv\ncnQ=", "c2hvcnR="})
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
}

// --- The event --------------------------------------------------------------------------

TEST(Webhooks, EventBodyIsTheDocumentedJson) {
  Event e = MakeEvent("w1", "ab12");
  e.heads = {"ab12", "cd34"};
  e.key = "a \"quoted\" key";
  e.value_json = R"({"n":[1,2.5,null]})";
  FakeClock clock;
  std::string body = EventBody(e, clock.Now());
  EXPECT_EQ(body, R"({"type":"doc.updated","timestamp":"2026-01-02T03:04:05.678Z","data":{)"
                  R"("workspace_id":"w1","change":"ab12","heads":["ab12","cd34"],)"
                  R"("key":"a \"quoted\" key","value":{"n":[1,2.5,null]},"author":"alice",)"
                  R"("op_timestamp":1767323045000000}})");
  EXPECT_TRUE(boost::json::parse(body).is_object());
  e.value_json = "null";
  e.deleted = true;
  EXPECT_NE(EventBody(e, clock.Now()).find(R"("value":null,"deleted":true,"author":)"),
            std::string::npos)
      << EventBody(e, clock.Now());
}

// The expected ID from coreutils: printf 'w1\0ab12' | sha256sum.
TEST(Webhooks, EventIdIsTheHashOfTheWorkspaceAndTheChange) {
  Event e = MakeEvent("w1", "ab12");
  EXPECT_EQ(EventId(e), "evt_1f31aeb15266b61675e23694724aea3a8597d60edfc31a3382a714d68114b9dc");
  e.part = 2;
  EXPECT_EQ(EventId(e), "evt_1f31aeb15266b61675e23694724aea3a8597d60edfc31a3382a714d68114b9dc.2");
}

// The same change in two workspaces (the same token's first op in each)
// makes two events, which a receiver deduplicating on the ID must keep.
TEST(Webhooks, TheSameChangeInTwoWorkspacesHasTwoIds) {
  EXPECT_NE(EventId(MakeEvent("team-a", "ab12")), EventId(MakeEvent("team-b", "ab12")));
  // The zero byte keeps the workspace and the change apart.
  EXPECT_NE(EventId(MakeEvent("a", "bc")), EventId(MakeEvent("ab", "c")));
}

TEST(Webhooks, RetryAfterIsSecondsOrAnHttpDate) {
  FakeClock clock;
  auto now = clock.Now();  // Fri, 02 Jan 2026 03:04:05.678 GMT
  EXPECT_EQ(ParseRetryAfter("120", now), 120s);
  EXPECT_EQ(ParseRetryAfter("0", now), 0s);
  EXPECT_EQ(ParseRetryAfter("Fri, 02 Jan 2026 03:04:35 GMT", now), 30s);  // 29.3 s, rounded up
  EXPECT_EQ(ParseRetryAfter("Thu, 01 Jan 2026 00:00:00 GMT", now), 0s);   // past
  for (const char* bad : {"", "-5", "1.5", " 12", "soon", "Fri, 02 Jan 2026 03:04:35 UTC",
                          "Fri, 02 Foo 2026 03:04:35 GMT", "Fri, 30 Feb 2026 03:04:35 GMT",
                          "fri, 02 Jan 2026 03:04:35 GMT", "Fri, 02 Jan 2026 24:00:00 GMT",
                          "Fri, 2 Jan 2026 03:04:35 GMT ", "Fri,  2 Jan 2026 03:04:35 GMT"})
    EXPECT_FALSE(ParseRetryAfter(bad, now)) << bad;
}

// RFC 9110 §5.6.7: "A recipient that parses a timestamp value in an HTTP
// header field MUST accept all three HTTP-date formats."
TEST(Webhooks, RetryAfterAcceptsTheObsoleteDateFormats) {
  FakeClock clock;
  auto now = clock.Now();  // Fri, 02 Jan 2026 03:04:05.678 GMT
  // RFC 850: a long day name and a two-digit year.
  EXPECT_EQ(ParseRetryAfter("Friday, 02-Jan-26 03:04:35 GMT", now), 30s);
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), 0s);  // 1994: past
  // "76" is 50 years ahead, so 2076; "77" would be 51 ahead, so 1977.
  auto in_2076 = ParseRetryAfter("Sunday, 02-Jan-76 03:04:05 GMT", now);
  ASSERT_TRUE(in_2076);
  EXPECT_GT(*in_2076, std::chrono::hours(24 * 365 * 49));
  EXPECT_EQ(ParseRetryAfter("Sunday, 02-Jan-77 03:04:05 GMT", now), 0s);
  // asctime: no zone (GMT is implied), a space-padded or two-digit day.
  EXPECT_EQ(ParseRetryAfter("Fri Jan  2 03:05:05 2026", now), 60s);  // 59.3 s, rounded up
  EXPECT_EQ(ParseRetryAfter("Fri Jan 02 03:05:05 2026", now), 60s);
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), 0s);
  // A leap second and the last day of a leap year's February exist.
  EXPECT_EQ(ParseRetryAfter("Sat, 31 Jan 2026 23:59:60 GMT", now),
            ParseRetryAfter("Sun, 01 Feb 2026 00:00:00 GMT", now));
  EXPECT_TRUE(ParseRetryAfter("Thu Feb 29 00:00:00 2028", now));

  for (const char* bad : {
           "Friday, 02-Jan-26 03:04:35 UTC",    // only GMT
           "Fri, 02-Jan-26 03:04:35 GMT",       // RFC 850 needs the long day name
           "friday, 02-Jan-26 03:04:35 GMT",    // case-sensitive
           "Friday, 02-Jan-2026 03:04:35 GMT",  // two-digit year only
           "Friday, 2-Jan-26 03:04:35 GMT",     // two-digit day only
           "Friday, 31-Feb-26 03:04:35 GMT",    // no such day
           "Friday, 02 Jan 26 03:04:35 GMT",    // dashes
           "Friday,02-Jan-26 03:04:35 GMT",     // the space after the comma
           "Friday, 02-Jan-26 3:04:35 GMT",     // two-digit hour
           "Fridy, 02-Jan-26 03:04:35 GMT",     // no such day name
           "Fri Jan  2 03:05:05 2026 GMT",      // asctime has no zone
           "Fri Jan 2 03:05:05 2026",           // the day takes two columns
           "Fri Jan  2 03:05:05 26",            // a four-digit year
           "Fri Jan   2 03:05:05 2026",         // one padding space at most
           "Fri Jan 2  03:05:05 2026",          // the padding goes before the digit
           "Fri Jan 29 03:05:05 2026 ",         // trailing space
           "Fri Feb 29 03:05:05 2026",          // 2026 is not a leap year
           "Fri Jan  2 03:05:65 2026",          // no such second
           "Fri Jan +2 03:05:05 2026",          // digits only
           "Fri JAN  2 03:05:05 2026",          // case-sensitive
       })
    EXPECT_FALSE(ParseRetryAfter(bad, now)) << bad;
}

TEST(Webhooks, UrlMustBeHttpOrHttpsWithAHost) {
  auto u = ParseHttpUrl("https://hooks.example/in?x=1&y=2");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "hooks.example");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/in?x=1&y=2");
  EXPECT_EQ(u->Origin(), "https://hooks.example");
  u = ParseHttpUrl("http://[::1]:8081");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8081);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->Origin(), "http://[::1]:8081");
  for (const char* bad : {"", "hooks.example/in", "ftp://hooks.example/", "https:///in",
                          "https://user:pw@hooks.example/", "https://hooks.example:0/",
                          "https://hooks.example:99999/", "https://hooks.example/#frag"})
    EXPECT_FALSE(ParseHttpUrl(bad).ok()) << bad;
}

TEST(Webhooks, OpenRejectsBadOptions) {
  MemoryStore store;
  FakeClock clock;
  FakePoster poster;
  auto open = [&](auto change) {
    Options o = TestOptions();
    change(o);
    return Webhooks::Open(o, store, poster, clock).status();
  };
  EXPECT_TRUE(open([](Options&) {}).ok());
  EXPECT_FALSE(open([](Options& o) { o.url = "mailto:x@example.com"; }).ok());
  Status s = open([](Options& o) { o.secret = "not-a-whsec-secret"; });
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message().find("not-a-whsec-secret"), std::string::npos);
  EXPECT_FALSE(open([](Options& o) { o.max_attempts = 0; }).ok());
  EXPECT_FALSE(open([](Options& o) { o.concurrency = 0; }).ok());
  EXPECT_FALSE(open([](Options& o) { o.attempt_timeout = 0ms; }).ok());
  EXPECT_FALSE(open([](Options& o) { o.backoff_cap = 1ms; }).ok());
}

// --- Delivery ---------------------------------------------------------------------------

TEST(Webhooks, DeliversEachWorkspaceInOrderAndOthersInParallel) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  rig.Commit(MakeEvent("a", "a2"));
  rig.Commit(MakeEvent("b", "b1"));
  ASSERT_TRUE(rig.poster.WaitFor(2));
  Settle();
  ASSERT_EQ(rig.poster.count(), 2u);  // a2 waits for a1
  EXPECT_EQ(rig.poster.at(0).Header("webhook-id"), Id("a", "a1"));
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("b", "b1"));

  // The request, as a Standard Webhooks receiver checks it.
  FakePoster::Request r = rig.poster.at(0);
  EXPECT_EQ(r.url, "https://hooks.example/etherply?tenant=7");
  EXPECT_EQ(r.timeout, 10s);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.Header("webhook-timestamp"), "1767323045");
  EXPECT_EQ(r.body, EventBody(MakeEvent("a", "a1"), rig.clock.Now()));
  EXPECT_EQ(r.Header("webhook-signature"),
            SigningKey::Parse(kSecret)->Sign(Id("a", "a1"), 1767323045, r.body));

  rig.poster.Answer(1, Reply(204));  // b1 done: a2 still waits for a1
  Settle();
  EXPECT_EQ(rig.poster.count(), 2u);
  rig.poster.Answer(0, Reply(200));
  ASSERT_TRUE(rig.poster.WaitFor(3));
  EXPECT_EQ(rig.poster.at(2).Header("webhook-id"), Id("a", "a2"));
  rig.poster.Answer(2, Reply(299));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().delivered == 3; }));
  EXPECT_EQ(rig.Count("w/o/"), 0u);  // each record deleted after its 2xx
  EXPECT_EQ(rig.hooks->stats().pending, 0u);
  EXPECT_EQ(rig.hooks->stats().retried, 0u);
}

TEST(Webhooks, ConcurrencyLimitsRequestsInFlight) {
  MemoryStore store;
  Options o = TestOptions();
  o.concurrency = 2;
  Rig rig(store, o);
  for (const char* w : {"a", "b", "c", "d"}) rig.Commit(MakeEvent(w, std::string(w) + "1"));
  ASSERT_TRUE(rig.poster.WaitFor(2));
  Settle();
  EXPECT_EQ(rig.poster.count(), 2u);
  EXPECT_EQ(rig.hooks->stats().in_flight, 2u);
  rig.poster.Answer(0, Reply(200));
  ASSERT_TRUE(rig.poster.WaitFor(3));
  EXPECT_EQ(rig.poster.at(2).Header("webhook-id"), Id("c", "c1"));  // staging order
}

TEST(Webhooks, FailureIsRetriedWithBackoffThenDelivered) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  rig.poster.Answer(0, Reply(500));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  EXPECT_EQ(rig.hooks->stats().last_error, "HTTP 500");
  EXPECT_EQ(rig.Count("w/o/"), 1u);  // still owed
  // The attempt is recorded, so a restart does not renew the budget.
  std::string record;
  store.Scan("w/o/", [&](std::string_view, std::string_view v) {
    record = std::string(v);
    return false;
  });
  EXPECT_NE(record.find(R"("attempts":1)"), std::string::npos) << record;
  EXPECT_NE(record.find(R"("last_error":"HTTP 500")"), std::string::npos) << record;

  rig.clock.Advance(2s);  // the first retry comes within backoff_base
  ASSERT_TRUE(rig.poster.WaitFor(2));
  FakePoster::Request again = rig.poster.at(1);
  EXPECT_EQ(again.Header("webhook-id"), Id("a", "a1"));  // stable: receivers deduplicate on it
  EXPECT_EQ(again.body, rig.poster.at(0).body);     // the same bytes
  EXPECT_EQ(again.Header("webhook-timestamp"), "1767323047");  // this attempt's time
  EXPECT_EQ(again.Header("webhook-signature"),
            SigningKey::Parse(kSecret)->Sign(Id("a", "a1"), 1767323047, again.body));
  rig.poster.Answer(1, Reply(202));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().delivered == 1; }));
  EXPECT_EQ(rig.Count("w/o/"), 0u);
}

TEST(Webhooks, NetworkErrorsAndRedirectsAreFailures) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  rig.poster.Answer(0, Status::IoError("connecting to hooks.example:443: Connection refused"));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  EXPECT_EQ(rig.hooks->stats().last_error, "connecting to hooks.example:443: Connection refused");
  rig.clock.Advance(2s);
  ASSERT_TRUE(rig.poster.WaitFor(2));
  rig.poster.Answer(1, Reply(301));  // never followed
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 2; }));
  EXPECT_EQ(rig.hooks->stats().delivered, 0u);
}

TEST(Webhooks, RetryAfterIsHonouredByEveryWorkspace) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  rig.poster.Answer(0, Reply(429, "30"));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  rig.Commit(MakeEvent("b", "b1"));  // another workspace waits too
  rig.clock.Advance(29s);
  Settle();
  EXPECT_EQ(rig.poster.count(), 1u);
  rig.clock.Advance(1s);
  ASSERT_TRUE(rig.poster.WaitFor(3));
  // b1 was due first; a1's retry is due now.
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("b", "b1"));
  EXPECT_EQ(rig.poster.at(2).Header("webhook-id"), Id("a", "a1"));
  rig.poster.Answer(1, Reply(200));
  rig.poster.Answer(2, Reply(503, "Fri, 02 Jan 2026 03:05:35 GMT"));  // 60 s from now, as a date
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 2; }));
  rig.clock.Advance(59s);
  Settle();
  EXPECT_EQ(rig.poster.count(), 3u);
  rig.clock.Advance(1s);
  ASSERT_TRUE(rig.poster.WaitFor(4));
  EXPECT_EQ(rig.poster.at(3).Header("webhook-id"), Id("a", "a1"));
}

// doc/webhooks.md: "no other request starts before then: the receiver asked
// the whole sender to slow down", whether or not the event had attempts left.
TEST(Webhooks, RetryAfterOnALastAttemptStillHoldsEveryRequest) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 1;
  Rig rig(store, o);
  rig.CommitDead(MakeEvent("a", "a1"), Reply(503, "30"));
  rig.Commit(MakeEvent("a", "a2"));  // its own workspace's next event
  rig.Commit(MakeEvent("b", "b1"));  // and another workspace's
  Settle();
  rig.clock.Advance(29s);
  Settle();
  EXPECT_EQ(rig.poster.count(), 1u);
  rig.clock.Advance(1s);
  ASSERT_TRUE(rig.poster.WaitFor(3));
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("a", "a2"));
  EXPECT_EQ(rig.poster.at(2).Header("webhook-id"), Id("b", "b1"));
}

TEST(Webhooks, RetryAfterIsIgnoredOnOtherStatusesAndCapped) {
  MemoryStore store;
  Options o = TestOptions();
  o.retry_after_cap = 10s;
  Rig rig(store, o);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  rig.poster.Answer(0, Reply(500, "3600"));  // only 429 and 503 carry it
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  rig.clock.Advance(2s);
  ASSERT_TRUE(rig.poster.WaitFor(2));
  rig.poster.Answer(1, Reply(429, "999999"));  // capped at 10 s
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 2; }));
  rig.clock.Advance(10s);
  ASSERT_TRUE(rig.poster.WaitFor(3));
}

TEST(Webhooks, AnUnansweredRequestIsRetried) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  rig.clock.Advance(10s + 5s);  // attempt_timeout and a grace: the poster lost it
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  rig.clock.Advance(2s);
  ASSERT_TRUE(rig.poster.WaitFor(2));
  rig.poster.Answer(0, Reply(200));  // too late: ignored
  rig.poster.Answer(1, Reply(200));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().delivered == 1; }));
  Settle();
  EXPECT_EQ(rig.hooks->stats().delivered, 1u);
}

TEST(Webhooks, SpentBudgetMakesADeadLetterAndTheWorkspaceMovesOn) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 3;
  Rig rig(store, o);
  rig.Commit(MakeEvent("a", "a1"));
  rig.Commit(MakeEvent("a", "a2"));
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(rig.poster.WaitFor(i + 1));
    EXPECT_EQ(rig.poster.at(i).Header("webhook-id"), Id("a", "a1"));
    rig.poster.Answer(i, Reply(500));
    ASSERT_TRUE(Eventually([&] {
      Stats st = rig.hooks->stats();
      return st.retried + st.dead == i + 1;
    }));
    rig.clock.Advance(1h);
  }
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().dead == 1; }));
  EXPECT_EQ(rig.hooks->stats().retried, 2u);
  EXPECT_EQ(rig.Count("w/d/"), 1u);
  ASSERT_TRUE(rig.poster.WaitFor(4));
  EXPECT_EQ(rig.poster.at(3).Header("webhook-id"), Id("a", "a2"));  // no longer held back

  auto list = rig.hooks->ListDead(10, "");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  boost::json::value v = boost::json::parse(*list);
  const auto& dead = v.at("dead").as_array();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].at("id").as_string(), Id("a", "a1"));
  EXPECT_EQ(dead[0].at("workspace_id").as_string(), "a");
  EXPECT_EQ(dead[0].at("attempts").as_int64(), 3);
  EXPECT_EQ(dead[0].at("last_error").as_string(), "HTTP 500");
  EXPECT_EQ(dead[0].at("first_attempt").as_string(), "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(dead[0].at("dead_at").as_string(), "2026-01-02T05:04:05.678Z");
  EXPECT_EQ(dead[0].at("event").at("data").at("change").as_string(), "a1");
  EXPECT_TRUE(v.at("next_cursor").is_null());
}

TEST(Webhooks, ReplayMovesADeadLetterBackWithAFreshBudget) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 1;
  Rig rig(store, o);
  rig.CommitDead(MakeEvent("a", "a1"), Reply(410));

  EXPECT_EQ(rig.hooks->Replay("evt_nope").code(), Status::Code::kNotFound);
  ASSERT_TRUE(rig.hooks->Replay(Id("a", "a1")).ok());
  EXPECT_EQ(rig.Count("w/d/"), 0u);
  EXPECT_EQ(rig.Count("w/o/"), 1u);
  EXPECT_EQ(rig.hooks->Replay(Id("a", "a1")).code(), Status::Code::kNotFound);  // no longer dead
  ASSERT_TRUE(rig.poster.WaitFor(2));
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("a", "a1"));
  EXPECT_EQ(rig.poster.at(1).body, rig.poster.at(0).body);
  rig.poster.Answer(1, Reply(200));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().delivered == 1; }));
  EXPECT_EQ(rig.Count("w/o/"), 0u);
  EXPECT_EQ(*rig.hooks->ListDead(10, ""), R"({"dead":[],"next_cursor":null})");
}

// doc/webhooks.md: a page ends early once it would pass 8 MiB, like a history
// page, so that listing big dead letters cannot take the server's memory.
TEST(Webhooks, ADeadLetterPageStopsShortOf8MiBAndTheWalkGoesOn) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 1;
  Rig rig(store, o);
  // Twelve of ~900 KB (nine fit in a page), one of 9 MiB, one small.
  std::vector<size_t> value_sizes(12, 900'000);
  value_sizes.push_back(9 << 20);
  value_sizes.push_back(10);
  for (size_t i = 0; i < value_sizes.size(); ++i) {
    Event e = MakeEvent("a", "a" + std::to_string(i));
    e.value_json = '"' + std::string(value_sizes[i], 'v') + '"';
    rig.Commit(e);
  }
  for (size_t i = 0; i < value_sizes.size(); ++i) {
    ASSERT_TRUE(rig.poster.WaitFor(i + 1));
    rig.poster.Answer(i, Reply(500));
  }
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().dead == value_sizes.size(); }));

  std::vector<size_t> page_sizes;
  std::vector<std::string> ids;
  std::string cursor;
  for (int pages = 0; pages < 20; ++pages) {
    auto page = rig.hooks->ListDead(1000, cursor);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    boost::json::value v = boost::json::parse(*page);
    const auto& dead = v.at("dead").as_array();
    ASSERT_FALSE(dead.empty()) << "a walk never meets an empty page";
    if (dead.size() > 1) {
      EXPECT_LE(page->size(), kMaxDeadPageBytes);
    }
    page_sizes.push_back(dead.size());
    for (const auto& d : dead) ids.push_back(std::string(d.at("id").as_string()));
    if (v.at("next_cursor").is_null()) break;
    cursor = std::string(v.at("next_cursor").as_string());
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{9, 3, 1, 1}));  // the 9 MiB one alone
  ASSERT_EQ(ids.size(), value_sizes.size());                 // each once, in order
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], Id("a", "a" + std::to_string(i)));
}

TEST(Webhooks, ListDeadPagesAndRejectsBadArguments) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 1;
  Rig rig(store, o);
  for (const char* w : {"a", "b", "c"}) rig.Commit(MakeEvent(w, std::string(w) + "1"));
  ASSERT_TRUE(rig.poster.WaitFor(3));
  for (size_t i = 0; i < 3; ++i) rig.poster.Answer(i, Reply(400));
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().dead == 3; }));

  auto page = boost::json::parse(*rig.hooks->ListDead(2, ""));
  ASSERT_EQ(page.at("dead").as_array().size(), 2u);
  EXPECT_EQ(page.at("dead").at(0).at("id").as_string(), Id("a", "a1"));
  std::string cursor(page.at("next_cursor").as_string());
  page = boost::json::parse(*rig.hooks->ListDead(2, cursor));
  ASSERT_EQ(page.at("dead").as_array().size(), 1u);
  EXPECT_EQ(page.at("dead").at(0).at("id").as_string(), Id("c", "c1"));
  EXPECT_TRUE(page.at("next_cursor").is_null());

  EXPECT_EQ(rig.hooks->ListDead(0, "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rig.hooks->ListDead(1001, "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rig.hooks->ListDead(10, "x").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rig.hooks->ListDead(10, "-1").status().code(), Status::Code::kInvalidArgument);
}

TEST(Webhooks, RestartResumesPendingEventsWithTheirBudget) {
  MemoryStore store;
  Options o = TestOptions();
  o.max_attempts = 2;
  uint64_t last_seq;
  {
    Rig rig(store, o);
    rig.Commit(MakeEvent("a", "a1"));
    last_seq = rig.Commit(MakeEvent("a", "a2"));
    ASSERT_TRUE(rig.poster.WaitFor(1));
    rig.poster.Answer(0, Reply(500));  // a1: one attempt of two spent
    ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().retried == 1; }));
  }  // the process stops

  Rig rig(store, o);
  EXPECT_EQ(rig.hooks->stats().pending, 2u);
  ASSERT_TRUE(rig.poster.WaitFor(1));  // at once, not after the old backoff
  EXPECT_EQ(rig.poster.at(0).Header("webhook-id"), Id("a", "a1"));
  rig.poster.Answer(0, Reply(500));  // the second and last attempt
  ASSERT_TRUE(Eventually([&] { return rig.hooks->stats().dead == 1; }));
  ASSERT_TRUE(rig.poster.WaitFor(2));
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("a", "a2"));
  // New events never reuse a number still in the store.
  EXPECT_GT(rig.Commit(MakeEvent("a", "a3")), last_seq);
  rig.poster.Answer(1, Reply(200));
  ASSERT_TRUE(rig.poster.WaitFor(3));
  EXPECT_EQ(rig.poster.at(2).Header("webhook-id"), Id("a", "a3"));
}

// A dead-letter cursor names a sequence number: one kept across a restart
// must not skip the dead letters made after it.
TEST(Webhooks, SequenceNumbersAreNeverReusedAcrossRestarts) {
  MemoryStore store;
  uint64_t last_seq;
  {
    Rig rig(store);
    last_seq = rig.Commit(MakeEvent("a", "a1"));
    ASSERT_TRUE(rig.poster.WaitFor(1));
    rig.poster.Answer(0, Reply(200));
    ASSERT_TRUE(Eventually([&] { return rig.Count("w/o/") == 0; }));  // delivered, deleted
  }
  for (int restart = 0; restart < 3; ++restart) {
    Rig rig(store);
    uint64_t seq = rig.Commit(MakeEvent("a", "a" + std::to_string(restart + 2)));
    EXPECT_GT(seq, last_seq) << "restart " << restart;
    last_seq = seq;
  }
}

TEST(Webhooks, LeftoversSayWhatAnEarlierRunLeftPendingAndDead) {
  MemoryStore store;
  auto left = FindLeftovers(store);
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->pending || left->dead);
  Options o = TestOptions();
  o.max_attempts = 1;
  {
    Rig rig(store, o);
    rig.CommitDead(MakeEvent("a", "a1"), Reply(500));
    rig.hooks->Stop();
    rig.Commit(MakeEvent("a", "a2"));  // pending, as the process stops
  }
  left = FindLeftovers(store);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->pending);
  EXPECT_TRUE(left->dead);
}

// A run that numbered past its epoch's range (2^40 events) moves the next
// start's epoch past what it stored.
TEST(Webhooks, TheNextEpochIsPastTheHighestStoredNumber) {
  MemoryStore store;
  const uint64_t high = (uint64_t{7} << 40) + 5;
  WriteBatch batch;
  std::string key = "w/d/";
  for (int shift = 56; shift >= 0; shift -= 8) key.push_back(static_cast<char>(high >> shift));
  batch.Put(key, "a dead letter's record");
  ASSERT_TRUE(store.Write(batch).ok());
  Rig rig(store);
  EXPECT_GE(rig.Commit(MakeEvent("a", "a1")), uint64_t{8} << 40);
}

TEST(Webhooks, AnEpochThatCannotBeWrittenFailsTheOpen) {
  MemoryStore store;
  store.FailWritesAfter(0);
  FakeClock clock;
  FakePoster poster;
  auto opened = Webhooks::Open(TestOptions(), store, poster, clock);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("starting the webhook outbox"), std::string::npos)
      << opened.status().ToString();
}

TEST(Webhooks, AnEpochOfTheWrongSizeIsCorruption) {
  MemoryStore store;
  WriteBatch batch;
  batch.Put("w/epoch", "short");
  ASSERT_TRUE(store.Write(batch).ok());
  FakeClock clock;
  FakePoster poster;
  auto opened = Webhooks::Open(TestOptions(), store, poster, clock);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), Status::Code::kCorruption);
}

TEST(Webhooks, EventOfAFailedWriteIsNeverDelivered) {
  MemoryStore store;
  Rig rig(store);
  store.FailWritesAfter(0);
  WriteBatch batch;
  uint64_t lost = rig.hooks->Stage(MakeEvent("a", "lost"), batch);
  Status s = store.Write(batch);
  ASSERT_FALSE(s.ok());
  rig.hooks->Committed(lost, s);
  // Even told otherwise, delivery sends only what the store holds.
  WriteBatch batch2;
  uint64_t also_lost = rig.hooks->Stage(MakeEvent("b", "also-lost"), batch2);
  ASSERT_FALSE(store.Write(batch2).ok());
  rig.hooks->Committed(also_lost, Status::Ok());
  Settle();
  EXPECT_EQ(rig.poster.count(), 0u);

  store.FailWritesAfter(-1);
  rig.Commit(MakeEvent("a", "kept"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  Settle();
  ASSERT_EQ(rig.poster.count(), 1u);
  EXPECT_EQ(rig.poster.at(0).Header("webhook-id"), Id("a", "kept"));
  EXPECT_EQ(rig.hooks->stats().pending, 1u);
}

TEST(Webhooks, FailedDeleteHoldsTheWorkspaceUntilItSucceeds) {
  MemoryStore store;
  Rig rig(store);
  rig.Commit(MakeEvent("a", "a1"));
  rig.Commit(MakeEvent("a", "a2"));
  ASSERT_TRUE(rig.poster.WaitFor(1));
  store.FailWritesAfter(0);
  rig.poster.Answer(0, Reply(200));
  Settle();
  rig.clock.Advance(1h);
  Settle();
  // a1 was received but is still in the store; a2 must not overtake it, or
  // a restart now would send a1 after a2.
  EXPECT_EQ(rig.poster.count(), 1u);
  EXPECT_EQ(rig.hooks->stats().delivered, 0u);
  store.FailWritesAfter(-1);
  rig.clock.Advance(2s);
  ASSERT_TRUE(rig.poster.WaitFor(2));
  EXPECT_EQ(rig.poster.at(1).Header("webhook-id"), Id("a", "a2"));  // a1 was not sent again
  EXPECT_EQ(rig.hooks->stats().delivered, 1u);
}

TEST(Webhooks, StageNeverWaitsForAHangingPoster) {
  MemoryStore store;
  Rig rig(store);
  rig.poster.Hang(true);
  rig.Commit(MakeEvent("a", "a1"));
  ASSERT_TRUE(rig.poster.WaitFor(1));  // the delivery thread is now stuck in Post
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i)
    rig.Commit(MakeEvent("w" + std::to_string(i), "c" + std::to_string(i)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(rig.Count("w/o/"), 1001u);
  rig.poster.Hang(false);
  ASSERT_TRUE(rig.poster.WaitFor(4));  // concurrency 4
}

// --- The Beast client, against a real local server ---------------------------------------

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

// Serves on 127.0.0.1, one thread; each request is answered by `respond`
// (nullopt: never answer). Plain HTTP, or HTTPS with `tls`.
class LocalServer {
 public:
  using Respond = std::function<std::optional<http::response<http::string_body>>(
      const http::request<http::string_body>&)>;

  explicit LocalServer(Respond respond, net::ssl::context* tls = nullptr)
      : respond_(std::move(respond)),
        tls_(tls),
        acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~LocalServer() {
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<http::request<http::string_body>> requests() {
    std::lock_guard l(mu_);
    return requests_;
  }
  int handshake_failures() { return handshake_failures_; }
  // Precede each response with an interim "100 Continue".
  std::atomic<bool> send_interim{false};

 private:
  net::awaitable<void> Accept() {
    for (;;) {
      tcp::socket s = co_await acceptor_.async_accept(net::use_awaitable);
      net::co_spawn(ioc_, Serve(std::move(s)), net::detached);
    }
  }
  net::awaitable<void> Serve(tcp::socket s) {
    try {
      if (!tls_) co_return co_await Exchange(s);
      net::ssl::stream<tcp::socket> stream(std::move(s), *tls_);
      try {
        co_await stream.async_handshake(net::ssl::stream_base::server, net::use_awaitable);
      } catch (const std::exception&) {
        ++handshake_failures_;
        co_return;
      }
      co_await Exchange(stream);
    } catch (const std::exception&) {
    }
  }
  template <typename Stream>
  net::awaitable<void> Exchange(Stream& stream) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    co_await http::async_read(stream, buffer, req, net::use_awaitable);
    {
      std::lock_guard l(mu_);
      requests_.push_back(req);
    }
    auto res = respond_(req);
    if (!res) {  // hang until the server goes
      net::steady_timer forever(ioc_, std::chrono::hours(1));
      co_await forever.async_wait(net::use_awaitable);
      co_return;
    }
    res->prepare_payload();
    if (send_interim)
      co_await net::async_write(stream,
                                net::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")),
                                net::use_awaitable);
    co_await http::async_write(stream, *res, net::use_awaitable);
  }

  Respond respond_;
  net::ssl::context* tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::mutex mu_;
  std::vector<http::request<http::string_body>> requests_;  // guarded by mu_
  std::atomic<int> handshake_failures_{0};
  std::thread thread_;
};

http::response<http::string_body> HttpReply(http::status s) {
  http::response<http::string_body> res{s, 11};
  if (s != http::status::no_content) res.body() = "a body that is never read";
  return res;
}

// Posts and waits (real time) for the answer.
Result<HttpResponse> PostAndWait(HttpPoster& poster, const std::string& url,
                                 std::chrono::milliseconds timeout = 5s) {
  std::promise<Result<HttpResponse>> promise;
  poster.Post(url, {{"webhook-id", "evt_1"}, {"content-type", "application/json"}}, R"({"a":1})",
              timeout, [&](Result<HttpResponse> r) { promise.set_value(std::move(r)); });
  auto future = promise.get_future();
  if (future.wait_for(10s) != std::future_status::ready)
    return Status::IoError("test: no callback");
  return future.get();
}

TEST(Webhooks, BeastPosterPostsOverHttp) {
  LocalServer server([](const http::request<http::string_body>&) {
    auto res = HttpReply(http::status::service_unavailable);
    res.set(http::field::retry_after, "7");
    return res;
  });
  auto poster = BeastPoster::Create();
  ASSERT_TRUE(poster.ok()) << poster.status().ToString();
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/in?x=1";
  auto r = PostAndWait(**poster, url);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->retry_after, "7");

  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& req = requests[0];
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/in?x=1");
  EXPECT_EQ(req[http::field::host], "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(req["webhook-id"], "evt_1");
  EXPECT_EQ(req[http::field::content_type], "application/json");
  EXPECT_EQ(req.body(), R"({"a":1})");

  server.send_interim = true;  // the final status counts, not the interim one
  r = PostAndWait(**poster, url);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 503);
}

TEST(Webhooks, BeastPosterTimesOutAndReportsRefusals) {
  LocalServer silent([](const http::request<http::string_body>&) { return std::nullopt; });
  auto poster = BeastPoster::Create();
  ASSERT_TRUE(poster.ok());
  auto start = std::chrono::steady_clock::now();
  auto r = PostAndWait(**poster, "http://127.0.0.1:" + std::to_string(silent.port()) + "/", 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIoError);
  // The message is what an operator reads in last_error: a whole sentence.
  EXPECT_EQ(r.status().message(), "reading the response header of 127.0.0.1:" +
                                      std::to_string(silent.port()) + " timed out after 300 ms");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 3s);

  // A port nobody listens on: a closed server's.
  uint16_t closed;
  {
    LocalServer gone(
        [](const http::request<http::string_body>&) { return HttpReply(http::status::ok); });
    closed = gone.port();
  }
  r = PostAndWait(**poster, "http://127.0.0.1:" + std::to_string(closed) + "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "connecting to 127.0.0.1:" + std::to_string(closed) + " failed: Connection refused");

  r = PostAndWait(**poster, "ftp://127.0.0.1/");
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

// doc/webhooks.md: "Success is any 2xx status ... The response body is never
// read." Not even its announced size may matter.
TEST(Webhooks, BeastPosterTakesA2xxWhateverItsBodyOrBigHeaders) {
  std::atomic<int> header_kib{0};
  LocalServer server([&](const http::request<http::string_body>&) {
    auto res = HttpReply(http::status::ok);
    if (header_kib == 0) {
      res.body() = std::string(9 << 20, 'x');  // over Beast's default body limit of 8 MiB
    } else {
      for (int i = 0; i < header_kib; ++i)
        res.set("x-padding-" + std::to_string(i), std::string(1024 - 20, 'h'));
    }
    return res;
  });
  auto poster = BeastPoster::Create();
  ASSERT_TRUE(poster.ok());
  std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  auto r = PostAndWait(**poster, url);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);

  header_kib = 32;  // twice the former limit, as a proxy with cookies might send
  r = PostAndWait(**poster, url);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);

  header_kib = 300;  // over the limit: the status is not known, and the message says why
  r = PostAndWait(**poster, url);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "reading the response header of 127.0.0.1:" + std::to_string(server.port()) +
                " failed: it is over the limit of 256 KiB");
  auto small = BeastPoster::Create({.max_header_bytes = 1000});
  ASSERT_TRUE(small.ok());
  header_kib = 1;
  r = PostAndWait(**small, url);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().message().ends_with("failed: it is over the limit of 1000 bytes"))
      << r.status().message();
}

// A CA and a server certificate for "localhost", made for the test.
struct TestPki {
  std::string ca_pem, cert_pem, key_pem;
};

std::string Pem(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data;
  long n = BIO_get_mem_data(bio, &data);
  std::string s(data, n);
  BIO_free(bio);
  return s;
}

X509* MakeCert(EVP_PKEY* key, EVP_PKEY* signer, X509* issuer, const char* cn, bool ca) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const char* value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    EXPECT_NE(ext, nullptr) << value;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  };
  add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add(NID_subject_key_identifier, "hash");
  if (ca) {
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add(NID_authority_key_identifier, "keyid:always");
    add(NID_subject_alt_name, "DNS:localhost");
    add(NID_ext_key_usage, "serverAuth");
  }
  X509_sign(x, signer, EVP_sha256());
  return x;
}

TestPki MakePki() {
  EVP_PKEY* ca_key = EVP_EC_gen("P-256");
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* ca = MakeCert(ca_key, ca_key, nullptr, "EtherPly test CA", true);
  X509* cert = MakeCert(key, ca_key, ca, "localhost", false);
  TestPki pki{Pem(ca), Pem(cert), ""};
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data;
  long n = BIO_get_mem_data(bio, &data);
  pki.key_pem.assign(data, n);
  BIO_free(bio);
  X509_free(cert);
  X509_free(ca);
  EVP_PKEY_free(key);
  EVP_PKEY_free(ca_key);
  return pki;
}

TEST(Webhooks, BeastPosterVerifiesTheServerCertificate) {
  TestPki pki = MakePki();
  net::ssl::context server_tls(net::ssl::context::tls_server);
  server_tls.use_certificate_chain(net::buffer(pki.cert_pem));
  server_tls.use_private_key(net::buffer(pki.key_pem), net::ssl::context::pem);
  LocalServer server(
      [](const http::request<http::string_body>&) { return HttpReply(http::status::ok); },
      &server_tls);
  std::string port = std::to_string(server.port());
  auto ca_file = std::filesystem::temp_directory_path() /
                 ("etherply_webhooks_test_ca_" + std::to_string(getpid()) + ".pem");
  std::ofstream(ca_file) << pki.ca_pem;

  auto trusting = BeastPoster::Create({.ca_file = ca_file.string()});
  ASSERT_TRUE(trusting.ok()) << trusting.status().ToString();
  auto r = PostAndWait(**trusting, "https://localhost:" + port + "/hook");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].body(), R"({"a":1})");

  // The certificate does not name 127.0.0.1.
  r = PostAndWait(**trusting, "https://127.0.0.1:" + port + "/hook");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(
      r.status().message().starts_with("the TLS handshake with 127.0.0.1:" + port + " failed: "))
      << r.status().message();

  // The system's CAs do not include the test CA: verification is on by default.
  auto system = BeastPoster::Create();
  ASSERT_TRUE(system.ok()) << system.status().ToString();
  r = PostAndWait(**system, "https://localhost:" + port + "/hook");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("certificate verify failed"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(server.requests().size(), 1u);  // nothing was sent to an unverified server
  EXPECT_TRUE(Eventually([&] { return server.handshake_failures() == 2; }));

  EXPECT_FALSE(BeastPoster::Create({.ca_file = "/nonexistent/ca.pem"}).ok());
  std::filesystem::remove(ca_file);
}

// Everything real but the receiver's answer: store, poster, clock, server.
TEST(Webhooks, EndToEndOverHttp) {
  LocalServer server([](const http::request<http::string_body>& req) {
    // What a receiver does: verify, then answer 2xx.
    auto key = SigningKey::Parse(kSecret);
    bool ok =
        key->Sign(std::string(req["webhook-id"]), std::stoll(std::string(req["webhook-timestamp"])),
                  req.body()) == req["webhook-signature"];
    return HttpReply(ok ? http::status::no_content : http::status::unauthorized);
  });
  MemoryStore store;
  RealClock clock;
  auto poster = BeastPoster::Create();
  ASSERT_TRUE(poster.ok());
  Options o = TestOptions();
  o.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/hooks";
  auto hooks = Webhooks::Open(o, store, **poster, clock);
  ASSERT_TRUE(hooks.ok()) << hooks.status().ToString();
  (*hooks)->Start();
  WriteBatch batch;
  uint64_t seq = (*hooks)->Stage(MakeEvent("a", "a1"), batch);
  (*hooks)->Committed(seq, store.Write(batch));
  ASSERT_TRUE(Eventually([&] { return (*hooks)->stats().delivered == 1; }))
      << (*hooks)->stats().last_error;
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["webhook-id"], Id("a", "a1"));
  auto body = boost::json::parse(requests[0].body());
  EXPECT_EQ(body.at("type").as_string(), "doc.updated");
  EXPECT_EQ(body.at("data").at("value").as_string(), "hello");
}

}  // namespace
}  // namespace etherply::webhooks
