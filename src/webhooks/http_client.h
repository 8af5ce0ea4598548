// Posting one HTTP request and learning its status: the only network a
// webhook needs, behind a narrow interface so that delivery can be tested
// with a fake (webhooks_test.cc) and run for real with Beast (BeastPoster).
//
// Thread-safety: HttpPoster::Post may be called from any thread; callbacks
// run on a thread of the poster and must not block.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace etherply::webhooks {

// What delivery needs of an answer.
struct HttpResponse {
  int status = 0;
  // The Retry-After header as sent, if any (see ParseRetryAfter).
  std::optional<std::string> retry_after;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

class HttpPoster {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  virtual ~HttpPoster() = default;

  // Sends `body` with a POST to `url`, with `headers` added to the ones the
  // poster sets itself (Host, Content-Length, User-Agent). Never blocks.
  // `done` is called exactly once, unless the poster is destroyed first:
  //   - with the response's status line and Retry-After, whatever the status
  //     (redirects are not followed: a 3xx is just a status) and whatever
  //     the body (never read, whatever its announced size);
  //   - with kIoError when the request could not be made or no response
  //     header arrived within `timeout` (name resolution, connection, TLS
  //     handshake and certificate checks included);
  //   - with kInvalidArgument when the URL cannot be used.
  virtual void Post(const std::string& url, const HttpHeaders& headers, std::string body,
                    std::chrono::milliseconds timeout, Callback done) = 0;
};

// A URL that a webhook can be sent to: http or https, a host, no user info.
struct HttpUrl {
  bool tls = false;
  std::string host;    // name or address, IPv6 without brackets
  uint16_t port = 0;   // the scheme's default if the URL has none
  std::string target;  // path and query as sent: "/hooks?x=1"; at least "/"

  // "https://host:port", for logs: never the path or query, which may carry
  // credentials.
  std::string Origin() const;
};

// Parses an absolute http:// or https:// URL. kInvalidArgument, saying why
// and quoting at most the scheme, for anything else, including a URL with
// user info ("user:pass@") or without a host.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// The delay a Retry-After header asks for (RFC 9110 §10.2.3): either decimal
// seconds, or an HTTP-date taken against `now` (a date in the past asks for no
// delay) in any of its three formats, as RFC 9110 §5.6.7 requires:
//   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
//   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT" (the year within 50 of now's)
//   asctime      "Sun Nov  6 08:49:37 1994"
// Parsed exactly (case, spacing, widths; a date that does not exist, such as
// 30 Feb, is refused), independent of locale and time zone. nullopt when the
// value is none of these.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::system_clock::time_point now);

struct BeastPosterOptions {
  // A PEM file of CA certificates to trust instead of the system's (the
  // package ca-certificates). For tests against a local HTTPS server; leave
  // empty in production.
  std::string ca_file;
  // Largest response header accepted (status line and fields, one response,
  // interim 1xx ones each on their own): a larger one fails the attempt with
  // a message naming this limit, since its status is not known until it ends.
  // Generous because a receiver's proxy may add big headers (cookies, CSP) to
  // a 2xx; each request in flight holds at most this much. The body is never
  // read, whatever its size.
  size_t max_header_bytes = 256 * 1024;
};

// The production poster: Boost.Beast over Asio, HTTP/1.1, one connection per
// request (Connection: close), on one thread of its own. For https, the
// server's certificate is verified against the trusted CAs and the URL's
// host (names and IP addresses), with SNI, TLS 1.2 or later; a failure of
// any of these is a kIoError, never a silent fallback.
//
// Destruction stops the thread at once: requests still in flight are
// abandoned and their callbacks destroyed without being called.
class BeastPoster final : public HttpPoster {
 public:
  // Fails (kIoError) when the trusted CAs cannot be loaded.
  static Result<std::unique_ptr<BeastPoster>> Create(BeastPosterOptions options = {});
  ~BeastPoster() override;
  BeastPoster(const BeastPoster&) = delete;
  BeastPoster& operator=(const BeastPoster&) = delete;

  void Post(const std::string& url, const HttpHeaders& headers, std::string body,
            std::chrono::milliseconds timeout, Callback done) override;

 private:
  BeastPoster(BeastPosterOptions options, boost::asio::ssl::context tls);

  // Constant after construction.
  const BeastPosterOptions options_;
  boost::asio::ssl::context tls_;

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace etherply::webhooks
