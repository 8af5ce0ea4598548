// The client against a real server: this test starts `etherply serve` (the
// binary named by ETHERPLY_BIN) on a temporary data directory, kills and
// restarts it, and watches the client's states, messages and timing.
#include "client/client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef ETHERPLY_BIN
#error "ETHERPLY_BIN must name the etherply binary; the build sets it to $<TARGET_FILE:etherply>"
#endif

namespace etherply::client {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kSecret[] = "client-test-secret-0123456789abcdef-0123456789";

// argv and envp for execve, built before fork (the child may only call
// async-signal-safe functions).
struct Exec {
  explicit Exec(std::vector<std::string> args) : args_(std::move(args)) {
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).rfind("ETHERPLY_", 0) != 0) env_.push_back(*e);
    env_.push_back(std::string("ETHERPLY_JWT_SECRET=") + kSecret);
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& e : env_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  // Forks and execs with stdout and stderr sent to `out_fd`.
  pid_t Spawn(int out_fd) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      dup2(out_fd, 1);
      dup2(out_fd, 2);
      execve(argv_[0], argv_.data(), envp_.data());
      _exit(127);
    }
    return pid;
  }
  std::vector<std::string> args_, env_;
  std::vector<char*> argv_, envp_;
};

// `etherply token ...`: the token it prints.
std::string MintToken(const std::string& scope, const std::string& workspace) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Exec exec(
      {ETHERPLY_BIN, "token", "--sub", "client-test", "--scope", scope, "--workspace", workspace});
  pid_t pid = exec.Spawn(fds[1]);
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// A port on which nothing listens (bound, then released).
uint16_t FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  return ntohs(a.sin_port);
}

// One `etherply serve` process on its own data directory, which outlives
// restarts and is removed at the end.
class ServerProcess {
 public:
  ServerProcess() {
    char tmpl[] = "/tmp/etherply-client-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~ServerProcess() {
    Kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the server on `port` (0: any) and waits until it listens.
  // Returns false, with the reason in the test's output, if it does not
  // within 15 s.
  bool Start(uint16_t port = 0, std::vector<std::string> extra_args = {}) {
    int fd = open(LogPath().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    auto offset = lseek(fd, 0, SEEK_END);
    std::vector<std::string> args = {ETHERPLY_BIN, "serve",
                                     "--listen",   "127.0.0.1:" + std::to_string(port),
                                     "--data-dir", dir_ + "/data"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    Exec exec(std::move(args));
    pid_ = exec.Spawn(fd);
    close(fd);
    const std::string marker = "etherply listening on http://127.0.0.1:";
    for (auto deadline = Clock::now() + std::chrono::seconds(15); Clock::now() < deadline;) {
      std::string text = Log(offset);
      if (auto at = text.find(marker); at != std::string::npos) {
        port_ = static_cast<uint16_t>(std::stoi(text.substr(at + marker.size())));
        return true;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
          ADD_FAILURE() << "cannot execute " ETHERPLY_BIN " (is it being relinked?)";
        else
          ADD_FAILURE() << "the server exited (wait status " << status << "):\n" << text;
        return false;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "the server did not report listening within 15 s";
    return false;
  }

  // SIGKILL: the connections drop without a close handshake.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // SIGTERM: a graceful stop. Returns the wait status, or -1 if the server
  // did not exit within 15 s (it is then killed).
  int Terminate() {
    kill(pid_, SIGTERM);
    for (auto deadline = Clock::now() + std::chrono::seconds(15); Clock::now() < deadline;) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    Kill();
    return -1;
  }

  // What the server logged from byte `from` on (0: all its starts).
  std::string Log(std::streamoff from = 0) const {
    std::ifstream in(LogPath());
    in.seekg(from);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // SIGSTOP / SIGCONT: a server that hangs, with its sockets open.
  void Pause() { kill(pid_, SIGSTOP); }
  void Resume() { kill(pid_, SIGCONT); }

  uint16_t port() const { return port_; }
  std::string Url(const std::string& workspace) const {
    return "ws://127.0.0.1:" + std::to_string(port_) + "/v1/sync/" + workspace;
  }

 private:
  std::string LogPath() const { return dir_ + "/server.log"; }

  std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// Records what the callbacks report, for the test thread to wait on.
class Recorder {
 public:
  struct Transition {
    State state;
    Status why;
    Clock::time_point at;
  };

  ClientCallbacks Callbacks() {
    ClientCallbacks cb;
    cb.on_state = [this](State s, const Status& why) {
      std::lock_guard<std::mutex> l(mu_);
      transitions_.push_back({s, why, Clock::now()});
      cv_.notify_all();
    };
    cb.on_init = [this](const json::object& m, std::string_view) {
      std::lock_guard<std::mutex> l(mu_);
      inits_.push_back(m);
      cv_.notify_all();
    };
    cb.on_op = [this](const json::object& p, std::string_view) {
      std::lock_guard<std::mutex> l(mu_);
      ops_.push_back(p);
      cv_.notify_all();
    };
    cb.on_error = [this](int code, const std::string& message) {
      std::lock_guard<std::mutex> l(mu_);
      errors_.emplace_back(code, message);
      cv_.notify_all();
    };
    return cb;
  }

  // Waits up to `timeout` until `n` transitions to `s` have happened.
  bool WaitForState(State s, size_t n = 1, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return CountLocked(s) >= n; });
  }
  bool WaitForOps(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return ops_.size() >= n; });
  }
  bool WaitForErrors(size_t n, milliseconds timeout = milliseconds(10000)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return errors_.size() >= n; });
  }

  size_t Count(State s) {
    std::lock_guard<std::mutex> l(mu_);
    return CountLocked(s);
  }
  std::vector<Transition> transitions() {
    std::lock_guard<std::mutex> l(mu_);
    return transitions_;
  }
  std::vector<State> states() {
    std::vector<State> out;
    for (auto& t : transitions()) out.push_back(t.state);
    return out;
  }
  std::vector<json::object> inits() {
    std::lock_guard<std::mutex> l(mu_);
    return inits_;
  }
  std::vector<json::object> ops() {
    std::lock_guard<std::mutex> l(mu_);
    return ops_;
  }
  std::vector<std::pair<int, std::string>> errors() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }

