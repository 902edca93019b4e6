// Fit a RealNVP to points in a tensor, evaluate and sample it, and save it.
#include <cmath>
#include <cstdio>
#include <flowgrad/flowgrad.hpp>

using namespace flowgrad;

int main() {
  Generator gen(0);
  // 5000 points on a noisy circle of radius 2 (or: TensorF data = load_csv("points.csv").points;).
  TensorF data(Shape{5000, 2});
  for (Index i = 0; i < data.rows(); ++i) {
    const double a = 6.283185307 * gen.uniform(), r = 2 + 0.1 * gen.normal();
    data(i, 0) = static_cast<float>(r * std::cos(a));
    data(i, 1) = static_cast<float>(r * std::sin(a));
  }
  const Split split = split_rows(data, 0.2, /*seed=*/1);  // 4000 to train on, 1000 held out
  DensityFlow<float> model(make_realnvp<float>(RealNVPConfig{}, gen));
  FitOptions options;
  options.steps = 1000;
  options.batch = 256;  // epochs of shuffled rows
  options.adam.lr = 1e-3;
  options.eval_every = 250;  // held-out NLL, in eval mode
  FitCallbacks callbacks;
  callbacks.every = 250;
  callbacks.on_progress = [](const FitProgress& p) {
    std::printf("step %4ld  loss %.3f  held-out NLL %.3f nats\n", p.step, p.loss,
                p.held_out_nll.value_or(NAN));
    return FitAction::proceed;  // FitAction::stop ends the run here
  };
  fit_density(model, split.train, split.test, options, callbacks);
  model.eval();  // batch norm uses its running averages from here on
  const TensorF x = model.sample(5, gen);
  const TensorF lp = model.log_prob(x);
  for (Index i = 0; i < x.rows(); ++i)
    std::printf("x = (%+.3f, %+.3f)  log p = %.3f\n", x(i, 0), x(i, 1), lp[i]);
  // Architecture and tensors in one file: load_density_flow<float>(path) rebuilds the model.
  save_flow("circle.safetensors", model);
  std::printf("saved circle.safetensors\n");
}
