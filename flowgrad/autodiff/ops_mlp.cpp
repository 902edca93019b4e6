// mlp(): a whole MLP as one node, run a block of rows at a time through every layer, or, where the
// weights outweigh the batch, a layer at a time over the whole batch.
#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgrad/autodiff/detail/mlp_forward.hpp"
#include "flowgrad/autodiff/detail/op_support.hpp"
#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/cache_sizes.hpp"
#include "flowgrad/tensor/detail/fused_block.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad {

using detail::push;

namespace {

// The batch is cut into at most kMaxBlocks blocks of rows, of at least kMinRows rows each and a
// multiple of 8 rows (the thin kernels' row group). Blocks are fixed by the batch alone, and
// threads take whole blocks, so the results do not depend on the thread count. The sizes are
// those measured best (bench/results/mlp_node_tuning.md).
constexpr Index kMinRows = 128;
constexpr Index kMaxBlocks = 8;
Index block_rows(Index m) {
  const Index blocks = std::clamp<Index>((m + kMinRows - 1) / kMinRows, 1, kMaxBlocks);
  return std::max<Index>(8, ((m + blocks - 1) / blocks + 7) / 8 * 8);
}
// Multiply-adds per thread before a pass is split, as gemm's own split.
constexpr Index kGrain = Index(1) << 18;

// The node's layers as raw pointers: input i of the node is x, then each layer's weight and bias.
template <class T>
struct Net {
  int layers = 0;
  const T* w[mlp_max_layers] = {};
  const T* b[mlp_max_layers] = {};
  Index width[mlp_max_layers + 1] = {};  // width[l] in, width[l + 1] out of layer l
  Activation act[mlp_max_layers] = {};
  T slope = T(0.01);  // leaky_relu's, as linear()'s

