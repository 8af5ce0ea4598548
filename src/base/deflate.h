// Raw DEFLATE (RFC 1951, no zlib or gzip header) through zlib.
#pragma once

#include <cstddef>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply {

Bytes Deflate(ByteView in);

// Inflates a complete raw DEFLATE stream. Fails with kCorruption on a broken
// stream, on bytes after its end, or when the output would exceed max_out
// bytes (a guard against decompression bombs).
Result<Bytes> Inflate(ByteView in, size_t max_out);

}  // namespace etherply
