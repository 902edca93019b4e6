// Intra-op parallelism: set_num_threads() validation, and every parallel kernel at 2 threads
// against the same kernel at 1 thread. The shapes are several times above the split thresholds of
// tensor/gemm.cpp and tensor/detail/simd.hpp (and odd, so chunks end mid-batch and mid-tile), so
// that the 2-thread runs really split.
//
// Expected agreement: gemm (every path, transpose form, accumulate), elementwise ops, broadcasts
// and per-row / per-column reductions split over independent outputs and sum every element in the
// 1-thread order: bit-identical. Reductions of a whole tensor to one sum (sum, mean, the gradient
// of a broadcast [1, 1]) add per-thread partial sums: equal within a relative 1e-6 (float) or
// 1e-14 (double) of the sum of magnitudes. max over everything is exact.
#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "flowgrad/autodiff/detail/mlp_forward.hpp"
#include "flowgrad/flowgrad.hpp"
#include "flowgrad/tensor/detail/fused.hpp"
#include "flowgrad/tensor/detail/gemm.hpp"
#include "flowgrad/tensor/detail/pool.hpp"
#include "flowgrad/tensor/ops.hpp"
#include "flowgrad/tensor/random.hpp"
#include "flowgrad/tensor/threads.hpp"

using flowgrad::Binary;
using flowgrad::GemmOptions;
using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::Tensor;
using flowgrad::Unary;

namespace {

// Runs body() at `threads` threads, restoring 1 thread afterwards (even on an exception).
template <class F>
void with_threads(int threads, F&& body) {
  flowgrad::set_num_threads(threads);
  struct Restore {
    ~Restore() { flowgrad::set_num_threads(1); }
  } restore;
  body();
}

// Number of elements whose bits differ.
template <class T>
Index bit_mismatches(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  Index bad = 0;
  for (Index i = 0; i < a.numel(); ++i)
    if (std::memcmp(&a.data()[i], &b.data()[i], sizeof(T)) != 0) ++bad;
  return bad;
}

// out = f() computed at 1 and at 2 threads; both results, for the caller to compare.
template <class T, class F>
std::pair<Tensor<T>, Tensor<T>> one_and_two(F&& f) {
  std::pair<Tensor<T>, Tensor<T>> r;
  with_threads(1, [&] { r.first = f(); });
  with_threads(2, [&] { r.second = f(); });
  return r;
}

template <class T, class F>
void check_bitwise(const std::string& what, F&& f) {
  const auto [one, two] = one_and_two<T>(f);
  INFO(what);
  CHECK(bit_mismatches(one, two) == 0);
}

struct GemmCase {
  Index m, n, k;
};

// C = op(A) op(B) (+ C0 when accumulating) for one shape in every transpose form, at 1 and 2
// threads, with padded leading dimensions.
template <class T>
void check_gemm(GemmCase s, Generator& gen) {
  for (const bool ta : {false, true})
    for (const bool tb : {false, true})
      for (const bool acc : {false, true}) {
        const Index lda = (ta ? s.m : s.k) + 3, ldb = (tb ? s.k : s.n) + 1, ldc = s.n + 2;
        const Tensor<T> a = gen.normal<T>(Shape{ta ? s.k : s.m, lda});
        const Tensor<T> b = gen.normal<T>(Shape{tb ? s.n : s.k, ldb});
        const Tensor<T> c0 = gen.normal<T>(Shape{s.m, ldc});
        check_bitwise<T>("gemm m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) +
                             " k=" + std::to_string(s.k) + " ta=" + std::to_string(ta) +
                             " tb=" + std::to_string(tb) + " acc=" + std::to_string(acc),
                         [&] {
                           Tensor<T> c = c0;
                           flowgrad::gemm<T>(s.m, s.n, s.k, a.data(), lda, b.data(), ldb, c.data(),
                                             ldc, GemmOptions{ta, tb, acc});
                           return c;
                         });
      }
}

template <class T>
Tensor<T> sum_to_tensor(const Tensor<T>& x) {
  Tensor<T> out;
  flowgrad::sum(x, out);
  return out;
}

}  // namespace

