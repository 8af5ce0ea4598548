#include "cli/files.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

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

// Writes all of data to fd; false with errno set if a write fails.
bool WriteAll(int fd, ByteView data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Where a write to `path` lands: the end of its chain of symlinks (which
// need not exist yet), or path itself. A link in /proc (/dev/stdout leads to
// /proc/self/fd/1) names an open file, not a path: the chain ends there.
Result<std::string> FollowSymlinks(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p = path;
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(p, ec))) return p.string();
    struct statfs where;
    fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (statfs(dir.c_str(), &where) == 0 && where.f_type == PROC_SUPER_MAGIC) return p.string();
    fs::path target = fs::read_symlink(p, ec);
    if (ec) return Status::IoError("cannot read the symlink " + p.string() + ": " + ec.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  return Status::InvalidArgument(path + ": too many levels of symbolic links");
}

// N if path is /proc/self/fd/N (where /dev/stdout and /dev/fd/N lead) or
// /proc/PID/fd/N of this process: a descriptor to write to as it is, which
// works for a socket too, where opening the link fails.
std::optional<int> OwnDescriptor(const std::filesystem::path& path) {
  std::string dir = path.parent_path().string();
  if (dir != "/proc/self/fd" && dir != "/proc/" + std::to_string(getpid()) + "/fd")
    return std::nullopt;
  std::string name = path.filename().string();
  int fd = -1;
  auto r = std::from_chars(name.data(), name.data() + name.size(), fd);
  if (name.empty() || r.ec != std::errc() || r.ptr != name.data() + name.size())
    return std::nullopt;
  return fd;
}

// Writes into what is there (a device, a FIFO, an open file): this
// process's descriptor, else the path opened for appending.
Status WriteInPlace(const std::string& path, ByteView data) {
  std::optional<int> own = OwnDescriptor(path);
  int fd = own ? *own : open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open " + path);
  Status s;
  if (!WriteAll(fd, data)) s = ErrnoError("cannot write " + path);
  if (!own && close(fd) != 0 && s.ok()) s = ErrnoError("cannot write " + path);
  return s;
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

Status WriteFileAtomically(const std::string& path, ByteView data) {
  auto target = FollowSymlinks(path);
  if (!target.ok()) return target.status();
  struct stat st, link;
  mode_t mode;
  if (stat(target->c_str(), &st) == 0) {
    // Not a file that a rename could replace (a device, a FIFO), or a link
    // in /proc to an open file: written in place.
    bool proc_link = lstat(target->c_str(), &link) == 0 && S_ISLNK(link.st_mode);
    if (!S_ISREG(st.st_mode) || proc_link) return WriteInPlace(*target, data);
    mode = st.st_mode & 07777;
  } else {
    mode_t mask = umask(0);
    umask(mask);
    mode = 0666 & ~mask;
  }
  std::string tmp = *target + ".tmp-XXXXXX";
  int fd = mkstemp(tmp.data());
  if (fd < 0) return ErrnoError("cannot create a temporary file beside " + *target);
  Status s;
  if (fchmod(fd, mode) != 0 || !WriteAll(fd, data) || fsync(fd) != 0)
    s = ErrnoError("cannot write " + *target);
  if (close(fd) != 0 && s.ok()) s = ErrnoError("cannot write " + *target);
  if (s.ok() && std::rename(tmp.c_str(), target->c_str()) != 0)
    s = ErrnoError("cannot replace " + *target);
  if (!s.ok()) std::remove(tmp.c_str());
  return s;
}

}  // namespace etherply::cli
