// Precompiled header: LibTorch is by far the heaviest include of every
// translation unit, so it is parsed once per target.
#pragma once
#include <torch/torch.h>
#include <torch/script.h>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <vector>
