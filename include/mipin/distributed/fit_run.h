#pragma once
// How a fit (an inverse, patterns) runs, apart from what it fits: across the
// processes of a job, with checkpoints, reporting progress.
#include <string>

#include "mipin/distributed/reducer.h"
#include "mipin/util/progress.h"

namespace mipin {

struct FitRun {
  // The job's reducer (distributed/gloo.h): every process streams its share
  // of the batches and the sums of each pass are added across processes.
  // Null: this process alone.
  Reducer* reducer = nullptr;
  // A directory where the fit keeps, atomically, the nodes fitted so far
  // and the sums of the pass under way; a fit started with the same
  // directory resumes from it, and gives the same bytes as one that was
  // never stopped. Empty: no checkpoints. One-process MIP-IN fits only.
  std::string checkpoint;
  double checkpoint_seconds = 60;  // at most this long between saves; 0: after every batch
  ProgressCallback progress;       // null: silent

  FitRun& with_reducer(Reducer* r) { reducer = r; return *this; }
  FitRun& with_checkpoint(std::string dir, double seconds = 60) {
    checkpoint = std::move(dir);
    checkpoint_seconds = seconds;
    return *this;
  }
  FitRun& with_progress(ProgressCallback p) { progress = std::move(p); return *this; }
};

}  // namespace mipin
