#pragma once
// The processes of one `mipin fit` or `mipin evaluate`: this process alone,
// one of a job torchrun launched (its variables say so), or rank 0 of a job
// that `--processes N` starts on this machine.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "mipin/distributed/gloo.h"

namespace mipin::cli {

struct JobFlags {
  int processes = 1;
  double timeout = 60;
  int port = 0;  // for --processes; 0: a free one
};

void add_job_flags(CLI::App& command, JobFlags& flags);

// Keeps the command line, for the processes --processes starts.
void remember_command_line(int argc, char** argv);

class Job {
 public:
  explicit Job(const JobFlags& flags);
  ~Job();
  Reducer& reducer() { return *reducer_; }
  int rank() const { return reducer_->rank(); }
  int world_size() const { return reducer_->world_size(); }
  // Rank 0 writes files and prints; the others compute their share.
  bool leads() const { return reducer_->rank() == 0; }
  // Waits until every process is done (and, for --processes, that each
  // exited cleanly); throws mipin::Error otherwise.
  void finish();

 private:
  std::unique_ptr<JobReducer> reducer_;
  std::vector<pid_t> children_;
};

}  // namespace mipin::cli
