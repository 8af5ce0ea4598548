#include "webhooks/http_client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>

namespace etherply::webhooks {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// --- URLs ------------------------------------------------------------------------

namespace {
std::string Bracketed(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}
uint16_t DefaultPort(bool tls) { return tls ? 443 : 80; }
}  // namespace

std::string HttpUrl::Origin() const {
  std::string s = tls ? "https://" : "http://";
  s += Bracketed(host);
  if (port != DefaultPort(tls)) s += ":" + std::to_string(port);
  return s;
}

Result<HttpUrl> ParseHttpUrl(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return Status::InvalidArgument("the webhook URL is not an absolute URL");
  boost::urls::url_view u = *parsed;
  HttpUrl url;
  std::string scheme(u.scheme());
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return Status::InvalidArgument("the webhook URL must be http:// or https://, not " + scheme +
                                   "://");
  }
  if (!u.has_authority() || u.host_address().empty())
    return Status::InvalidArgument("the webhook URL has no host");
  if (u.has_userinfo())
    return Status::InvalidArgument("the webhook URL must not hold user info (user:password@)");
  if (u.has_fragment())
    return Status::InvalidArgument("the webhook URL must not have a fragment (#...)");
  if (u.host_type() == boost::urls::host_type::ipvfuture)
    return Status::InvalidArgument("the webhook URL's host is not a name or an IP address");
  url.host = u.host_address();
  url.port = DefaultPort(url.tls);
  if (u.has_port() && !u.port().empty()) {
    std::string_view p = u.port();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (ec != std::errc() || end != p.data() + p.size() || value == 0 || value > 65535)
      return Status::InvalidArgument("the webhook URL's port is not 1 to 65535");
    url.port = static_cast<uint16_t>(value);
  }
  url.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (u.has_query()) url.target += "?" + std::string(u.encoded_query());
  return url;
}

// --- Retry-After -------------------------------------------------------------------

namespace {

using SysSeconds = std::chrono::sys_seconds;

// HTTP-date is case-sensitive (RFC 9110 §5.6.7), so names match exactly.
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <size_t N>
std::optional<int> IndexOf(const std::array<std::string_view, N>& names, std::string_view name) {
  auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) return std::nullopt;
  return static_cast<int>(it - names.begin());
}

// A fixed-width decimal field (at most 4 digits here): digits only, no sign
// or space, and not empty.
std::optional<int> Digits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

// "08:49:37" as the time since midnight: exactly HH:MM:SS, in range, a leap
// second (:60) allowed (it counts as the next minute's :00).
std::optional<std::chrono::seconds> TimeOfDay(std::string_view t) {
  if (t.size() != 8 || t[2] != ':' || t[5] != ':') return std::nullopt;
  auto h = Digits(t.substr(0, 2)), m = Digits(t.substr(3, 2)), s = Digits(t.substr(6, 2));
  if (!h || !m || !s || *h > 23 || *m > 59 || *s > 60) return std::nullopt;
  return std::chrono::hours(*h) + std::chrono::minutes(*m) + std::chrono::seconds(*s);
}

// The instant of a date's parts, in UTC. nullopt if any part is missing or
// the date does not exist ("30 Feb"): std::chrono's calendar, not timegm or
// the C locale, so nothing depends on the process's settings.
std::optional<SysSeconds> Instant(std::optional<int> year, std::string_view month,
                                  std::optional<int> day, std::string_view time) {
  auto m = IndexOf(kMonths, month);
  auto since_midnight = TimeOfDay(time);
  if (!year || !m || !day || !since_midnight) return std::nullopt;
  std::chrono::year_month_day date{std::chrono::year(*year),
                                   std::chrono::month(static_cast<unsigned>(*m + 1)),
                                   std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  return std::chrono::sys_days(date) + *since_midnight;
}

// IMF-fixdate, the preferred format: "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<SysSeconds> ParseImfFixdate(std::string_view v) {
  if (v.size() != 29 || !IndexOf(kDays, v.substr(0, 3)) || v.substr(3, 2) != ", " || v[7] != ' ' ||
      v[11] != ' ' || v[16] != ' ' || v.substr(25) != " GMT")
    return std::nullopt;
  return Instant(Digits(v.substr(12, 4)), v.substr(8, 3), Digits(v.substr(5, 2)), v.substr(17, 8));
}

