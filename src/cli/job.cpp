#include "job.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "mipin/util/error.h"
#include "mipin/util/free_port.h"

namespace mipin::cli {
namespace {

std::vector<std::string>& command_line() {
  static std::vector<std::string> args;
  return args;
}

// The command line again, without --processes (the workers are one each).
std::vector<std::string> worker_arguments() {
  std::vector<std::string> out;
  const auto& args = command_line();
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--processes") {
      ++i;
      continue;
    }
    if (args[i].rfind("--processes=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

pid_t start_worker(int rank, int world, int port) {
  const std::vector<std::string> args = worker_arguments();
  const pid_t pid = fork();
  MIPIN_CHECK(pid >= 0, "cannot start worker ", rank, ": ", std::strerror(errno));
  if (pid > 0) return pid;
  // The worker ends with the process that started it.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  std::fprintf(stderr, "mipin: error: cannot start worker %d: %s\n", rank, std::strerror(errno));
  std::_Exit(127);
}

}  // namespace

void add_job_flags(CLI::App& cmd, JobFlags& flags) {
  const std::string group = "Processes (one fit or evaluation across processes and machines)";
  cmd.add_option("--processes", flags.processes,
                 "Run on N processes of this machine, each streaming its share of the examples "
                 "(for several machines launch with torchrun: see docs/distributed.md)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--timeout", flags.timeout,
                 "Seconds a process may go silent, or take to join, before the job stops with an error "
                 "naming it")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  cmd.add_option("--port", flags.port, "Port of rank 0's rendezvous for --processes (default: a free one)")
      ->check(CLI::Range(1, 65535))
      ->group(group);
}

void remember_command_line(int argc, char** argv) {
  command_line().assign(argv, argv + argc);
}

Job::Job(const JobFlags& flags) {
  const auto launched = distributed_from_environment(flags.timeout);
  if (flags.processes <= 1) {
    reducer_ = launched ? join_job(*launched) : std::make_unique<JobReducer>();
    return;
  }
  MIPIN_CHECK(!launched, "--processes starts its own processes: leave it out under torchrun (WORLD_SIZE is set)");
  const int port = flags.port > 0 ? flags.port : free_port();
  for (int r = 1; r < flags.processes; ++r) children_.push_back(start_worker(r, flags.processes, port));
  reducer_ = join_job(DistributedOptions{}
                          .with_master("127.0.0.1", port)
                          .with_rank(0, flags.processes)
                          .with_timeout(flags.timeout));
}

Job::~Job() {
  // An error ended this process's part early: end the workers it started.
  for (const pid_t pid : children_) {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
}

void Job::finish() {
  reducer_->finish_job();
  std::string failed;
  for (const pid_t pid : children_) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed += (failed.empty() ? "" : ", ") + std::to_string(pid);
  }
  children_.clear();
  MIPIN_CHECK(failed.empty(), "worker process(es) ", failed, " did not exit cleanly");
}

}  // namespace mipin::cli
