#pragma once
// A seeded random generator that gives the same numbers on every machine: the engine is
// xoshiro256** (Blackman & Vigna) seeded through splitmix64, and every distribution is computed
// here from its raw 64-bit output rather than by the standard library's unspecified algorithms.
#include <cstdint>
#include <string>
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

  // The complete state, so that a resumed run draws exactly what the interrupted one would have:
  // "w0,w1,w2,w3,spare", the four xoshiro words as 16 hex digits each, then the pending
  // Box-Muller value's IEEE-754 bits as 16 hex digits, or "-" when none is pending. Text, because
  // it is meant for places such as a safetensors file's string metadata.
  std::string state() const;
  // Restores a state() string. Throws std::invalid_argument on anything else (wrong field count or
  // length, a non-hex digit, the all-zero xoshiro state, from which it never leaves, a non-finite
  // spare) and leaves the generator unchanged then.
  void set_state(const std::string& state);

 private:
  std::uint64_t s_[4];
  double spare_normal_ = 0;
  bool has_spare_ = false;
};

}  // namespace flowgrad
