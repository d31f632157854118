// The same inputs and thread count give the same bytes: every method, a fit
// (inverse and patterns) and an evaluation. Several threads explaining with
// one model at once get exactly what they would one after another.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <thread>

#include "mipin/attribution/patterns.h"
#include "mipin/attribution/registry.h"
#include "mipin/eval/suite.h"
#include "mipin/inverse/inverse.h"
#include "mipin/util/atomic_file.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), size_t(ca.nbytes())) == 0;
}

// The demo CNN with an inverse and patterns fitted on 512 examples.
struct Fitted {
  const test::TrainedModel& model = test::trained_model("cnn");
  Inverse inverse;
  Patterns patterns;
  Fitted() {
    const auto fit_data = open_dataset("fashion-mnist", Split::Train);
    InverseOptions o;
    o.batch_size = 128;
    auto subset = fit_data->get(0, 512);
    auto data = make_tensor_dataset("subset", subset.inputs, subset.labels, Normalization{{1.0}, {}, {}}, 10);
    inverse = fit_inverse(model.network, *data, o);
    patterns = fit_patterns(model.network, *data, 0, 128);
  }
  std::unique_ptr<AttributionMethod> make(const MethodEntry& entry) const {
    MethodSettings s;
    s.inverse = &inverse;
    s.patterns = &patterns;
    return make_method(entry.name, s);
  }
};

const Fitted& fitted() {
  static const Fitted f;
  return f;
}

Batch test_batch(int64_t begin, int64_t end) {
  static const auto data = open_dataset("fashion-mnist", Split::Test);
  return data->get(begin, end);
}

TEST(Determinism, EveryMethodGivesTheSameBytesTwice) {
  const Fitted& f = fitted();
  const Batch batch = test_batch(0, 6);
  for (const MethodEntry& entry : registered_methods()) {
    // Two method objects, so that nothing one keeps decides the other.
    const at::Tensor first = f.make(entry)->attribute(f.model.network, batch.inputs, batch.labels);
    const at::Tensor second = f.make(entry)->attribute(f.model.network, batch.inputs, batch.labels);
    EXPECT_TRUE(same_bytes(first, second)) << entry.name;
  }
}

TEST(Determinism, FitsGiveTheSameBytesTwice) {
  const Fitted& f = fitted();
  const auto fit_data = open_dataset("fashion-mnist", Split::Train);
  auto subset = fit_data->get(0, 512);
  auto data = make_tensor_dataset("subset", subset.inputs, subset.labels, Normalization{{1.0}, {}, {}}, 10);
  InverseOptions o;
  o.batch_size = 128;
  test::TempDir dir;
  f.inverse.save(dir.file("a.mipin"));
  fit_inverse(f.model.network, *data, o).save(dir.file("b.mipin"));
  EXPECT_EQ(read_file(dir.file("a.mipin")), read_file(dir.file("b.mipin")));
  // The iterative solver too.
  o.solver = Solver::Iterative;
  o.iterative_iterations = 20;
  fit_inverse(f.model.network, *data, o).save(dir.file("c.mipin"));
  fit_inverse(f.model.network, *data, o).save(dir.file("d.mipin"));
  EXPECT_EQ(read_file(dir.file("c.mipin")), read_file(dir.file("d.mipin")));
  f.patterns.save(dir.file("a.patterns"));
  fit_patterns(f.model.network, *data, 0, 128).save(dir.file("b.patterns"));
  EXPECT_EQ(read_file(dir.file("a.patterns")), read_file(dir.file("b.patterns")));
}

TEST(Determinism, AnEvaluationGivesTheSameMetricsTwice) {
  const Fitted& f = fitted();
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  SuiteOptions o;
  o.methods = {"mipin", "gradient", "smoothgrad", "lrp-epsilon", "random"};
  o.metrics = all_suite_metrics();
  o.metrics.erase("ground-truth");  // needs boxes
  o.examples = 12;
  o.randomization_examples = 2;
  o.refit_examples = 128;
  o.batch_size = 6;
  o.settings.inverse = &f.inverse;
  o.settings.patterns = &f.patterns;
  const auto fit_data = open_dataset("fashion-mnist", Split::Train);
  o.fit_data = fit_data.get();
  const nlohmann::json first = run_suite(f.model.network, *test_data, o);
  const nlohmann::json second = run_suite(f.model.network, *test_data, o);
  EXPECT_EQ(first.dump(), second.dump());
}

// The suite refits learned parts once per randomized model and shares them
// between the methods that need them: every method must score as it does
// with refits of its own.
TEST(Determinism, SharedRefitsGiveTheNumbersOfRefitsOfTheirOwn) {
  const Fitted& f = fitted();
  const auto test_data = open_dataset("fashion-mnist", Split::Test);
  const auto fit_data = open_dataset("fashion-mnist", Split::Train);
  SuiteOptions o;
  o.metrics = {"randomization", "ground-truth"};
  o.examples = 6;
  o.randomization_examples = 2;
  o.refit_examples = 128;
  o.settings.inverse = &f.inverse;
  o.settings.patterns = &f.patterns;
  o.fit_data = fit_data.get();
  o.methods = {"patternattribution", "mipin:readout=contrast", "patternnet", "mipin"};
  const nlohmann::json shared = run_suite(f.model.network, *test_data, o)["methods"];
  o.shared_refit_bytes = 0;
  const nlohmann::json own = run_suite(f.model.network, *test_data, o)["methods"];
  for (const std::string& name : o.methods) {
    ASSERT_EQ(own[name]["randomization"].size(), 4u) << name;
    EXPECT_EQ(own[name].dump(), shared[name].dump()) << name;
  }
}

TEST(Threads, SeveralThreadsExplainingAtOnceGetTheSequentialResults) {
  const Fitted& f = fitted();
  constexpr int kThreads = 4;
  std::vector<Batch> batches;
  for (int t = 0; t < kThreads; ++t) batches.push_back(test_batch(4 * t, 4 * t + 4));
  for (const MethodEntry& entry : registered_methods()) {
    const auto method = f.make(entry);  // one method object, shared
    std::vector<at::Tensor> sequential, concurrent(kThreads);
    for (const Batch& b : batches) sequential.push_back(method->attribute(f.model.network, b.inputs, b.labels));
    std::vector<std::thread> threads;
    std::vector<std::string> errors(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        try {
          concurrent[size_t(t)] = method->attribute(f.model.network, batches[size_t(t)].inputs, batches[size_t(t)].labels);
        } catch (const std::exception& e) {
          errors[size_t(t)] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(errors[size_t(t)], "") << entry.name;
      EXPECT_TRUE(same_bytes(sequential[size_t(t)], concurrent[size_t(t)])) << entry.name << ", thread " << t;
    }
  }
}

}  // namespace
}  // namespace mipin
