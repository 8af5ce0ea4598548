// HS256 JWTs (jwt.h): what MintToken writes VerifyToken reads back, tokens
// from node's crypto verify, and VerifyToken refuses everything else: tokens of
// the wrong shape or alphabet, every algorithm but HS256, altered or
// wrongly-keyed signatures, malformed or duplicate-keyed JSON, missing or
// mistyped claims, and tokens outside their time window. No failure message
// quotes the token, its claims or the secret.
#include "auth/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace etherply::auth {
namespace {

constexpr std::string_view kSecret = "etherply-test-secret-0123456789abcdef";  // 36 bytes
constexpr int64_t kNow = 1700000000;
constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::string_view kPayload = R"({"sub":"alice","exp":1700003600})";

ByteView Secret() { return AsBytes(kSecret); }

// Unpadded base64url through OpenSSL's standard base64, independent of the
// encoder under test.
std::string B64Url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::string Hmac(const EVP_MD* md, std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<char*>(mac), len);
}

// A token with exactly these header and payload bytes, correctly signed.
std::string Sign(std::string_view header, std::string_view payload,
                 std::string_view secret = kSecret, const EVP_MD* md = EVP_sha256()) {
  std::string input = B64Url(header) + "." + B64Url(payload);
  return input + "." + B64Url(Hmac(md, secret, input));
}

std::string Payload(std::string_view members) {
  return R"({"sub":"alice","exp":1700003600)" + std::string(members.empty() ? "" : ",") +
         std::string(members) + "}";
}

