// A job across processes on LibTorch's c10d: a TCPStore on rank 0 for the
// rendezvous and the heartbeats, ProcessGroupGloo for the sums.
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "mipin/distributed/gloo.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"

namespace mipin {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kBeat = milliseconds(500);
// How long a process's heartbeat may stand still, after a sum failed, before
// it counts as the one lost (several beats).
constexpr auto kStill = milliseconds(2500);
// Chunks of a sum: each process passes one on while it adds the next.
constexpr int64_t kChunkValues = int64_t{1} << 20;

std::string beat_key(int r) { return "mipin/beat/" + std::to_string(r); }
std::string done_key(int r) { return "mipin/done/" + std::to_string(r); }
std::string who_key(int r) { return "mipin/who/" + std::to_string(r); }

milliseconds to_ms(double seconds) { return milliseconds(int64_t(seconds * 1000)); }

std::string text_of(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }
std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

std::string this_process() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  return std::string(host) + ", pid " + std::to_string(getpid());
}

std::string what_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

// Keeps this process's heartbeat in the store and watches the others'. A
// process whose beat stands still for the timeout, or a store that went
// away with rank 0, ends this process at once: nothing it is doing can
// finish without the lost one.
class Watchdog {
 public:
  Watchdog(const DistributedOptions& o, std::vector<std::string> who)
      : o_(o), who_(std::move(who)), last_(size_t(o.world_size)), changed_(size_t(o.world_size), Clock::now()) {
    c10d::TCPStoreOptions so;
    so.port = uint16_t(o.master_port);
    so.isServer = false;
    so.timeout = to_ms(o.timeout_seconds);
    store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    thread_ = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // After a sum failed: the processes whose heartbeat stands still.
  std::vector<int> still() {
    std::this_thread::sleep_for(kStill + kBeat);
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<int> out;
    for (int r = 0; r < o_.world_size; ++r) {
      if (r != o_.rank && Clock::now() - changed_[size_t(r)] >= kStill) out.push_back(r);
    }
    return out;
  }

 private:
  [[noreturn]] void lost(int r, const std::string& why) {
    std::fprintf(stderr, "mipin: error: lost rank %d of %d (%s): %s; this process (rank %d) stops\n", r,
                 o_.world_size, who_[size_t(r)].c_str(), why.c_str(), o_.rank);
    std::fflush(stderr);
    remove_unfinished_files();
    std::_Exit(1);
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      lock.unlock();
      std::vector<int64_t> beats(size_t(o_.world_size)), done(size_t(o_.world_size));
      try {
        store_->add(beat_key(o_.rank), 1);
        for (int r = 0; r < o_.world_size; ++r) {
          beats[size_t(r)] = store_->add(beat_key(r), 0);
          done[size_t(r)] = store_->add(done_key(r), 0);
        }
      } catch (const std::exception& e) {
        lock.lock();
        if (stop_) return;
        // The store lives with rank 0 (in it, or in torchrun's agent on its
        // machine): it going away is rank 0 going away.
        lost(0, "the rendezvous at " + o_.master_addr + ":" + std::to_string(o_.master_port) +
                    " on its machine stopped answering (" + what_of(e) + ")");
      }
      lock.lock();
      const auto now = Clock::now();
      for (int r = 0; r < o_.world_size; ++r) {
        if (beats[size_t(r)] != last_[size_t(r)] || done[size_t(r)] > 0) {
          last_[size_t(r)] = beats[size_t(r)];
          changed_[size_t(r)] = now;
        } else if (r != o_.rank && now - changed_[size_t(r)] > to_ms(o_.timeout_seconds)) {
          if (stop_) return;
          lost(r, "no heartbeat for " + std::to_string(int64_t(o_.timeout_seconds)) + " s (--timeout)");
        }
      }
      wake_.wait_for(lock, kBeat, [this] { return stop_; });
    }
  }

  DistributedOptions o_;
  std::vector<std::string> who_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::vector<int64_t> last_;
  std::vector<Clock::time_point> changed_;
  std::thread thread_;
};

