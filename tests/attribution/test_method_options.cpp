// Method options: each method's declaration is the one place its options
// are listed; values are checked against it, and the command line's flags
// and `mipin methods --json` are made from it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>

#include "mipin/attribution/method_options.h"
#include "mipin/attribution/registry.h"
#include "mipin/data/npy.h"
#include "mipin/model/layers.h"
#include "mipin/model/network.h"
#include "mipin/util/error.h"
#include "support/test_support.h"

namespace mipin {
namespace {

const std::vector<OptionSpec> kSpecs = {
    OptionSpec::integer("steps", 64, "points").at_least(1),
    OptionSpec::real("noise", 0.15, "spread").at_least(0).at_most(1),
    OptionSpec::flag("abs", "absolute"),
    OptionSpec::choice("integration", {"riemann", "gauss-legendre"}, "rule"),
    OptionSpec::reference("baseline", "start"),
    OptionSpec::integer("layer", std::nullopt, "which"),
};

TEST(MethodOptions, DefaultsFillWhatIsNotGiven) {
  const MethodOptions o = check_options("m", kSpecs, {});
  EXPECT_EQ(o.integer("steps"), 64);
  EXPECT_DOUBLE_EQ(o.real("noise"), 0.15);
  EXPECT_FALSE(o.flag("abs"));
  EXPECT_EQ(o.choice("integration"), "riemann");
  EXPECT_FALSE(o.reference("baseline").defined());
  EXPECT_FALSE(o.maybe_integer("layer").has_value());
  EXPECT_THROW(o.integer("layer"), Error);
  EXPECT_THROW(o.real("epsilon"), Error) << "an option the method did not declare";
}

TEST(MethodOptions, TextAndTypedValuesAreConvertedAndChecked) {
  const at::Tensor start = torch::ones({1, 2, 2});
  MethodOptions given;
  given.set("steps", std::string("8")).set("noise", int64_t(0)).set("abs", std::string("true"));
  given.set("integration", std::string("gauss-legendre")).set("baseline", start).set("layer", int64_t(3));
  const MethodOptions o = check_options("m", kSpecs, given);
  EXPECT_EQ(o.integer("steps"), 8);
  EXPECT_DOUBLE_EQ(o.real("noise"), 0.0);
  EXPECT_TRUE(o.flag("abs"));
  EXPECT_EQ(o.choice("integration"), "gauss-legendre");
  EXPECT_TRUE(o.reference("baseline").equal(start));
  EXPECT_EQ(o.maybe_integer("layer"), 3);
}

TEST(MethodOptions, BadValuesSayWhatTheOptionTakes) {
  auto error = [](const std::string& name, OptionValue v) {
    MethodOptions given;
    given.set(name, std::move(v));
    return test::error_of([&] { check_options("ig", kSpecs, given); });
  };
  EXPECT_NE(error("steps", int64_t(0)).find("option steps takes an integer >= 1, found 0"), std::string::npos);
  EXPECT_NE(error("steps", std::string("8x")).find("found '8x'"), std::string::npos);
  EXPECT_NE(error("steps", 2.5).find("an integer"), std::string::npos);
  EXPECT_NE(error("noise", 1.5).find("a number from 0 to 1, found 1.5"), std::string::npos);
  EXPECT_NE(error("integration", std::string("simpson")).find("riemann or gauss-legendre, found 'simpson'"),
            std::string::npos);
  EXPECT_NE(error("abs", std::string("yes")).find("true or false"), std::string::npos);
  EXPECT_NE(error("baseline", std::string("mean")).find("read by the caller"), std::string::npos);
  const std::string unknown = error("epsilon", 1e-3);
  EXPECT_NE(unknown.find("method 'ig' has no option epsilon"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("steps, noise, abs, integration, baseline and layer"), std::string::npos) << unknown;
  MethodOptions given;
  given.set("epsilon", 1e-3).set("steps", int64_t(2));
  const MethodOptions o = check_options("ig", kSpecs, given, /*ignore_undeclared=*/true);
  EXPECT_EQ(o.integer("steps"), 2);
  EXPECT_FALSE(o.has("epsilon"));
}

// One flag serves every method that declares an option of that name, so
// they must agree on its kind; every default must pass its own check.
TEST(MethodOptions, EveryMethodDeclaresConsistentOptions) {
  std::map<std::string, OptionKind> kind_of;
  size_t declared = 0;
  for (const MethodEntry& m : registered_methods()) {
    EXPECT_NO_THROW(check_options(m.name, m.options, {})) << m.name;
    for (const OptionSpec& s : m.options) {
      ++declared;
      EXPECT_FALSE(s.help.empty()) << m.name << " " << s.name;
      const auto [it, fresh] = kind_of.emplace(s.name, s.kind);
      EXPECT_TRUE(fresh || it->second == s.kind) << s.name << " has two kinds";
    }
  }
  EXPECT_GE(declared, 15u);
  EXPECT_EQ(method_entry("integrated-gradients").options.size(), 5u);  // baseline, steps, integration, internal_batch, of
  EXPECT_TRUE(method_entry("integrated-gradients").multiplies_by_input);
  EXPECT_TRUE(method_entry("mipin").multiplies_by_input);  // its default readout, s_c times x
  EXPECT_TRUE(method_entry("patternnet").output_in_input_units);
  EXPECT_FALSE(method_entry("gradient").multiplies_by_input);
}

TEST(MethodOptions, MakeMethodRefusesAnOptionTheMethodDoesNotTake) {
  MethodSettings s;
  s.options.set("steps", int64_t(3));
  const std::string e = test::error_of([&] { make_method("gradient", s); });
  EXPECT_NE(e.find("method 'gradient' has no option steps; its options: abs"), std::string::npos) << e;
  EXPECT_NO_THROW(make_method("integrated-gradients", s));
  s.options.set("steps", int64_t(0));
  EXPECT_THROW(make_method("integrated-gradients", s), Error);
}

// A variant sets its own options over the shared ones; they must be its
// method's even where the shared ones may belong to other methods.
TEST(MethodOptions, AVariantCarriesOptionsOfItsOwn) {
  const MethodVariant v = parse_method_variant("smoothgrad:samples=3:internal-batch=2");
  EXPECT_EQ(v.name, "smoothgrad");
  EXPECT_EQ(std::get<std::string>(v.options.values().at("samples")), "3");
  EXPECT_EQ(std::get<std::string>(v.options.values().at("internal_batch")), "2");
  EXPECT_EQ(&method_entry("smoothgrad:samples=3"), &method_entry("smoothgrad"));
  const at::Tensor x = torch::randn({2, 4});
  Network net;
  Linear layer;
  layer.weight = torch::randn({3, 4});
  layer.bias = torch::zeros({3});
  net.add(layer);
  const at::Tensor t = torch::tensor({0, 2}, torch::kLong);
  MethodSettings shared;
  shared.options.set("samples", int64_t(50)).set("seed", int64_t(4)).set("steps", int64_t(7));
  MethodSettings same = shared;
  same.options.set("samples", int64_t(3));
  EXPECT_TRUE(make_method("smoothgrad:samples=3", shared, true)->attribute(net, x, t).equal(
      make_method("smoothgrad", same, true)->attribute(net, x, t)));
  EXPECT_FALSE(make_method("smoothgrad:samples=3", shared, true)->attribute(net, x, t).equal(
      make_method("smoothgrad", shared, true)->attribute(net, x, t)));
  for (const char* bad : {"smoothgrad:samples", "smoothgrad:=3", "smoothgrad:samples=1:samples=2"}) {
    EXPECT_THROW(parse_method_variant(bad), Error) << bad;
  }
  EXPECT_NE(test::error_of([&] { make_method("gradient:steps=3", shared, true); }).find("has no option steps"),
            std::string::npos);
  EXPECT_THROW(make_method("smoothgrad:samples=0", shared, true), Error);
  EXPECT_THROW(method_entry("nothing:samples=3"), Error);
}

// The command line takes its flags and `mipin methods` its listing from the
// declarations.
TEST(MethodOptions, CommandLineFlagsAndListingComeFromTheDeclarations) {
  const auto list = test::run_cli("methods --json");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  const auto methods = nlohmann::json::parse(list.out)["methods"];
  const auto help = test::run_cli("explain --help");
  const auto evaluate_help = test::run_cli("evaluate --help");
  for (const MethodEntry& m : registered_methods()) {
    const auto it = std::find_if(methods.begin(), methods.end(), [&](const auto& j) { return j["name"] == m.name; });
    ASSERT_NE(it, methods.end()) << m.name;
    ASSERT_EQ((*it)["options"].size(), m.options.size()) << m.name;
    for (size_t k = 0; k < m.options.size(); ++k) {
      const auto& j = (*it)["options"][k];
      const OptionSpec& s = m.options[k];
      EXPECT_EQ(j["name"], s.name);
      EXPECT_EQ(j["flag"], s.flag_name());
      EXPECT_EQ(j["type"], to_string(s.kind));
      EXPECT_EQ(j["help"], s.help);
      EXPECT_NE(help.out.find(s.flag_name()), std::string::npos) << s.flag_name() << " in explain --help";
      EXPECT_NE(evaluate_help.out.find(s.flag_name()), std::string::npos) << s.flag_name() << " in evaluate --help";
    }
  }
  const auto ig =
      std::find_if(methods.begin(), methods.end(), [](const auto& j) { return j["name"] == "integrated-gradients"; });
  EXPECT_EQ((*ig)["options"][1]["default"], "64");
  EXPECT_EQ((*ig)["options"][1]["min"], 1);
  EXPECT_EQ((*ig)["options"][1]["max"], 1000000);
  EXPECT_EQ((*ig)["multiplies_by_input"], true);
  EXPECT_NE(help.out.find("integrated-gradients: points on the path (an integer from 1 to 1000000, default 64)"), std::string::npos)
      << help.out;
  test::TempDir out;
  write_npy(out.file("x.npy"), torch::zeros({1, 1, 28, 28}));
  test::expect_error(test::run_cli("explain --model " + test::test_model("zoo_cnn.pt") +
                                   " --method gradient --steps 3 --input " + out.file("x.npy") + " --out " +
                                   out.file("maps")),
                     {"method 'gradient' has no option steps", "abs"});
}

}  // namespace
}  // namespace mipin
