// A fault injector for the replication e2e tests, loaded with LD_PRELOAD into
// `etherply serve`. It stands in for two of nats.c's calls:
// - js_PublishMsgAsync: the calls listed in ETHERPLY_FAULT_PUBLISH (1-based
//   call numbers, comma separated) fail with NATS_ERR without taking the
//   message, as the client does when it cannot queue a publish;
// - js_GetConsumerInfo: while the file ETHERPLY_FAULT_SLOW_JS names exists,
//   each call waits 5 s (the node's request timeout) and times out, as with
//   a JetStream that does not answer; core NATS works on.
// Every other call goes to nats.c.
#include <dlfcn.h>
#include <nats/nats.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::atomic<long> calls{0};

bool ShouldFail(long call) {
  const char* list = std::getenv("ETHERPLY_FAULT_PUBLISH");
  if (!list) return false;
  for (const char* p = list; *p;) {
    char* end = nullptr;
    long n = std::strtol(p, &end, 10);
    if (end == p) return false;
    if (n == call) return true;
    p = *end == ',' ? end + 1 : end;
  }
  return false;
}

}  // namespace

extern "C" natsStatus js_PublishMsgAsync(jsCtx* js, natsMsg** msg, jsPubOptions* opts) {
  using Real = natsStatus (*)(jsCtx*, natsMsg**, jsPubOptions*);
  static Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "js_PublishMsgAsync"));
  if (ShouldFail(++calls)) return NATS_ERR;
  return real(js, msg, opts);
}

extern "C" natsStatus js_GetConsumerInfo(jsConsumerInfo** ci, jsCtx* js, const char* stream,
                                         const char* consumer, jsOptions* opts, jsErrCode* err) {
  using Real =
      natsStatus (*)(jsConsumerInfo**, jsCtx*, const char*, const char*, jsOptions*, jsErrCode*);
  static Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "js_GetConsumerInfo"));
  const char* flag = std::getenv("ETHERPLY_FAULT_SLOW_JS");
  struct stat st;
  if (flag && stat(flag, &st) == 0) {
    sleep(5);
    return NATS_TIMEOUT;
  }
  return real(ci, js, stream, consumer, opts, err);
}
