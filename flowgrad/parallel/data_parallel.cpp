#include "flowgrad/parallel/data_parallel.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace flowgrad {

namespace {
// Offsets in whole cache lines, so that every gradient keeps the alignment the kernels expect.
std::size_t aligned(std::size_t n, std::size_t elem) {
  const std::size_t per_line = tensor_alignment / elem;
  return (n + per_line - 1) / per_line * per_line;
}

void hash_bytes(std::uint64_t& h, const void* data, std::size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {  // FNV-1a
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
}
}  // namespace

template <Scalar T>
DataParallel<T>::DataParallel(Collective& collective, Module<T>& model)
    : c_(collective), params_(model.parameters()) {
  for (const auto& b : model.named_buffers()) {
    buffers_.push_back(b.tensor);
    if (b.batch_statistic) statistics_.push_back(b.tensor);
  }
  std::size_t n = 0;
  for (const Parameter<T>* p : params_) {
    grad_offset_.push_back(n);
    n += aligned(static_cast<std::size_t>(p->value.numel()), sizeof(T));
  }
  stats_offset_ = n;
  for (const Tensor<T>* s : statistics_) n += static_cast<std::size_t>(s->numel());
  loss_offset_ = n;
  flat_ = Tensor<T>(Shape{static_cast<Index>(n + 1)});
  for (std::size_t i = 0; i < params_.size(); ++i)
    params_[i]->grad = Tensor<T>::view(flat_.data() + grad_offset_[i], params_[i]->value.shape());
  broadcast_model();
}

template <Scalar T>
DataParallel<T>::~DataParallel() {
  for (Parameter<T>* p : params_)
    if (!p->grad.owns_data()) p->grad = Tensor<T>(p->grad);  // a copy owns its memory
}

template <Scalar T>
void DataParallel<T>::broadcast_model() {
  for (Parameter<T>* p : params_)
    c_.broadcast(p->value.data(), static_cast<std::size_t>(p->value.numel()));
  for (Tensor<T>* b : buffers_) c_.broadcast(b->data(), static_cast<std::size_t>(b->numel()));
}

template <Scalar T>
std::pair<Index, Index> DataParallel<T>::shard(Index rows) const {
  const Index ranks = c_.size(), r = c_.rank();
  if (rows < ranks)
    throw std::invalid_argument("data-parallel training: a batch of " + std::to_string(rows) +
                                " rows cannot be shared by " + std::to_string(ranks) + " ranks");
  const Index begin = r * rows / ranks;
  return {begin, (r + 1) * rows / ranks - begin};
}

template <Scalar T>
double DataParallel<T>::reduce(double local_loss, Index shard_rows, Index global_rows) {
  const auto weight =
      static_cast<T>(static_cast<double>(shard_rows) / static_cast<double>(global_rows));
  for (std::size_t i = 0; i < params_.size(); ++i)
    if (params_[i]->grad.data() != flat_.data() + grad_offset_[i])
      throw std::logic_error(
          "data-parallel training: a parameter's gradient left the shared "
          "buffer (was the model's parameter list changed after the trainer "
          "was built?)");
  T* flat = flat_.data();
  // Padding between the gradients stays zero; scaling it costs nothing.
  for (std::size_t i = 0; i < stats_offset_; ++i) flat[i] *= weight;
  std::size_t k = stats_offset_;
  for (const Tensor<T>* s : statistics_)
    for (Index j = 0; j < s->numel(); ++j) flat[k++] = (*s)[j] * weight;
  flat[loss_offset_] = static_cast<T>(local_loss) * weight;
  c_.sum(flat, static_cast<std::size_t>(flat_.numel()));
  k = stats_offset_;
  for (Tensor<T>* s : statistics_)
    for (Index j = 0; j < s->numel(); ++j) (*s)[j] = flat[k++];
  return static_cast<double>(flat[loss_offset_]);
}

template <Scalar T>
std::uint64_t DataParallel<T>::checksum() const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const Parameter<T>* p : params_)
    hash_bytes(h, p->value.data(), static_cast<std::size_t>(p->value.numel()) * sizeof(T));
  for (const Tensor<T>* b : buffers_)
    hash_bytes(h, b->data(), static_cast<std::size_t>(b->numel()) * sizeof(T));
  return h;
}

template <Scalar T>
void DataParallel<T>::check_identical(long step) {
  if (!c_.same_everywhere(checksum()))
    throw std::runtime_error(
        "data-parallel training: after step " + std::to_string(step) +
        " the ranks' parameters differ (rank " + std::to_string(c_.rank()) +
        "'s checksum is not everyone's); every rank must run the same program and instruction "
        "set (FLOWGRAD_ISA) on the same data");
}

template class DataParallel<float>;
template class DataParallel<double>;

}  // namespace flowgrad
