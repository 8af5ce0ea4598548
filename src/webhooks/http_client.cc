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
#include <ctime>

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

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view v,
                                                    std::chrono::system_clock::time_point now) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!v.empty() && std::all_of(v.begin(), v.end(), digit)) {
    if (v.size() > 9) return std::chrono::seconds(999'999'999);  // "a very long time"
    return std::chrono::seconds(std::stoll(std::string(v)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", exactly 29 characters.
  static constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                            "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29 || v.substr(3, 2) != ", " || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' ||
      v[19] != ':' || v[22] != ':' || v.substr(25) != " GMT")
    return std::nullopt;
  if (std::find(kDays.begin(), kDays.end(), v.substr(0, 3)) == kDays.end()) return std::nullopt;
  auto month = std::find(kMonths.begin(), kMonths.end(), v.substr(8, 3));
  if (month == kMonths.end()) return std::nullopt;
  auto number = [&](size_t pos, size_t len) -> int {
    int n = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!digit(v[i])) return -1;
      n = n * 10 + (v[i] - '0');
    }
    return n;
  };
  int day = number(5, 2), year = number(12, 4), hour = number(17, 2), minute = number(20, 2),
      second = number(23, 2);
  if (day < 1 || day > 31 || year < 1970 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = static_cast<int>(month - kMonths.begin());
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(at - now);
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

Status Failure(const Exchange& x, std::string_view step, const beast::error_code& ec) {
  if (x.timed_out)
    return Status::IoError("no response from " + x.where + " within " +
                           std::to_string(x.timeout.count()) + " ms (" + std::string(step) + ")");
  return Status::IoError(std::string(step) + " " + x.where + ": " + ec.message());
}

template <typename Stream>
net::awaitable<Result<HttpResponse>> Ask(Exchange& x, Stream& stream,
                                         http::request<http::string_body>& req,
                                         size_t max_header_bytes) {
  beast::error_code ec;
  auto token = net::redirect_error(net::use_awaitable, ec);
  co_await http::async_write(stream, req, token);
  if (ec) co_return Failure(x, "sending to", ec);
  beast::flat_buffer buffer;
  for (;;) {
    http::response_parser<http::empty_body> parser;
    parser.header_limit(static_cast<uint32_t>(max_header_bytes));
    co_await http::async_read_header(stream, buffer, parser, token);
    if (ec) co_return Failure(x, "reading the response of", ec);
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
  if (ec || x->timed_out) co_return Failure(*x, "resolving", ec);
  co_await net::async_connect(x->socket, endpoints, token);
  if (ec || x->timed_out) co_return Failure(*x, "connecting to", ec);
  if (!url.tls) co_return co_await Ask(*x, x->socket, req, max_header_bytes);

  ssl::stream<tcp::socket&> stream(x->socket, tls);
  boost::system::error_code not_ip;
  net::ip::make_address(url.host, not_ip);
  if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
    co_return Status::IoError("cannot set the TLS server name for " + x->where);
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(url.host));
  co_await stream.async_handshake(ssl::stream_base::client, token);
  if (ec) co_return Failure(*x, "TLS handshake with", ec);
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