 private:
  size_t CountLocked(State s) {
    size_t n = 0;
    for (auto& t : transitions_) n += t.state == s;
    return n;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Transition> transitions_;
  std::vector<json::object> inits_, ops_;
  std::vector<std::pair<int, std::string>> errors_;
};

std::vector<State> Seq(std::initializer_list<State> s) { return s; }

constexpr State kDisconnected = State::kDisconnected, kConnecting = State::kConnecting,
                kAuthenticating = State::kAuthenticating, kConnected = State::kConnected,
                kSynced = State::kSynced, kError = State::kError;

ClientOptions Options(const std::string& url, const std::string& token) {
  ClientOptions o;
  o.url = url;
  o.token = token;
  o.backoff_base = milliseconds(50);
  o.backoff_cap = milliseconds(500);
  o.connect_timeout = milliseconds(5000);
  return o;
}

// ---------------------------------------------------------------------------
// URLs

TEST(ClientUrl, ParsesHostPortWorkspaceAndToken) {
  auto u = ParseSyncUrl("ws://127.0.0.1:8080/v1/sync/ws-1.a_b?token=abc&x=1");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->host_header, "127.0.0.1:8080");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->workspace, "ws-1.a_b");
  EXPECT_EQ(u->token, "abc");
  EXPECT_EQ(u->target, "/v1/sync/ws-1.a_b?x=1");  // the token goes in a header, not the target
}

TEST(ClientUrl, DefaultsPortTo80AndKeepsIpv6Brackets) {
  auto u = ParseSyncUrl("ws://example.com/v1/sync/w");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->host_header, "example.com");
  EXPECT_EQ(u->target, "/v1/sync/w");
  EXPECT_EQ(u->token, "");

  auto v = ParseSyncUrl("ws://[::1]:9/v1/sync/w#ignored");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->host, "::1");
  EXPECT_EQ(v->host_header, "[::1]:9");
  EXPECT_EQ(v->port, 9);
}

TEST(ClientUrl, RefusesWssAsUnsupported) {
  auto u = ParseSyncUrl("wss://example.com/v1/sync/w");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Status::Code::kUnsupported);
  EXPECT_NE(u.status().message().find("wss"), std::string::npos);
}

TEST(ClientUrl, RefusesEverythingElseThatIsNotASyncUrl) {
  struct Case {
    std::string url;
    std::string why;  // a word of the message
  };
  const std::vector<Case> cases = {
      {"", "not a URL"},
      {"not a url", "not a URL"},
      {"127.0.0.1:8080/v1/sync/w", "ws://"},  // "not a URL ... (want ws://...)"
      {"http://h/v1/sync/w", "ws://"},
      {"ws:///v1/sync/w", "no host"},
      {"ws://user:pw@h/v1/sync/w", "user info"},
      {"ws://h:0/v1/sync/w", "port"},
      {"ws://h:65536/v1/sync/w", "port"},
      {"ws://h:99999999999999999999/v1/sync/w", "port"},
      {"ws://h", "path"},
      {"ws://h/", "path"},
      {"ws://h/v1/sync", "path"},
      {"ws://h/v1/sync/", "workspace"},
      {"ws://h/v1/sync/w/", "path"},
      {"ws://h/v1/sync/w/x", "path"},
      {"ws://h/v2/sync/w", "path"},
      {"ws://h/v1/sync/a%20b", "workspace"},
      {"ws://h/v1/sync/a%2Fb", "workspace"},
      {"ws://h/v1/sync/" + std::string(129, 'a'), "workspace"},
      {"ws://h/v1/sync/w?token=", "token"},
      {"ws://h/v1/sync/w?token", "token"},
      {"ws://h/v1/sync/w?token=a&token=b", "token"},
  };
  for (const Case& c : cases) {
    auto u = ParseSyncUrl(c.url);
    ASSERT_FALSE(u.ok()) << c.url;
    EXPECT_EQ(u.status().code(), Status::Code::kInvalidArgument) << c.url;
    EXPECT_NE(u.status().message().find(c.why), std::string::npos)
        << c.url << ": " << u.status().message();
  }
  // And a 128-byte workspace ID is fine.
  EXPECT_TRUE(ParseSyncUrl("ws://h/v1/sync/" + std::string(128, 'a')).ok());
}

