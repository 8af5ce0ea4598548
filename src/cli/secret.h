// Where the JWT secret comes from, for `serve` and `token` alike: the file
// named by --jwt-secret-file, else the environment variable
// ETHERPLY_JWT_SECRET. A file's trailing newlines ("\n" or "\r\n", however
// many) are not part of the secret, as `$(cat FILE)` drops them too; any other
// byte is. The secret must be at least 32 bytes.
#pragma once

#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply::cli {

// Fails (InvalidArgument, saying why) when the file cannot be read, is a
// directory, or the secret is missing or shorter than 32 bytes.
Result<Bytes> LoadJwtSecret(const std::optional<std::string>& secret_file);

}  // namespace etherply::cli
