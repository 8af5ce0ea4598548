#include "cli/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace etherply::cli {

namespace {

// "what: <the text of errno>".
Status ErrnoError(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

// "1 GiB", "64 KiB", "100 bytes".
std::string SizeText(size_t n) {
  if (n > 0 && n % (size_t{1} << 30) == 0) return std::to_string(n >> 30) + " GiB";
  if (n > 0 && n % (size_t{1} << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n > 0 && n % (size_t{1} << 10) == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

Status TooLarge(const std::string& path, size_t max_bytes) {
  return Status::InvalidArgument(path + " holds more than " + SizeText(max_bytes));
}

Status ReadAll(int fd, const std::string& path, size_t max_bytes, Bytes& data) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoError("cannot read " + path);
  if (S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + " is a directory");
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return TooLarge(path, max_bytes);
    data.reserve(static_cast<size_t>(st.st_size));
  }
  constexpr size_t kChunk = 64 * 1024;
  size_t size = 0;
  for (;;) {
    data.resize(size + kChunk);
    ssize_t n = read(fd, data.data() + size, kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot read " + path);
    if (n == 0) break;
    size += static_cast<size_t>(n);
    if (size > max_bytes) return TooLarge(path, max_bytes);
  }
  data.resize(size);
  return Status::Ok();
}

}  // namespace

Result<Bytes> ReadFileUpTo(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path);
  Bytes data;
  Status s = ReadAll(fd, path, max_bytes, data);
  close(fd);
  if (!s.ok()) return s;
  return data;
}

}  // namespace etherply::cli
