#pragma once
// Base64 (RFC 4648, standard alphabet, padded): how the HTML report inlines
// its PNG images as data: URIs.
#include <string>

namespace mipin {

std::string base64_encode(const std::string& bytes);

}  // namespace mipin
