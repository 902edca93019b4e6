#pragma once
// The 2-D toy datasets of FFJORD (docs/design.md §6), drawn fresh from a generator.
#include <string>
#include <vector>

#include "flowgrad/tensor/random.hpp"

namespace train2d {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

// moons, 8gaussians, circles, rings, pinwheel, 2spirals, checkerboard, swissroll.
const std::vector<std::string>& toy_dataset_names();
bool is_toy_dataset(const std::string& name);
// Draws about n points ([m, 2], float32) of the named dataset; pinwheel and 2spirals give the
// multiple of 5 (of 2) at or below n, as their definitions do. Throws std::invalid_argument for an
// unknown name (listing the known ones) and for n < 1 (n < 5 for pinwheel, n < 2 for 2spirals,
// which would give no points). The order in which each draws from gen is stated in
// toy_datasets.cpp.
TensorF sample_toy(const std::string& name, Index n, Generator& gen);

}  // namespace train2d
