#include <cstdio>
#include "flowgrad.hpp"
int main() {
  using namespace flowgrad;
  Generator gen(0);
  auto a = gen.normal<float>(Shape{4, 3});
  auto b = gen.normal<float>(Shape{3, 2});
  auto c = matmul(a, b);
  std::printf("c = a b has shape %s; c[0,0] = %f\n", c.shape().str().c_str(), c(0, 0));
}