  Index macs_per_row() const {
    Index s = 0;
    for (int l = 0; l < layers; ++l) s += width[l] * width[l + 1];
    return s;
  }
  Index widest() const { return *std::max_element(width + 1, width + layers + 1); }
  Index hidden_and_output_widths() const {
    Index s = 0;
    for (int l = 0; l < layers; ++l) s += width[l + 1];
    return s;
  }
};

// What the node keeps of its arguments; the layers themselves are its inputs.
template <class T>
struct MlpState {
  Activation hidden, output;
  T slope;  // leaky_relu's, as linear()'s
};

template <Scalar T>
Net<T> net_of(const OpTape<T>& t, const Node<T>& n) {
  const auto& st = state<MlpState<T>>(n);
  Net<T> net;
  net.slope = st.slope;
  net.width[0] = t.value(n.in[0]).cols();
  while (net.layers < mlp_max_layers && n.in[1 + 2 * net.layers] >= 0) {
    const int l = net.layers++;
    const Tensor<T>& w = t.value(n.in[1 + 2 * l]);
    net.w[l] = w.data();
    net.b[l] = t.value(n.in[2 + 2 * l]).data();
    net.width[l + 1] = w.rows();
  }
  for (int l = 0; l < net.layers; ++l) net.act[l] = l + 1 < net.layers ? st.hidden : st.output;
  return net;
}

// Per-thread buffer that only grows, so that steady-state steps allocate nothing, and is 64-byte
// aligned like a tensor (the dz blocks in it are gemm's C); Slot tells apart buffers in use at
// the same time.
template <class T, int Slot>
T* thread_buffer(Index count) {
  thread_local Tensor<T> buffer;
  if (buffer.numel() < count) buffer.resize(Shape{count});
  return buffer.data();
}

// Each layer's op(W) from layer `first` on, packed once per pass for all blocks (W^T forward, W
// backward), held by the calling thread, rather than by each block again.
template <class T>
std::array<PackedB<T>, mlp_max_layers>& packed_weights(const Net<T>& net, bool transposed,
                                                       int first = 0) {
  thread_local std::array<PackedB<T>, mlp_max_layers> packed;
  for (int l = first; l < net.layers; ++l) {
    const Index in = net.width[l], out = net.width[l + 1];
    if (transposed)
      packed[l].pack(in, out, net.w[l], in, true);
    else
      packed[l].pack(out, in, net.w[l], in, false);
  }
  return packed;
}

// Rows of a weight gradient `cols` wide that take half of a core's L2 (at least 8).
template <class T>
Index gradient_block_rows(Index cols) {
  const Index bytes = detail::cache_sizes().l2 / 2;
  return std::max<Index>(8, bytes / (cols * static_cast<Index>(sizeof(T))) / 8 * 8);
}

// Whether rows x cols values fit in a core's L2.
template <class T>
bool packed_fits_l2(Index rows, Index cols) {
  return rows * cols * static_cast<Index>(sizeof(T)) <= detail::cache_sizes().l2;
}

// count values rounded up to whole cache lines, so that a buffer's second half is aligned too.
template <class T>
Index whole_lines(Index count) {
  constexpr auto line = static_cast<Index>(tensor_alignment / sizeof(T));
  return (count + line - 1) / line * line;
}

// The node's backward rule; its forward is mlp() below.
template <Scalar T>
struct MlpOp {
  static void backward(OpTape<T>& t, const Node<T>& n);
};

// Rows [r0, r1) through every layer. out[l] is row 0 of layer l's whole output, or null when
// the layer's values are not kept (no gradient wanted): its blocks then go to this thread's
// scratch, two buffers used in turn.
template <class T>
void forward_rows(const Net<T>& net, const PackedB<T>* wt, const T* x, Index r0, Index r1,
                  Index block_rows, T* const* out) {
  const Index block = whole_lines<T>(block_rows * net.widest());
  T* scratch = nullptr;
  for (int l = 0; l < net.layers; ++l)
    if (!out[l]) scratch = thread_buffer<T, 0>(2 * block);
  for (Index r = r0; r < r1; r += block_rows) {
    const Index rows = std::min(block_rows, r1 - r);
    const T* in = x + r * net.width[0];
    for (int l = 0; l < net.layers; ++l) {
      const Index k = net.width[l], n = net.width[l + 1];
      T* y = out[l] ? out[l] + r * n : scratch + (l % 2) * block;
      gemm(rows, n, k, in, k, wt[l], y, n, {false, true, false}, {net.b[l], net.act[l], net.slope});
      in = y;
    }
  }
}

// Every layer over the whole batch in turn (mlp_forward_by_layer): y_l^T = W_l h_(l-1)^T into
// scratch, then transposed into out[l] (or, for a layer whose values are not kept, into one of two
// whole-batch scratch buffers used in turn) with the bias and activation. The product splits
// its columns (rows of the batch) among threads by itself, the transposition its rows.
template <class T>
void forward_by_layer(const Net<T>& net, const T* x, Index m, T* const* out) {
  const Index whole = whole_lines<T>(m * net.widest());
  T* yt = thread_buffer<T, 4>(whole);
  T* scratch = nullptr;
  for (int l = 0; l < net.layers; ++l)
    if (!out[l]) scratch = thread_buffer<T, 0>(2 * whole);
  const T* in = x;
  for (int l = 0; l < net.layers; ++l) {
    const Index k = net.width[l], n = net.width[l + 1];
    gemm(n, m, k, net.w[l], k, in, k, yt, m, {false, true, false});
    T* y = out[l] ? out[l] : scratch + (l % 2) * whole;
    constexpr Index group = 8;  // rows per chunk: a whole transpose square for float and double
    const int nt = simd::threads_for(m * n, simd::kGrainMath);
    simd::parallel_for(nt, m, group, [&](Index i0, Index i1) {
      detail::transpose_bias_activation_block(yt + i0, m, i1 - i0, n, net.b[l], net.act[l],
                                              net.slope, y + i0 * n, n);
    });
    in = y;
  }
}

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("mlp: " + what); }

}  // namespace

// Packing W^T touches each weight once; the other way packs the batch's input of each layer and
// transposes its output, rows x (in + out) values: whichever touches fewer. But 5 to 15 rows, as
// the product's columns, fill one register tile only in part, and with weights that stay in cache
// ran slower that way (bench/results/mlp_node_tuning.md); up to 4, gemm's thin path takes them.
bool detail::mlp_forward_by_layer(std::span<const Index> widths, Index rows) {
  constexpr Index kThinRows = 4, kTileRows = 16;
  if (rows > kThinRows && rows < kTileRows) return false;
  Index weights = 0, activations = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    weights += widths[l] * widths[l + 1];
    activations += rows * (widths[l] + widths[l + 1]);
  }
  return weights > activations;
}