std::vector<std::string> Split(const std::string& token) {
  std::vector<std::string> parts(1);
  for (char c : token) {
    if (c == '.') {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

// A token's payload JSON, decoded with OpenSSL's standard base64.
std::string DecodedPayload(const std::string& token) {
  std::string part = Split(token).at(1);
  for (char& c : part) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  size_t pad = (4 - part.size() % 4) % 4;
  part.append(pad, '=');
  std::string out(part.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(part.data()),
                          static_cast<int>(part.size()));
  out.resize(n < 0 ? 0 : n - pad);
  return out;
}

// Expects VerifyToken to refuse `token` with a message containing `want`,
// and the message to quote neither the secret, nor the token or any of its
// parts, nor the subject.
void ExpectRejected(const std::string& token, std::string_view want, int64_t now = kNow,
                    int64_t leeway = 60) {
  SCOPED_TRACE(token.size() > 200 ? token.substr(0, 200) + "..." : token);
  Result<Claims> r = VerifyToken(token, Secret(), now, {}, leeway);
  ASSERT_FALSE(r.ok()) << "accepted";
  const Status s = r.status();
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find(want), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find(kSecret), std::string::npos) << s.ToString();
  EXPECT_EQ(s.message().find("alice"), std::string::npos) << s.ToString();
  if (!token.empty()) {
    EXPECT_EQ(s.message().find(token), std::string::npos) << s.ToString();
  }
  for (const std::string& part : Split(token)) {
    if (part.size() >= 4) {
      EXPECT_EQ(s.message().find(part), std::string::npos) << s.ToString();
    }
  }
}

Claims VerifyOk(const std::string& token, int64_t now = kNow, int64_t leeway = 60) {
  Result<Claims> r = VerifyToken(token, Secret(), now, {}, leeway);
  EXPECT_TRUE(r.ok()) << r.status().ToString() << " for " << token;
  return r.ok() ? *r : Claims{};
}

// --- what we write we read ------------------------------------------------------

TEST(Jwt, RoundTripAllClaims) {
  Claims c;
  c.sub = "user:42";
  c.exp = kNow + 3600;
  c.nbf = kNow - 5;
  c.iat = kNow - 10;
  c.scopes = Scopes{Scope::kWrite};
  c.workspaces = {"ws-a", "ws-b"};
  Claims got = VerifyOk(MintToken(c, Secret()));
  EXPECT_EQ(got.sub, "user:42");
  EXPECT_EQ(got.exp, kNow + 3600);
  EXPECT_EQ(got.nbf, kNow - 5);
  EXPECT_EQ(got.iat, kNow - 10);
  EXPECT_EQ(got.scopes, (Scopes{Scope::kRead, Scope::kWrite}));
  EXPECT_EQ(got.workspaces, (std::vector<std::string>{"ws-a", "ws-b"}));
}

TEST(Jwt, RoundTripMinimalClaims) {
  Claims c;
  c.sub = "svc";
  c.exp = kNow;
  Claims got = VerifyOk(MintToken(c, Secret()));
  EXPECT_EQ(got.sub, "svc");
  EXPECT_EQ(got.exp, kNow);
  EXPECT_FALSE(got.nbf.has_value());
  EXPECT_FALSE(got.iat.has_value());
  EXPECT_TRUE(got.scopes.empty());
  EXPECT_TRUE(got.workspaces.empty());
  EXPECT_FALSE(got.CoversWorkspace("anything"));
}

// RFC 7519 §4.1.3: a token that names an audience is for that audience only.
TEST(Jwt, AnAudienceOnEitherSideMustBeMatchedByTheOther) {
  auto verify = [](const std::string& token, std::string_view audience) {
    return VerifyToken(token, Secret(), kNow, audience);
  };
  auto message = [](const Result<Claims>& r) { return r.ok() ? "accepted" : r.status().message(); };
  const std::string none = Sign(kHeader, Payload(""));
  const std::string ours = Sign(kHeader, Payload(R"("aud":"etherply")"));
  const std::string among = Sign(kHeader, Payload(R"("aud":["other","etherply"])"));
  const std::string theirs = Sign(kHeader, Payload(R"("aud":["other"])"));
  EXPECT_TRUE(verify(none, "").ok());
  EXPECT_EQ(message(verify(ours, "")),
            "the token names an audience (aud) and this server has none (--jwt-audience)");
  EXPECT_EQ(message(verify(none, "etherply")),
            "the token names no audience (aud); this server requires one");
  EXPECT_EQ(message(verify(theirs, "etherply")), "the token's audience (aud) is not this server's");
  EXPECT_EQ(message(verify(ours, "Etherply")), "the token's audience (aud) is not this server's");
  ASSERT_TRUE(verify(ours, "etherply").ok());
  EXPECT_EQ(verify(among, "etherply")->aud, (std::vector<std::string>{"other", "etherply"}));
  for (const char* bad : {R"("aud":5)", R"("aud":[])", R"("aud":"")", R"("aud":["a",""])",
                          R"("aud":["a",1])", R"("aud":null)"}) {
    Result<Claims> r = verify(Sign(kHeader, Payload(bad)), "a");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("invalid claims: aud must"), std::string::npos)
        << bad << ": " << r.status().ToString();
  }
}

TEST(Jwt, MintTokenWritesTheAudienceAsAStringOrAnArray) {
  Claims c;
  c.sub = "svc";
  c.exp = kNow;
  c.aud = {"etherply"};
  std::string one = MintToken(c, Secret());
  EXPECT_NE(DecodedPayload(one).find(R"("aud":"etherply")"), std::string::npos)
      << DecodedPayload(one);
  EXPECT_EQ(VerifyToken(one, Secret(), kNow, "etherply")->aud, c.aud);
  c.aud = {"a", "b"};
  std::string two = MintToken(c, Secret());
  EXPECT_NE(DecodedPayload(two).find(R"("aud":["a","b"])"), std::string::npos)
      << DecodedPayload(two);
  EXPECT_EQ(VerifyToken(two, Secret(), kNow, "b")->aud, c.aud);
}

TEST(Jwt, RoundTripNonAsciiSubject) {
  Claims c;
  c.sub = "Zoë \"quoted\" \\ \n";
  c.exp = kNow + 1;
  EXPECT_EQ(VerifyOk(MintToken(c, Secret())).sub, c.sub);
}

TEST(Jwt, MintedTokenIsCanonicalBase64Url) {
  Claims c;
  c.sub = "a?>~";  // JSON bytes that standard base64 would spell with '+' or '/'
  c.exp = kNow + 1;
  c.workspaces = {"???", ">>>"};
  std::string token = MintToken(c, Secret());
  EXPECT_EQ(token.find_first_of("+/= \n"), std::string::npos) << token;
  EXPECT_EQ(Split(token).size(), 3u);
  EXPECT_EQ(Split(token)[2].size(), 43u);  // 32 bytes, unpadded
}

// --- interop with node's crypto ---------------------------------------------------------

// Both tokens generated once with:
//   node -e '
//   const c=require("crypto");const s="etherply-test-secret-0123456789abcdef";
//   const b=o=>Buffer.from(JSON.stringify(o)).toString("base64url");
//   const t=(h,p)=>{const i=b(h)+"."+b(p);
//     return i+"."+c.createHmac("sha256",s).update(i).digest("base64url")};
//   console.log(t({typ:"JWT",alg:"HS256",kid:"k1"},{iss:"node",sub:"user-42",
//     scope:"write unknown",workspaces:["ws-a","ws-b"],iat:1700000000,
//     exp:1700003600,nbf:1699999990}));
//   console.log(t({alg:"HS256",typ:"JWT"},{sub:"alice",exp:1700003600,
//     iat:1700000000,nbf:1700000000,scope:"read write",workspaces:["*"]}));'
constexpr std::string_view kNodeToken =
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0."
    "eyJpc3MiOiJub2RlIiwic3ViIjoidXNlci00MiIsInNjb3BlIjoid3JpdGUgdW5rbm93biIsIndvcmtzcGFjZXMiOl"
    "sid3MtYSIsIndzLWIiXSwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDAsIm5iZiI6MTY5OTk5OTk5MH0."
    "c0u0-6gihNyT6_bRh2afL4NJkt-BTssOdT8tndJpOyw";
constexpr std::string_view kNodeTokenInOurLayout =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwLCJuYmYiOjE3MDAwMDAwMDAsInNj"
    "b3BlIjoicmVhZCB3cml0ZSIsIndvcmtzcGFjZXMiOlsiKiJdfQ."
    "LJIzUaucCkLgMvkeE1Y-GI1GirCEi-qcIvxj0gKMpmI";

TEST(Jwt, NodeTokenVerifies) {
  // Header members in another order plus "kid"; an unknown claim ("iss") and
  // an unknown scope word, both ignored.
  Claims got = VerifyOk(std::string(kNodeToken));
  EXPECT_EQ(got.sub, "user-42");
  EXPECT_EQ(got.exp, 1700003600);
  EXPECT_EQ(got.iat, 1700000000);
  EXPECT_EQ(got.nbf, 1699999990);
  EXPECT_EQ(got.scopes, Scopes{Scope::kWrite});
  EXPECT_TRUE(got.CoversWorkspace("ws-b"));
  EXPECT_FALSE(got.CoversWorkspace("ws-c"));
}

TEST(Jwt, MintMatchesNodeByteForByte) {
  // Same claims, same member order: our token is node's token, so node's
  // createHmac verifies ours.
  Claims c;
  c.sub = "alice";
  c.exp = 1700003600;
  c.iat = 1700000000;
  c.nbf = 1700000000;
  c.scopes = Scopes{Scope::kWrite};
  c.workspaces = {"*"};
  EXPECT_EQ(MintToken(c, Secret()), kNodeTokenInOurLayout);
  EXPECT_EQ(VerifyOk(std::string(kNodeTokenInOurLayout)).sub, "alice");
}

TEST(Jwt, TestHelperSignMatchesMint) {
  // Sign() is the raw-bytes forger used below; it must agree with MintToken.
  Claims c;
  c.sub = "alice";
  c.exp = 1700003600;
  EXPECT_EQ(MintToken(c, Secret()),
            Sign(kHeader, R"({"sub":"alice","exp":1700003600,"scope":"","workspaces":[]})"));
  VerifyOk(Sign(kHeader, kPayload));
}

// --- shape and alphabet ------------------------------------------------------------

TEST(Jwt, EmptyTokenRejected) { ExpectRejected("", "malformed token: empty"); }

TEST(Jwt, GarbageRejected) {
  ExpectRejected("garbage", "malformed token: expected three");
  ExpectRejected("Bearer " + Sign(kHeader, kPayload), "malformed token");
  ExpectRejected("..", "malformed token");
  ExpectRejected("a.b.c", "malformed token");
  ExpectRejected(std::string("\0\0.\0.\0", 6), "malformed token");
  ExpectRejected("\xff\xfe.\x80.\xc0", "malformed token");
}

TEST(Jwt, TwoPartsRejected) {
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  ExpectRejected(p[0] + "." + p[1], "malformed token: expected three dot-separated parts");
  ExpectRejected(p[0] + p[1] + "." + p[2], "malformed token: expected three");
}

TEST(Jwt, FourPartsRejected) {
  std::string token = Sign(kHeader, kPayload);
  ExpectRejected(token + ".", "malformed token: expected three dot-separated parts");
  ExpectRejected(token + ".AAAA", "malformed token: expected three");
  ExpectRejected("." + token, "malformed token: expected three");
}

TEST(Jwt, EmptyPartsRejected) {
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  ExpectRejected("." + p[1] + "." + p[2], "malformed token: header is not valid JSON");
  ExpectRejected(p[0] + ".." + p[2], "bad signature");
  ExpectRejected(p[0] + "." + p[1] + ".", "bad signature");
}

TEST(Jwt, PaddingRejected) {
  // A 27-byte header encodes to 36 characters, so pad a part that needs it:
  // the 32-byte signature (43 characters) would take one '='.
  std::string token = Sign(kHeader, kPayload);
  ExpectRejected(token + "=", "malformed token: signature is not unpadded base64url");
  std::vector<std::string> p = Split(token);
  std::string payload = B64Url(kPayload);
  ASSERT_NE(payload.size() % 4, 0u);
  ExpectRejected(p[0] + "." + payload + "=." + p[2],
                 "malformed token: payload is not unpadded base64url");
}

TEST(Jwt, StandardAlphabetRejected) {
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  for (char c : {'+', '/'}) {
    std::string header = p[0];
    header[3] = c;
    ExpectRejected(header + "." + p[1] + "." + p[2],
                   "malformed token: header is not unpadded base64url");
    std::string sig = p[2];
    sig[0] = c;
    ExpectRejected(p[0] + "." + p[1] + "." + sig,
                   "malformed token: signature is not unpadded base64url");
  }
}

TEST(Jwt, WhitespaceRejected) {
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  ExpectRejected(p[0] + " ." + p[1] + "." + p[2], "malformed token: header is not unpadded");
  ExpectRejected(p[0] + "." + p[1] + "\n." + p[2], "malformed token: payload is not unpadded");
  ExpectRejected(p[0] + "." + p[1] + "." + p[2] + "\r\n", "malformed token: signature");
}

TEST(Jwt, ImpossibleBase64LengthRejected) {
  // 4k+1 characters encode no byte string.
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  ASSERT_EQ(p[2].size() % 4, 3u);
  ExpectRejected(p[0] + "." + p[1] + "." + p[2] + "AA",
                 "malformed token: signature is not unpadded base64url");
}

TEST(Jwt, NonCanonicalBase64Rejected) {
  // The signature's last character carries 4 bits and 2 unused ones; setting
  // an unused bit spells the same bytes differently, which we refuse rather
  // than let two strings pass for one token.
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t v = kAlphabet.find(p[2].back());
  ASSERT_EQ(v & 3, 0u);
  std::string sig = p[2];
  sig.back() = kAlphabet[v | 1];
  ExpectRejected(p[0] + "." + p[1] + "." + sig,
                 "malformed token: signature is not unpadded base64url");
}

TEST(Jwt, HugeTokenRejected) {
  ExpectRejected(std::string(kMaxTokenBytes + 1, 'A'), "malformed token: longer than 8192 bytes");
  ExpectRejected(std::string(64 * 1024, '.'), "malformed token: longer than");

  // Correctly signed, just under and just over the limit.
  std::string under, over;
  for (size_t n = 6000; over.empty(); ++n) {
    std::string t = Sign(kHeader, Payload(R"("pad":")" + std::string(n, 'x') + "\""));
    if (t.size() <= kMaxTokenBytes) under = t;
    if (t.size() > kMaxTokenBytes) over = t;
  }
  EXPECT_GT(under.size(), kMaxTokenBytes - 4);
  VerifyOk(under);
  ExpectRejected(over, "malformed token: longer than 8192 bytes");
}

