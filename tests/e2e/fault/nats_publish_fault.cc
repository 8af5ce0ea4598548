// A fault injector for the replication e2e tests, loaded with LD_PRELOAD into
// `etherply serve`: it stands in for nats.c's js_PublishMsgAsync and makes
// the calls listed in ETHERPLY_FAULT_PUBLISH (1-based call numbers, comma
// separated) fail with NATS_ERR without taking the message, as the client
// does when it cannot queue a publish. Every other call goes to nats.c.
#include <dlfcn.h>
#include <nats/nats.h>

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
