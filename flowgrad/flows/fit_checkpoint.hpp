#pragma once
// A trainer's whole state in one file, so that a stopped run continues exactly as if it had never
// stopped: the flow as save_flow writes it (so load_density_flow / load_variational_flow read the
// file too), Adam's moments, step count and options (save_training_checkpoint), and in the
// metadata the trainer's step ("fit.step") and the state that decides its coming batches or
// samples ("fit.batch_state").
//
// To continue a run: rebuild the model from the file, build a trainer over it with the same data
// (or batch source or log-density) and options, and resume_trainer() it; run_to(n) then gives bit
// for bit what an uninterrupted run to n gives, at the same thread count.
#include <string>

#include "flowgrad/autodiff/io/module_io.hpp"
#include "flowgrad/flows/fit.hpp"

namespace flowgrad {

// Data-parallel trainers (FitOptions::collective): every rank calls save_trainer, rank 0 alone
// writes (with each rank's batch state, where the ranks draw their own batches), and every rank
// calls resume_trainer on the same file.
//
// Atomic; `extra` is added to the metadata (the fit.* and flowgrad.* keys override it).
template <Scalar T>
void save_trainer(const std::string& path, DensityTrainer<T>& trainer, const Metadata& extra = {});
template <Scalar T>
void save_trainer(const std::string& path, VariationalTrainer<T>& trainer,
                  const Metadata& extra = {});

// Restores the model's parameters and buffers, the optimizer, the step count and the batch state
// from a file save_trainer wrote, and returns its metadata. All or nothing: on any error
// (std::runtime_error naming the file) the trainer and its model are unchanged.
template <Scalar T>
Metadata resume_trainer(const std::string& path, Trainer<T>& trainer);

}  // namespace flowgrad