// ---------------------------------------------------------------------------
// Backoff, alone

TEST(ClientBackoff, CeilingDoublesFromBaseUpToCap) {
  Backoff b(milliseconds(100), milliseconds(10000), 1);
  std::vector<int64_t> want = {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(b.Ceiling(static_cast<int>(i)).count(), want[i]) << "retry " << i;
  EXPECT_EQ(b.Ceiling(1000000).count(), 10000);
  EXPECT_EQ(b.Ceiling(-1).count(), 100);
}

TEST(ClientBackoff, CeilingNeverOverflows) {
  const milliseconds huge(std::numeric_limits<int64_t>::max());
  Backoff b(milliseconds(3), huge, 1);
  milliseconds last(0);
  for (int i = 0; i < 200; ++i) {
    milliseconds c = b.Ceiling(i);
    EXPECT_GE(c, last) << "retry " << i;
    EXPECT_LE(c, huge);
    last = c;
  }
  EXPECT_EQ(b.Ceiling(200), huge);
}

TEST(ClientBackoff, SameSeedGivesTheSameDelays) {
  Backoff a(milliseconds(100), milliseconds(10000), 42),
      b(milliseconds(100), milliseconds(10000), 42), c(milliseconds(100), milliseconds(10000), 43);
  std::vector<int64_t> da, db, dc;
  for (int i = 0; i < 20; ++i) {
    da.push_back(a.Delay(i).count());
    db.push_back(b.Delay(i).count());
    dc.push_back(c.Delay(i).count());
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(ClientBackoff, FullJitterCoversZeroToCeiling) {
  Backoff b(milliseconds(100), milliseconds(10000), 7);
  for (int retry : {0, 3, 10}) {
    const int64_t ceiling = b.Ceiling(retry).count();
    int64_t lo = ceiling, hi = 0;
    for (int i = 0; i < 2000; ++i) {
      int64_t d = b.Delay(retry).count();
      ASSERT_GE(d, 0);
      ASSERT_LE(d, ceiling);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
    }
    // Full jitter: the whole range, not just its upper half.
    EXPECT_LT(lo, ceiling / 10) << "retry " << retry;
    EXPECT_GT(hi, ceiling * 9 / 10) << "retry " << retry;
  }
}

TEST(ClientBackoff, SeedZeroIsRandom) {
  Backoff a(milliseconds(100), milliseconds(10000), 0),
      b(milliseconds(100), milliseconds(10000), 0);
  std::vector<int64_t> da, db;
  for (int i = 0; i < 10; ++i) {
    da.push_back(a.Delay(10).count());
    db.push_back(b.Delay(10).count());
  }
  EXPECT_NE(da, db);
}

// ---------------------------------------------------------------------------
// Options and calls that need no server

TEST(Client, StateNamesAreTheSpecs) {
  EXPECT_STREQ(StateName(kDisconnected), "Disconnected");
  EXPECT_STREQ(StateName(kConnecting), "Connecting");
  EXPECT_STREQ(StateName(kAuthenticating), "Authenticating");
  EXPECT_STREQ(StateName(kConnected), "Connected");
  EXPECT_STREQ(StateName(kSynced), "Synced");
  EXPECT_STREQ(StateName(kError), "Error");
}

TEST(Client, StartRefusesABadUrlAndDoesNothing) {
  Recorder rec;
  SyncClient client(Options("wss://h/v1/sync/w", "t"), rec.Callbacks());
  Status s = client.Start();
  EXPECT_EQ(s.code(), Status::Code::kUnsupported);
  SyncClient client2(Options("ws://h/v1/sync/bad id", "t"), rec.Callbacks());
  EXPECT_EQ(client2.Start().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(client.state(), kDisconnected);
  client.Stop();
  EXPECT_TRUE(rec.transitions().empty());
}

TEST(Client, StartRefusesBadOptions) {
  auto o = Options("ws://127.0.0.1:1/v1/sync/w", "t");
  o.backoff_cap = milliseconds(10);
  o.backoff_base = milliseconds(20);
  EXPECT_EQ(SyncClient(o, {}).Start().code(), Status::Code::kInvalidArgument);
  o = Options("ws://127.0.0.1:1/v1/sync/w", "t");
  o.backoff_base = milliseconds(0);
  EXPECT_EQ(SyncClient(o, {}).Start().code(), Status::Code::kInvalidArgument);
  o = Options("ws://127.0.0.1:1/v1/sync/w", "t");
  o.max_attempts = -1;
  EXPECT_EQ(SyncClient(o, {}).Start().code(), Status::Code::kInvalidArgument);
  o = Options("ws://127.0.0.1:1/v1/sync/w", "t");
  o.connect_timeout = milliseconds(0);
  EXPECT_EQ(SyncClient(o, {}).Start().code(), Status::Code::kInvalidArgument);
}

TEST(Client, PutFailsUnlessSynced) {
  SyncClient client(Options("ws://127.0.0.1:1/v1/sync/w", "t"), {});
  Status s = client.Put("k", 1);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("Disconnected"), std::string::npos) << s.message();
  EXPECT_EQ(client.Put("", 1).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(client.Put("k", json::array{1, std::numeric_limits<double>::infinity()}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(client.Put("k", std::nan("")).code(), Status::Code::kInvalidArgument);
}

TEST(Client, NoServerGivesUpAfterMaxAttempts) {
  Recorder rec;
  auto o = Options("ws://127.0.0.1:" + std::to_string(FreePort()) + "/v1/sync/w", "t");
  o.max_attempts = 3;
  SyncClient client(o, rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kError));
  EXPECT_EQ(rec.states(), Seq({kConnecting, kDisconnected, kConnecting, kDisconnected, kConnecting,
                               kDisconnected, kError}));
  Status why = rec.transitions().back().why;
  EXPECT_EQ(why.code(), Status::Code::kIoError);
  EXPECT_NE(why.message().find("gave up after 3 attempts"), std::string::npos) << why.message();
  EXPECT_NE(why.message().find("connect"), std::string::npos) << why.message();
  EXPECT_EQ(client.state(), kError);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(rec.Count(kConnecting), 3u);  // Error is final
}

TEST(Client, StopWhileRetryingEndsInDisconnected) {
  Recorder rec;
  auto o = Options("ws://127.0.0.1:" + std::to_string(FreePort()) + "/v1/sync/w", "t");
  o.backoff_base = o.backoff_cap = milliseconds(60000);
  SyncClient client(o, rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kDisconnected));
  auto t0 = Clock::now();
  client.Stop();  // must not wait out the backoff
  EXPECT_LT(Clock::now() - t0, milliseconds(1000));
  EXPECT_EQ(client.state(), kDisconnected);
  EXPECT_EQ(rec.Count(kConnecting), 1u);
  EXPECT_EQ(client.Put("k", 1).code(), Status::Code::kIoError);
  EXPECT_EQ(client.Start().code(), Status::Code::kInvalidArgument);  // started once only
}

// ---------------------------------------------------------------------------
// Against a real server

TEST(Client, ConnectsThroughEveryStateToSynced) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), MintToken("read write", "w1")), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
  EXPECT_EQ(rec.states(), Seq({kConnecting, kAuthenticating, kConnected, kSynced}));
  for (auto& t : rec.transitions()) EXPECT_TRUE(t.why.ok()) << t.why.ToString();
  ASSERT_EQ(rec.inits().size(), 1u);
  EXPECT_EQ(rec.inits()[0].at("type"), "init");
  EXPECT_EQ(rec.inits()[0].at("data"), json::object());
  EXPECT_EQ(client.state(), kSynced);

  client.Stop();
  EXPECT_EQ(rec.states().back(), kDisconnected);
  EXPECT_TRUE(rec.transitions().back().why.ok());
  size_t n = rec.transitions().size();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(rec.transitions().size(), n);  // nothing after Stop()
}

TEST(Client, PutComesBackAsItsOwnOp) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), MintToken("write", "w1")), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));

  // Decimals that Boost.JSON 1.81 alone may round wrongly travel exactly.
  json::value value = json::parse(R"({"list":[1,2.5,"x",null,true],"nested":{"a":{}}})");
  value.as_object()["decimals"] = json::array{0.1, 1e-7, 123456.789, -0.3};
  ASSERT_TRUE(client.Put("doc", value).ok());
  ASSERT_TRUE(client.Put("at", "then", 1700000000000000).ok());
  ASSERT_TRUE(rec.WaitForOps(2));
  auto ops = rec.ops();
  EXPECT_EQ(ops[0].at("key"), "doc");
  EXPECT_EQ(ops[0].at("value"), value);
  EXPECT_TRUE(ops[0].at("timestamp").is_int64());
  EXPECT_EQ(ops[1].at("key"), "at");
  EXPECT_EQ(ops[1].at("value"), "then");
  EXPECT_EQ(ops[1].at("timestamp"), 1700000000000000);
  EXPECT_TRUE(rec.errors().empty());
}