template <Scalar T>
Var<T> mlp(const Var<T>& x, std::span<const Var<T>> params, Activation hidden, Activation output) {
  if (params.empty() || params.size() % 2 != 0 || params.size() > 2 * mlp_max_layers)
    fail("takes a weight and a bias for each of 1 to " + std::to_string(mlp_max_layers) +
         " layers, got " + std::to_string(params.size()) + " tensors");
  if (x.shape().rank() > 2) fail("input " + x.shape().str() + " is not a matrix");
  Index in = x.cols();
  for (std::size_t l = 0; l < params.size() / 2; ++l) {
    const Shape ws = params[2 * l].shape(), bs = params[2 * l + 1].shape();
    const std::string layer = "layer " + std::to_string(l);
    if (ws.rank() != 2 || ws.cols() != in)
      fail(layer + "'s weight " + ws.str() + " does not take " + std::to_string(in) +
           (l == 0 ? " input columns (input " + x.shape().str() + ")" : " inputs"));
    if (bs.rows() != 1 || bs.cols() != ws.rows())
      fail(layer + "'s bias " + bs.str() + " does not match its weight " + ws.str());
    in = ws.rows();
  }

  std::array<Var<T>, 1 + 2 * mlp_max_layers> inputs;  // on the stack: steps allocate nothing
  inputs[0] = x;
  std::copy(params.begin(), params.end(), inputs.begin() + 1);
  Var<T> out;
  OpTape<T> t(x.tape());
  Node<T>& n = t.push("mlp", &MlpOp<T>::backward,
                      std::span<const Var<T>>(inputs.data(), params.size() + 1), &out);
  n.set_state(MlpState<T>{hidden, output, T(0.01)});
  const Net<T> net = net_of(t, n);
  const Index m = x.rows();
  n.value.resize(Shape{m, net.width[net.layers]});
  T* kept[mlp_max_layers] = {};
  if (n.requires_grad) {
    n.saved.resize(static_cast<std::size_t>(net.layers - 1));
    for (int l = 0; l + 1 < net.layers; ++l) {
      Tensor<T>& s = n.saved[static_cast<std::size_t>(l)];
      s.resize(Shape{m, net.width[l + 1]});
      kept[l] = s.data();
    }
  }
  kept[net.layers - 1] = n.value.data();
  const T* xp = x.value().data();
  if (detail::mlp_forward_by_layer(std::span<const Index>(net.width, net.layers + 1), m)) {
    forward_by_layer(net, xp, m, kept);
    return out;
  }
  const Index rows_per_block = block_rows(m);
  const Index blocks = (m + rows_per_block - 1) / rows_per_block;
  const int nt =
      static_cast<int>(std::min<Index>(simd::threads_for(m * net.macs_per_row(), kGrain), blocks));
  const auto& wt = packed_weights(net, true);
  simd::parallel_for_each(nt, blocks, [&](Index b) {
    const Index r = b * rows_per_block;
    forward_rows(net, wt.data(), xp, r, std::min(m, r + rows_per_block), rows_per_block, kept);
  });
  return out;
}

namespace {

// Adds the blocks' partial sums in a fixed pairwise tree as the blocks finish: whichever thread
// finishes the second child of a node adds the right child's partials into the left one's. The
// tree depends on the block count alone, so the total's rounding does not depend on which thread
// ran what, and the additions run on the region's threads rather than after it.
template <class T>
class PairwiseSums {
 public:
  PairwiseSums(T* partials, Index count, Index blocks)
      : partials_(partials), count_(count), blocks_(blocks) {}

  // Block b's partials are written. True for the one call after which block 0's partials hold
  // the total.
  bool finish(Index b) {
    Index i = b;
    for (int level = 0; (Index(1) << level) < blocks_; ++level, i /= 2) {
      if (((i | 1) << level) >= blocks_) continue;  // no right sibling: nothing to wait for
      if (arrivals_[level][i / 2].fetch_add(1, std::memory_order_acq_rel) == 0) return false;
      T* left = at((i & ~Index(1)) << level);
      const T* right = at((i | 1) << level);
      for (Index j = 0; j < count_; ++j) left[j] += right[j];
    }
    return true;
  }

 private:
  T* at(Index b) const { return partials_ + b * count_; }

