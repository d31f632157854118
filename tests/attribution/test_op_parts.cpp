// The closed-form vector-Jacobian products of softmax, layer_norm and
// matmul (attribution/op_parts.h) against autograd through the node's own
// forward pass, in float64; and the cases they leave to autograd.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "attribution/op_parts.h"
#include "mipin/model/network.h"
#include "support/scripted_model.h"
#include "support/test_support.h"

namespace mipin {
namespace {

using test::scripted_model;

// autograd's product of node i at its recorded inputs.
std::vector<at::Tensor> autograd_vjp(const Layer& layer, const LayerRecord& record, const at::Tensor& signal) {
  torch::AutoGradMode enable(true);
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& t : record.inputs) leaves.push_back(t.detach().requires_grad_(true));
  const at::Tensor out = layer.forward_of(leaves, nullptr);
  return torch::autograd::grad({out}, leaves, {signal});
}

TEST(OpParts, ClosedFormProductsAreAutogradsWhereTheyApply) {
  test::TempDir dir;
  torch::manual_seed(2);
  ImportedModel m = scripted_model(R"(
def forward(self, x):
    y = torch.layer_norm(x, [6], self.g, self.b, 1e-5)
    z = torch.layer_norm(y, [6], None, None, 1e-5)
    p = torch.softmax(torch.matmul(z, y.transpose(1, 2)), -1)
    return torch.matmul(p, y * self.s).flatten(1)
)",
                                   {4, 6},
                                   {{"g", 1 + 0.3 * torch::randn({6})}, {"b", torch::randn({6})}, {"s", torch::randn({6})}},
                                   dir);
  m.network.to(at::kDouble);
  const at::Tensor x = torch::randn({3, 4, 6}, torch::kDouble);
  ForwardRecord record;
  m.network.forward(x, &record);
  int closed = 0;
  for (size_t i = 0; i < m.network.size(); ++i) {
    const Layer& layer = m.network.layer(i);
    const std::string op = layer.op();
    const bool expected = op == "aten::softmax" || op == "aten::layer_norm" || op == "aten::matmul";
    LayerRecord rec = record.layers[i];
    if (rec.inputs.empty()) rec.inputs = {rec.input};
    const at::Tensor signal = torch::randn_like(rec.output);
    const auto ours = closed_form_vjp(RuleContext{layer, rec, i, &m.network}, signal);
    EXPECT_EQ(ours.has_value(), expected) << layer.describe();
    if (!ours) continue;
    ++closed;
    const std::vector<at::Tensor> reference = autograd_vjp(layer, rec, signal);
    ASSERT_EQ(ours->size(), reference.size()) << layer.describe();
    for (size_t k = 0; k < reference.size(); ++k) {
      EXPECT_LE(((*ours)[k] - reference[k]).abs().max().item<double>(), 1e-12 * (1 + reference[k].abs().max().item<double>()))
          << layer.describe() << " input " << k;
    }
  }
  EXPECT_EQ(closed, 5);  // two layer norms, a softmax, two products
}

}  // namespace
}  // namespace mipin