TEST(Client, SecondClientSeesTheOpAndItsInit) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  std::string token = MintToken("read write", "w1");
  Recorder a_rec, b_rec;
  SyncClient a(Options(server.Url("w1"), token), a_rec.Callbacks());
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(a_rec.WaitForState(kSynced));
  ASSERT_TRUE(a.Put("k", 7).ok());
  ASSERT_TRUE(a_rec.WaitForOps(1));

  SyncClient b(Options(server.Url("w1"), token), b_rec.Callbacks());
  ASSERT_TRUE(b.Start().ok());
  ASSERT_TRUE(b_rec.WaitForState(kSynced));
  EXPECT_EQ(b_rec.inits()[0].at("data"), json::parse(R"({"k":7})"));
  ASSERT_TRUE(a.Put("k", 8).ok());
  ASSERT_TRUE(b_rec.WaitForOps(1));
  EXPECT_EQ(b_rec.ops()[0].at("value"), 8);
}

// A graceful stop with clients connected: sessions, their workspaces (one
// of them shared) and the ops just written are torn down in order, with
// nothing left to touch what is gone (the ASan build of this test sees a use
// after free), and the server exits 0.
TEST(Client, ServerStopsCleanlyWithClientsConnected) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(0, {"--threads", "2"}));
  std::string token = MintToken("read write", "*");
  Recorder a_rec, b_rec, c_rec;
  SyncClient a(Options(server.Url("w1"), token), a_rec.Callbacks());
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(a_rec.WaitForState(kSynced));
  SyncClient b(Options(server.Url("w1"), token), b_rec.Callbacks());
  ASSERT_TRUE(b.Start().ok());
  ASSERT_TRUE(b_rec.WaitForState(kSynced));
  SyncClient c(Options(server.Url("w2"), token), c_rec.Callbacks());
  ASSERT_TRUE(c.Start().ok());
  ASSERT_TRUE(c_rec.WaitForState(kSynced));
  ASSERT_TRUE(a.Put("k", 1).ok());
  ASSERT_TRUE(b_rec.WaitForOps(1));
  ASSERT_TRUE(c.Put("k", 2).ok());
  ASSERT_TRUE(c_rec.WaitForOps(1));

  int status = server.Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "wait status " << status << "; the server's log:\n"
      << server.Log();
}

