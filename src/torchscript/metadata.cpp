#include <nlohmann/json.hpp>

#include "mipin/torchscript/model_file.h"
#include "mipin/util/error.h"

namespace mipin {

std::string metadata_to_json(const ModelMetadata& m) {
  nlohmann::json j;
  j["format"] = "mipin-model-metadata/1";
  j["input_shape"] = m.input_shape;
  if (!m.architecture.empty()) j["architecture"] = m.architecture;
  if (!m.data.empty()) j["data"] = m.data;
  if (m.test_accuracy >= 0) j["test_accuracy"] = m.test_accuracy;
  return j.dump(2);
}

ModelMetadata metadata_from_json(const std::string& text, const std::string& origin) {
  ModelMetadata m;
  if (text.empty()) return m;
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.contains("input_shape")) m.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
    m.architecture = j.value("architecture", "");
    m.data = j.value("data", "");
    m.test_accuracy = j.value("test_accuracy", -1.0);
  } catch (const nlohmann::json::exception& e) {
    MIPIN_FAIL("the metadata (mipin.json) inside '", origin, "' is not valid: ", e.what());
  }
  return m;
}

}  // namespace mipin