// --- the header --------------------------------------------------------------------

TEST(Jwt, AlgNoneRejected) {
  std::string unsigned_token = B64Url(R"({"alg":"none"})") + "." + B64Url(kPayload) + ".";
  ExpectRejected(unsigned_token, "algorithm must be HS256");
  unsigned_token = B64Url(R"({"alg":"none","typ":"JWT"})") + "." + B64Url(kPayload) + ".";
  ExpectRejected(unsigned_token, "algorithm must be HS256");
  ExpectRejected(Sign(R"({"alg":"none"})", kPayload), "algorithm must be HS256");
}

TEST(Jwt, AlgHs384RejectedEvenWhenCorrectlySigned) {
  ExpectRejected(Sign(R"({"alg":"HS384","typ":"JWT"})", kPayload, kSecret, EVP_sha384()),
                 "algorithm must be HS256");
  ExpectRejected(Sign(R"({"alg":"HS512","typ":"JWT"})", kPayload, kSecret, EVP_sha512()),
                 "algorithm must be HS256");
}

TEST(Jwt, HS384SignatureUnderHs256HeaderRejected) {
  ExpectRejected(Sign(kHeader, kPayload, kSecret, EVP_sha384()), "bad signature");
}

TEST(Jwt, OtherAlgorithmsRejected) {
  for (std::string_view header : {
           R"({"alg":"hs256","typ":"JWT"})",
           R"({"alg":"Hs256"})",
           R"({"alg":"HS256 "})",
           R"({"alg":" HS256"})",
           R"({"alg":"HS2560"})",
           R"({"alg":"RS256","typ":"JWT"})",
           R"({"alg":"ES256"})",
           R"({"alg":"PS256"})",
           R"({"alg":"HS256\u0000"})",
           R"({"alg":["HS256"]})",
           R"({"alg":null})",
           R"({"alg":256})",
           R"({"typ":"JWT"})",  // no alg at all
           R"({})",
           R"({"ALG":"HS256"})",
       }) {
    ExpectRejected(Sign(header, kPayload), "algorithm must be HS256");
  }
}