TEST(Client, TokenInTheUrlIsUsed) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1") + "?token=" + MintToken("read", "w1"), ""),
                    rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
}

TEST(Client, BadTokenIsErrorWith401AndNoRetry) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  std::string token = MintToken("read write", "w1");
  token.back() = token.back() == 'A' ? 'B' : 'A';  // break the signature
  SyncClient client(Options(server.Url("w1"), token), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kError));
  EXPECT_EQ(rec.states(), Seq({kConnecting, kAuthenticating, kError}));
  Status why = rec.transitions().back().why;
  EXPECT_EQ(why.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(why.message().find("HTTP 401"), std::string::npos) << why.message();
  ASSERT_EQ(rec.errors().size(), 1u);
  EXPECT_EQ(rec.errors()[0].first, 401);
  EXPECT_FALSE(rec.errors()[0].second.empty());

  std::this_thread::sleep_for(milliseconds(500));  // ten times the backoff base
  EXPECT_EQ(rec.Count(kConnecting), 1u);
  EXPECT_EQ(client.state(), kError);
  client.Stop();
  EXPECT_EQ(client.state(), kError);  // Stop() does not leave Error
  EXPECT_EQ(rec.states().back(), kError);
}

TEST(Client, MissingTokenIsErrorWith401) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), ""), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kError));
  ASSERT_EQ(rec.errors().size(), 1u);
  EXPECT_EQ(rec.errors()[0].first, 401);
}

TEST(Client, TokenForAnotherWorkspaceIsErrorWith401) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), MintToken("read write", "other")), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kError));
  EXPECT_EQ(rec.states(), Seq({kConnecting, kAuthenticating, kError}));
  ASSERT_EQ(rec.errors().size(), 1u);
  EXPECT_EQ(rec.errors()[0].first, 401);
  EXPECT_NE(rec.transitions().back().why.message().find("HTTP 401"), std::string::npos);
  EXPECT_NE(rec.errors()[0].second.find("does not cover workspace w1"), std::string::npos)
      << rec.errors()[0].second;
}

TEST(Client, ReadOnlyPutGetsError403AndStaysSynced) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), MintToken("read", "w1")), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
  ASSERT_TRUE(client.Put("k", 1).ok());  // accepted for sending...
  ASSERT_TRUE(rec.WaitForErrors(1));     // ...and refused by the server
  EXPECT_EQ(rec.errors()[0].first, 403);
  EXPECT_TRUE(rec.ops().empty());
  EXPECT_EQ(client.state(), kSynced);
  EXPECT_EQ(rec.states().back(), kSynced);
}

// Starts `client`, whose callbacks are `rec`'s, and waits until it is Synced.
void StartSynced(SyncClient& client, Recorder& rec) {
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
}

