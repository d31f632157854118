#pragma once
// The layer types a Network can hold. Each is a plain struct of its
// hyper-parameters and tensors; the forward pass is LibTorch's own op.
#include <array>

#include "mipin/model/layer.h"

namespace mipin {

using Pair = std::array<int64_t, 2>;

struct Linear final : Layer {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  LayerKind kind() const override { return LayerKind::Linear; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  std::vector<NamedTensor> tensors() const override;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
};

struct Conv2d final : Layer {
  at::Tensor weight;  // [out, in / groups, kh, kw]
  at::Tensor bias;    // [out] or undefined
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
  LayerKind kind() const override { return LayerKind::Conv2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  std::vector<NamedTensor> tensors() const override;
  int64_t in_channels() const { return weight.size(1) * groups; }
  int64_t out_channels() const { return weight.size(0); }
};

struct ReLU final : Layer {
  LayerKind kind() const override { return LayerKind::ReLU; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override { return in; }
  std::string describe() const override { return "ReLU()"; }
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<ReLU>(*this); }
};

struct MaxPool2d final : Layer {
  Pair kernel{2, 2}, stride{2, 2}, padding{0, 0}, dilation{1, 1};
  bool ceil_mode = false;
  // 2x2 windows, stride 2, no padding or dilation, floor mode (max_pool_2x2.h).
  bool is_2x2() const;
  LayerKind kind() const override { return LayerKind::MaxPool2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<MaxPool2d>(*this); }
};

struct AvgPool2d final : Layer {
  Pair kernel{2, 2}, stride{2, 2}, padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;
  LayerKind kind() const override { return LayerKind::AvgPool2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<AvgPool2d>(*this); }
};

struct AdaptiveAvgPool2d final : Layer {
  Pair output_size{1, 1};
  LayerKind kind() const override { return LayerKind::AdaptiveAvgPool2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override {
    return std::make_unique<AdaptiveAvgPool2d>(*this);
  }
};

// Flattens every axis after the batch axis.
struct Flatten final : Layer {
  LayerKind kind() const override { return LayerKind::Flatten; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override { return "Flatten()"; }
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Flatten>(*this); }
};

struct BatchNorm2d final : Layer {
  at::Tensor weight, bias, running_mean, running_var;  // [C]
  double eps = 1e-5;
  double momentum = 0.1;
  LayerKind kind() const override { return LayerKind::BatchNorm2d; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override;
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override;
  std::vector<NamedTensor> tensors() const override;
};

// Identity at inference; drops units only while training.
struct Dropout final : Layer {
  double p = 0.5;
  LayerKind kind() const override { return LayerKind::Dropout; }
  at::Tensor forward(const at::Tensor& x, LayerRecord* record) const override;
  std::vector<int64_t> output_shape(const std::vector<int64_t>& in) const override { return in; }
  std::string describe() const override;
  std::string torchscript(const std::string& x, const std::string& prefix) const override;
  std::unique_ptr<Layer> clone() const override { return std::make_unique<Dropout>(*this); }
};

}  // namespace mipin