TEST(Jwt, TypMustBeJwtWhenPresent) {
  VerifyOk(Sign(R"({"alg":"HS256"})", kPayload));
  VerifyOk(Sign(R"({"alg":"HS256","typ":"JWT","kid":"2024-1"})", kPayload));
  for (std::string_view header :
       {R"({"alg":"HS256","typ":"jwt"})", R"({"alg":"HS256","typ":"JWS"})",
        R"({"alg":"HS256","typ":"at+jwt"})", R"({"alg":"HS256","typ":null})",
        R"({"alg":"HS256","typ":1})"}) {
    ExpectRejected(Sign(header, kPayload), "token type must be JWT");
  }
}

TEST(Jwt, CritRejected) {
  ExpectRejected(Sign(R"({"alg":"HS256","crit":["exp"],"exp":1})", kPayload),
                 "critical header parameters are not supported");
  ExpectRejected(Sign(R"({"alg":"HS256","crit":[]})", kPayload), "critical header");
}

TEST(Jwt, HeaderNotAnObjectRejected) {
  ExpectRejected(Sign(R"(["HS256"])", kPayload), "malformed token: header is not a JSON object");
  ExpectRejected(Sign(R"("HS256")", kPayload), "malformed token: header is not a JSON object");
  ExpectRejected(Sign("null", kPayload), "malformed token: header is not a JSON object");
  ExpectRejected(Sign("{", kPayload), "malformed token: header is not valid JSON");
  ExpectRejected(Sign(R"({"alg":"HS256"} {})", kPayload), "malformed token: header is not valid");
}