// What Put's `done` is told, in the order the server answers.
class Outcomes {
 public:
  OpDone Done(std::string label) {
    return [this, label = std::move(label)](const Status& outcome, std::string_view answer) {
      std::lock_guard<std::mutex> l(mu_);
      got_.push_back({label, outcome, std::string(answer)});
      cv_.notify_all();
    };
  }
  struct Got {
    std::string label;
    Status outcome;
    std::string answer;
  };
  // Waits until `n` outcomes are in (10 s at most), and returns them.
  std::vector<Got> WaitFor(size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::seconds(10), [&] { return got_.size() >= n; });
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Got> got_;
};

// Each op's own broadcast answers it, though another client's ops on the
// same keys, some with the same values, come between.
TEST(Client, PutsDoneIsToldItsOwnBroadcast) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder a_rec, b_rec;
  Outcomes outcomes;  // before the clients, whose ops may tell it as they go
  const ClientOptions options = Options(server.Url("w1"), MintToken("read write", "w1"));
  SyncClient a(options, a_rec.Callbacks());
  SyncClient b(options, b_rec.Callbacks());
  StartSynced(a, a_rec);
  StartSynced(b, b_rec);

  constexpr int kOps = 50;
  for (int i = 0; i < kOps; ++i) {
    // b sets the key a sets next, to the same value, with a stamp of its own.
    ASSERT_TRUE(b.Put("k" + std::to_string(i % 5), i, int64_t{1000} + i).ok());
    ASSERT_TRUE(
        a.Put("k" + std::to_string(i % 5), i, std::nullopt, outcomes.Done(std::to_string(i))).ok());
  }
  auto got = outcomes.WaitFor(kOps);
  ASSERT_EQ(got.size(), size_t{kOps});
  ASSERT_TRUE(a_rec.WaitForOps(2 * kOps));
  for (int i = 0; i < kOps; ++i) {
    EXPECT_EQ(got[i].label, std::to_string(i));
    ASSERT_TRUE(got[i].outcome.ok()) << got[i].outcome.ToString();
    json::value answer = json::parse(got[i].answer);
    EXPECT_EQ(answer.at("payload").at("key"), json::value("k" + std::to_string(i % 5)));
    EXPECT_EQ(answer.at("payload").at("value"), i);
    EXPECT_NE(answer.at("payload").at("timestamp"), 1000 + i) << "b's op taken for a's";
  }
  // The answers are a's own broadcasts: their stamps increase, op by op.
  for (int i = 1; i < kOps; ++i)
    EXPECT_GT(json::parse(got[i].answer).at("payload").at("timestamp").as_int64(),
              json::parse(got[i - 1].answer).at("payload").at("timestamp").as_int64());
  EXPECT_TRUE(a_rec.errors().empty());
}

// A server, and one client of its workspace w1.
class OneClient : public ::testing::Test {
 protected:
  // Starts the server, then the client with a token of `scope`, and waits
  // until the client is Synced.
  void Start(const std::string& scope) {
    ASSERT_TRUE(server.Start());
    client = std::make_unique<SyncClient>(Options(server.Url("w1"), MintToken(scope, "w1")),
                                          rec.Callbacks());
    StartSynced(*client, rec);
  }

  // Declared in this order so that the client goes first: its callbacks
  // use rec and outcomes.
  ServerProcess server;
  Recorder rec;
  Outcomes outcomes;
  std::unique_ptr<SyncClient> client;
};

TEST_F(OneClient, PutsDoneIsToldTheServersRefusal) {
  Start("read");
  ASSERT_TRUE(client->Put("a", 1, std::nullopt, outcomes.Done("a")).ok());
  ASSERT_TRUE(client->Put("b", 2, std::nullopt, outcomes.Done("b")).ok());
  auto got = outcomes.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  for (const auto& g : got) {
    EXPECT_EQ(g.outcome.code(), Status::Code::kInvalidArgument) << g.outcome.ToString();
    EXPECT_NE(g.outcome.message().find("403"), std::string::npos) << g.outcome.ToString();
    EXPECT_EQ(json::parse(g.answer).at("code"), 403);
  }
  EXPECT_EQ(got[0].label, "a");
  EXPECT_EQ(got[1].label, "b");
  EXPECT_EQ(rec.errors().size(), 2u);  // on_error saw them too
}

// The server dies with an op unanswered: the op may or may not have been
// applied (here it was not: the server was stopped before it read it).
TEST_F(OneClient, PutsDoneIsToldWhenTheConnectionEndsFirst) {
  Start("write");
  server.Pause();
  ASSERT_TRUE(client->Put("k", 1, std::nullopt, outcomes.Done("k")).ok());
  std::this_thread::sleep_for(milliseconds(100));
  server.Kill();
  auto got = outcomes.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].outcome.code(), Status::Code::kIoError);
  EXPECT_NE(got[0].outcome.message().find("the connection ended before the server answered"),
            std::string::npos)
      << got[0].outcome.ToString();
  EXPECT_NE(got[0].outcome.message().find("may or may not have been applied"), std::string::npos);
  EXPECT_TRUE(got[0].answer.empty());
}

