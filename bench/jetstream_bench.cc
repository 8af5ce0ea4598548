// etherply_jetstream_bench: raw JetStream through nats.c, the baseline for
// replicated op throughput and latency (bench/run_replication.sh).
//
//   etherply_jetstream_bench --url nats://HOST:PORT [--messages N]
//                            [--bytes B] [--batch K] [--latency-samples L]
//                            [--consumers C]
//
// Throughput: N messages of B bytes published to a fresh stream (file
// storage, one replica) asynchronously, K at a time, waiting for every
// acknowledgment of a batch before the next, each with a message ID, as
// EtherPly's publisher does (src/replication/nats_replicator.cc).
// With --consumers C, C durable pull consumers of the stream, each on its own
// connection, fetch 256 at a time and acknowledge each fetched batch once
// (AckAll) while the messages are published, as EtherPly's nodes do (each
// node's consumer receives every change, its own too): the publish rate is
// then timed until every consumer has received every message, and reported
// as "publish_consumed_per_s".
// Latency: L messages published one at a time (waiting for the ack), each
// timed from the publish call to its arrival at a push consumer of the same
// stream in this process.
// Output: one JSON line, {"messages":..,"bytes":..,"batch":..,"publish_per_s":..,
//   "latency_us":{"p50":..,"p99":..,"max":..}[,"consumers":C]}
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "samples.h"

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& what, natsStatus s) {
  std::fprintf(stderr, "etherply_jetstream_bench: %s: %s\n", what.c_str(), natsStatus_GetText(s));
  std::exit(1);
}

std::atomic<bool> g_publish_failed{false};
void OnPublishError(jsCtx*, jsPubAckErr*, void*) { g_publish_failed = true; }

struct Arrivals {
  std::mutex mu;
  std::condition_variable cv;
  int64_t last_ns = 0;
  uint64_t count = 0;
};

void OnMessage(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* a = static_cast<Arrivals*>(closure);
  int64_t now = NowNs();
  {
    std::lock_guard lock(a->mu);
    a->last_ns = now;
    ++a->count;
  }
  a->cv.notify_all();
  natsMsg_Destroy(msg);
}

