// The rule for workspace IDs, shared by the server (which refuses other IDs
// with 400) and the client library (which refuses them before connecting).
#pragma once

#include <string_view>

namespace etherply {

// 1 to 128 characters of [A-Za-z0-9._-]: safe in a URL path, a RocksDB key
// prefix and a NATS subject token without escaping.
bool IsValidWorkspaceId(std::string_view id);

}  // namespace etherply
