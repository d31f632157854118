#pragma once
// Bounds on the options that scale a method's memory: checked against the
// model's activations and the memory this machine has free before anything
// is allocated, so that a mistyped option is an error, not a process the
// kernel kills.
#include <cstdint>
#include <string>

namespace at {
class Tensor;
}

namespace mipin {

class Network;

// The bytes one input takes through `network` with the batch `x` has, in a
// recorded forward and backward pass: every value it computes, float32, kept
// for the record, and half as much again for the signals in flight.
double bytes_per_input(const Network& network, const at::Tensor& x);

// Memory free for this process now (MemAvailable), in bytes.
double available_memory_bytes();

// Refuses `inputs_per_pass` inputs in one pass (the option `option` of
// `method`) where their activations would not fit in the free memory,
// naming the largest count that would.
void check_inputs_per_pass(const Network& network, const at::Tensor& x, int64_t inputs_per_pass,
                           const std::string& method, const std::string& option);

}  // namespace mipin