class GlooJob final : public JobReducer {
 public:
  explicit GlooJob(const DistributedOptions& o) : o_(o) {
    rendezvous();
    // A sum may wait long for a slower process (rank 0 alone computing a
    // part of an evaluation); the heartbeats, not the sums, tell a lost
    // process from a slow one.
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::hours(24 * 7));
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (loopback(o_.master_addr)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 1;
    // Watched from here on: a process lost while the group connects counts.
    watchdog_ = std::make_unique<Watchdog>(o_, who_);
    try {
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(
          c10::make_intrusive<c10d::PrefixStore>("mipin/gloo", store_), o_.rank, o_.world_size, options);
    } catch (const std::exception& e) {
      MIPIN_FAIL("rank ", o_.rank, " could not connect to the other processes over Gloo: ", what_of(e));
    }
  }

  ~GlooJob() override {
    watchdog_.reset();
    group_.reset();
  }

  int rank() const override { return o_.rank; }
  int world_size() const override { return o_.world_size; }

  void finish_job() override {
    store_->add(done_key(o_.rank), 1);
    barrier();
    // Every process has marked itself done: none will take another's
    // silence for a loss from here on.
    watchdog_.reset();
    barrier();
  }

 protected:
  // A failed sum is a lost process, named.
  void sum_across(at::Tensor& values) override {
    try {
      sum_in_rank_order(values);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      // Gloo says which socket closed; the heartbeats say which process.
      const std::vector<int> gone = watchdog_ ? watchdog_->still() : std::vector<int>{};
      std::string ranks;
      for (int r : gone) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r) + " (" + who_[size_t(r)] + ")";
      MIPIN_CHECK(gone.empty(), "lost rank ", ranks, " of ", o_.world_size,
                  ": its process ended or stopped answering; this process (rank ", o_.rank, ") stops");
      MIPIN_FAIL("rank ", o_.rank, " failed to add its sums to the other processes': ", what_of(e));
    }
  }

 private:
  // Rank r receives x_0 + ... + x_{r-1} chunk by chunk, adds its own and
  // passes it on; the last rank's total goes back to everyone.
  void sum_in_rank_order(at::Tensor& values) {
    const at::Tensor flat = values.view({-1});
    const int64_t n = flat.numel();
    std::vector<c10::intrusive_ptr<c10d::Work>> sends;
    int chunk = 0;
    for (int64_t off = 0; off < n; off += kChunkValues, ++chunk) {
      at::Tensor part = flat.narrow(0, off, std::min(kChunkValues, n - off));
      if (o_.rank > 0) {
        std::vector<at::Tensor> in{torch::empty_like(part)};
        group_->recv(in, o_.rank - 1, chunk)->wait();
        part.add_(in[0]);
      }
      if (o_.rank + 1 < o_.world_size) {
        std::vector<at::Tensor> out{part};
        sends.push_back(group_->send(out, o_.rank + 1, chunk));
      }
    }
    for (auto& s : sends) s->wait();
    std::vector<at::Tensor> all{flat};
    c10d::BroadcastOptions b;
    b.rootRank = o_.world_size - 1;
    group_->broadcast(all, b)->wait();
  }

  static bool loopback(const std::string& addr) {
    return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
  }

  void barrier() {
    at::Tensor one = torch::ones({1}, torch::kDouble);
    sum(one);
  }

  void rendezvous() {
    const std::string at = o_.master_addr + ":" + std::to_string(o_.master_port);
    c10d::TCPStoreOptions so;
    so.port = uint16_t(o_.master_port);
    so.isServer = o_.rank == 0 && !o_.external_store;
    so.waitWorkers = false;
    so.timeout = to_ms(o_.timeout_seconds);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(o_.master_addr, so);
    } catch (const std::exception& e) {
      const std::string what = what_of(e);
      MIPIN_CHECK(what.find("in use") == std::string::npos, "rank 0 cannot listen on port ", o_.master_port,
                  ": it is in use by another program; choose a free port (torchrun --master_port, "
                  "MASTER_PORT, or --port of --processes)");
      MIPIN_FAIL(o_.rank == 0 ? "rank 0 cannot listen at " + at : "rank " + std::to_string(o_.rank) +
                 " cannot reach rank 0 at " + at + " within " + std::to_string(int64_t(o_.timeout_seconds)) +
                 " s (--timeout)", ": ", what);
    }
    try {
      meet(at);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      MIPIN_FAIL("rank ", o_.rank, " lost its rendezvous at ", at, " (rank 0 ended?): ", what_of(e));
    }
  }

  // Every process says who it is and waits for the others.
  void meet(const std::string& at) {
    MIPIN_CHECK(store_->add("mipin/claim/" + std::to_string(o_.rank), 1) == 1, "two processes were started as rank ",
                o_.rank, " (RANK): every process of a job needs a rank of its own");
    store_->set(who_key(o_.rank), bytes_of(std::to_string(o_.world_size) + " " + this_process()));
    std::vector<std::string> keys;
    for (int r = 0; r < o_.world_size; ++r) keys.push_back(who_key(r));
    try {
      store_->wait(keys, to_ms(o_.timeout_seconds));
    } catch (const std::exception&) {
      std::string missing;
      for (int r = 0; r < o_.world_size; ++r) {
        if (!store_->check({who_key(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      }
      MIPIN_FAIL("waited ", int64_t(o_.timeout_seconds), " s (--timeout) for rank(s) ", missing, " of ",
                 o_.world_size, " to join at ", at, ": start every process of the job (WORLD_SIZE ", o_.world_size,
                 ")");
    }
    for (int r = 0; r < o_.world_size; ++r) {
      const std::string entry = text_of(store_->get(who_key(r)));
      const size_t space = entry.find(' ');
      const int world = std::atoi(entry.substr(0, space).c_str());
      MIPIN_CHECK(world == o_.world_size, "rank ", r, " was started with WORLD_SIZE ", world, " but rank ", o_.rank,
                  " with ", o_.world_size, ": every process of a job needs the same world size");
      who_.push_back(entry.substr(space + 1));
    }
  }

  DistributedOptions o_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  std::vector<std::string> who_;
  std::unique_ptr<Watchdog> watchdog_;
};

int int_from(const char* name, const char* text) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  MIPIN_CHECK(end != text && *end == '\0' && v >= 0 && v < (1L << 30), name, " must be a non-negative integer, found '",
              text, "'");
  return int(v);
}

}  // namespace

std::optional<DistributedOptions> distributed_from_environment(double timeout_seconds) {
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || int_from("WORLD_SIZE", world) <= 1) return std::nullopt;
  DistributedOptions o;
  o.world_size = int_from("WORLD_SIZE", world);
  const char* rank = std::getenv("RANK");
  MIPIN_CHECK(rank, "WORLD_SIZE is ", o.world_size, " but RANK is not set: launch the processes with torchrun");
  o.rank = int_from("RANK", rank);
  MIPIN_CHECK(o.rank < o.world_size, "RANK ", o.rank, " is out of range for WORLD_SIZE ", o.world_size);
  if (const char* addr = std::getenv("MASTER_ADDR")) o.master_addr = addr;
  if (const char* port = std::getenv("MASTER_PORT")) o.master_port = int_from("MASTER_PORT", port);
  MIPIN_CHECK(o.master_port > 0 && o.master_port < 65536, "MASTER_PORT must be a port (1 to 65535), found ",
              o.master_port);
  MIPIN_CHECK(timeout_seconds > 0, "the timeout must be positive, found ", timeout_seconds);
  // torchrun's agent keeps the store itself and tells its workers so.
  const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  o.external_store = agent_store && std::string(agent_store) == "True";
  o.timeout_seconds = timeout_seconds;
  return o;
}

std::unique_ptr<JobReducer> join_job(const DistributedOptions& options) {
  if (options.world_size <= 1) return std::make_unique<JobReducer>();
  MIPIN_CHECK(options.rank >= 0 && options.rank < options.world_size, "rank ", options.rank,
              " is out of range for a world of ", options.world_size);
  return std::make_unique<GlooJob>(options);
}

std::unique_ptr<JobReducer> join_job_from_environment(double timeout_seconds) {
  const auto o = distributed_from_environment(timeout_seconds);
  return o ? join_job(*o) : std::make_unique<JobReducer>();
}

}  // namespace mipin
