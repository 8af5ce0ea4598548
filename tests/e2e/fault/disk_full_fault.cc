// A fault injector for the e2e tests, loaded with LD_PRELOAD into
// `etherply serve`: while the file named by ETHERPLY_FAULT_DISK_FULL exists,
// every write to a regular file fails with ENOSPC, as on a full disk;
// sockets and pipes are untouched. Removing the file frees the "disk".
// While the file named by ETHERPLY_FAULT_DISK_STALL exists, fsync and
// fdatasync do not return, as on a disk that stopped answering.
#include <dlfcn.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>

namespace {

bool DiskFull(int fd) {
  static const char* flag = std::getenv("ETHERPLY_FAULT_DISK_FULL");
  struct stat st;
  if (!flag || stat(flag, &st) != 0) return false;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" ssize_t write(int fd, const void* buf, size_t n) {
  static auto next = Next<ssize_t (*)(int, const void*, size_t)>("write");
  if (DiskFull(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return next(fd, buf, n);
}

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  static auto next = Next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  if (DiskFull(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return next(fd, buf, n, offset);
}

extern "C" ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  static auto next = Next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  if (DiskFull(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return next(fd, buf, n, offset);
}

extern "C" ssize_t writev(int fd, const struct iovec* iov, int count) {
  static auto next = Next<ssize_t (*)(int, const struct iovec*, int)>("writev");
  if (DiskFull(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return next(fd, iov, count);
}

extern "C" int fallocate(int fd, int mode, off_t offset, off_t len) {
  static auto next = Next<int (*)(int, int, off_t, off_t)>("fallocate");
  if (DiskFull(fd)) {
    errno = ENOSPC;
    return -1;
  }
  return next(fd, mode, offset, len);
}

namespace {

void WaitWhileStalled() {
  static const char* flag = std::getenv("ETHERPLY_FAULT_DISK_STALL");
  struct stat st;
  while (flag && stat(flag, &st) == 0) usleep(10'000);
}

}  // namespace

extern "C" int fsync(int fd) {
  static auto next = Next<int (*)(int)>("fsync");
  WaitWhileStalled();
  return next(fd);
}

extern "C" int fdatasync(int fd) {
  static auto next = Next<int (*)(int)>("fdatasync");
  WaitWhileStalled();
  return next(fd);
}