// Drains a durable pull consumer of `stream` on its own connection until it
// has `messages`; acknowledges each fetched batch with its last message.
void Consume(const std::string& url, const std::string& stream, const std::string& name,
             long messages, std::atomic<long>& received) {
  natsConnection* nc = nullptr;
  if (natsStatus s = natsConnection_ConnectTo(&nc, url.c_str()); s != NATS_OK)
    Die("consumer connect", s);
  jsCtx* js = nullptr;
  natsConnection_JetStream(&js, nc, nullptr);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.AckPolicy = js_AckAll;
  so.Config.MaxAckPending = 1024;
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_PullSubscribe(&sub, js, ("bench." + stream).c_str(), name.c_str(),
                                      nullptr, &so, &jerr);
      s != NATS_OK)
    Die("pull subscribe", s);
  long got = 0;
  while (got < messages) {
    natsMsgList list{nullptr, 0};
    natsStatus s = natsSubscription_Fetch(&list, sub, 256, 1000, &jerr);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) Die("fetch", s);
    if (list.Count > 0) natsMsg_Ack(list.Msgs[list.Count - 1], nullptr);
    got += list.Count;
    received += list.Count;
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  long messages = 100000, bytes = 150, batch = 512, samples = 2000, consumers = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--url") url = argv[i + 1];
    else if (f == "--messages") messages = std::atol(argv[i + 1]);
    else if (f == "--bytes") bytes = std::atol(argv[i + 1]);
    else if (f == "--batch") batch = std::atol(argv[i + 1]);
    else if (f == "--latency-samples") samples = std::atol(argv[i + 1]);
    else if (f == "--consumers") consumers = std::atol(argv[i + 1]);
    else {
      std::fprintf(stderr, "etherply_jetstream_bench: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (url.empty() || messages <= 0 || bytes <= 0 || batch <= 0 || samples <= 0 || consumers < 0) {
    std::fprintf(stderr,
                 "usage: etherply_jetstream_bench --url nats://HOST:PORT [--messages N] "
                 "[--bytes B] [--batch K] [--latency-samples L] [--consumers C]\n");
    return 2;
  }
  natsConnection* nc = nullptr;
  if (natsStatus s = natsConnection_ConnectTo(&nc, url.c_str()); s != NATS_OK) Die("connect", s);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = 4 * batch;
  jo.PublishAsync.ErrHandler = &OnPublishError;
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, &jo); s != NATS_OK) Die("jetstream", s);

  const std::string stream = "BENCH_" + std::to_string(NowNs());
  const std::string subject = "bench." + stream;
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = stream.c_str();
  const char* subjects[] = {subject.c_str()};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (natsStatus s = js_AddStream(&si, js, &cfg, nullptr, &jerr); s != NATS_OK)
    Die("add stream", s);
  jsStreamInfo_Destroy(si);

  std::atomic<long> consumed{0};
  std::vector<std::thread> consumer_threads;
  for (long c = 0; c < consumers; ++c)
    consumer_threads.emplace_back(Consume, url, stream, "bench_consumer_" + std::to_string(c),
                                  messages, std::ref(consumed));
  std::string payload(static_cast<size_t>(bytes), 'x');
  int64_t t0 = NowNs();
  for (long sent = 0; sent < messages;) {
    long n = std::min(batch, messages - sent);
    for (long i = 0; i < n; ++i) {
      natsMsg* m = nullptr;
      natsMsg_Create(&m, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
      std::string id = "m" + std::to_string(sent + i);
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MsgId = id.c_str();
      if (natsStatus s = js_PublishMsgAsync(js, &m, &po); s != NATS_OK) Die("publish", s);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    if (natsStatus s = js_PublishAsyncComplete(js, &po); s != NATS_OK) Die("acks", s);
    if (g_publish_failed) Die("a publish was refused", NATS_ERR);
    sent += n;
  }
  for (std::thread& t : consumer_threads) t.join();  // every consumer has every message
  double seconds = (NowNs() - t0) / 1e9;

  // Latency: publish, wait for the ack, time the arrival at a push consumer.
  Arrivals arrivals;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Config.DeliverPolicy = js_DeliverNew;
  so.Config.AckPolicy = js_AckNone;
  natsSubscription* sub = nullptr;
  if (natsStatus s = js_Subscribe(&sub, js, subject.c_str(), &OnMessage, &arrivals, nullptr, &so,
                                  &jerr);
      s != NATS_OK)
    Die("subscribe", s);
  etherply::bench::Samples lat;
  lat.Reserve(samples);
  for (long i = 0; i < samples; ++i) {
    uint64_t before;
    {
      std::lock_guard lock(arrivals.mu);
      before = arrivals.count;
    }
    int64_t start = NowNs();
    jsPubAck* pa = nullptr;
    if (natsStatus s = js_Publish(&pa, js, subject.c_str(), payload.data(),
                                  static_cast<int>(payload.size()), nullptr, &jerr);
        s != NATS_OK)
      Die("publish (latency)", s);
    jsPubAck_Destroy(pa);
    std::unique_lock lock(arrivals.mu);
    if (!arrivals.cv.wait_for(lock, std::chrono::seconds(10),
                              [&] { return arrivals.count > before; }))
      Die("a message did not arrive", NATS_TIMEOUT);
    lat.Add(arrivals.last_ns - start);
  }
  etherply::bench::Summary latency = lat.Summarize();

  natsSubscription_Destroy(sub);
  js_DeleteStream(js, stream.c_str(), nullptr, &jerr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  std::printf(
      "{\"messages\":%ld,\"bytes\":%ld,\"batch\":%ld,\"%s\":%.0f,"
      "\"latency_us\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%.0f},\"consumers\":%ld}\n",
      messages, bytes, batch, consumers ? "publish_consumed_per_s" : "publish_per_s",
      messages / seconds, latency.p50_us, latency.p99_us, latency.max_us, consumers);
  return 0;
}