TEST(Jwt, HeaderWithDuplicateAlgRejected) {
  // Some parsers keep the first, Boost.JSON the last; we keep neither.
  ExpectRejected(Sign(R"({"alg":"none","alg":"HS256"})", kPayload),
                 "malformed token: header repeats a key");
  ExpectRejected(Sign(R"({"alg":"HS256","alg":"HS256"})", kPayload), "header repeats a key");
  // Same key spelled with an escape.
  ExpectRejected(Sign(R"({"alg":"HS256","\u0061lg":"HS256"})", kPayload), "repeats a key");
}

// --- the signature -----------------------------------------------------------------

// The token `token` with one bit of part `part`'s decoded bytes flipped.
std::string FlipBit(std::string_view header, std::string_view payload, int part, size_t byte,
                    uint8_t bit) {
  std::vector<std::string> p = Split(Sign(header, payload));
  std::string raw = part == 0 ? std::string(header) : part == 1 ? std::string(payload) : "";
  if (part == 2) raw = Hmac(EVP_sha256(), kSecret, p[0] + "." + p[1]);
  raw.at(byte) = static_cast<char>(raw.at(byte) ^ bit);
  p[part] = B64Url(raw);
  return p[0] + "." + p[1] + "." + p[2];
}

TEST(Jwt, BadSignatureBitFlippedInSignature) {
  for (size_t byte : {0u, 15u, 31u}) {
    for (uint8_t bit : {0x01, 0x80}) {
      ExpectRejected(FlipBit(kHeader, kPayload, 2, byte, bit), "bad signature");
    }
  }
}

TEST(Jwt, BadSignatureBitFlippedInPayload) {
  // "alice" -> "alicd": still valid JSON with valid claims, differently signed.
  size_t at = kPayload.find("alice") + 4;
  ExpectRejected(FlipBit(kHeader, kPayload, 1, at, 0x01), "bad signature");
  // exp 1700003600 -> 1700003601.
  at = kPayload.find("3600") + 3;
  ExpectRejected(FlipBit(kHeader, kPayload, 1, at, 0x01), "bad signature");
}

TEST(Jwt, BadSignatureBitFlippedInHeader) {
  // kid "a" -> "`": a header that passes every header check.
  std::string_view header = R"({"alg":"HS256","typ":"JWT","kid":"a"})";
  ExpectRejected(FlipBit(header, kPayload, 0, header.find("\"a\"") + 1, 0x01), "bad signature");
}

TEST(Jwt, SignatureOfWrongLengthRejected) {
  std::vector<std::string> p = Split(Sign(kHeader, kPayload));
  std::string mac = Hmac(EVP_sha256(), kSecret, p[0] + "." + p[1]);
  ExpectRejected(p[0] + "." + p[1] + "." + B64Url(mac.substr(0, 31)), "bad signature");
  ExpectRejected(p[0] + "." + p[1] + "." + B64Url(mac.substr(0, 16)), "bad signature");
  ExpectRejected(p[0] + "." + p[1] + "." + B64Url(mac + std::string(1, '\0')), "bad signature");
  ExpectRejected(p[0] + "." + p[1] + "." + B64Url(mac + mac), "bad signature");
}

TEST(Jwt, WrongSecretRejected) {
  std::string other(kSecret);
  other.back() ^= 1;
  ExpectRejected(Sign(kHeader, kPayload, other), "bad signature");
  ExpectRejected(Sign(kHeader, kPayload, kSecret.substr(0, 32)), "bad signature");
  ExpectRejected(Sign(kHeader, kPayload, std::string(kSecret) + "x"), "bad signature");
  ExpectRejected(Sign(kHeader, kPayload, ""), "bad signature");
}

TEST(Jwt, SignatureCheckedBeforePayloadIsParsed) {
  // A payload that is not JSON at all, under a bad signature, is reported as
  // a bad signature: unverified payload bytes are never parsed.
  std::string token = Sign(kHeader, "not json", "some other secret");
  ExpectRejected(token, "bad signature");
  // The same payload correctly signed reaches the parser.
  ExpectRejected(Sign(kHeader, "not json"), "malformed token: payload is not valid JSON");
}

TEST(Jwt, EmptySecretRefused) {
  std::string token = Sign(kHeader, kPayload, "");
  Result<Claims> r = VerifyToken(token, ByteView(), kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "secret is empty");
}

TEST(Jwt, NegativeLeewayRefused) {
  Result<Claims> r = VerifyToken(Sign(kHeader, kPayload), Secret(), kNow, {}, -1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "leeway must not be negative");
}

// --- the payload -------------------------------------------------------------------

TEST(Jwt, PayloadNotAnObjectRejected) {
  for (std::string_view payload :
       {"[]", R"(["alice"])", R"("alice")", "null", "1700003600", "true"}) {
    ExpectRejected(Sign(kHeader, payload), "malformed token: payload is not a JSON object");
  }
}

