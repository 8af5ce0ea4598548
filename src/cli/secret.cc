#include "cli/secret.h"

#include <cstdlib>

#include "auth/jwt.h"
#include "cli/files.h"

namespace etherply::cli {

namespace {

// Far more than any secret; it bounds what a wrong path (/dev/zero) reads.
constexpr size_t kMaxSecretFileBytes = 64 * 1024;

}  // namespace

Result<Bytes> LoadJwtSecret(const std::optional<std::string>& secret_file) {
  Bytes secret;
  std::string source;
  if (secret_file) {
    auto content = ReadFileUpTo(*secret_file, kMaxSecretFileBytes);
    if (!content.ok())
      return Status::InvalidArgument("the JWT secret file: " + content.status().message());
    secret = std::move(*content);
    // Every trailing "\n" or "\r\n" and nothing else: as `$(cat FILE)`
    // drops trailing newlines, so a token minted with that in
    // $ETHERPLY_JWT_SECRET is signed with the same secret.
    while (!secret.empty() && secret.back() == '\n') {
      secret.pop_back();
      if (!secret.empty() && secret.back() == '\r') secret.pop_back();
    }
    source = "the JWT secret file " + *secret_file;
  } else if (const char* env = std::getenv("ETHERPLY_JWT_SECRET")) {
    std::string_view v(env);
    secret.assign(v.begin(), v.end());
    source = "ETHERPLY_JWT_SECRET";
  } else {
    return Status::InvalidArgument(
        "no JWT secret: set ETHERPLY_JWT_SECRET or pass --jwt-secret-file FILE "
        "(at least 32 bytes)");
  }
  if (Status s = auth::CheckSecretStrength(secret); !s.ok())
    return Status::InvalidArgument(source + " holds " + std::to_string(secret.size()) +
                                   " bytes; the JWT secret needs at least 32");
  return secret;
}

}  // namespace etherply::cli
