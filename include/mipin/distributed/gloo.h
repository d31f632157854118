#pragma once
// One job across processes and machines on torch.distributed's Gloo
// backend, configured the way torchrun configures training: MASTER_ADDR and
// MASTER_PORT name rank 0's rendezvous (a TCP store), RANK and WORLD_SIZE
// place this process.
#include <memory>
#include <optional>
#include <string>

#include "mipin/distributed/reducer.h"

namespace mipin {

struct DistributedOptions {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  // How long a process may go silent (and how long the others may take to
  // join) before the job stops with an error naming it.
  double timeout_seconds = 60;
  // Whether the store at MASTER_ADDR:MASTER_PORT is another program's (the
  // torchrun agent's, TORCHELASTIC_USE_AGENT_STORE) rather than rank 0's.
  bool external_store = false;

  DistributedOptions& with_master(std::string addr, int port) {
    master_addr = std::move(addr);
    master_port = port;
    return *this;
  }
  DistributedOptions& with_rank(int r, int world) {
    rank = r;
    world_size = world;
    return *this;
  }
  DistributedOptions& with_timeout(double seconds) {
    timeout_seconds = seconds;
    return *this;
  }
};

// The job torchrun's variables describe, or nothing where WORLD_SIZE is
// unset or 1 (one process). Throws mipin::Error for malformed values.
std::optional<DistributedOptions> distributed_from_environment(double timeout_seconds = 60);

// A process's reducer in a job of several, or the identity when the job is
// one process. The caller keeps the reducer alive for the whole job and
// calls finish_job() once its work (rank 0's writing included) is done.
class JobReducer : public Reducer {
 public:
  // Waits until every process has done its work, so that none takes the
  // end of another for a loss.
  virtual void finish_job() {}
};

// Joins the job: rank 0 listens at MASTER_ADDR:MASTER_PORT, every process
// waits (up to the timeout) for all the others, checks that they agree on
// the world size and that no rank is taken twice, and connects to them over
// Gloo. A watchdog keeps a heartbeat for every process: one that stops
// beating for the timeout (killed, frozen, its machine gone) ends the
// others with an error naming its rank, and with no half-written file.
std::unique_ptr<JobReducer> join_job(const DistributedOptions& options);

// The job of this process: join_job() for torchrun's variables, or the
// identity reducer of one process.
std::unique_ptr<JobReducer> join_job_from_environment(double timeout_seconds = 60);

}  // namespace mipin
