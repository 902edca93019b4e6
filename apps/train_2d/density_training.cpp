#include "density_training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "conditional_toy.hpp"

#include <cmath>
#include <stdexcept>

#include "atomic_file.hpp"
#include "checkpoint.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/fit_checkpoint.hpp"
#include "flowgrad/flows/registry.hpp"
#include "ranks.hpp"

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
    config.context = data.context_dim();
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
  fit.collective = ranks();
  auto trainer =
      data.is_csv()
          ? std::make_unique<flowgrad::DensityTrainer<float>>(model, data.train_rows(), fit)
          : std::make_unique<flowgrad::DensityTrainer<float>>(model, data.toy_source(), fit);
  // Under data-parallel ranks, generated batches come from each rank's own stream.
  if (!fit.collective || data.is_csv()) trainer->generator() = gen;
  LoopSettings settings =
      loop_settings(opt, "try a lower --lr or --clip", *trainer, checkpoint, metadata);
  if (resuming) {
    flowgrad::resume_trainer(checkpoint, *trainer);
    settings.earlier_losses = read_loss_csv(loss_csv_beside(checkpoint), trainer->step());
  }
  static_cast<LoopResult&>(run) = run_training_loop(settings, *trainer);
  return run;
}

namespace {

// A conditional model's samples at a few contexts beside the data there: for "rotating", the true
// conditional at c = -1, -0.5, 0, 0.5, 1; for a CSV, the contexts of four training rows spread
// over the first context column, with the 300 rows whose contexts are nearest.
void draw_conditional_model(const std::string& dir, DensityFlow<float>& model,
                            const DataSource& data, std::uint64_t seed) {
  const Index d = model.dim(), c = model.context_dim();
  std::vector<TensorF> near, samples;
  std::vector<std::string> titles;
  std::vector<std::vector<float>> contexts;
  const TensorF rows = data.show_set(4000, seed + 1);
  if (data.name() == kRotating) {
    for (double v : {-1.0, -0.5, 0.0, 0.5, 1.0}) contexts.push_back({float(v)});
  } else {
    std::vector<Index> order(static_cast<std::size_t>(rows.rows()));
    for (Index i = 0; i < rows.rows(); ++i) order[static_cast<std::size_t>(i)] = i;
    std::sort(order.begin(), order.end(),
              [&](Index a, Index b) { return rows(a, d) < rows(b, d); });
    for (double q : {0.1, 0.37, 0.63, 0.9}) {
      const Index i = order[static_cast<std::size_t>(q * double(order.size() - 1))];
      const float* row = rows.data() + i * rows.cols();
      contexts.emplace_back(row + d, row + d + c);
    }
  }
  Generator gen(seed);
  for (const auto& ctx : contexts) {
    std::string title = "c = ";
    for (std::size_t j = 0; j < ctx.size(); ++j) {
      char buf[32];
      std::snprintf(buf, sizeof buf, j ? ", %.3g" : "%.3g", double(ctx[j]));
      title += buf;
    }
    titles.push_back(title);
    TensorF tiled(flowgrad::Shape{1000, c});
    for (Index i = 0; i < 1000; ++i) std::copy(ctx.begin(), ctx.end(), tiled.data() + i * c);
    samples.push_back(model.sample(tiled, gen));
    if (data.name() == kRotating) {
      near.push_back(sample_rotating_at(ctx[0], 1000, gen));
      continue;
    }
    // The rows whose contexts are nearest this one.
    std::vector<std::pair<double, Index>> by_distance;
    for (Index i = 0; i < rows.rows(); ++i) {
      double dist = 0;
      for (Index j = 0; j < c; ++j) dist += std::pow(double(rows(i, d + j)) - ctx[j], 2);
      by_distance.emplace_back(dist, i);
    }
    const std::size_t keep = std::min<std::size_t>(300, by_distance.size());
    std::partial_sort(by_distance.begin(), by_distance.begin() + static_cast<long>(keep),
                      by_distance.end());
    TensorF x(flowgrad::Shape{static_cast<Index>(keep), d});
    for (std::size_t k = 0; k < keep; ++k) {
      const float* row = rows.data() + by_distance[k].second * rows.cols();
      std::copy(row, row + d, x.data() + static_cast<Index>(k) * d);
    }
    near.push_back(x);
  }
  if (d >= 2)
    write_conditional_samples_png(dir + "/samples.png", near, samples, titles, data.extent());
}

}  // namespace

void draw_density_model(const std::string& dir, DensityFlow<float>& model, const DataSource& data,
                        const std::string& title, std::uint64_t seed) {
  const bool was_training = model.training();
  model.eval();
  if (model.context_dim() > 0) {
    draw_conditional_model(dir, model, data, seed);
    model.train(was_training);
    return;
  }
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
