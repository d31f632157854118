#include "attribution/resource_bounds.h"

#include <unistd.h>

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "mipin/model/network.h"
#include "mipin/util/error.h"

namespace mipin {

double bytes_per_input(const Network& network, const at::Tensor& x) {
  const std::vector<int64_t> example(x.sizes().begin() + 1, x.sizes().end());
  double values = 0;
  for (const auto& shape : network.shapes(example)) {
    double n = 1;
    for (int64_t d : shape) n *= double(d);
    values += n;
  }
  return 1.5 * 4 * values;
}

double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream in(line.substr(13));
    double kib = 0;
    if (in >> kib && kib > 0) return kib * 1024;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 1e12;
}

void check_inputs_per_pass(const Network& network, const at::Tensor& x, int64_t inputs_per_pass,
                           const std::string& method, const std::string& option) {
  const double each = bytes_per_input(network, x), free = available_memory_bytes();
  const double bound = std::floor(free / std::max(each, 1.0));
  MIPIN_CHECK(double(inputs_per_pass) <= bound, "method '", method, "': option ", option, " is ", inputs_per_pass,
              " inputs per pass, but each input takes about ", std::llround(each / 1024), " KiB of activations on this "
              "model and ", std::llround(free / (1024.0 * 1024.0)), " MiB are free: at most ", std::llround(bound),
              " fit");
}

}  // namespace mipin