// A server that hangs never answers: on Stop, the op sent is told that it
// may or may not have been applied.
TEST_F(OneClient, PutsDoneIsToldWhenNoAnswerCame) {
  Start("write");
  server.Pause();
  ASSERT_TRUE(client->Put("k", 1, std::nullopt, outcomes.Done("k")).ok());
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_TRUE(outcomes.WaitFor(0).empty());
  client->Stop();
  auto got = outcomes.WaitFor(1);
  server.Resume();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].outcome.code(), Status::Code::kIoError);
  EXPECT_NE(got[0].outcome.message().find("may or may not have been applied"), std::string::npos)
      << got[0].outcome.ToString();
  EXPECT_TRUE(got[0].answer.empty());
}

// 503 (too many connections) is the server's trouble, not the client's:
// the client retries instead of entering Error, and gets in once there is
// room.
TEST(Client, BusyServerIsRetriedNotAnError) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(0, {"--max-connections", "1"}));
  std::string token = MintToken("read", "w1");
  Recorder a_rec, b_rec;
  auto a = std::make_unique<SyncClient>(Options(server.Url("w1"), token), a_rec.Callbacks());
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(a_rec.WaitForState(kSynced));

  SyncClient b(Options(server.Url("w1"), token), b_rec.Callbacks());
  ASSERT_TRUE(b.Start().ok());
  ASSERT_TRUE(b_rec.WaitForState(kDisconnected, 2));
  Status why = b_rec.transitions()[2].why;
  EXPECT_EQ(b_rec.states()[2], kDisconnected);
  EXPECT_EQ(why.code(), Status::Code::kIoError);
  EXPECT_NE(why.message().find("HTTP 503"), std::string::npos) << why.message();
  EXPECT_TRUE(b_rec.errors().empty());  // not reported as the server's final word

  a.reset();  // frees the one connection
  ASSERT_TRUE(b_rec.WaitForState(kSynced));
  EXPECT_EQ(b_rec.Count(kError), 0u);
}

// Callbacks may call Put() and Stop(); the destructor then finishes the job.
TEST(Client, CallbacksMayPutAndStop) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  ClientCallbacks cb = rec.Callbacks();
  SyncClient* self = nullptr;
  Status put_status = Status::Corruption("not called");
  auto record_state = cb.on_state;
  cb.on_state = [&](State s, const Status& why) {
    record_state(s, why);
    if (s == kSynced) put_status = self->Put("from-callback", true);
  };
  auto record_op = cb.on_op;
  cb.on_op = [&](const json::object& payload, std::string_view text) {
    record_op(payload, text);
    self->Stop();  // from the client's own thread: must not wait for itself
  };
  auto client = std::make_unique<SyncClient>(Options(server.Url("w1"), MintToken("write", "w1")),
                                             std::move(cb));
  self = client.get();
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(rec.WaitForState(kDisconnected));
  EXPECT_TRUE(put_status.ok()) << put_status.ToString();
  ASSERT_EQ(rec.ops().size(), 1u);
  EXPECT_EQ(rec.ops()[0].at("key"), "from-callback");
  EXPECT_EQ(rec.states(), Seq({kConnecting, kAuthenticating, kConnected, kSynced, kDisconnected}));
  EXPECT_TRUE(rec.transitions().back().why.ok());
  client.reset();  // joins the finished thread
}

TEST(Client, DestroyingASyncedClientClosesIt) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  {
    SyncClient client(Options(server.Url("w1"), MintToken("read", "w1")), rec.Callbacks());
    ASSERT_TRUE(client.Start().ok());
    ASSERT_TRUE(rec.WaitForState(kSynced));
  }
  EXPECT_EQ(rec.states().back(), kDisconnected);
}

TEST(Client, StopFromSeveralThreadsAtOnce) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  SyncClient client(Options(server.Url("w1"), MintToken("read", "w1")), rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 4; ++i) stoppers.emplace_back([&] { client.Stop(); });
  for (auto& t : stoppers) t.join();
  EXPECT_EQ(client.state(), kDisconnected);
  EXPECT_EQ(rec.Count(kDisconnected), 1u);
}

TEST(Client, OversizedPutIsRefusedLocally) {
  auto o = Options("ws://127.0.0.1:1/v1/sync/w", "t");
  o.max_message_bytes = 100;
  SyncClient client(o, {});
  Status s = client.Put("k", json::string(std::string(200, 'x')));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
}