TEST_CASE("num_threads defaults to 1 and set_num_threads validates its argument") {
  CHECK(flowgrad::num_threads() == 1);
  flowgrad::set_num_threads(2);
  CHECK(flowgrad::num_threads() == 2);
  CHECK_THROWS_AS(flowgrad::set_num_threads(0), std::invalid_argument);
  CHECK_THROWS_AS(flowgrad::set_num_threads(-3), std::invalid_argument);
  CHECK(flowgrad::num_threads() == 2);  // a rejected value leaves the setting alone
  flowgrad::set_num_threads(1);
  CHECK(flowgrad::num_threads() == 1);
  // More threads than cores is allowed (and correct, if slow).
  flowgrad::set_num_threads(5);
  CHECK(flowgrad::num_threads() == 5);
  flowgrad::set_num_threads(1);
}

TEST_CASE("the pool runs every chunk exactly once, nested and from competing callers") {
  using flowgrad::detail::run_chunks;
  struct Count {
    std::vector<std::atomic<int>> runs;
    explicit Count(int n) : runs(static_cast<std::size_t>(n)) {}
    static void one(void* p, int c) {
      static_cast<Count*>(p)->runs[static_cast<std::size_t>(c)].fetch_add(1);
    }
    bool all_once() const {
      for (const auto& r : runs)
        if (r.load() != 1) return false;
      return true;
    }
  };
  // Many jobs in a row: a worker that wakes late must not run a chunk of a newer job twice.
  for (int job = 0; job < 2000; ++job) {
    const int chunks = 1 + job % 7;
    Count count(chunks);
    run_chunks(3, chunks, &Count::one, &count);
    REQUIRE(count.all_once());
  }
  // A job started from inside a chunk runs on that chunk's thread, to completion.
  struct Nested {
    std::atomic<int> inner{0};
    static void outer(void* p, int) {
      Count count(5);
      run_chunks(2, 5, &Count::one, &count);
      if (count.all_once()) static_cast<Nested*>(p)->inner.fetch_add(1);
    }
  } nested;
  run_chunks(2, 4, &Nested::outer, &nested);
  CHECK(nested.inner.load() == 4);
  // Two threads submitting at once: one gets the pool, the other runs its chunks itself.
  std::atomic<int> good{0};
  auto submitter = [&] {
    for (int job = 0; job < 500; ++job) {
      Count count(4);
      run_chunks(2, 4, &Count::one, &count);
      if (count.all_once()) good.fetch_add(1);
    }
  };
  std::thread a(submitter), b(submitter);
  a.join();
  b.join();
  CHECK(good.load() == 1000);
  // An exception in a chunk reaches the caller after the other chunks have run, and the pool
  // takes the next job as usual.
  struct Throwing {
    std::atomic<int> ran{0};
    static void one(void* p, int c) {
      static_cast<Throwing*>(p)->ran.fetch_add(1);
      if (c == 1) throw std::runtime_error("chunk 1 failed");
    }
  } throwing;
  for (int job = 0; job < 50; ++job)
    CHECK_THROWS_WITH_AS(run_chunks(2, 4, &Throwing::one, &throwing), "chunk 1 failed",
                         std::runtime_error);
  CHECK(throwing.ran.load() == 200);
  Count after(4);
  run_chunks(2, 4, &Count::one, &after);
  CHECK(after.all_once());
}

TEST_CASE_TEMPLATE("gemm at 2 threads is bit-identical to 1 thread", T, float, double) {
  Generator gen(11);
  // Blocked path: tall (row split), square and wide (column-panel split), odd edges.
  for (const GemmCase s : {GemmCase{4099, 64, 64}, GemmCase{64, 64, 4099}, GemmCase{301, 203, 157},
                           GemmCase{70, 1000, 90}, GemmCase{257, 257, 300}})
    check_gemm<T>(s, gen);
  // Thin n and thin m (dot form and axpy form, C written directly and transposed), with the
  // weight-gradient shapes of a 2-D flow: k = batch large, m or n = 1..4. In axpy form a thread's
  // share of rows may take another loop than the whole (67 x 1: one register block and 3 single
  // rows on one thread, rows streamed on two; 3 x 250: streamed on one thread, register blocks for
  // the second half on two).
  for (const GemmCase s : {GemmCase{20001, 1, 64}, GemmCase{20001, 2, 64}, GemmCase{8193, 4, 64},
                           GemmCase{1, 64, 20001}, GemmCase{2, 64, 20001}, GemmCase{64, 1, 20001},
                           GemmCase{67, 3, 12345}, GemmCase{3, 1001, 700}, GemmCase{1, 301, 5001},
                           GemmCase{301, 2, 5001}, GemmCase{67, 1, 5001}, GemmCase{3, 250, 5001},
                           GemmCase{11, 1, 30001}})
    check_gemm<T>(s, gen);
  // Thin k: every row of C a combination of k rows of op(B).
  for (const GemmCase s : {GemmCase{20001, 64, 1}, GemmCase{16387, 64, 2}, GemmCase{9001, 67, 3},
                           GemmCase{7001, 130, 4}})
    check_gemm<T>(s, gen);
}

