// Fit a RealNVP to points in a tensor, then evaluate and sample it.
#include <cmath>
#include <cstdio>
#include <flowgrad/flowgrad.hpp>

using namespace flowgrad;

int main() {
  Generator gen(0);
  // 4096 points on a noisy circle of radius 2.
  TensorF data(Shape{4096, 2});
  for (Index i = 0; i < data.rows(); ++i) {
    const double a = 6.283185307 * gen.uniform(), r = 2 + 0.1 * gen.normal();
    data(i, 0) = static_cast<float>(r * std::cos(a));
    data(i, 1) = static_cast<float>(r * std::sin(a));
  }
  DensityFlow<float> model(make_realnvp<float>(RealNVPConfig{}, gen));
  Adam<float> adam(model.parameters(), {.lr = 1e-3});
  Tape<float> tape;
  TensorF batch(Shape{256, 2});
  for (int step = 1; step <= 1000; ++step) {
    for (Index i = 0; i < batch.rows(); ++i) {
      const Index row = static_cast<Index>(gen.below(static_cast<std::uint64_t>(data.rows())));
      batch(i, 0) = data(row, 0);
      batch(i, 1) = data(row, 1);
    }
    tape.reset();  // reuse last step's buffers
    adam.zero_grad();
    Var<float> loss = -mean(model.log_prob(tape.constant(batch)));  // NLL, nats
    tape.backward(loss);
    adam.step();
    if (step % 250 == 0) std::printf("step %4d  NLL %.3f\n", step, loss.item());
  }
  model.eval();  // batch norm uses its running averages from here on
  const TensorF x = model.sample(5, gen);
  const TensorF lp = model.log_prob(x);
  for (Index i = 0; i < x.rows(); ++i)
    std::printf("x = (%+.3f, %+.3f)  log p = %.3f\n", x(i, 0), x(i, 1), lp[i]);
}
