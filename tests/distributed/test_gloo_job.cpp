// A job of several processes, played by threads of this one on loopback:
// the sums run in rank order and every rank gets the same bytes, processes
// that disagree are named, and a world that never fills up is an error.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <thread>

#include "mipin/distributed/gloo.h"
#include "mipin/util/error.h"
#include "mipin/util/free_port.h"
#include "support/test_support.h"

namespace mipin {
namespace {

// Runs `work` as every rank of a job of `world`, one thread each; returns
// each rank's error message ("" when it had none).
std::vector<std::string> run_job(int world, const std::function<void(JobReducer&)>& work, double timeout = 20) {
  const int port = free_port();
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto job = join_job(DistributedOptions{}.with_master("127.0.0.1", port).with_rank(r, world).with_timeout(timeout));
        work(*job);
        job->finish_job();
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

TEST(GlooJob, SumsInRankOrderAndEveryRankGetsTheSameBytes) {
  // 2.5 chunks of values: the sum passes chunk by chunk.
  const int64_t n = (int64_t{5} << 20) / 2;
  std::vector<at::Tensor> results(3);
  const auto errors = run_job(3, [&](JobReducer& job) {
    // 1e16 + 1 rounds back to 1e16: only the rank order (1e16 + 1) - 1e16
    // gives 0 everywhere; any other order leaves 1 somewhere.
    const double mine[3] = {1e16, 1.0, -1e16};
    at::Tensor v = torch::full({n}, mine[job.rank()], torch::kDouble);
    v[n - 1] = double(job.rank());  // 0 + 1 + 2
    job.sum(v);
    results[size_t(job.rank())] = v;
    EXPECT_EQ(job.stats().calls, 1);
    EXPECT_EQ(job.stats().bytes, n * 8);
  });
  for (const auto& e : errors) EXPECT_EQ(e, "");
  ASSERT_TRUE(results[0].defined());
  EXPECT_EQ(results[0].slice(0, 0, n - 1).abs().max().item<double>(), 0.0);
  EXPECT_EQ(results[0][n - 1].item<double>(), 3.0);
  EXPECT_TRUE(results[1].equal(results[0]));
  EXPECT_TRUE(results[2].equal(results[0]));
}

TEST(GlooJob, BatchesAreDealtRoundRobin) {
  const auto errors = run_job(2, [&](JobReducer& job) {
    EXPECT_EQ(job.takes(0), job.rank() == 0);
    EXPECT_EQ(job.takes(3), job.rank() == 1);
  });
  for (const auto& e : errors) EXPECT_EQ(e, "");
}

TEST(GlooJob, ProcessesThatDisagreeAreNamed) {
  const auto errors = run_job(3, [&](JobReducer& job) {
    check_same_everywhere(job, "model", job.rank() == 2 ? "another model" : "the model");
  });
  for (const auto& e : errors) {
    EXPECT_NE(e.find("disagree on the model"), std::string::npos) << e;
    EXPECT_NE(e.find("rank(s) 2 differ from rank 0"), std::string::npos) << e;
  }
}

TEST(GlooJob, AMissingRankIsNamedAfterTheTimeout) {
  const int port = free_port();
  const std::string message = test::error_of([&] {
    join_job(DistributedOptions{}.with_master("127.0.0.1", port).with_rank(0, 3).with_timeout(2));
  });
  EXPECT_NE(message.find("for rank(s) 1, 2 of 3 to join"), std::string::npos) << message;
}

TEST(GlooJob, RanksThatDisagreeOnTheWorldSizeAreAnError) {
  const int port = free_port();
  std::string first, second;
  std::thread a([&] {
    first = test::error_of([&] {
      join_job(DistributedOptions{}.with_master("127.0.0.1", port).with_rank(0, 2).with_timeout(5));
    });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  second = test::error_of([&] {
    join_job(DistributedOptions{}.with_master("127.0.0.1", port).with_rank(1, 3).with_timeout(3));
  });
  a.join();
  EXPECT_NE((first + second).find("WORLD_SIZE"), std::string::npos) << first << " | " << second;
}

TEST(GlooJob, APortInUseIsAnError) {
  // A listener of another program on the port.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  const std::string message = test::error_of([&] {
    join_job(DistributedOptions{}.with_master("127.0.0.1", port).with_rank(0, 2).with_timeout(2));
  });
  close(fd);
  EXPECT_NE(message.find("port " + std::to_string(port)), std::string::npos) << message;
  EXPECT_NE(message.find("in use"), std::string::npos) << message;
}

TEST(GlooJob, TorchrunVariablesDescribeTheJob) {
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "2", 1);
  setenv("MASTER_ADDR", "10.0.0.7", 1);
  setenv("MASTER_PORT", "29511", 1);
  const auto o = distributed_from_environment(12);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->world_size, 4);
  EXPECT_EQ(o->rank, 2);
  EXPECT_EQ(o->master_addr, "10.0.0.7");
  EXPECT_EQ(o->master_port, 29511);
  EXPECT_EQ(o->timeout_seconds, 12);
  setenv("RANK", "4", 1);
  EXPECT_NE(test::error_of([] { distributed_from_environment(); }).find("out of range"), std::string::npos);
  setenv("RANK", "x", 1);
  EXPECT_NE(test::error_of([] { distributed_from_environment(); }).find("RANK"), std::string::npos);
  setenv("WORLD_SIZE", "1", 1);
  EXPECT_FALSE(distributed_from_environment().has_value());
  for (const char* v : {"WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
}

}  // namespace
}  // namespace mipin
