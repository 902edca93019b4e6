#include "density_training.hpp"

#include <cmath>
#include <stdexcept>

#include "atomic_file.hpp"
#include "checkpoint.hpp"
#include "flowgrad/autodiff/optim.hpp"

namespace train2d {

using flowgrad::DensityFlow;
using flowgrad::Tape;

DensityRun train_density(const TrainOptions& opt, const DataSource& data,
                         const std::string& checkpoint, const Metadata& metadata) {
  ModelConfig config = opt.model;
  config.dim = data.dim();
  Generator gen(opt.seed);
  DensityRun run;
  run.model = std::make_unique<DensityFlow<float>>(build_transform(config, gen));
  DensityFlow<float>& model = *run.model;
  model.train();
  flowgrad::AdamOptions adam_opt;
  adam_opt.lr = opt.lr;
  flowgrad::Adam<float> adam(model.parameters(), adam_opt);
  Tape<float> tape;
  TensorF batch;
  auto step = [&](long) {
    data.batch(opt.batch, gen, batch);
    tape.reset();
    adam.zero_grad();
    const auto loss = -mean(model.log_prob(tape.constant(batch)));
    tape.backward(loss);
    if (opt.clip > 0) flowgrad::clip_grad_norm(adam.params(), static_cast<float>(opt.clip));
    adam.step();
    return static_cast<double>(loss.item());
  };
  const LoopSettings settings{opt.steps, opt.log_every, opt.checkpoint_every,
                              opt.quiet, checkpoint,    "try a lower --lr or --clip"};
  static_cast<LoopResult&>(run) = run_training_loop(settings, model, metadata, step);
  return run;
}

double test_nll(DensityFlow<float>& model, const TensorF& test) {
  const bool was_training = model.training();
  model.eval();
  constexpr Index chunk = 4096;
  double total = 0;
  TensorF part;
  for (Index start = 0; start < test.rows(); start += chunk) {
    const Index m = std::min(chunk, test.rows() - start);
    part.resize(flowgrad::Shape{m, test.cols()});
    std::copy(test.data() + start * test.cols(), test.data() + (start + m) * test.cols(),
              part.data());
    const TensorF lp = model.log_prob(part);
    for (Index i = 0; i < m; ++i) total += lp[i];
  }
  model.train(was_training);
  return -total / static_cast<double>(test.rows());
}

void draw_density_model(const std::string& dir, DensityFlow<float>& model, const DataSource& data,
                        const std::string& title, std::uint64_t seed) {
  const bool was_training = model.training();
  model.eval();
  if (model.dim() == 2) {
    auto log_density = [&](const TensorF& points) {
      const TensorF lp = model.log_prob(points);
      return std::vector<double>(lp.data(), lp.data() + lp.numel());
    };
    const DensityGrid grid = evaluate_grid(log_density, data.extent(), 300, 300);
    write_density_png(dir + "/density.png", grid, title);
  }
  Generator gen(seed);
  const TensorF samples = model.sample(2000, gen);
  write_samples_png(dir + "/samples.png", data.show_set(2000, seed + 1), "data", samples,
                    "model samples", data.extent());
  model.train(was_training);
}

void write_loss_csv(const std::string& path, const std::vector<float>& losses) {
  std::string text = "step,loss\n";
  char buf[64];
  for (std::size_t i = 0; i < losses.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%zu,%.6g\n", i + 1, static_cast<double>(losses[i]));
    text += buf;
  }
  write_file_atomic(path, text);
}

}  // namespace train2d