TEST_CASE_TEMPLATE("matmul at 2 threads is bit-identical to 1 thread", T, float, double) {
  Generator gen(12);
  const Tensor<T> x = gen.normal<T>(Shape{4096, 64});
  const Tensor<T> w = gen.normal<T>(Shape{64, 64});
  check_bitwise<T>("matmul", [&] { return flowgrad::matmul(x, w, GemmOptions{false, true}); });
  check_bitwise<T>("matmul A^T B", [&] {
    return flowgrad::matmul(x, x, GemmOptions{true, false});
  });
}

TEST_CASE_TEMPLATE("unary ops and their derivatives at 2 threads are bit-identical", T, float,
                   double) {
  Generator gen(13);
  // 1000 x 257: not a whole number of batches, so the last chunk has a tail.
  const Tensor<T> x = gen.uniform<T>(Shape{1000, 257}, T(0.1), T(3));  // in every op's domain
  const Tensor<T> gy = gen.normal<T>(x.shape());
  const Tensor<T> g0 = gen.normal<T>(x.shape());
  for (const Unary f : {Unary::neg, Unary::exp, Unary::log, Unary::tanh, Unary::sigmoid,
                        Unary::softplus, Unary::relu, Unary::leaky_relu, Unary::square, Unary::sqrt,
                        Unary::sin, Unary::cos, Unary::abs, Unary::pow}) {
    for (const T p : {T(0.2), T(2), T(1.7)}) {
      if (p != T(0.2) && f != Unary::pow) continue;
      const std::string what = std::string(flowgrad::to_string(f)) + " p=" + std::to_string(p);
      check_bitwise<T>(what, [&] { return flowgrad::unary(f, x, p); });
      const Tensor<T> y = flowgrad::unary(f, x, p);
      check_bitwise<T>(what + " backward", [&] {
        Tensor<T> g = g0;
        flowgrad::unary_backward(f, x, y, gy, g, p);
        return g;
      });
    }
  }
}

TEST_CASE_TEMPLATE("fused bias + activation and its backward at 2 threads are bit-identical", T,
                   float, double) {
  using flowgrad::Activation;
  Generator gen(17);
  // 1000 x 67 (rows split, a tail in every row) and 40000 x 1 (the flat path of narrow rows).
  for (const Shape s : {Shape{1000, 67}, Shape{40000, 1}}) {
    const Tensor<T> x = gen.normal<T>(s);
    const Tensor<T> bias = gen.normal<T>(Shape{1, s.cols()});
    const Tensor<T> gy = gen.normal<T>(s);
    const Tensor<T> b0 = gen.normal<T>(Shape{1, s.cols()});
    for (const Activation act : {Activation::none, Activation::relu, Activation::leaky_relu,
                                 Activation::tanh, Activation::sigmoid, Activation::softplus}) {
      const std::string what = s.str() + " " + flowgrad::to_string(act);
      check_bitwise<T>(what, [&] {
        Tensor<T> y = x;
        flowgrad::bias_activation(y, bias, act, T(0.01));
        return y;
      });
      Tensor<T> y = x;
      flowgrad::bias_activation(y, bias, act, T(0.01));
      check_bitwise<T>(what + " backward", [&] {
        Tensor<T> gz;
        flowgrad::activation_backward<T>(y, gy, act, T(0.01), gz, nullptr);
        return gz;
      });
      check_bitwise<T>(what + " bias gradient", [&] {
        Tensor<T> gz, gb = b0;
        flowgrad::activation_backward(y, gy, act, T(0.01), gz, &gb);
        return gb;
      });
    }
  }
}

