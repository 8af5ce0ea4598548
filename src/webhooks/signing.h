// Standard Webhooks signatures (https://www.standardwebhooks.com/).
//
// Grammar of a secret, as given on the command line:
//
//   secret = "whsec_" base64(key)    ; RFC 4648 §4 base64 with its "=" padding,
//                                    ; canonical (unused bits zero), no spaces
//   key    = 24 to 64 bytes          ; the range the specification asks for
//
// A signature covers the message ID, the attempt's timestamp and the exact
// body bytes:
//
//   signed  = id "." timestamp "." body     ; timestamp: decimal Unix seconds
//   header  = "v1," base64(HMAC-SHA-256(key, signed))
//
// so that any Standard Webhooks library (e.g. the `standardwebhooks` npm
// package or Svix's) verifies a request given the same "whsec_..." string.
//
// Thread-safety: a SigningKey is an immutable value; Sign may be called from
// any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply::webhooks {

inline constexpr std::string_view kSecretPrefix = "whsec_";
inline constexpr size_t kMinKeyBytes = 24;
inline constexpr size_t kMaxKeyBytes = 64;

class SigningKey {
 public:
  // Parses a "whsec_..." secret. Fails with kInvalidArgument, and a message
  // that never quotes the secret, when the prefix is missing (e.g. a bare
  // base64 or hex string), the rest is not canonical base64, or the key is
  // shorter than kMinKeyBytes or longer than kMaxKeyBytes.
  static Result<SigningKey> Parse(std::string_view secret);

  // The webhook-signature header value for one attempt: "v1,<base64>".
  std::string Sign(std::string_view id, int64_t timestamp, std::string_view body) const;

 private:
  explicit SigningKey(Bytes key) : key_(std::move(key)) {}

  Bytes key_;
};

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(ByteView bytes);
// The inverse of Base64Encode, and only it: fails (kInvalidArgument) on any
// other spelling (missing or extra padding, non-zero unused bits, whitespace).
Result<Bytes> Base64Decode(std::string_view text);

}  // namespace etherply::webhooks
