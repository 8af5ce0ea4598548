#include "auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <set>

namespace etherply::auth {

namespace json = boost::json;

namespace {

using Mac = std::array<uint8_t, 32>;

Status Malformed(std::string_view what) {
  return Status::InvalidArgument("malformed token: " + std::string(what));
}
Status BadClaims(std::string_view what) {
  return Status::InvalidArgument("invalid claims: " + std::string(what));
}

// --- base64url without padding (RFC 4648 §5) ---------------------------------

constexpr char kB64UrlDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int B64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string EncodeB64Url(ByteView in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : in) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64UrlDigits[(acc >> bits) & 63]);
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) out.push_back(kB64UrlDigits[(acc << (6 - bits)) & 63]);
  return out;
}

// Decodes the one canonical spelling of a byte string: fails on any character
// outside the alphabet (including '=', '+', '/'), on a length that leaves a
// single character over (no byte string encodes to that), and on nonzero
// unused bits in the last character.
std::optional<Bytes> DecodeB64Url(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  Bytes out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = B64UrlValue(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
    acc &= (1u << bits) - 1;
  }
  if (acc != 0) return std::nullopt;  // leftover bits must be zero
  return out;
}

// --- HMAC-SHA-256 ---------------------------------------------------------------

std::optional<Mac> HmacSha256(ByteView key, std::string_view data) {
  if (key.size() > INT_MAX) return std::nullopt;
  static const uint8_t kNoKey = 0;  // OpenSSL wants a non-null pointer
  Mac mac;
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.empty() ? &kNoKey : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(),
           &len) == nullptr ||
      len != mac.size()) {
    return std::nullopt;
  }
  return mac;
}

// --- strict JSON ------------------------------------------------------------------

json::parse_options StrictOptions() {
  json::parse_options opt;  // defaults: no comments, no trailing commas, UTF-8 only
  opt.max_depth = kMaxJsonDepth;
  return opt;
}

// A basic_parser handler that builds nothing and fails on the first object
// that repeats a key (Boost.JSON's DOM would silently keep the last one).
class DuplicateKeyFinder {
 public:
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);

  bool found() const { return found_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    bool fresh = keys_.back().insert(std::move(key_)).second;
    key_.clear();
    if (!fresh) {
      found_ = true;
      ec = json::make_error_code(json::error::syntax);
      return false;
    }
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  std::vector<std::set<std::string>> keys_;  // one per open object
  std::string key_;                          // the key being read
  bool found_ = false;
};

// Parses a decoded part (`what` is "header" or "payload") that must be one
// JSON object, strictly as described in jwt.h.
Result<json::object> ParseObject(const Bytes& text, std::string_view what) {
  std::string_view s = AsChars(text);
  json::parse_options opt = StrictOptions();

  // Pass 1: syntax, depth and duplicate keys, building nothing.
  json::basic_parser<DuplicateKeyFinder> checker(opt);
  json::error_code ec;
  size_t used = checker.write_some(false, s.data(), s.size(), ec);
  if (checker.handler().found()) {
    return Malformed(std::string(what) + " repeats a key");
  }
  if (ec || used != s.size()) {
    return Malformed(std::string(what) + " is not valid JSON (" + ec.message() + ")");
  }

  // Pass 2: the DOM.
  json::value v = json::parse(s, ec, {}, opt);
  if (ec) return Malformed(std::string(what) + " is not valid JSON (" + ec.message() + ")");
  if (!v.is_object()) return Malformed(std::string(what) + " is not a JSON object");
  return std::move(v.as_object());
}

// How a NumericDate with a fraction becomes whole seconds: the way that
// makes its check refuse sooner, by under a second.
enum class Round { kDown, kUp };

