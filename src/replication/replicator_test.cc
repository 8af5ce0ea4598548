#include "replication/replicator.h"

#include <gtest/gtest.h>

// The options a server checks before it makes anything (CheckOptions).

namespace etherply::replication {
namespace {

Status CheckUrls(std::string urls) {
  Options o;
  o.nats_url = std::move(urls);
  return CheckOptions(o);
}

TEST(CheckOptions, NatsUrlsThatNatsCanDial) {
  for (const char* ok :
       {"nats://127.0.0.1:4222", "127.0.0.1:4223", "nats://a.example:4222,nats://b.example:4222",
        "tls://user:pw@host.example:4443", "nats://[::1]:4222", "nats://host", "nats://host:4222/",
        "[::1]"})
    EXPECT_TRUE(CheckUrls(ok).ok()) << ok << ": " << CheckUrls(ok).ToString();
}

TEST(CheckOptions, NatsUrlsRefusedWithTheReason) {
  struct Case {
    const char* urls;
    const char* why;
  };
  for (const Case& c : {
           Case{",", "NATS URL \"\" is empty"},
           Case{"nats://a:4222,", "NATS URL \"\" is empty"},
           Case{"", "NATS URL \"\" is empty"},
           Case{"http://127.0.0.1:4222", "has a scheme other than nats:// or tls://"},
           Case{"nats://127.0.0.1:99999", "has a port that is not from 1 to 65535"},
           Case{"nats://127.0.0.1:0", "has a port that is not from 1 to 65535"},
           Case{"nats://127.0.0.1:", "has a port that is not from 1 to 65535"},
           Case{"nats://127.0.0.1:42x", "has a port that is not from 1 to 65535"},
           Case{"nats://:4222", "has no host"},
           Case{"nats://host:4222/path", "has a path"},
           Case{"nats://u:secret@host:99999", "NATS URL \"nats://***@host:99999\" has a port"},
           Case{"nats://[::1:4222", "has an unclosed ["},
       }) {
    Status s = CheckUrls(c.urls);
    ASSERT_FALSE(s.ok()) << c.urls;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find(c.why), std::string::npos) << c.urls << ": " << s.message();
  }
}

TEST(RedactedUrls, CredentialsAreNotLogged) {
  EXPECT_EQ(RedactedUrls("nats://u:pw@a:4222,tls://tok@b:4443,nats://c:4222,d@e"),
            "nats://***@a:4222,tls://***@b:4443,nats://c:4222,***@e");
}

TEST(CheckOptions, ReplicasIntervalAndNodeId) {
  Options o;
  o.nats_url = "nats://127.0.0.1:4222";
  EXPECT_TRUE(CheckOptions(o).ok()) << "an empty node id is the actor's, set later";
  o.node_id = "eu-1";
  EXPECT_TRUE(CheckOptions(o).ok());
  o.node_id = "eu 1";
  EXPECT_FALSE(CheckOptions(o).ok());
  o.node_id = "eu-1";
  o.replicas = 6;
  EXPECT_FALSE(CheckOptions(o).ok());
  o.replicas = 0;
  EXPECT_FALSE(CheckOptions(o).ok());
  o.replicas = 3;
  o.anti_entropy_interval = std::chrono::milliseconds(0);
  EXPECT_FALSE(CheckOptions(o).ok());
}

}  // namespace
}  // namespace etherply::replication
