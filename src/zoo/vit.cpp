// The zoo's vision transformer. Attention, LayerNorm and the token
// arithmetic have no mipin layer of their own, so the model is a TorchScript
// module, written and trained as a PyTorch user's model is, and reaches the
// methods through the same import.
#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>

#include "mipin/torchscript/model_file.h"
#include "mipin/util/atomic_file.h"
#include "mipin/util/error.h"
#include "mipin/zoo/architectures.h"
#include "mipin/zoo/trainer.h"
#include "zoo/initialisation.h"
#include "zoo/train_loop.h"

namespace mipin {
namespace {

struct VitShape {
  int64_t patch = 4, blocks = 4, heads = 4, width = 64, hidden = 128;
};

void add_linear(torch::jit::Module& m, const std::string& name, int64_t in, int64_t out) {
  m.register_parameter(name + "_weight", default_uniform({out, in}, in), false);
  m.register_parameter(name + "_bias", default_uniform({out}, in), false);
}

void add_norm(torch::jit::Module& m, const std::string& name, int64_t width) {
  m.register_parameter(name + "_weight", torch::ones({width}), false);
  m.register_parameter(name + "_bias", torch::zeros({width}), false);
}

// Pre-norm blocks (Dosovitskiy et al. 2021): t += attention(norm(t)); t += mlp(norm(t)).
torch::jit::Module make_vit(const std::vector<int64_t>& input_shape, int64_t num_classes, const VitShape& v) {
  MIPIN_CHECK(input_shape.size() == 3 && input_shape[1] % v.patch == 0 && input_shape[2] % v.patch == 0,
              "architecture 'vit' takes images [C, H, W] with H and W multiples of its patch (", v.patch,
              "), found input shape ", shape_string(input_shape));
  const int64_t c = input_shape[0], tokens = input_shape[1] / v.patch * (input_shape[2] / v.patch) + 1;
  const int64_t head_width = v.width / v.heads;
  torch::jit::Module m("MipinVisionTransformer");
  m.register_parameter("patch_weight", default_uniform({v.width, c, v.patch, v.patch}, c * v.patch * v.patch), false);
  m.register_parameter("patch_bias", default_uniform({v.width}, c * v.patch * v.patch), false);
  m.register_parameter("class_token", torch::zeros({1, 1, v.width}), false);
  m.register_parameter("position", torch::randn({1, tokens, v.width}) * 0.02, false);
  const std::string w = std::to_string(v.width);
  std::string s = "def forward(self, x):\n";
  s += "    n = x.size(0)\n";
  s += "    t = torch.conv2d(x, self.patch_weight, self.patch_bias, [" + std::to_string(v.patch) + ", " +
       std::to_string(v.patch) + "])\n";
  s += "    t = t.flatten(2).transpose(1, 2)\n";
  s += "    t = torch.cat([self.class_token.expand(n, -1, -1), t], 1) + self.position\n";
  char scale[32];
  std::snprintf(scale, sizeof scale, "%.17g", 1.0 / std::sqrt(double(head_width)));
  for (int64_t b = 0; b < v.blocks; ++b) {
    const std::string p = "self.block" + std::to_string(b) + "_";
    const std::string q = "block" + std::to_string(b) + "_";
    add_norm(m, q + "norm1", v.width);
    add_linear(m, q + "qkv", v.width, 3 * v.width);
    add_linear(m, q + "proj", v.width, v.width);
    add_norm(m, q + "norm2", v.width);
    add_linear(m, q + "fc1", v.width, v.hidden);
    add_linear(m, q + "fc2", v.hidden, v.width);
    s += "    h = torch.layer_norm(t, [" + w + "], " + p + "norm1_weight, " + p + "norm1_bias, 1e-06)\n";
    s += "    qkv = torch.linear(h, " + p + "qkv_weight, " + p + "qkv_bias).reshape(n, -1, 3, " +
         std::to_string(v.heads) + ", " + std::to_string(head_width) + ").permute(2, 0, 3, 1, 4)\n";
    s += "    a = torch.softmax(torch.matmul(qkv[0], qkv[1].transpose(-2, -1)) * " + std::string(scale) + ", -1)\n";
    s += "    o = torch.matmul(a, qkv[2]).transpose(1, 2).reshape(n, -1, " + w + ")\n";
    s += "    t = t + torch.linear(o, " + p + "proj_weight, " + p + "proj_bias)\n";
    s += "    h = torch.layer_norm(t, [" + w + "], " + p + "norm2_weight, " + p + "norm2_bias, 1e-06)\n";
    s += "    h = torch.gelu(torch.linear(h, " + p + "fc1_weight, " + p + "fc1_bias))\n";
    s += "    t = t + torch.linear(h, " + p + "fc2_weight, " + p + "fc2_bias)\n";
  }
  add_norm(m, "norm", v.width);
  add_linear(m, "head", v.width, num_classes);
  s += "    t = torch.layer_norm(t, [" + w + "], self.norm_weight, self.norm_bias, 1e-06)\n";
  s += "    return torch.linear(t.select(1, 0), self.head_weight, self.head_bias)\n";
  m.define(s);
  return m;
}

double module_accuracy(torch::jit::Module& m, const Dataset& data, int64_t batch_size = 500) {
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const Batch batch = data.get(begin, std::min(begin + batch_size, data.size()));
    correct += m.forward({batch.inputs}).toTensor().argmax(1).eq(batch.labels).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace

std::vector<std::string> module_architecture_names() { return {"vit"}; }

ModuleTrainResult train_module_architecture(const std::string& name, const Dataset& train_data,
                                            const Dataset& test_data, const TrainOptions& options,
                                            const std::string& path, ModelMetadata metadata) {
  MIPIN_CHECK(name == "vit", "unknown module architecture '", name, "'; expected vit");
  MIPIN_CHECK(train_data.num_classes() >= 2, "a classifier needs at least 2 classes, found ",
              train_data.num_classes());
  torch::manual_seed(options.seed);
  torch::jit::Module m = make_vit(train_data.sample_shape(), train_data.num_classes(), VitShape{});
  std::vector<at::Tensor> parameters;
  for (const at::Tensor& p : m.parameters()) parameters.push_back(p);
  ModuleTrainResult r;
  r.parameters = 0;
  for (const at::Tensor& p : parameters) r.parameters += p.numel();
  static_cast<TrainResult&>(r) = train_parameters([&](const at::Tensor& x) { return m.forward({x}).toTensor(); },
                                                  parameters, [&](bool training) { m.train(training); }, train_data,
                                                  options);
  m.eval();
  r.test_accuracy = module_accuracy(m, test_data);
  metadata.input_shape = train_data.sample_shape();
  metadata.architecture = name;
  metadata.test_accuracy = r.test_accuracy;
  write_atomically(path, [&](const std::string& tmp) {
    m.save(tmp, {{"mipin.json", metadata_to_json(metadata)}});
  });
  return r;
}

}  // namespace mipin
