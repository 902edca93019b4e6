#include "data_source.hpp"

#include <algorithm>
#include <stdexcept>

#include "flowgrad/data/batches.hpp"
#include "flowgrad/data/csv.hpp"
#include "toy_datasets.hpp"

namespace train2d {

DataSource DataSource::toy(const std::string& name) {
  if (!is_toy_dataset(name)) {
    std::string known;
    for (const auto& n : toy_dataset_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown dataset '" + name + "' (" + known +
                                "; or --data FILE.csv)");
  }
  DataSource d;
  d.name_ = name;
  return d;
}

DataSource DataSource::csv(const std::string& path, double test_fraction,
                           std::uint64_t split_seed) {
  DataSource d;
  d.name_ = path;
  d.is_csv_ = true;
  const flowgrad::CsvData data = flowgrad::load_csv(path);
  d.dim_ = data.points.cols();
  d.split_ = flowgrad::split_rows(data.points, test_fraction, split_seed);
  // The window of the first two columns, with a 10% margin.
  double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
  for (Index i = 0; i < data.points.rows(); ++i)
    for (int c = 0; c < 2; ++c) {
      lo[c] = std::min(lo[c], double(data.points(i, c)));
      hi[c] = std::max(hi[c], double(data.points(i, c)));
    }
  for (int c = 0; c < 2; ++c) {
    const double pad = std::max(0.1 * (hi[c] - lo[c]), 1e-3);
    lo[c] -= pad;
    hi[c] += pad;
  }
  d.extent_ = {lo[0], hi[0], lo[1], hi[1]};
  return d;
}

flowgrad::BatchSource<float> DataSource::toy_source() const {
  if (is_csv_) throw std::logic_error("DataSource::toy_source: " + name_ + " is a CSV file");
  return [name = name_](Index n, Generator& gen, TensorF& out) { out = sample_toy(name, n, gen); };
}

TensorF DataSource::test_set(Index n, std::uint64_t seed) const {
  if (is_csv_) return split_.test;
  Generator gen(seed);
  return sample_toy(name_, n, gen);
}

TensorF DataSource::show_set(Index n, std::uint64_t seed) const {
  if (!is_csv_) return test_set(n, seed);
  if (split_.train.rows() <= n) return split_.train;
  Generator gen(seed);
  TensorF out;
  flowgrad::sample_rows(split_.train, n, gen, out);
  return out;
}

}  // namespace train2d
