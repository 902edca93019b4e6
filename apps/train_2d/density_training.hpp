#pragma once
// Fitting a density flow to data by maximum likelihood, and measuring it.
#include <memory>
#include <vector>

#include "commands.hpp"
#include "data_source.hpp"
#include "training_loop.hpp"

namespace train2d {

struct DensityRun : LoopResult {
  std::unique_ptr<flowgrad::DensityFlow<float>> model;
};

// Trains opt.model on `data` with Adam; saves the checkpoint (with `metadata`) every
// opt.checkpoint_every steps and when a SIGINT/SIGTERM stops the run early. An empty
// checkpoint path saves nothing. Throws std::runtime_error if the loss stops being finite.
DensityRun train_density(const TrainOptions& opt, const DataSource& data,
                         const std::string& checkpoint, const Metadata& metadata);

// -mean log p(x) over the rows of `test`, in eval mode, in nats.
double test_nll(flowgrad::DensityFlow<float>& model, const TensorF& test);

// density.png (for 2-D models) and samples.png of a density model beside its data.
void draw_density_model(const std::string& dir, flowgrad::DensityFlow<float>& model,
                        const DataSource& data, const std::string& title, std::uint64_t seed);

// "step,loss" lines.
void write_loss_csv(const std::string& path, const std::vector<float>& losses);

}  // namespace train2d
