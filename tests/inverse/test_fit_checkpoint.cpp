// A fit's checkpoint is a file like any other: what it says about nodes,
// operators and sums must fit the model before the fit resumes from it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "inverse/fit_checkpoint.h"
#include "mipin/inverse/options_json.h"
#include "mipin/model/layers.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

struct Checkpointed {
  const Network& network = test::trained_model("cnn").network;
  InverseOptions options;
  nlohmann::json identity{{"model_fingerprint", network.fingerprint()}, {"options", inverse_options_json(options)}};
  size_t top = 0;  // the last Linear layer
  size_t relu = 0;

  Checkpointed() {
    for (size_t i = 0; i < network.size(); ++i) {
      if (network.layer(i).kind() == LayerKind::Linear) top = i;
      if (network.layer(i).kind() == LayerKind::ReLU) relu = i;
    }
  }
  // A pass fitting the top layer, one batch of sums in: what a fit saves.
  FitState state() const {
    FitState s;
    s.inverse = Inverse(options, network.fingerprint());
    s.in_pass = true;
    s.exact = {top};
    s.next_batch = 1;
    ForwardRecord record;
    const at::Tensor x = torch::randn({4, 1, 28, 28});
    network.forward(x, &record);
    s.equations.operators[top].add(network.layer(top), record.layers[top].output, record.layers[top].input);
    return s;
  }
  std::optional<FitState> load(const FitState& s) const {
    test::TempDir dir;
    save_fit_checkpoint(dir.file("ck"), identity, s);
    return load_fit_checkpoint(dir.file("ck"), identity, network, {1, 28, 28});
  }
  std::string error_loading(const FitState& s) const { return test::error_of([&] { load(s); }); }
};

TEST(FitCheckpoint, WhatAFitSavesLoads) {
  Checkpointed c;
  const FitState saved = c.state();
  const auto loaded = c.load(saved);
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->exact, saved.exact);
  EXPECT_EQ(loaded->equations.layout(), saved.equations.layout());
}

TEST(FitCheckpoint, NodesOperatorsAndSumsThatDoNotFitTheModelAreRefused) {
  Checkpointed c;
  FitState wrong_type = c.state();
  wrong_type.inverse.set_operator(c.top, torch::zeros(as_affine(c.network.layer(c.top))->weight.sizes(), torch::kShort));
  EXPECT_NE(c.error_loading(wrong_type).find("expected float32"), std::string::npos) << c.error_loading(wrong_type);

  FitState wrong_node = c.state();
  wrong_node.exact.push_back(c.relu);
  EXPECT_NE(c.error_loading(wrong_node).find("lists node " + std::to_string(c.relu)), std::string::npos)
      << c.error_loading(wrong_node);

  FitState wrong_sums = c.state();
  ForwardRecord record;
  c.network.forward(torch::randn({2, 1, 28, 28}), &record);
  wrong_sums.equations.operators[c.top] = OperatorEquations();
  wrong_sums.equations.operators[c.top].add(c.network.layer(c.top), record.layers[c.top].output,
                                            record.layers[c.top].input.slice(1, 0, 5));
  EXPECT_NE(c.error_loading(wrong_sums).find("its sums 'operator/"), std::string::npos) << c.error_loading(wrong_sums);
}

}  // namespace
}  // namespace mipin
