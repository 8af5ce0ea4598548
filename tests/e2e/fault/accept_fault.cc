// A fault injector for the e2e tests, loaded with LD_PRELOAD into
// `etherply serve`: while the file named by ETHERPLY_FAULT_ACCEPT_EMFILE
// exists, every accept fails with EMFILE, as when the process has no file
// descriptor left; the connections wait in the listen backlog. Removing the
// file lets them in.
#include <dlfcn.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>

namespace {

bool OutOfDescriptors() {
  static const char* flag = std::getenv("ETHERPLY_FAULT_ACCEPT_EMFILE");
  struct stat st;
  return flag && stat(flag, &st) == 0;
}

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
  static auto next = Next<int (*)(int, sockaddr*, socklen_t*)>("accept");
  if (OutOfDescriptors()) {
    errno = EMFILE;
    return -1;
  }
  return next(fd, addr, len);
}

extern "C" int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  static auto next = Next<int (*)(int, sockaddr*, socklen_t*, int)>("accept4");
  if (OutOfDescriptors()) {
    errno = EMFILE;
    return -1;
  }
  return next(fd, addr, len, flags);
}
