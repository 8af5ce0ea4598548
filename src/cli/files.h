// Reading and writing the files named on the command line: the JWT secret
// file, `doc`'s inputs and outputs. Every failure is a Status whose message
// names the file and says why ("somedir is a directory", "cannot write
// /dev/full: No space left on device"); nothing throws.
#pragma once

#include <cstddef>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply::cli {

// The whole content of `path`: a regular file, a device, a FIFO or a pipe
// (/dev/stdin), read to its end. Fails, having read at most `max_bytes` + 1
// bytes, when there are more than `max_bytes`; fails on a directory and on
// any error of open(2) or read(2).
Result<Bytes> ReadFileUpTo(const std::string& path, size_t max_bytes);

// Writes `data` as the whole content of `path`.
//   - A symlink is followed: its target is what is written.
//   - Where that is a regular file, or nothing yet, the write is atomic: a
//     temporary file beside it, synced, then renamed over it. On failure the
//     file is untouched and the temporary is gone. An existing file keeps its
//     permission bits; a new one gets 0666 less the umask.
//   - Anything else is written in place, as it cannot be replaced: a device
//     such as /dev/null, a FIFO (opened and appended to), and /dev/stdout or
//     /dev/fd/N (links in /proc to this process's open descriptors, written
//     as they are, whatever file, pipe or socket they hold). A failed write
//     may leave part of `data` there.
Status WriteFileAtomically(const std::string& path, ByteView data);

}  // namespace etherply::cli
