#include "density_training.hpp"

#include <cmath>
#include <stdexcept>

#include "atomic_file.hpp"
#include "checkpoint.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/fit_checkpoint.hpp"
#include "flowgrad/flows/registry.hpp"

namespace train2d {

using flowgrad::DensityFlow;

DensityRun train_density(const TrainOptions& opt, const DataSource& data,
                         const std::string& checkpoint, const Metadata& metadata) {
  const bool resuming = !opt.resume.empty();
  Generator gen(opt.seed);
  DensityRun run;
  if (resuming) {
    run.model = flowgrad::load_density_flow<float>(checkpoint);
  } else {
    ModelConfig config = opt.model;
    config.dim = data.dim();
    run.model = std::make_unique<DensityFlow<float>>(build_transform(config, gen));
  }
  DensityFlow<float>& model = *run.model;
  model.train();
  flowgrad::FitOptions fit;
  fit.steps = opt.steps;
  fit.batch = opt.batch;
  fit.adam.lr = opt.lr;
  fit.clip = opt.clip;
  fit.replacement = true;
  auto trainer =
      data.is_csv()
          ? std::make_unique<flowgrad::DensityTrainer<float>>(model, data.train_rows(), fit)
          : std::make_unique<flowgrad::DensityTrainer<float>>(model, data.toy_source(), fit);
  trainer->generator() = gen;
  LoopSettings settings =
      loop_settings(opt, "try a lower --lr or --clip", *trainer, checkpoint, metadata);
  if (resuming) {
    flowgrad::resume_trainer(checkpoint, *trainer);
    settings.earlier_losses = read_loss_csv(loss_csv_beside(checkpoint), trainer->step());
  }
  static_cast<LoopResult&>(run) = run_training_loop(settings, *trainer);
  return run;
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

}  // namespace train2d