TEST(Jwt, PayloadNotStrictJsonRejected) {
  for (std::string_view payload : {
           R"({"sub":"alice","exp":1700003600)",              // cut short
           R"({"sub":"alice","exp":1700003600,})",            // trailing comma
           R"(/*c*/{"sub":"alice","exp":1700003600})",        // comment
           R"({"sub":"alice","exp":1700003600}x)",            // trailing bytes
           R"({"sub":"alice","exp":1700003600}{})",           // two documents
           R"({'sub':'alice','exp':1700003600})",             // single quotes
           R"({sub:"alice",exp:1700003600})",                 // bare keys
           "{\"sub\":\"al\xff\xfeice\",\"exp\":1700003600}",  // not UTF-8
           R"({"sub":"alice","exp":0x6553f100})",             // hex
           R"({"sub":"alice","exp":NaN})",
       }) {
    ExpectRejected(Sign(kHeader, payload), "malformed token: payload is not valid JSON");
  }
}

TEST(Jwt, PayloadDuplicateClaimRejected) {
  ExpectRejected(Sign(kHeader, R"({"sub":"alice","exp":1,"exp":1700003600})"),
                 "malformed token: payload repeats a key");
  ExpectRejected(Sign(kHeader, Payload(R"("scope":"read","scope":"admin")")),
                 "payload repeats a key");
  // Nested objects have their own keys: the same name at two levels is fine.
  VerifyOk(Sign(kHeader, Payload(R"("ext":{"sub":1,"exp":2})")));
  ExpectRejected(Sign(kHeader, Payload(R"("ext":{"a":1,"a":2})")), "payload repeats a key");
}