TEST_CASE_TEMPLATE("linear_forward at 2 threads is bit-identical", T, float, double) {
  Generator gen(18);
  // Blocked (split by rows, and by columns for the short, wide one) and small k.
  for (const Shape xs : {Shape{1000, 67}, Shape{30, 300}, Shape{5000, 1}}) {
    const Index n = xs.rows() == 30 ? 1000 : 64;
    const Tensor<T> x = gen.normal<T>(xs);
    const Tensor<T> w = gen.normal<T>(Shape{n, xs.cols()});
    const Tensor<T> bias = gen.normal<T>(Shape{1, n});
    check_bitwise<T>("linear_forward " + xs.str(), [&] {
      Tensor<T> y;
      flowgrad::linear_forward(x, w, bias, flowgrad::Activation::tanh, T(0.01), y);
      return y;
    });
  }
}

TEST_CASE_TEMPLATE("the fused MLP node at 2 threads is bit-identical, values and gradients", T,
                   float, double) {
  Generator gen(19);
  // Batches of several row blocks, one ending mid-block; H = 64, a width that is no multiple of a
  // SIMD batch, and one wide enough that its weight gradient is one product over the batch; and
  // a batch small enough for H = 300 that the forward pass goes layer by layer.
  std::vector<std::pair<Index, Index>> shapes;  // batch, hidden
  for (const Index batch : {1000, 4096})
    for (const Index hidden : {64, 37, 160}) shapes.emplace_back(batch, hidden);
  shapes.emplace_back(64, 300);
  for (const auto& [batch, hidden] : shapes) {
    const std::vector<Index> sizes = {2, hidden, hidden, 1};
    CHECK(flowgrad::detail::mlp_forward_by_layer(sizes, batch) == (hidden == 300));
    std::vector<Tensor<T>> layers;
    for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
      layers.push_back(gen.normal<T>(Shape{sizes[l + 1], sizes[l]}, T(0), T(0.5)));
      layers.push_back(gen.normal<T>(Shape{sizes[l + 1]}));
    }
    const Tensor<T> x = gen.normal<T>(Shape{batch, 2});
    const Tensor<T> seed = gen.normal<T>(Shape{batch, 1});
    // The output, then the gradients of x and of every weight and bias, end to end.
    auto run = [&](int part) {
      flowgrad::Tape<T> t;
      std::vector<flowgrad::Var<T>> p;
      for (const auto& l : layers) p.push_back(t.constant(l, true));
      const auto xv = t.constant(x, true);
      const auto y = flowgrad::mlp(xv, std::span<const flowgrad::Var<T>>(p),
                                   flowgrad::Activation::relu, flowgrad::Activation::tanh);
      t.backward(y, seed);
      return part == 0   ? y.value()
             : part == 1 ? xv.grad()
                         : p[static_cast<std::size_t>(part - 2)].grad();
    };
    for (int part = 0; part < 2 + static_cast<int>(layers.size()); ++part)
      check_bitwise<T>("mlp batch " + std::to_string(batch) + " H " + std::to_string(hidden) +
                           " part " + std::to_string(part),
                       [&] { return run(part); });
  }
}

TEST_CASE_TEMPLATE("the rational-quadratic spline at 2 threads is bit-identical, both directions",
                   T, float, double) {
  Generator gen(23);
  const Index bins = 8, rows = 3001, cols = 3;                       // rows: an odd split
  const Tensor<T> x = gen.normal<T>(Shape{rows, cols}, T(0), T(2));  // some in the tails
  const Tensor<T> params = gen.normal<T>(Shape{rows, cols * (3 * bins - 1)});
  const Tensor<T> seed = gen.normal<T>(Shape{rows, cols});
  for (const bool inverse : {false, true}) {
    // The output and log-derivative, then the gradients of x and of the parameters.
    auto run = [&](int part) {
      flowgrad::Tape<T> t;
      const auto xv = t.constant(x, true), pv = t.constant(params, true);
      const auto r = flowgrad::rational_quadratic_spline(xv, pv, bins, T(3), inverse);
      t.backward(flowgrad::sum(r.out * t.constant(seed)) + flowgrad::sum(r.log_det));
      return part == 0   ? r.out.value()
             : part == 1 ? r.log_det.value()
             : part == 2 ? xv.grad()
                         : pv.grad();
    };
    for (int part = 0; part < 4; ++part)
      check_bitwise<T>(
          std::string(inverse ? "inverse" : "forward") + " spline part " + std::to_string(part),
          [&] { return run(part); });
  }
}