// The obsolete RFC 850 format: "Sunday, 06-Nov-94 08:49:37 GMT". Its
// two-digit year is the latest year with those digits that is at most 50
// years after `this_year`, as RFC 9110 §5.6.7 asks ("94" in 2026 is 1994,
// "70" is 2070).
std::optional<SysSeconds> ParseRfc850Date(std::string_view v, int this_year) {
  size_t comma = v.find(", ");
  if (comma == std::string_view::npos || !IndexOf(kLongDays, v.substr(0, comma)))
    return std::nullopt;
  std::string_view d = v.substr(comma + 2);  // "06-Nov-94 08:49:37 GMT"
  if (d.size() != 22 || d[2] != '-' || d[6] != '-' || d[9] != ' ' || d.substr(18) != " GMT")
    return std::nullopt;
  auto yy = Digits(d.substr(7, 2));
  if (!yy) return std::nullopt;
  int latest = this_year + 50;
  int year = latest - ((latest - *yy) % 100 + 100) % 100;
  return Instant(year, d.substr(3, 3), Digits(d.substr(0, 2)), d.substr(10, 8));
}

// The obsolete asctime() format, implicitly GMT: "Sun Nov  6 08:49:37 1994",
// the day of the month as two digits or a space and one digit.
std::optional<SysSeconds> ParseAsctimeDate(std::string_view v) {
  if (v.size() != 24 || !IndexOf(kDays, v.substr(0, 3)) || v[3] != ' ' || v[7] != ' ' ||
      v[10] != ' ' || v[19] != ' ')
    return std::nullopt;
  std::string_view day = v.substr(8, 2);
  if (day[0] == ' ') day.remove_prefix(1);
  return Instant(Digits(v.substr(20, 4)), v.substr(4, 3), Digits(day), v.substr(11, 8));
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view v,
                                                    std::chrono::system_clock::time_point now) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!v.empty() && std::all_of(v.begin(), v.end(), digit)) {
    if (v.size() > 9) return std::chrono::seconds(999'999'999);  // "a very long time"
    return std::chrono::seconds(std::stoll(std::string(v)));
  }
  // RFC 9110 §5.6.7: a recipient must accept all three HTTP-date formats.
  auto this_year = std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(now)).year();
  auto at = ParseImfFixdate(v);
  if (!at) at = ParseRfc850Date(v, static_cast<int>(this_year));
  if (!at) at = ParseAsctimeDate(v);
  if (!at) return std::nullopt;
  if (*at <= now) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(*at - now);
}

// --- BeastPoster ----------------------------------------------------------------------

namespace {

// One request: its sockets, its deadline, and its callback, shared by the
// coroutine and the deadline timer. Lives on the poster's thread only.
struct Exchange {
  explicit Exchange(net::io_context& ioc) : resolver(ioc), socket(ioc), deadline(ioc) {}

  // The deadline passed: make every pending operation fail.
  void Expire() {
    timed_out = true;
    resolver.cancel();
    beast::error_code ec;
    socket.close(ec);
  }

  // Calls the callback the first time only.
  void Finish(Result<HttpResponse> r) {
    deadline.cancel();
    if (done) {
      HttpPoster::Callback d = std::move(done);
      done = nullptr;
      d(std::move(r));
    }
  }

