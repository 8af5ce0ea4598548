#include "base/deflate.h"

#include <zlib.h>

namespace etherply {

Bytes Deflate(ByteView in) {
  z_stream zs{};
  // windowBits -15: raw DEFLATE. Level 6 is zlib's default, as Rust's flate2.
  deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&zs, in.size()));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

Result<Bytes> Inflate(ByteView in, size_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return Status::IoError("zlib inflateInit2 failed");
  Bytes out;
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  uint8_t probe;  // one byte of room past the limit: zlib writing it means "too big"
  while (rc != Z_STREAM_END) {
    size_t old = out.size();
    size_t grow = std::min<size_t>(std::max<size_t>(old, 4096), max_out - old);
    if (grow == 0) {
      zs.next_out = &probe;
      zs.avail_out = 1;
      rc = inflate(&zs, Z_NO_FLUSH);
      if (zs.avail_out == 0) {
        inflateEnd(&zs);
        return Status::Corruption("inflated data exceeds the size limit");
      }
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        inflateEnd(&zs);
        return Status::Corruption("invalid DEFLATE stream");
      }
      if (zs.avail_in == 0 || rc == Z_BUF_ERROR) {
        inflateEnd(&zs);
        return Status::Corruption("truncated DEFLATE stream");
      }
      continue;
    }
    out.resize(old + grow);
    zs.next_out = out.data() + old;
    zs.avail_out = static_cast<uInt>(grow);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.resize(old + grow - zs.avail_out);
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK) {
      inflateEnd(&zs);
      return Status::Corruption("invalid DEFLATE stream");
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Status::Corruption("truncated DEFLATE stream");
    }
  }
  bool trailing = zs.avail_in != 0;
  inflateEnd(&zs);
  if (trailing) return Status::Corruption("bytes after the end of the DEFLATE stream");
  return out;
}

}  // namespace etherply
