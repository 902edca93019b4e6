#include "flowgrad/data/batches.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <string_view>

namespace flowgrad {

namespace {
[[noreturn]] void bad_state(const std::string& state, const std::string& why) {
  throw std::invalid_argument("BatchSampler::set_state: " + why + " in '" + state + "'");
}

bool parse_integer(std::string_view s, long& out) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}
}  // namespace

template <Scalar T>
BatchSampler<T>::BatchSampler(const Tensor<T>& data, BatchOptions options, std::uint64_t seed)
    : data_(&data), options_(options), gen_(seed), epoch_start_(seed) {
  if (data.rows() < 1 || data.cols() < 1)
    throw std::invalid_argument("BatchSampler: the data has shape " + data.shape().str() +
                                ", which has no rows to draw");
  if (options.batch < 1)
    throw std::invalid_argument("BatchSampler: batch must be at least 1, got " +
                                std::to_string(options.batch));
  if (!options.replacement && options.drop_last && options.batch > data.rows())
    throw std::invalid_argument("BatchSampler: with drop_last, a batch of " +
                                std::to_string(options.batch) + " rows never fits in " +
                                std::to_string(data.rows()) + " rows");
}

template <Scalar T>
Index BatchSampler<T>::batches_per_epoch() const {
  const Index rows = data_->rows(), b = options_.batch;
  if (!options_.replacement && options_.drop_last) return rows / b;
  return (rows + b - 1) / b;
}

// Draws: the same Fisher-Yates as Generator::permutation, into the kept buffer.
template <Scalar T>
void BatchSampler<T>::start_epoch() {
  epoch_start_ = gen_;
  const Index n = data_->rows();
  perm_.resize(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) perm_[static_cast<std::size_t>(i)] = i;
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(gen_.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(perm_[static_cast<std::size_t>(i)], perm_[static_cast<std::size_t>(j)]);
  }
  ++epoch_;
  position_ = 0;
}

template <Scalar T>
void BatchSampler<T>::next(Tensor<T>& out) {
  const Tensor<T>& data = *data_;
  ++batches_drawn_;
  if (options_.replacement) {
    sample_rows(data, options_.batch, gen_, out);
    return;
  }
  const Index rows = data.rows(), cols = data.cols();
  const Index left = rows - position_;
  if (epoch_ == 0 || left == 0 || (options_.drop_last && left < options_.batch)) start_epoch();
  const Index m = std::min(options_.batch, rows - position_);
  out.resize(Shape{m, cols});
  for (Index i = 0; i < m; ++i)
    std::copy_n(data.data() + perm_[static_cast<std::size_t>(position_ + i)] * cols, cols,
                out.data() + i * cols);
  position_ += m;
}

template <Scalar T>
std::string BatchSampler<T>::state() const {
  std::string s = "batches/1 rows=";
  s += std::to_string(data_->rows());
  s += " batch=" + std::to_string(options_.batch);
  s += options_.replacement ? " replacement=1" : " replacement=0";
  s += options_.drop_last ? " drop_last=1" : " drop_last=0";
  s += " epoch=" + std::to_string(epoch_);
  s += " position=" + std::to_string(position_);
  s += " drawn=" + std::to_string(batches_drawn_);
  // Within an epoch the generator has drawn nothing since the permutation, so the epoch's start
  // state fixes both the permutation and the generator; with replacement it is the current state.
  s += " generator=" + (options_.replacement || epoch_ == 0 ? gen_ : epoch_start_).state();
  return s;
}

template <Scalar T>
void BatchSampler<T>::set_state(const std::string& state) {
  static constexpr const char* keys[] = {"rows",  "batch",    "replacement", "drop_last",
                                         "epoch", "position", "drawn",       "generator"};
  std::string_view rest = state;
  const std::string_view tag = "batches/1 ";
  if (rest.substr(0, tag.size()) != tag) bad_state(state, "no 'batches/1' tag");
  rest.remove_prefix(tag.size());
  long numbers[7] = {};
  Generator gen;
  for (int k = 0; k < 8; ++k) {
    const std::size_t space = rest.find(' ');
    const std::string_view field = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
    const std::string key = std::string(keys[k]) + "=";
    if (field.substr(0, key.size()) != key) bad_state(state, "expected '" + key + "'");
    const std::string_view value = field.substr(key.size());
    if (k < 7) {
      if (!parse_integer(value, numbers[k]) || numbers[k] < 0)
        bad_state(state, "'" + std::string(field) + "' is not a count");
    } else {
      gen.set_state(std::string(value));  // throws on a malformed state
    }
    if (k < 7 && space == std::string_view::npos) bad_state(state, "fields missing");
  }
  if (!rest.empty()) bad_state(state, "trailing text");
  const long rows = numbers[0], batch = numbers[1], epoch = numbers[4], position = numbers[5];
  if (rows != data_->rows() || batch != options_.batch ||
      (numbers[2] != 0) != options_.replacement || (numbers[3] != 0) != options_.drop_last)
    bad_state(state, "it was saved by a sampler over " + std::to_string(rows) +
                         " rows with other settings than this one's (" +
                         std::to_string(data_->rows()) + " rows, batch " +
                         std::to_string(options_.batch) +
                         (options_.replacement ? ", with replacement" : ", without replacement") +
                         (options_.drop_last ? ", drop_last)" : ")"));
  if (position > rows || (epoch == 0 && position != 0) ||
      (options_.replacement && (epoch != 0 || position != 0)))
    bad_state(state, "inconsistent epoch and position");

  gen_ = gen;
  epoch_start_ = gen;
  epoch_ = 0;
  position_ = 0;
  if (!options_.replacement && epoch > 0) {
    start_epoch();  // draws the permutation again from the epoch's start state
    epoch_ = epoch;
    position_ = position;
  }
  batches_drawn_ = numbers[6];
}

template <Scalar T>
void sample_rows(const Tensor<T>& data, Index n, Generator& gen, Tensor<T>& out) {
  if (n < 0) throw std::invalid_argument("sample_rows: negative count " + std::to_string(n));
  if (data.rows() == 0 || data.cols() == 0)
    throw std::invalid_argument("sample_rows: no data to sample from");
  const Index c = data.cols();
  out.resize(Shape{n, c});
  const auto rows = static_cast<std::uint64_t>(data.rows());
  for (Index i = 0; i < n; ++i)
    std::copy_n(data.data() + static_cast<Index>(gen.below(rows)) * c, c, out.data() + i * c);
}

template class BatchSampler<float>;
template class BatchSampler<double>;
template void sample_rows(const Tensor<float>&, Index, Generator&, Tensor<float>&);
template void sample_rows(const Tensor<double>&, Index, Generator&, Tensor<double>&);

}  // namespace flowgrad