// A NumericDate claim (RFC 7519 §2: seconds, a fraction allowed) in whole
// seconds; nullopt if absent.
Result<std::optional<int64_t>> SecondsClaim(const json::object& payload, std::string_view name,
                                            Round round) {
  const json::value* v = payload.if_contains(name);
  if (v == nullptr) return std::optional<int64_t>();
  if (v->is_int64()) return std::optional<int64_t>(v->get_int64());
  if (v->is_uint64()) return BadClaims(std::string(name) + " is out of range");  // > INT64_MAX
  if (v->is_double()) {
    double d = round == Round::kDown ? std::floor(v->get_double()) : std::ceil(v->get_double());
    // [-2^63, 2^63): every double in it converts exactly.
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
      return BadClaims(std::string(name) + " is out of range");
    return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return BadClaims(std::string(name) + " must be a number of seconds");
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

Status CheckHeader(const json::object& header) {
  const json::value* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") {
    return Status::InvalidArgument("algorithm must be HS256");
  }
  const json::value* typ = header.if_contains("typ");
  if (typ != nullptr && !(typ->is_string() && typ->get_string() == "JWT")) {
    return Status::InvalidArgument("token type must be JWT");
  }
  if (header.contains("crit")) {
    return Status::InvalidArgument("critical header parameters are not supported");
  }
  return Status::Ok();
}

Result<Claims> ClaimsFromPayload(const json::object& payload) {
  Claims c;

  const json::value* sub = payload.if_contains("sub");
  if (sub == nullptr) return BadClaims("missing sub");
  if (!sub->is_string() || sub->get_string().empty()) {
    return BadClaims("sub must be a non-empty string");
  }
  c.sub = std::string(sub->get_string());

  auto exp = SecondsClaim(payload, "exp", Round::kDown);
  if (!exp.ok()) return exp.status();
  if (!exp->has_value()) return BadClaims("missing exp");
  c.exp = **exp;

  auto nbf = SecondsClaim(payload, "nbf", Round::kUp);
  if (!nbf.ok()) return nbf.status();
  c.nbf = *nbf;

  auto iat = SecondsClaim(payload, "iat", Round::kUp);
  if (!iat.ok()) return iat.status();
  c.iat = *iat;

  if (const json::value* scope = payload.if_contains("scope")) {
    if (!scope->is_string()) return BadClaims("scope must be a string");
    c.scopes = Scopes::Parse(scope->get_string());
  }

  if (const json::value* ws = payload.if_contains("workspaces")) {
    if (!ws->is_array()) return BadClaims("workspaces must be an array of strings");
    for (const json::value& w : ws->get_array()) {
      if (!w.is_string() || w.get_string().empty()) {
        return BadClaims("workspaces must hold non-empty strings");
      }
      c.workspaces.emplace_back(w.get_string());
    }
  }

  if (const json::value* aud = payload.if_contains("aud")) {
    if (aud->is_string()) {
      c.aud.emplace_back(aud->get_string());
    } else if (aud->is_array()) {
      for (const json::value& a : aud->get_array()) {
        if (!a.is_string()) return BadClaims("aud must be a string or an array of strings");
        c.aud.emplace_back(a.get_string());
      }
    } else {
      return BadClaims("aud must be a string or an array of strings");
    }
    for (const std::string& a : c.aud)
      if (a.empty()) return BadClaims("aud must not hold an empty string");
    if (c.aud.empty()) return BadClaims("aud must not be an empty array");
  }
  return c;
}

}  // namespace

// --- Scopes -------------------------------------------------------------------------

uint8_t Scopes::Close(uint8_t bits) {
  if (bits & static_cast<uint8_t>(Scope::kAdmin)) bits |= static_cast<uint8_t>(Scope::kWrite);
  if (bits & static_cast<uint8_t>(Scope::kWrite)) bits |= static_cast<uint8_t>(Scope::kRead);
  return bits;
}

Scopes::Scopes(std::initializer_list<Scope> scopes) {
  for (Scope s : scopes) bits_ |= static_cast<uint8_t>(s);
  bits_ = Close(bits_);
}

Scopes Scopes::Parse(std::string_view scope_claim) {
  Scopes out;
  while (!scope_claim.empty()) {
    size_t space = scope_claim.find(' ');
    std::string_view word = scope_claim.substr(0, space);
    scope_claim.remove_prefix(space == std::string_view::npos ? scope_claim.size() : space + 1);
    if (word == "read") {
      out.bits_ |= static_cast<uint8_t>(Scope::kRead);
    } else if (word == "write") {
      out.bits_ |= static_cast<uint8_t>(Scope::kWrite);
    } else if (word == "admin") {
      out.bits_ |= static_cast<uint8_t>(Scope::kAdmin);
    }
  }
  out.bits_ = Close(out.bits_);
  return out;
}