TEST_CASE_TEMPLATE("binary ops, axpy and accumulate_reduced at 2 threads", T, float, double) {
  Generator gen(14);
  const Index m = 2001, n = 131;
  const Tensor<T> a = gen.normal<T>(Shape{m, n});
  const Tensor<T> b = gen.uniform<T>(Shape{m, n}, T(0.5), T(2));
  const Tensor<T> row = gen.uniform<T>(Shape{1, n}, T(0.5), T(2));
  const Tensor<T> col = gen.uniform<T>(Shape{m, 1}, T(0.5), T(2));
  const Tensor<T> one = gen.uniform<T>(Shape{1, 1}, T(0.5), T(2));
  const Tensor<T> wide = gen.normal<T>(Shape{3, 100003});  // few long rows: split by columns
  const Tensor<T> wide_row = gen.uniform<T>(Shape{1, 100003}, T(0.5), T(2));
  const Tensor<T> wide_col = gen.uniform<T>(Shape{3, 1}, T(0.5), T(2));
  const Tensor<T> long_col = gen.normal<T>(Shape{300007, 1});
  const Tensor<T> long_col2 = gen.uniform<T>(Shape{300007, 1}, T(0.5), T(2));
  struct Pair {
    const char* what;
    const Tensor<T>* x;
    const Tensor<T>* y;
  };
  const Pair pairs[] = {{"same", &a, &b},
                        {"row right", &a, &row},
                        {"row left", &row, &b},
                        {"col right", &a, &col},
                        {"col left", &col, &b},
                        {"scalar right", &a, &one},
                        {"scalar left", &one, &b},
                        {"row x col", &row, &col},
                        {"col x row", &col, &row},
                        {"wide same", &wide, &wide},
                        {"wide row", &wide, &wide_row},
                        {"wide col", &wide_col, &wide},
                        {"long column", &long_col, &long_col2}};
  for (const Binary f : {Binary::add, Binary::sub, Binary::mul, Binary::div})
    for (const Pair& p : pairs)
      check_bitwise<T>(std::string(flowgrad::to_string(f)) + " " + p.what,
                       [&] { return flowgrad::binary(f, *p.x, *p.y); });
  // In place: out aliases an input.
  check_bitwise<T>("add in place", [&] {
    Tensor<T> out = a;
    flowgrad::binary(Binary::add, out, row, out);
    return out;
  });
  check_bitwise<T>("axpy", [&] {
    Tensor<T> acc = b;
    flowgrad::axpy(T(0.75), a, acc);
    return acc;
  });
  for (const Tensor<T>* target : {&row, &col}) {
    check_bitwise<T>("accumulate_reduced to " + target->shape().str(), [&] {
      Tensor<T> acc = *target;
      flowgrad::accumulate_reduced(a, acc);
      return acc;
    });
  }
  check_bitwise<T>("accumulate_reduced wide to a row", [&] {
    Tensor<T> acc = wide_row;
    flowgrad::accumulate_reduced(wide, acc);
    return acc;
  });
  // To [1, 1]: a sum of everything, split into per-thread partial sums.
  const auto [s1, s2] = one_and_two<T>([&] {
    Tensor<T> acc = one;
    flowgrad::accumulate_reduced(a, acc);
    return acc;
  });
  double magnitude = 0;
  for (Index i = 0; i < a.numel(); ++i) magnitude += std::abs(static_cast<double>(a[i]));
  const double tol = (sizeof(T) == 4 ? 1e-6 : 1e-14) * magnitude;
  CHECK(std::abs(static_cast<double>(s1.item()) - static_cast<double>(s2.item())) <= tol);
}

