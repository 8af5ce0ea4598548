#include "webhooks/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>

namespace etherply::webhooks {

std::string Base64Encode(ByteView bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  if (!bytes.empty()) {
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
  }
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  // EVP_DecodeBlock is lenient (whitespace, padding counted as zero bytes);
  // decoding, trimming the padding, and insisting that encoding gives the
  // input back leaves exactly one accepted spelling per byte string.
  if (text.size() % 4 != 0)
    return Status::InvalidArgument("not base64: length not a multiple of 4");
  Bytes out(text.size() / 4 * 3);
  if (!text.empty()) {
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) return Status::InvalidArgument("not base64");
    size_t pad = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
    out.resize(static_cast<size_t>(n) - pad);
  }
  if (Base64Encode(out) != text) return Status::InvalidArgument("not canonical base64");
  return out;
}

Result<SigningKey> SigningKey::Parse(std::string_view secret) {
  if (!secret.starts_with(kSecretPrefix))
    return Status::InvalidArgument(
        "the webhook secret must be in the Standard Webhooks format: \"whsec_\" followed by the "
        "base64 of the key");
  auto key = Base64Decode(secret.substr(kSecretPrefix.size()));
  if (!key.ok())
    return Status::InvalidArgument("the webhook secret after \"whsec_\" is " +
                                   key.status().message());
  if (key->size() < kMinKeyBytes || key->size() > kMaxKeyBytes)
    return Status::InvalidArgument("the webhook secret's key is " + std::to_string(key->size()) +
                                   " bytes; it must be " + std::to_string(kMinKeyBytes) + " to " +
                                   std::to_string(kMaxKeyBytes));
  return SigningKey(std::move(*key));
}

std::string SigningKey::Sign(std::string_view id, int64_t timestamp, std::string_view body) const {
  std::string content;
  std::string ts = std::to_string(timestamp);
  content.reserve(id.size() + ts.size() + body.size() + 2);
  content.append(id).append(".").append(ts).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac,
           &len) == nullptr)
    std::abort();  // OpenSSL out of memory: nothing sensible to send
  return "v1," + Base64Encode(ByteView(mac, len));
}

}  // namespace etherply::webhooks