std::string Scopes::ToString() const {
  std::string out;
  for (auto [scope, word] : {std::pair{Scope::kRead, "read"}, std::pair{Scope::kWrite, "write"},
                             std::pair{Scope::kAdmin, "admin"}}) {
    if (!Has(scope)) continue;
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

// --- Claims ----------------------------------------------------------------------

bool Claims::CoversWorkspace(std::string_view id) const {
  for (const std::string& w : workspaces) {
    if (w == "*" || w == id) return true;
  }
  return false;
}

// --- VerifyToken -------------------------------------------------------------------

Result<Claims> VerifyToken(std::string_view token, ByteView secret, int64_t now_seconds,
                           std::string_view audience, int64_t leeway_seconds) {
  if (secret.empty()) return Status::InvalidArgument("secret is empty");
  if (leeway_seconds < 0) return Status::InvalidArgument("leeway must not be negative");

  // Parse: three parts, each canonical base64url.
  if (token.empty()) return Malformed("empty");
  if (token.size() > kMaxTokenBytes) {
    return Malformed("longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Malformed("expected three dot-separated parts");
  }
  std::string_view signing_input = token.substr(0, dot2);
  std::optional<Bytes> header_json = DecodeB64Url(token.substr(0, dot1));
  if (!header_json) return Malformed("header is not unpadded base64url");
  std::optional<Bytes> payload_json = DecodeB64Url(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_json) return Malformed("payload is not unpadded base64url");
  std::optional<Bytes> signature = DecodeB64Url(token.substr(dot2 + 1));
  if (!signature) return Malformed("signature is not unpadded base64url");

  // The header decides how to verify; only HS256 is acceptable.
  Result<json::object> header = ParseObject(*header_json, "header");
  if (!header.ok()) return header.status();
  if (Status s = CheckHeader(*header); !s.ok()) return s;

  // Verify before the payload is even parsed.
  std::optional<Mac> expected = HmacSha256(secret, signing_input);
  if (!expected) return Status::InvalidArgument("cannot compute HMAC-SHA-256");
  if (signature->size() != expected->size() ||
      CRYPTO_memcmp(signature->data(), expected->data(), expected->size()) != 0) {
    return Status::InvalidArgument("bad signature");
  }

  // Admit: the claims, then time.
  Result<json::object> payload = ParseObject(*payload_json, "payload");
  if (!payload.ok()) return payload.status();
  Result<Claims> claims = ClaimsFromPayload(*payload);
  if (!claims.ok()) return claims.status();

  if (now_seconds > SaturatingAdd(claims->exp, leeway_seconds)) {
    return Status::InvalidArgument("token expired");
  }
  if (claims->nbf && SaturatingAdd(now_seconds, leeway_seconds) < *claims->nbf) {
    return Status::InvalidArgument("token not yet valid");
  }
  if (claims->iat && *claims->iat > SaturatingAdd(now_seconds, leeway_seconds)) {
    return Status::InvalidArgument("token issued in the future");
  }
  if (audience.empty() && !claims->aud.empty())
    return Status::InvalidArgument(
        "the token names an audience (aud) and this server has none (--jwt-audience)");
  if (!audience.empty() && claims->aud.empty())
    return Status::InvalidArgument("the token names no audience (aud); this server requires one");
  if (!audience.empty() &&
      std::find(claims->aud.begin(), claims->aud.end(), audience) == claims->aud.end())
    return Status::InvalidArgument("the token's audience (aud) is not this server's");
  return claims;
}

// --- MintToken ----------------------------------------------------------------------

std::string MintToken(const Claims& claims, ByteView secret) {
  json::object payload;
  payload.emplace("sub", claims.sub);
  payload.emplace("exp", claims.exp);
  if (claims.iat) payload.emplace("iat", *claims.iat);
  if (claims.nbf) payload.emplace("nbf", *claims.nbf);
  payload.emplace("scope", claims.scopes.ToString());
  json::array workspaces;
  for (const std::string& w : claims.workspaces) workspaces.emplace_back(w);
  payload.emplace("workspaces", std::move(workspaces));
  if (claims.aud.size() == 1) {
    payload.emplace("aud", claims.aud[0]);
  } else if (!claims.aud.empty()) {
    json::array aud;
    for (const std::string& a : claims.aud) aud.emplace_back(a);
    payload.emplace("aud", std::move(aud));
  }

  std::string token = EncodeB64Url(AsBytes(R"({"alg":"HS256","typ":"JWT"})"));
  token += '.';
  token += EncodeB64Url(AsBytes(json::serialize(payload)));
  std::optional<Mac> mac = HmacSha256(secret, token);
  if (!mac) std::abort();  // OpenSSL out of memory; there is no token to give
  token += '.';
  token += EncodeB64Url(*mac);
  return token;
}

// --- CheckSecretStrength ----------------------------------------------------------------

Status CheckSecretStrength(ByteView secret) {
  if (secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument("JWT secret must be at least " +
                                   std::to_string(kMinSecretBytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace etherply::auth
