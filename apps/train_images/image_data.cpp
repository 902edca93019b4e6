#include "image_data.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "flowgrad/data/idx.hpp"

namespace trainimg {

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, Index limit) {
  if (split != "train" && split != "test")
    throw std::invalid_argument("load_fashion_mnist: split is 'train' or 'test', got '" + split +
                                "'");
  const std::string stem = dir + "/" + (split == "train" ? "train" : "t10k");
  const std::string images_path = stem + "-images-idx3-ubyte.gz";
  const std::string labels_path = stem + "-labels-idx1-ubyte.gz";
  flowgrad::IdxImages images = flowgrad::load_idx_images(images_path);
  std::vector<std::uint8_t> labels = flowgrad::load_idx_labels(labels_path);
  if (static_cast<Index>(labels.size()) != images.count)
    throw std::runtime_error(labels_path + ": " + std::to_string(labels.size()) + " labels for " +
                             std::to_string(images.count) + " images in " + images_path);
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= kClasses)
      throw std::runtime_error(labels_path + ": label " + std::to_string(labels[i]) + " at " +
                               std::to_string(i) + " is not a class 0..9");
  ImageSet set;
  set.count = limit > 0 ? std::min(limit, images.count) : images.count;
  set.height = images.rows;
  set.width = images.cols;
  images.pixels.resize(static_cast<std::size_t>(set.count * set.dim()));
  labels.resize(static_cast<std::size_t>(set.count));
  set.pixels = std::move(images.pixels);
  set.labels = std::move(labels);
  return set;
}

void preprocess(const ImageSet& set, const std::vector<Index>& rows, double lambda,
                bool with_labels, Generator& gen, TensorF& out, std::vector<double>* log_jacobian) {
  const Index D = set.dim(), cols = D + (with_labels ? kClasses : 0);
  out.resize(flowgrad::Shape{static_cast<Index>(rows.size()), cols});
  if (log_jacobian) log_jacobian->assign(rows.size(), 0.0);
  const double squeeze = 1 - 2 * lambda, log_squeeze = std::log(squeeze);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const Index n = rows[r];
    if (n < 0 || n >= set.count) throw std::out_of_range("preprocess: image index out of range");
    const std::uint8_t* v = set.pixels.data() + n * D;
    float* x = out.data() + static_cast<Index>(r) * cols;
    double jac = 0;
    for (Index i = 0; i < D; ++i) {
      const double u = (double(v[i]) + gen.uniform()) / 256;
      const double p = lambda + squeeze * u;
      x[i] = float(std::log(p) - std::log1p(-p));
      jac += log_squeeze - std::log(p) - std::log1p(-p);
    }
    if (with_labels)
      for (Index k = 0; k < kClasses; ++k) x[D + k] = set.labels[static_cast<std::size_t>(n)] == k;
    if (log_jacobian) (*log_jacobian)[r] = jac - static_cast<double>(D) * std::log(256.0);
  }
}

std::vector<std::uint8_t> to_pixels(const TensorF& x, Index dim, double lambda) {
  std::vector<std::uint8_t> px(static_cast<std::size_t>(x.rows() * dim));
  for (Index r = 0; r < x.rows(); ++r)
    for (Index i = 0; i < dim; ++i) {
      const double p = 1 / (1 + std::exp(-double(x(r, i))));
      const double v = std::floor(256 * (p - lambda) / (1 - 2 * lambda));
      px[static_cast<std::size_t>(r * dim + i)] = std::uint8_t(std::clamp(v, 0.0, 255.0));
    }
  return px;
}

double bits_per_dim(double mean_log_px, double mean_log_jacobian, Index dim) {
  return -(mean_log_px + mean_log_jacobian) / (static_cast<double>(dim) * std::numbers::ln2);
}

}  // namespace trainimg