TEST_CASE_TEMPLATE("reductions at 2 threads", T, float, double) {
  Generator gen(15);
  for (const Shape shape : {Shape{2001, 131}, Shape{3, 100003}, Shape{100003, 3}}) {
    const Tensor<T> x = gen.normal<T>(shape, T(0.5), T(2));
    const std::string s = shape.str();
    for (const int dim : {0, 1}) {
      const std::string d = " dim " + std::to_string(dim) + " of " + s;
      check_bitwise<T>("sum" + d, [&] { return flowgrad::sum(x, dim); });
      check_bitwise<T>("mean" + d, [&] {
        Tensor<T> out;
        flowgrad::mean(x, dim, out);
        return out;
      });
      check_bitwise<T>("max" + d, [&] {
        Tensor<T> out;
        flowgrad::max(x, dim, out);
        return out;
      });
      check_bitwise<T>("logsumexp" + d, [&] {
        Tensor<T> out;
        flowgrad::logsumexp(x, dim, out);
        return out;
      });
    }
    check_bitwise<T>("max of " + s, [&] {
      Tensor<T> out;
      flowgrad::max(x, out);
      return out;
    });
    double magnitude = 0;
    for (Index i = 0; i < x.numel(); ++i) magnitude += std::abs(static_cast<double>(x[i]));
    const double tol = (sizeof(T) == 4 ? 1e-6 : 1e-14) * magnitude;
    const auto [s1, s2] = one_and_two<T>([&] { return sum_to_tensor(x); });
    INFO("sum of " << s);
    CHECK(std::abs(static_cast<double>(s1.item()) - static_cast<double>(s2.item())) <= tol);
    const auto [m1, m2] = one_and_two<T>([&] {
      Tensor<T> out;
      flowgrad::mean(x, out);
      return out;
    });
    CHECK(std::abs(static_cast<double>(m1.item()) - static_cast<double>(m2.item())) <=
          tol / static_cast<double>(x.numel()));
  }
}

TEST_CASE_TEMPLATE("Adam over many parameters at 2 threads updates each one, bit-identically", T,
                   float, double) {
  // Small tensors with enough elements between them for one parallel region, and one large
  // enough to be split on its own.
  Generator gen(20);
  const std::vector<Index> sizes = {5000, 3, 4096, 40000, 1, 9000, 17, 64};
  std::vector<Tensor<T>> start, grads;
  for (const Index n : sizes) {
    start.push_back(gen.normal<T>(Shape{n}));
    grads.push_back(gen.normal<T>(Shape{n}));
  }
  // Three steps; every parameter's values end to end.
  auto run = [&] {
    std::vector<flowgrad::Parameter<T>> params;
    for (const auto& s : start) params.emplace_back(s);
    std::vector<flowgrad::Parameter<T>*> ptrs;
    for (auto& p : params) ptrs.push_back(&p);
    flowgrad::Adam<T> adam(ptrs, {.lr = 1e-2});
    for (int step = 0; step < 3; ++step) {
      for (std::size_t k = 0; k < params.size(); ++k) params[k].grad = grads[k];
      adam.step();
    }
    Index total = 0;
    for (const Index n : sizes) total += n;
    Tensor<T> out(Shape{total});
    Index at = 0;
    for (const auto& p : params)
      for (Index i = 0; i < p.value.numel(); ++i) out[at++] = p.value[i];
    return out;
  };
  const auto [one, two] = one_and_two<T>(run);
  CHECK(bit_mismatches(one, two) == 0);
  Index at = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    Index moved = 0;
    for (Index i = 0; i < sizes[k]; ++i, ++at) moved += two[at] != start[k][i];
    CHECK_MESSAGE(moved == sizes[k], "parameter " << k << " of " << sizes[k] << " values");
  }
}

TEST_CASE_TEMPLATE("a B packed at 2 threads gives the products of one packed at 1", T, float,
                   double) {
  // 256 x 256: enough values for the packing itself to be split between threads.
  Generator gen(21);
  const Index m = 300, n = 256, k = 256;
  const Tensor<T> a = gen.normal<T>(Shape{m, k});
  for (const bool tb : {false, true}) {
    const Tensor<T> b = gen.normal<T>(Shape{tb ? n : k, tb ? k : n});
    check_bitwise<T>(tb ? "packed B^T" : "packed B", [&] {
      flowgrad::PackedB<T> packed;
      packed.pack(k, n, b.data(), tb ? k : n, tb);
      Tensor<T> c(Shape{m, n});
      flowgrad::gemm(m, n, k, a.data(), k, packed, c.data(), n, {false, tb, false});
      return c;
    });
  }
}