  tcp::resolver resolver;
  tcp::socket socket;
  net::steady_timer deadline;
  bool timed_out = false;
  std::string where;  // "host:port", for messages
  std::chrono::milliseconds timeout{0};
  HttpPoster::Callback done;
};

// The steps of a request, each a phrase that takes the peer ("host:port")
// as its object, so that every failure reads as a sentence (Failure).
constexpr std::string_view kResolving = "resolving";
constexpr std::string_view kConnecting = "connecting to";
constexpr std::string_view kHandshaking = "the TLS handshake with";
constexpr std::string_view kSending = "sending the request to";
constexpr std::string_view kReading = "reading the response header of";

// Why `step` failed: "connecting to 127.0.0.1:8080 failed: Connection
// refused", or, when the deadline cut it short, "reading the response header
// of 127.0.0.1:8080 timed out after 2000 ms".
Status Failure(const Exchange& x, std::string_view step, std::string_view why) {
  std::string what = std::string(step) + " " + x.where;
  if (x.timed_out)
    return Status::IoError(what + " timed out after " + std::to_string(x.timeout.count()) + " ms");
  return Status::IoError(what + " failed: " + std::string(why));
}
Status Failure(const Exchange& x, std::string_view step, const beast::error_code& ec) {
  return Failure(x, step, ec.message());
}

// "256 KiB", or "1000 bytes" for a size that is not whole KiB.
std::string Size(size_t bytes) {
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

template <typename Stream>
net::awaitable<Result<HttpResponse>> Ask(Exchange& x, Stream& stream,
                                         http::request<http::string_body>& req,
                                         size_t max_header_bytes) {
  beast::error_code ec;
  auto token = net::redirect_error(net::use_awaitable, ec);
  co_await http::async_write(stream, req, token);
  if (ec) co_return Failure(x, kSending, ec);
  beast::flat_buffer buffer;
  for (;;) {
    http::response_parser<http::empty_body> parser;
    parser.header_limit(static_cast<uint32_t>(max_header_bytes));
    // The body is never read, so its announced size must not matter (Beast
    // would otherwise refuse a Content-Length over 8 MiB, even with a 2xx).
    parser.body_limit(boost::none);
    co_await http::async_read_header(stream, buffer, parser, token);
    if (ec == http::error::header_limit)
      co_return Failure(x, kReading, "it is over the limit of " + Size(max_header_bytes));
    if (ec) co_return Failure(x, kReading, ec);
    HttpResponse r;
    r.status = static_cast<int>(parser.get().result_int());
    if (r.status >= 100 && r.status <= 199) continue;  // interim (e.g. 100 Continue): read on
    auto it = parser.get().find(http::field::retry_after);
    if (it != parser.get().end()) r.retry_after = std::string(it->value());
    co_return r;
  }
}

net::awaitable<Result<HttpResponse>> Run(std::shared_ptr<Exchange> x, HttpUrl url,
                                         http::request<http::string_body> req, ssl::context& tls,
                                         size_t max_header_bytes) {
  beast::error_code ec;
  auto token = net::redirect_error(net::use_awaitable, ec);
  auto endpoints = co_await x->resolver.async_resolve(url.host, std::to_string(url.port), token);
  if (ec || x->timed_out) co_return Failure(*x, kResolving, ec);
  co_await net::async_connect(x->socket, endpoints, token);
  if (ec || x->timed_out) co_return Failure(*x, kConnecting, ec);
  if (!url.tls) co_return co_await Ask(*x, x->socket, req, max_header_bytes);

  ssl::stream<tcp::socket&> stream(x->socket, tls);
  boost::system::error_code not_ip;
  net::ip::make_address(url.host, not_ip);
  if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
    co_return Status::IoError("cannot set the TLS server name for " + x->where);
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  co_await stream.async_handshake(ssl::stream_base::client, token);
  if (ec) co_return Failure(*x, kHandshaking, ec);
  // No TLS close_notify: the status is all we wanted, and a peer that does not
  // answer one must not hold the request open.
  co_return co_await Ask(*x, stream, req, max_header_bytes);
}

net::awaitable<void> RunAndFinish(std::shared_ptr<Exchange> x, HttpUrl url,
                                  http::request<http::string_body> req, ssl::context& tls,
                                  size_t max_header_bytes) {
  x->Finish(co_await Run(x, std::move(url), std::move(req), tls, max_header_bytes));
}

}  // namespace

Result<std::unique_ptr<BeastPoster>> BeastPoster::Create(BeastPosterOptions options) {
  ssl::context tls(ssl::context::tls_client);
  boost::system::error_code ec;
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  tls.set_verify_mode(ssl::verify_peer, ec);
  if (!ec) {
    if (options.ca_file.empty()) {
      tls.set_default_verify_paths(ec);
    } else {
      tls.load_verify_file(options.ca_file, ec);
    }
  }
  if (ec)
    return Status::IoError("cannot load the trusted CA certificates" +
                           (options.ca_file.empty() ? std::string() : " from " + options.ca_file) +
                           ": " + ec.message());
  return std::unique_ptr<BeastPoster>(new BeastPoster(std::move(options), std::move(tls)));
}

BeastPoster::BeastPoster(BeastPosterOptions options, ssl::context tls)
    : options_(std::move(options)),
      tls_(std::move(tls)),
      ioc_(1),
      work_(net::make_work_guard(ioc_)),
      thread_([this] { ioc_.run(); }) {}

BeastPoster::~BeastPoster() {
  work_.reset();
  ioc_.stop();
  thread_.join();
}

void BeastPoster::Post(const std::string& url_text, const HttpHeaders& headers, std::string body,
                       std::chrono::milliseconds timeout, Callback done) {
  auto url = ParseHttpUrl(url_text);
  if (!url.ok()) {
    net::post(ioc_, [done = std::move(done), s = url.status()] { done(s); });
    return;
  }
  http::request<http::string_body> req{http::verb::post, url->target, 11};
  req.set(http::field::host, url->port == DefaultPort(url->tls)
                                 ? Bracketed(url->host)
                                 : Bracketed(url->host) + ":" + std::to_string(url->port));
  req.set(http::field::user_agent, "etherply-webhooks");
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  req.prepare_payload();

  net::post(ioc_, [this, url = std::move(*url), req = std::move(req), timeout,
                   done = std::move(done)]() mutable {
    auto x = std::make_shared<Exchange>(ioc_);
    x->where = Bracketed(url.host) + ":" + std::to_string(url.port);
    x->timeout = timeout;
    x->done = std::move(done);
    x->deadline.expires_after(timeout);
    x->deadline.async_wait([x](beast::error_code ec) {
      if (!ec) x->Expire();
    });
    net::co_spawn(ioc_,
                  RunAndFinish(x, std::move(url), std::move(req), tls_, options_.max_header_bytes),
                  [x](std::exception_ptr e) {
                    if (e) x->Finish(Status::IoError("the HTTP client failed"));
                  });
  });
}

}  // namespace etherply::webhooks