TEST(Jwt, NestingDeeperThanLimitRejected) {
  auto nested = [](size_t depth) {  // the payload itself is one level
    return Payload(R"("ext":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']'));
  };
  VerifyOk(Sign(kHeader, nested(kMaxJsonDepth)));
  ExpectRejected(Sign(kHeader, nested(kMaxJsonDepth + 1)),
                 "malformed token: payload is not valid JSON");
  ExpectRejected(Sign(kHeader, nested(1000)), "malformed token: payload is not valid JSON");
  ExpectRejected(Sign(R"({"alg":"HS256","x":[[[[[[[[[]]]]]]]]]})", kPayload),
                 "malformed token: header is not valid JSON");
}

TEST(Jwt, MissingSubRejected) {
  ExpectRejected(Sign(kHeader, R"({"exp":1700003600})"), "invalid claims: missing sub");
}

TEST(Jwt, EmptyOrMistypedSubRejected) {
  for (std::string_view payload :
       {R"({"sub":"","exp":1700003600})", R"({"sub":42,"exp":1700003600})",
        R"({"sub":null,"exp":1700003600})", R"({"sub":["alice"],"exp":1700003600})"}) {
    ExpectRejected(Sign(kHeader, payload), "invalid claims: sub must be a non-empty string");
  }
}

TEST(Jwt, MissingExpRejected) {
  ExpectRejected(Sign(kHeader, R"({"sub":"alice"})"), "invalid claims: missing exp");
}

TEST(Jwt, ExpNotANumberRejected) {
  for (std::string_view exp : {R"("1700003600")", "null", "true", "[1700003600]", "{}"}) {
    ExpectRejected(Sign(kHeader, R"({"sub":"alice","exp":)" + std::string(exp) + "}"),
                   "invalid claims: exp must be a number of seconds");
  }
}

// RFC 7519 §2: a NumericDate may have a fraction.
TEST(Jwt, FractionalTimesRoundTheWayThatRefusesSooner) {
  for (std::string_view exp : {"1700003600.0", "1.7000036e9", "1700003600.5", "1700003600.999"})
    EXPECT_EQ(VerifyOk(Sign(kHeader, R"({"sub":"alice","exp":)" + std::string(exp) + "}")).exp,
              1700003600)
        << exp;
  Claims c = VerifyOk(Sign(kHeader, Payload(R"("nbf":1699999999.25,"iat":1699999998.5)")));
  EXPECT_EQ(c.nbf, 1700000000);
  EXPECT_EQ(c.iat, 1699999999);
  // At the edge: rounded up, exp + leeway would be now, still valid.
  ExpectRejected(Sign(kHeader, R"({"sub":"alice","exp":1699999939.9})"), "token expired");
  EXPECT_EQ(VerifyOk(Sign(kHeader, R"({"sub":"alice","exp":1699999940})")).exp, 1699999940);
  ExpectRejected(Sign(kHeader, Payload(R"("nbf":1700000060.1)")), "token not yet valid");
}

TEST(Jwt, ExpBeyondInt64Rejected) {
  for (std::string_view exp :
       {"9223372036854775808", "99999999999999999999", "9.3e18", "-9.3e18", "1e400"}) {
    SCOPED_TRACE(exp);
    ExpectRejected(Sign(kHeader, R"({"sub":"alice","exp":)" + std::string(exp) + "}"),
                   "invalid claims: exp is out of range");
  }
}

TEST(Jwt, NbfAndIatMustBeNumbers) {
  ExpectRejected(Sign(kHeader, Payload(R"("nbf":"0")")),
                 "invalid claims: nbf must be a number of seconds");
  ExpectRejected(Sign(kHeader, Payload(R"("iat":null)")), "invalid claims: iat must be");
}

// --- time ---------------------------------------------------------------------------

std::string WithExp(int64_t exp) {
  return Sign(kHeader, R"({"sub":"alice","exp":)" + std::to_string(exp) + "}");
}

TEST(Jwt, ExpiredRejected) {
  ExpectRejected(WithExp(kNow - 61), "token expired");
  ExpectRejected(WithExp(kNow - 1), "token expired", kNow, /*leeway=*/0);
  ExpectRejected(WithExp(0), "token expired");
  ExpectRejected(WithExp(INT64_MIN), "token expired");
}

TEST(Jwt, ExpiredWithinLeewayAccepted) {
  VerifyOk(WithExp(kNow - 60));  // now == exp + leeway
  VerifyOk(WithExp(kNow - 30));
  VerifyOk(WithExp(kNow), kNow, 0);  // now == exp
  VerifyOk(WithExp(kNow - 299), kNow, 300);
  VerifyOk(WithExp(INT64_MAX));  // no overflow in exp + leeway
  VerifyOk(WithExp(INT64_MAX), INT64_MAX, INT64_MAX);
}

TEST(Jwt, NotYetValidRejected) {
  ExpectRejected(Sign(kHeader, Payload(R"("nbf":1700000061)")), "token not yet valid");
  ExpectRejected(Sign(kHeader, Payload(R"("nbf":1700000001)")), "token not yet valid", kNow, 0);
  ExpectRejected(Sign(kHeader, Payload(R"("nbf":9223372036854775807)")), "token not yet valid");
  VerifyOk(Sign(kHeader, Payload(R"("nbf":1700000060)")));  // now + leeway == nbf
  VerifyOk(Sign(kHeader, Payload(R"("nbf":1700000000)")), kNow, 0);
  VerifyOk(Sign(kHeader, Payload(R"("nbf":-9223372036854775808)")));
}

TEST(Jwt, IssuedInTheFutureRejected) {
  ExpectRejected(Sign(kHeader, Payload(R"("iat":1700000061)")), "token issued in the future");
  ExpectRejected(Sign(kHeader, Payload(R"("iat":1700000001)")), "token issued in the future", kNow,
                 0);
  VerifyOk(Sign(kHeader, Payload(R"("iat":1700000060)")));  // iat == now + leeway
  VerifyOk(Sign(kHeader, Payload(R"("iat":0)")));
}

TEST(Jwt, ExpiryCheckedBeforeOtherTimes) {
  ExpectRejected(Sign(kHeader, R"({"sub":"alice","exp":1,"nbf":9999999999,"iat":9999999999})"),
                 "token expired");
}

// --- scopes ----------------------------------------------------------------------------

TEST(Jwt, ScopesImplied) {
  Scopes none;
  EXPECT_TRUE(none.empty());
  EXPECT_FALSE(none.Has(Scope::kRead));

  Scopes read{Scope::kRead};
  EXPECT_TRUE(read.Has(Scope::kRead));
  EXPECT_FALSE(read.Has(Scope::kWrite));
  EXPECT_FALSE(read.Has(Scope::kAdmin));

  Scopes write{Scope::kWrite};
  EXPECT_TRUE(write.Has(Scope::kRead));
  EXPECT_TRUE(write.Has(Scope::kWrite));
  EXPECT_FALSE(write.Has(Scope::kAdmin));

  Scopes admin{Scope::kAdmin};
  EXPECT_TRUE(admin.Has(Scope::kRead));
  EXPECT_TRUE(admin.Has(Scope::kWrite));
  EXPECT_TRUE(admin.Has(Scope::kAdmin));
  EXPECT_EQ(admin, (Scopes{Scope::kRead, Scope::kWrite, Scope::kAdmin}));
}

TEST(Jwt, ScopeParsing) {
  EXPECT_EQ(Scopes::Parse(""), Scopes());
  EXPECT_EQ(Scopes::Parse("read"), Scopes{Scope::kRead});
  EXPECT_EQ(Scopes::Parse("write"), Scopes{Scope::kWrite});
  EXPECT_EQ(Scopes::Parse("admin"), Scopes{Scope::kAdmin});
  EXPECT_EQ(Scopes::Parse("read write"), Scopes{Scope::kWrite});
  EXPECT_EQ(Scopes::Parse("  write   read "), Scopes{Scope::kWrite});
  EXPECT_EQ(Scopes::Parse("profile email write openid"), Scopes{Scope::kWrite});
  // Case-sensitive whole words separated by spaces only.
  EXPECT_EQ(Scopes::Parse("READ Write ADMIN"), Scopes());
  EXPECT_EQ(Scopes::Parse("readwrite"), Scopes());
  EXPECT_EQ(Scopes::Parse("read,write"), Scopes());
  EXPECT_EQ(Scopes::Parse("admin\tread"), Scopes());
  EXPECT_EQ(Scopes::Parse("admi"), Scopes());
  EXPECT_EQ(Scopes::Parse("workspace:admin"), Scopes());
}

TEST(Jwt, ScopeToString) {
  EXPECT_EQ(Scopes().ToString(), "");
  EXPECT_EQ(Scopes{Scope::kRead}.ToString(), "read");
  EXPECT_EQ(Scopes{Scope::kWrite}.ToString(), "read write");
  EXPECT_EQ(Scopes{Scope::kAdmin}.ToString(), "read write admin");
  for (Scopes s : {Scopes(), Scopes{Scope::kRead}, Scopes{Scope::kWrite}, Scopes{Scope::kAdmin}}) {
    EXPECT_EQ(Scopes::Parse(s.ToString()), s);
  }
}

TEST(Jwt, ScopeClaim) {
  EXPECT_TRUE(VerifyOk(Sign(kHeader, kPayload)).scopes.empty());
  EXPECT_EQ(VerifyOk(Sign(kHeader, Payload(R"("scope":"admin")"))).scopes, Scopes{Scope::kAdmin});
  EXPECT_EQ(VerifyOk(Sign(kHeader, Payload(R"("scope":"write unknown")"))).scopes,
            Scopes{Scope::kWrite});
  EXPECT_TRUE(VerifyOk(Sign(kHeader, Payload(R"("scope":"")"))).scopes.empty());
  for (std::string_view scope : {R"(["read"])", "null", "7"}) {
    ExpectRejected(Sign(kHeader, Payload(R"("scope":)" + std::string(scope))),
                   "invalid claims: scope must be a string");
  }
  // "scp" and "scopes" are not our claim: ignored.
  EXPECT_TRUE(
      VerifyOk(Sign(kHeader, Payload(R"("scp":"admin","scopes":["admin"])"))).scopes.empty());
}

// --- workspaces -------------------------------------------------------------------------

TEST(Jwt, WorkspaceStarCoversAll) {
  Claims c = VerifyOk(Sign(kHeader, Payload(R"("workspaces":["*"])")));
  EXPECT_TRUE(c.CoversWorkspace("ws-a"));
  EXPECT_TRUE(c.CoversWorkspace("anything at all"));
  EXPECT_TRUE(c.CoversWorkspace("*"));
}

TEST(Jwt, SpecificWorkspacesCoverOnlyThemselves) {
  Claims c = VerifyOk(Sign(kHeader, Payload(R"("workspaces":["ws-a","team/ws-b"])")));
  EXPECT_TRUE(c.CoversWorkspace("ws-a"));
  EXPECT_TRUE(c.CoversWorkspace("team/ws-b"));
  EXPECT_FALSE(c.CoversWorkspace("ws-"));
  EXPECT_FALSE(c.CoversWorkspace("ws-ab"));
  EXPECT_FALSE(c.CoversWorkspace("WS-A"));
  EXPECT_FALSE(c.CoversWorkspace("team"));
  EXPECT_FALSE(c.CoversWorkspace("*"));
  EXPECT_FALSE(c.CoversWorkspace(""));
}

TEST(Jwt, MissingOrEmptyWorkspacesCoverNothing) {
  EXPECT_FALSE(VerifyOk(Sign(kHeader, kPayload)).CoversWorkspace("ws-a"));
  EXPECT_FALSE(VerifyOk(Sign(kHeader, Payload(R"("workspaces":[])"))).CoversWorkspace("ws-a"));
  // "*" is only special as a whole entry.
  EXPECT_FALSE(
      VerifyOk(Sign(kHeader, Payload(R"("workspaces":["ws-*"])"))).CoversWorkspace("ws-a"));
}

TEST(Jwt, MistypedWorkspacesRejected) {
  for (std::string_view ws : {R"("*")", R"({"ws-a":true})", "null"}) {
    ExpectRejected(Sign(kHeader, Payload(R"("workspaces":)" + std::string(ws))),
                   "invalid claims: workspaces must be an array of strings");
  }
  for (std::string_view ws : {R"(["ws-a",1])", R"([null])", R"([["ws-a"]])", R"([""])"}) {
    ExpectRejected(Sign(kHeader, Payload(R"("workspaces":)" + std::string(ws))),
                   "invalid claims: workspaces must hold non-empty strings");
  }
}

// --- the secret ---------------------------------------------------------------------------

TEST(Jwt, SecretStrength) {
  EXPECT_TRUE(CheckSecretStrength(Secret()).ok());
  EXPECT_TRUE(CheckSecretStrength(AsBytes(std::string(32, 'k'))).ok());
  std::string weak(31, 'k');
  Status s = CheckSecretStrength(AsBytes(weak));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "JWT secret must be at least 32 bytes");
  EXPECT_FALSE(CheckSecretStrength(ByteView()).ok());
}

}  // namespace
}  // namespace etherply::auth
