#pragma once
// Image data for flows (docs/design.md §13): Fashion-MNIST from its IDX files, and the
// preprocessing whose Jacobian the reported likelihood counts.
//
// A pixel v in 0..255 becomes u = (v + noise) / 256 with noise ~ U(0, 1) (uniform dequantisation),
// p = lambda + (1 - 2 lambda) u, and x = log p - log(1 - p) (logit). The flow models x; the 8-bit
// data's log-likelihood is then estimated by
//   log P(v) ~ log p_x(x) + sum_i [log(1 - 2 lambda) - log p_i - log(1 - p_i)] - D log 256,
// and bits/dim = -log P(v) / (D ln 2), with D = 784 pixels.
#include <cstdint>
#include <string>
#include <vector>

#include "flowgrad/tensor/random.hpp"

namespace trainimg {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

struct ImageSet {
  Index count = 0, height = 0, width = 0;
  std::vector<std::uint8_t> pixels;  // count images of height x width, one after another
  std::vector<std::uint8_t> labels;  // count labels 0..9
  Index dim() const { return height * width; }
};

// "train" (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz) or "test" (t10k-...) of the
// Fashion-MNIST files in `dir`; at most `limit` images when limit > 0. Throws std::runtime_error
// naming the file when one is missing or corrupt, or when images and labels disagree.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, Index limit = 0);

inline constexpr Index kClasses = 10;

// The preprocessing above for the images `rows` of `set` (one row each of `out`), with fresh noise
// from gen. out gets D columns of x, and 10 more holding the one-hot label when `with_labels`
// (a class-conditional model's context). log_jacobian, when given, receives each row's sum_i
// [log(1 - 2 lambda) - log p_i - log(1 - p_i)] - D log 256, in double.
void preprocess(const ImageSet& set, const std::vector<Index>& rows, double lambda,
                bool with_labels, Generator& gen, TensorF& out,
                std::vector<double>* log_jacobian = nullptr);

// Back to pixels: v = clamp(floor(256 (sigmoid(x) - lambda) / (1 - 2 lambda)), 0, 255), for the
// first D columns of each row of x.
std::vector<std::uint8_t> to_pixels(const TensorF& x, Index dim, double lambda);

// bits/dim of the 8-bit data from the model's mean log p_x(x) and the mean log-Jacobian of the
// preprocessing over the same points.
double bits_per_dim(double mean_log_px, double mean_log_jacobian, Index dim);

}  // namespace trainimg
