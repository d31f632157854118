// What a tensor read from a file may claim of its storage.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/test_support.h"
#include "util/stored_tensor.h"

namespace mipin {
namespace {

TEST(StoredTensor, AcceptsWhatLiesInsideItsStorage) {
  check_stored_tensor(torch::rand({3, 4}), "t");
  check_stored_tensor(torch::rand({3, 4}).t(), "t");        // strided view, same elements
  check_stored_tensor(torch::rand({10}).slice(0, 6, 9), "t");  // offset view
  check_stored_tensor(torch::tensor(2.0), "t");             // a scalar
  check_stored_tensor(torch::rand({0, 5}), "t");            // no elements
}

TEST(StoredTensor, RefusesViewsPastOrLargerThanTheStorage) {
  at::Tensor past = torch::zeros({4});
  past.unsafeGetTensorImpl()->set_sizes_contiguous({3, 3});
  at::Tensor scalar_past = torch::zeros({4});
  scalar_past.unsafeGetTensorImpl()->set_sizes_contiguous({});
  scalar_past.unsafeGetTensorImpl()->set_storage_offset(7);
  for (const at::Tensor& t : {past, scalar_past, torch::zeros({1}).expand({5, 5})}) {
    const std::string message = test::error_of([&] { check_stored_tensor(t, "tensor 'w'"); });
    EXPECT_NE(message.find("tensor 'w'"), std::string::npos) << message;
    EXPECT_NE(message.find("the file is corrupt"), std::string::npos) << message;
  }
  EXPECT_NE(test::error_of([] { check_stored_tensor(at::Tensor(), "w"); }).find("found none"), std::string::npos);
}

}  // namespace
}  // namespace mipin
