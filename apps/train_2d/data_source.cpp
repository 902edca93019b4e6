#include "data_source.hpp"

#include <algorithm>
#include <stdexcept>

#include "conditional_toy.hpp"
#include "flowgrad/data/batches.hpp"
#include "flowgrad/data/csv.hpp"
#include "toy_datasets.hpp"

namespace train2d {

namespace {

// The column of a CSV that `field` names: a header name, or else a 0-based index.
Index column_named(const flowgrad::CsvData& data, const std::string& field,
                   const std::string& path) {
  for (std::size_t j = 0; j < data.columns.size(); ++j)
    if (data.columns[j] == field) return static_cast<Index>(j);
  Index j = -1;
  try {
    std::size_t used = 0;
    j = std::stol(field, &used);
    if (used != field.size()) j = -1;
  } catch (const std::exception&) {
    j = -1;
  }
  if (j < 0 || j >= data.points.cols()) {
    std::string names;
    for (const auto& c : data.columns) names += (names.empty() ? "" : ", ") + c;
    throw std::invalid_argument("--context-columns: " + path + " has no column '" + field +
                                "' (columns: " + names + "; or a 0-based index)");
  }
  return j;
}

// The rows reordered as x (the other columns, in order) then c (the context columns, as listed).
TensorF x_then_context(const flowgrad::CsvData& data, const std::vector<Index>& context) {
  std::vector<Index> order;
  for (Index j = 0; j < data.points.cols(); ++j)
    if (std::find(context.begin(), context.end(), j) == context.end()) order.push_back(j);
  order.insert(order.end(), context.begin(), context.end());
  TensorF out(data.points.shape());
  for (Index i = 0; i < data.points.rows(); ++i)
    for (std::size_t k = 0; k < order.size(); ++k)
      out(i, static_cast<Index>(k)) = data.points(i, order[k]);
  return out;
}

}  // namespace

DataSource DataSource::toy(const std::string& name) {
  if (name == kRotating) {
    DataSource d;
    d.name_ = name;
    d.context_dim_ = 1;
    d.extent_ = {-4, 4, -4, 4};
    return d;
  }
  if (!is_toy_dataset(name)) {
    std::string known;
    for (const auto& n : toy_dataset_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown dataset '" + name + "' (" + known +
                                ", and the conditional " + kRotating + "; or --data FILE.csv)");
  }
  DataSource d;
  d.name_ = name;
  return d;
}

DataSource DataSource::csv(const std::string& path, double test_fraction, std::uint64_t split_seed,
                           const std::string& context_columns) {
  DataSource d;
  d.name_ = path;
  d.is_csv_ = true;
  d.context_columns_ = context_columns;
  const flowgrad::CsvData data = flowgrad::load_csv(path);
  std::vector<Index> context;
  for (std::size_t start = 0; !context_columns.empty() && start <= context_columns.size();) {
    const std::size_t comma = std::min(context_columns.find(',', start), context_columns.size());
    const Index j = column_named(data, context_columns.substr(start, comma - start), path);
    if (std::find(context.begin(), context.end(), j) != context.end())
      throw std::invalid_argument("--context-columns: column '" +
                                  context_columns.substr(start, comma - start) +
                                  "' is listed twice");
    context.push_back(j);
    start = comma + 1;
  }
  d.context_dim_ = static_cast<Index>(context.size());
  d.dim_ = data.points.cols() - d.context_dim_;
  if (d.dim_ < 1)
    throw std::invalid_argument("--context-columns: every column of " + path +
                                " is context; nothing is left to model");
  const TensorF rows = context.empty() ? data.points : x_then_context(data, context);
  d.split_ = flowgrad::split_rows(rows, test_fraction, split_seed);
  // The window of the first two modelled columns (or the one and itself), with a 10% margin.
  double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
  for (Index i = 0; i < rows.rows(); ++i)
    for (int c = 0; c < 2; ++c) {
      const Index col = std::min<Index>(c, d.dim_ - 1);
      lo[c] = std::min(lo[c], double(rows(i, col)));
      hi[c] = std::max(hi[c], double(rows(i, col)));
    }
  for (int c = 0; c < 2; ++c) {
    const double pad = std::max(0.1 * (hi[c] - lo[c]), 1e-3);
    lo[c] -= pad;
    hi[c] += pad;
  }
  d.extent_ = {lo[0], hi[0], lo[1], hi[1]};
  return d;
}

TensorF DataSource::all_rows() const {
  if (!is_csv_) throw std::logic_error("DataSource::all_rows: " + name_ + " is not a CSV file");
  const Index cols = split_.train.cols();
  TensorF out(flowgrad::Shape{split_.train.rows() + split_.test.rows(), cols});
  std::copy(split_.train.data(), split_.train.data() + split_.train.numel(), out.data());
  std::copy(split_.test.data(), split_.test.data() + split_.test.numel(),
            out.data() + split_.train.numel());
  return out;
}

flowgrad::BatchSource<float> DataSource::toy_source() const {
  if (is_csv_) throw std::logic_error("DataSource::toy_source: " + name_ + " is a CSV file");
  if (name_ == kRotating)
    return [](Index n, Generator& gen, TensorF& out) { out = sample_rotating(n, gen); };
  return [name = name_](Index n, Generator& gen, TensorF& out) { out = sample_toy(name, n, gen); };
}

TensorF DataSource::test_set(Index n, std::uint64_t seed) const {
  if (is_csv_) return split_.test;
  Generator gen(seed);
  return name_ == kRotating ? sample_rotating(n, gen) : sample_toy(name_, n, gen);
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
