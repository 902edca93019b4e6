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

// Trains opt.model on `data` with the library's DensityTrainer (Adam; a CSV's training rows drawn
// with replacement, a toy's points fresh every step, both continuing the generator that
// initialised the model, as train_2d always drew them); saves the checkpoint (the trainer's whole
// state, with `metadata`) and loss.csv beside it every opt.checkpoint_every steps, at the end and
// when a SIGINT/SIGTERM stops the run early. An empty checkpoint path saves nothing. With
// opt.resume set, the run continues from that checkpoint (the model, the optimizer, the step, the
// batches to come) and the losses in its loss.csv, exactly as if it had not stopped. Throws
// std::runtime_error if the loss stops being finite.
DensityRun train_density(const TrainOptions& opt, const DataSource& data,
                         const std::string& checkpoint, const Metadata& metadata);

// -mean log p(x) over the rows of a test set, in eval mode, in nats: the library's.
using flowgrad::test_nll;

// density.png (for 2-D models) and samples.png of a density model beside its data.
void draw_density_model(const std::string& dir, flowgrad::DensityFlow<float>& model,
                        const DataSource& data, const std::string& title, std::uint64_t seed);

}  // namespace train2d
