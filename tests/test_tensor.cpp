#include <doctest/doctest.h>

#include <stdexcept>

#include "flowgrad/tensor/tensor.hpp"

using namespace flowgrad;

TEST_CASE("tensor storage is 64-byte aligned and row-major") {
  TensorF t(Shape{3, 5}, 1.5f);
  CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 5);
  t(1, 2) = 7;
  CHECK(t[1 * 5 + 2] == 7);
}

TEST_CASE("resize keeps the allocation when it fits") {
  TensorD t(Shape{100, 10});
  const double* p = t.data();
  t.resize(Shape{10, 10});
  t.resize(Shape{50, 20});
  CHECK(t.data() == p);
  CHECK(t.shape() == Shape{50, 20});
}

TEST_CASE("wrong value count and item of many elements throw") {
  CHECK_THROWS_AS(TensorF(Shape{2, 2}, {1.f, 2.f, 3.f}), std::invalid_argument);
  CHECK_THROWS_AS(TensorF(Shape{2, 2}).item(), std::invalid_argument);
}
