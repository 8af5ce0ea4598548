// JSON Web Tokens (RFC 7519) signed with HS256 (HMAC-SHA-256, RFC 7515), and
// nothing else: the bearer tokens that admit a client to a workspace.
//
// Grammar of a token, as we write it and as we accept it:
//
//   token     = header "." payload "." signature      ; at most kMaxTokenBytes
//   header    = b64url(JSON object)    must hold "alg":"HS256"; "typ", if
//                                      present, must be "JWT"; "crit" is refused;
//                                      other members (e.g. "kid") are ignored
//   payload   = b64url(JSON object)    the claims below; other members ignored
//   signature = b64url(HMAC-SHA-256(secret, header "." payload))   ; 32 bytes
//   b64url    = base64url (RFC 4648 §5) without padding: only A-Z a-z 0-9 - _,
//               no '=', no '+' or '/', no whitespace, and unused bits zero
//               (so each byte string has exactly one spelling)
//
//   claim       JSON type                 meaning
//   sub         non-empty string          who; required
//   exp         NumericDate               expiry; required
//   nbf         NumericDate               not valid before; optional
//   iat         NumericDate               issued at; optional
//   aud         non-empty string, or      who the token is for; optional,
//               array of them             but see VerifyToken's audience
//   scope       string                    space-separated words "read",
//                                         "write", "admin"; other words are
//                                         ignored; absent = no scopes
//   workspaces  array of non-empty        the workspace ids the token covers;
//               strings                   "*" covers all; absent = none
//
// JSON is strict: UTF-8 only, no comments, no trailing commas, at most
// kMaxJsonDepth containers deep (the part's own object counts), and no object
// with the same key twice (RFC 7515 §5.2 lets a parser take the last one; we
// refuse the token instead). A NumericDate (RFC 7519 §2) is a JSON number of
// seconds since the epoch, a fraction allowed (1700000000, 1.7e9,
// 1700000000.5; not "1700000000"), within int64: a fraction is rounded the
// way that makes its check refuse sooner (exp down, nbf and iat up).
//
// Order of checks in VerifyToken: shape and base64url of all three parts, then
// the header, then the signature (in constant time), and only then is the
// payload parsed. Time checks come last.
//
// Thread-safety: free functions over values; Claims and Scopes are values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace etherply::auth {

inline constexpr size_t kMaxTokenBytes = 8 * 1024;
inline constexpr size_t kMaxJsonDepth = 8;
inline constexpr size_t kMinSecretBytes = 32;

enum class Scope : uint8_t {
  kRead = 1,
  kWrite = 2,
  kAdmin = 4,
};

// A set of scopes, always closed under implication: write implies read, admin
// implies write and read. A value type.
class Scopes {
 public:
  Scopes() = default;  // no scopes
  // The given scopes and every scope they imply.
  Scopes(std::initializer_list<Scope> scopes);

  // From a "scope" claim: words separated by spaces (runs of spaces allowed).
  // "read", "write" and "admin" are recognised, case-sensitively; every other
  // word is ignored. Never fails.
  static Scopes Parse(std::string_view scope_claim);

  bool Has(Scope s) const { return (bits_ & static_cast<uint8_t>(s)) != 0; }
  bool empty() const { return bits_ == 0; }

  // The words of the scopes held, in the order "read write admin"; "" if none.
  // Parse(ToString()) == *this.
  std::string ToString() const;

  bool operator==(const Scopes&) const = default;

 private:
  static uint8_t Close(uint8_t bits);  // adds the implied bits

  uint8_t bits_ = 0;
};

// What a verified token says. Times are seconds since the Unix epoch.
struct Claims {
  std::string sub;
  int64_t exp = 0;
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  Scopes scopes;
  std::vector<std::string> workspaces;
  std::vector<std::string> aud;  // empty: the token names no audience

  // True if `workspaces` holds "*" or exactly `id` (bytewise).
  bool CoversWorkspace(std::string_view id) const;
};

// The tolerance for clock skew that VerifyToken allows by default.
inline constexpr int64_t kLeewaySeconds = 60;

// Verifies `token` against `secret` at time `now_seconds`, for `audience`
// (empty: this server has none), and returns its claims.
//
// Rejects the token (kInvalidArgument) when it is empty or longer than
// kMaxTokenBytes, is not in the grammar above, names any algorithm but HS256,
// has a signature that does not match, lacks a valid `sub` or `exp`, or when,
// with `leeway_seconds` of tolerance for clock skew:
//   now > exp + leeway       "token expired"
//   now + leeway < nbf       "token not yet valid"
//   iat > now + leeway       "token issued in the future"
// and, as RFC 7519 §4.1.3 requires, when the token's `aud` does not name
// `audience` (a token naming an audience is refused by a server without
// one), or when `audience` is set and the token names none.
// Also fails (kInvalidArgument) on an empty secret or a negative leeway.
// Messages say what is wrong ("bad signature", "algorithm must be HS256",
// "malformed token: ...", "invalid claims: ...") and never quote the token,
// its claims or the secret.
Result<Claims> VerifyToken(std::string_view token, ByteView secret, int64_t now_seconds,
                           std::string_view audience = {}, int64_t leeway_seconds = kLeewaySeconds);

// A token for `claims`, signed with `secret`. Writes the header
// {"alg":"HS256","typ":"JWT"} and the payload members in the order sub, exp,
// iat, nbf (the optional ones only if set), scope (Scopes::ToString, also when
// empty), workspaces, aud (if set: a string if one, else an array). Does not check the claims or
// the secret: VerifyToken will refuse what it would refuse from anyone (e.g. an empty sub), and a
// secret should first pass CheckSecretStrength. Aborts only if OpenSSL cannot
// compute an HMAC (out of memory).
std::string MintToken(const Claims& claims, ByteView secret);

// OK if `secret` is at least kMinSecretBytes long (the HMAC-SHA-256 output
// size, RFC 7518 §3.2); kInvalidArgument otherwise. Never quotes the secret.
Status CheckSecretStrength(ByteView secret);

}  // namespace etherply::auth
