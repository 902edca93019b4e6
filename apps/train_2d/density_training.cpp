#include "density_training.hpp"

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
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
  LoopSettings settings;
  settings.steps = opt.steps;
  settings.log_every = opt.log_every;
  settings.checkpoint_every = opt.checkpoint_every;
  settings.quiet = opt.quiet;
  settings.hint = "try a lower --lr or --clip";
  const std::string losses = loss_csv_beside(checkpoint);
  if (resuming) {
    flowgrad::resume_trainer(checkpoint, *trainer);
    settings.earlier_losses = read_loss_csv(losses, trainer->step());
  }
  if (!checkpoint.empty())
    settings.save = [&](const LoopResult& so_far) {
      // The losses first: a checkpoint at step k then always finds k of them beside it.
      write_loss_csv(losses, so_far.losses);
      flowgrad::save_trainer(checkpoint, *trainer, metadata);
    };
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

std::string loss_csv_beside(const std::string& checkpoint) {
  if (checkpoint.empty()) return {};
  return (std::filesystem::path(checkpoint).parent_path() / "loss.csv").string();
}

void write_loss_csv(const std::string& path, const std::vector<float>& losses) {
  std::string text = "step,loss\n";
  char buf[64];
  for (std::size_t i = 0; i < losses.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%zu,%.9g\n", i + 1, static_cast<double>(losses[i]));
    text += buf;
  }
  write_file_atomic(path, text);
}

std::vector<float> read_loss_csv(const std::string& path, long steps) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot be read (a resumed run continues its losses)");
  std::vector<float> losses;
  std::string line;
  std::getline(in, line);
  if (line != "step,loss") throw std::runtime_error(path + ": line 1 is not 'step,loss'");
  for (long step = 1; step <= steps; ++step) {
    if (!std::getline(in, line))
      throw std::runtime_error(path + ": has the losses of " + std::to_string(step - 1) +
                               " steps; the checkpoint is at step " + std::to_string(steps));
    const auto comma = line.find(',');
    float loss = 0;
    const char* end = line.data() + line.size();
    const auto [at, ec] = comma == std::string::npos
                              ? std::from_chars_result{line.data(), std::errc::invalid_argument}
                              : std::from_chars(line.data() + comma + 1, end, loss);
    if (ec != std::errc() || at != end || line.substr(0, comma) != std::to_string(step))
      throw std::runtime_error(path + ": line " + std::to_string(step + 1) + " is not '" +
                               std::to_string(step) + ",<loss>'");
    losses.push_back(loss);
  }
  return losses;
}

}  // namespace train2d