  static constexpr int kLevels = std::bit_width(static_cast<unsigned>(kMaxBlocks - 1));
  T* partials_;
  Index count_, blocks_;
  std::atomic<int> arrivals_[kLevels][(kMaxBlocks + 1) / 2] = {};  // per level, per parent node
};

// A layer's weight gradient is summed per block of rows, in partials that PairwiseSums adds up,
// while all blocks' partials fit in this many bytes (about half an L2): the block's dz_l is then
// used while in cache and never stored whole. Wider layers are faster as one product over the
// batch after the blocks (bench/results/mlp_node_tuning.md).
constexpr std::size_t kPartialBytes = std::size_t(1) << 18;

// With h_l the output of layer l (h_-1 = x) and dz_l the gradient at its pre-activation:
//   dz_last = G act'(.),  dz_(l-1) = (dz_l W_l) act'(.),  dx += dz_0 W_0,
//   dW_l += dz_l^T h_(l-1),  db_l += column sums of dz_l.
// Each block of rows goes through the whole chain while it is in cache. Its column sums of dz_l
// and, for narrow layers, its share of dW_l go to the block's own partials; the dz_l of wide layers
// are kept for the batch and multiplied after the blocks.
template <Scalar T>
void MlpOp<T>::backward(OpTape<T>& t, const Node<T>& n) {
  const Net<T> net = net_of(t, n);
  const int layers = net.layers;
  const Index m = n.value.rows();
  const Index* width = net.width;
  const Index rows_per_block = block_rows(m);
  // An empty batch still runs one (empty) block, whose zero partials become the gradients.
  const Index blocks = std::max<Index>(1, (m + rows_per_block - 1) / rows_per_block);

  const T* h[mlp_max_layers + 1];  // h[l + 1] = layer l's output, h[0] = x
  h[0] = t.value(n.in[0]).data();
  for (int l = 0; l + 1 < layers; ++l) h[l + 1] = n.saved[static_cast<std::size_t>(l)].data();
  h[layers] = n.value.data();

  // Each parameter's gradient goes to its buffer or, when the pass fuses an optimizer's update
  // (Adam::backward_step), straight into that update.
  Tensor<T>* gw[mlp_max_layers];
  Tensor<T>* gb[mlp_max_layers];
  const AdamTarget<T>* uw[mlp_max_layers] = {};
  const AdamTarget<T>* ub[mlp_max_layers] = {};
  AdamTarget<T> updates[2 * mlp_max_layers];  // each claim's, kept: the next claim reuses its own
  bool w_overwrite[mlp_max_layers] = {}, b_overwrite[mlp_max_layers] = {};
  T* whole_dz[mlp_max_layers] = {};  // the batch's dz_l, for layers summed after the blocks
  Index weight_at[mlp_max_layers], bias_at[mlp_max_layers];  // in a block's partials
  Index per_block = 0;
  for (int l = 0; l < layers; ++l) {
    const Index ko = width[l + 1], ki = width[l];
    if (const AdamTarget<T>* u = t.fused_update(n.in[1 + 2 * l])) uw[l] = &(updates[2 * l] = *u);
    if (const AdamTarget<T>* u = t.fused_update(n.in[2 + 2 * l]))
      ub[l] = &(updates[2 * l + 1] = *u);
    gw[l] = uw[l] ? nullptr : t.grad_for(n.in[1 + 2 * l], &w_overwrite[l]);
    gb[l] = ub[l] ? nullptr : t.grad_for(n.in[2 + 2 * l], &b_overwrite[l]);
    const bool want_w = gw[l] || uw[l], want_b = gb[l] || ub[l];
    const bool by_block = static_cast<std::size_t>(blocks * ko * ki) * sizeof(T) <= kPartialBytes;
    weight_at[l] = want_w && by_block ? per_block : -1;
    per_block += weight_at[l] >= 0 ? ko * ki : 0;
    bias_at[l] = want_b ? per_block : -1;
    per_block += want_b ? ko : 0;
    if (want_w && !by_block) {
      Tensor<T>& s = t.scratch(1 + l);  // slots 1..3: no other rule runs meanwhile
      s.resize(Shape{m, ko});
      whole_dz[l] = s.data();
    }
  }
  bool overwrite = false;
  Tensor<T>* gx = t.grad_for(n.in[0], &overwrite);

  T* partials = thread_buffer<T, 2>(blocks * per_block);
  auto part = [&](Index at, Index b) { return at >= 0 ? partials + b * per_block + at : nullptr; };

  // With every block's partials summed into block 0's, the gradients (or the updates) take them.
  PairwiseSums<T> sums(partials, per_block, blocks);
  auto take = [](const T* total, Index count, Tensor<T>* g, bool overwrite,
                 const AdamTarget<T>* update) {
    if (update)
      adam_apply(total, *update);
    else
      detail::deposit(total, count, g->data(), overwrite);
  };
  auto add_total = [&] {
    for (int l = 0; l < layers; ++l) {
      if (weight_at[l] >= 0)
        take(part(weight_at[l], 0), width[l + 1] * width[l], gw[l], w_overwrite[l], uw[l]);
      if (bias_at[l] >= 0) take(part(bias_at[l], 0), width[l + 1], gb[l], b_overwrite[l], ub[l]);
    }
  };

  // Layer 0's W serves only the input's gradient.
  const auto& w = packed_weights(net, false, gx ? 0 : 1);
  const int nt =
      static_cast<int>(std::min<Index>(simd::threads_for(m * net.macs_per_row(), kGrain), blocks));
  simd::parallel_for_each(nt, blocks, [&](Index b) {
    const Index r = b * rows_per_block, rows = std::min(rows_per_block, m - r);
    // Where this block's dz_l goes: the batch's buffer, or a half of the thread's scratch.
    const Index half = whole_lines<T>(rows_per_block * net.widest());
    T* scratch = thread_buffer<T, 1>(2 * half);
    auto dz_of = [&](int l) {
      return whole_dz[l] ? whole_dz[l] + r * width[l + 1] : scratch + (l % 2) * half;
    };
    T* dz = dz_of(layers - 1);
    const Index wo = width[layers];
    detail::activation_backward_block(h[layers] + r * wo, n.grad.data() + r * wo, dz, rows, wo,
                                      net.act[layers - 1], net.slope, part(bias_at[layers - 1], b));
    for (int l = layers - 1; l >= 0; --l) {
      const Index ko = width[l + 1], ki = width[l];
      if (weight_at[l] >= 0)
        gemm(ko, ki, rows, dz, ko, h[l] + r * ki, ki, part(weight_at[l], b), ki,
             {true, false, false});
      if (l == 0) break;
      T* next = dz_of(l - 1);
      gemm(rows, ki, ko, dz, ko, w[l], next, ki, {false, false, false});
      detail::activation_backward_block(h[l] + r * ki, next, next, rows, ki, net.act[l - 1],
                                        net.slope, part(bias_at[l - 1], b));
      dz = next;
    }
    if (gx)
      gemm(rows, width[0], width[1], dz, width[1], w[0], gx->data() + r * width[0], width[0],
           {false, false, !overwrite});
    if (sums.finish(b)) add_total();
  });

  for (int l = 0; l < layers; ++l) {
    if (!whole_dz[l]) continue;
    const Index ko = width[l + 1], ki = width[l];
    // A gradient larger than half an L2 goes a block of rows at a time, each block staying in L2
    // through the product's passes over it and, with Adam in the pass, for the update of its
    // rows from scratch that the next block reuses, where the whole gradient would go out to
    // memory between those passes. h_(l-1) is packed once for all blocks; packed, it must fit in
    // L2 too, or the blocks push it out. (A gradient that fits gains nothing, and its input
    // packed whole costs more than the product's own packing of it a cache block at a time.
    // Without the update, two threads ran faster splitting the whole product between them.)
    const Index rows = gradient_block_rows<T>(ki);
    const int threads = simd::threads_for(ko * ki * m, kGrain);
    if (ko > rows && packed_fits_l2<T>(m, ki) && (uw[l] || threads == 1)) {
      thread_local PackedB<T> packed;
      packed.pack(m, ki, h[l], ki, false);
      const PackedB<T>& packed_h = packed;  // this thread's, for the threads below
      const Index row_blocks = (ko + rows - 1) / rows;
      simd::parallel_for_each(
          static_cast<int>(std::min<Index>(threads, row_blocks)), row_blocks, [&](Index b) {
            const Index r0 = b * rows, r = std::min(rows, ko - r0), at = r0 * ki;
            if (!uw[l]) {
              gemm(r, ki, m, whole_dz[l] + r0, ko, packed_h, gw[l]->data() + at, ki,
                   {true, false, !w_overwrite[l]});
              return;
            }
            T* g = thread_buffer<T, 3>(rows * ki);
            gemm(r, ki, m, whole_dz[l] + r0, ko, packed_h, g, ki, {true, false, false});
            const AdamTarget<T>& u = *uw[l];
            adam_apply(g,
                       AdamTarget<T>{u.value + at, u.exp_avg + at, u.exp_avg_sq + at, r * ki, u.c});
          });
    } else if (uw[l]) {
      // Through scratch that every layer reuses, and so stays in cache for the update, where the
      // parameter's own buffer would go out to memory and be read back by a step() after the pass.
      T* g = thread_buffer<T, 3>(ko * ki);
      gemm(ko, ki, m, whole_dz[l], ko, h[l], ki, g, ki, {true, false, false});
      adam_apply(g, *uw[l]);
    } else
      gemm(ko, ki, m, whole_dz[l], ko, h[l], ki, gw[l]->data(), ki, {true, false, !w_overwrite[l]});
  }
}

}  // namespace

#define FLOWGRAD_INSTANTIATE(T) \
  template Var<T> mlp(const Var<T>&, std::span<const Var<T>>, Activation, Activation);
FLOWGRAD_FOR_EACH_SCALAR(FLOWGRAD_INSTANTIATE)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
