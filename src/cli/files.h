// Reading the files named on the command line: the JWT secret file, `doc`'s
// inputs. Every failure is a Status whose message names the file and says
// why ("somedir is a directory"); nothing throws.
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

}  // namespace etherply::cli