// The server dies: the client reports Disconnected, then retries with the
// delays of its (seeded, so predictable) backoff; when the server comes
// back on the same port and data, the client is Synced again and its init
// holds what was written before.
TEST(Client, ReconnectsWithGrowingBackoffAndResyncsAfterRestart) {
  const milliseconds base(100), cap(2000);
  // Full jitter does not promise that delays grow; choose a seed whose
  // first three do, clearly enough to measure.
  uint64_t seed = 1;
  std::vector<milliseconds> want;
  for (;; ++seed) {
    Backoff b(base, cap, seed);
    want = {b.Delay(0), b.Delay(1), b.Delay(2)};
    if (want[0] >= milliseconds(30) && want[1] >= want[0] + milliseconds(60) &&
        want[2] >= want[1] + milliseconds(60))
      break;
  }

  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  auto o = Options(server.Url("w1"), MintToken("read write", "w1"));
  o.backoff_base = base;
  o.backoff_cap = cap;
  o.backoff_seed = seed;
  SyncClient client(o, rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
  ASSERT_TRUE(client.Put("before", 42).ok());
  ASSERT_TRUE(rec.WaitForOps(1));

  server.Kill();
  ASSERT_TRUE(rec.WaitForState(kDisconnected));
  EXPECT_EQ(client.state() == kConnecting || client.state() == kDisconnected, true);
  EXPECT_EQ(client.Put("during", 1).code(), Status::Code::kIoError);
  // Four attempts fail: three gaps to measure.
  ASSERT_TRUE(rec.WaitForState(kConnecting, 5));
  ASSERT_TRUE(rec.WaitForState(kDisconnected, 4));

  // Each gap: from a Disconnected to the next Connecting.
  std::vector<milliseconds> gaps;
  auto ts = rec.transitions();
  for (size_t i = 1; i < ts.size() && gaps.size() < 3; ++i)
    if (ts[i].state == kConnecting && ts[i - 1].state == kDisconnected)
      gaps.push_back(std::chrono::duration_cast<milliseconds>(ts[i].at - ts[i - 1].at));
  ASSERT_EQ(gaps.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    Backoff ceiling(base, cap, 1);
    EXPECT_LE(want[i], ceiling.Ceiling(static_cast<int>(i)));
    EXPECT_GE(gaps[i], want[i] - milliseconds(1)) << "gap " << i;
    EXPECT_LE(gaps[i], want[i] + milliseconds(150)) << "gap " << i;
  }
  EXPECT_GT(gaps[1], gaps[0]);
  EXPECT_GT(gaps[2], gaps[1]);
  for (size_t i = 4; i < ts.size(); ++i)
    if (ts[i].state == kDisconnected) {
      EXPECT_EQ(ts[i].why.code(), Status::Code::kIoError);
      EXPECT_NE(ts[i].why.message().find("connect"), std::string::npos) << ts[i].why.message();
    }

  const size_t synced_before = rec.Count(kSynced);
  ASSERT_TRUE(server.Start(server.port()));
  ASSERT_TRUE(rec.WaitForState(kSynced, synced_before + 1, milliseconds(15000)));
  auto inits = rec.inits();
  ASSERT_EQ(inits.size(), 2u);
  EXPECT_EQ(inits.back().at("data"), json::parse(R"({"before":42})"));
  // The states since the restart follow the diagram to Synced.
  auto states = rec.states();
  std::vector<State> tail(states.end() - 4, states.end());
  EXPECT_EQ(tail, Seq({kConnecting, kAuthenticating, kConnected, kSynced}));

  ASSERT_TRUE(client.Put("after", 43).ok());
  ASSERT_TRUE(rec.WaitForOps(2));
  EXPECT_EQ(rec.ops().back().at("key"), "after");
}

// A server that hangs (SIGSTOP) is noticed by the idle timeout; an attempt
// against it fails by the connect timeout. Reaching Synced again resets the
// attempt count: max_attempts counts consecutive failures, not a lifetime
// total, so two rounds of one failure each stay within max_attempts = 2.
TEST(Client, HungServerIsNoticedAndSyncedResetsTheAttemptCount) {
  ServerProcess server;
  ASSERT_TRUE(server.Start());
  Recorder rec;
  auto o = Options(server.Url("w1"), MintToken("read write", "w1"));
  o.max_attempts = 2;
  o.backoff_base = o.backoff_cap = milliseconds(50);
  o.idle_timeout = milliseconds(600);
  o.connect_timeout = milliseconds(600);
  SyncClient client(o, rec.Callbacks());
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(rec.WaitForState(kSynced));
  for (size_t round = 1; round <= 2; ++round) {
    server.Pause();
    // Lost (idle timeout), then one attempt whose handshake times out, then
    // a third attempt that the resumed server answers.
    ASSERT_TRUE(rec.WaitForState(kDisconnected, 2 * round)) << "round " << round;
    ASSERT_TRUE(rec.WaitForState(kAuthenticating, 2 * round + 1)) << "round " << round;
    server.Resume();
    ASSERT_TRUE(rec.WaitForState(kSynced, round + 1)) << "round " << round;
  }
  auto ts = rec.transitions();
  std::vector<std::string> reasons;
  for (auto& t : ts)
    if (t.state == kDisconnected) reasons.push_back(t.why.message());
  ASSERT_EQ(reasons.size(), 4u);
  EXPECT_NE(reasons[0].find("idle"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("timed out"), std::string::npos) << reasons[1];
  EXPECT_EQ(client.state(), kSynced);
  EXPECT_EQ(rec.Count(kError), 0u);
}

}  // namespace
}  // namespace etherply::client
