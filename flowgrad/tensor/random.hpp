#pragma once
// A seeded random generator that gives the same numbers on every machine: the engine is
// xoshiro256** (Blackman & Vigna) seeded through splitmix64, and every distribution is computed
// here from its raw 64-bit output rather than by the standard library's unspecified algorithms.
#include <cstdint>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  double uniform();                      // [0, 1), 53 random bits
  double normal();                       // standard normal, Box-Muller
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), unbiased

  template <Scalar T>
  Tensor<T> uniform(Shape shape, T low = T(0), T high = T(1));
  template <Scalar T>
  Tensor<T> normal(Shape shape, T mean = T(0), T stddev = T(1));
  // 1 with probability p, else 0.
  template <Scalar T>
  Tensor<T> bernoulli(Shape shape, double p);
  // A uniformly random ordering of 0..n-1 (Fisher-Yates).
  std::vector<Index> permutation(Index n);

 private:
  std::uint64_t s_[4];
  double spare_normal_ = 0;
  bool has_spare_ = false;
};

}  // namespace flowgrad
