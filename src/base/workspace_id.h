// The rule for workspace IDs, shared by the server (which refuses other IDs
// with 400) and the client library (which refuses them before connecting).
#pragma once

#include <string_view>

namespace etherply {

// 1 to 128 characters of [A-Za-z0-9._-], safe in a URL path and a RocksDB
// key without escaping; not "." or "..", which URL clients (curl, fetch, ws)
// take for dot segments and remove from the path (RFC 3986 §5.2.4).
bool IsValidWorkspaceId(std::string_view id);

// The rule above, as error messages say it.
inline constexpr const char* kWorkspaceIdRule = "1 to 128 of A-Z a-z 0-9 . _ -, not . or ..";

}  // namespace etherply
