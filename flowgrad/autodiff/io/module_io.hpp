#pragma once
// Saving and loading a Module's tensors, and an Adam optimizer's state with them, as safetensors
// files (docs/design.md §7). Tensors are stored under the modules' PyTorch-style names
// ("layers.0.s.0.weight"): every parameter and every buffer (batch-norm running statistics).
// float modules are written as F32, double modules as F64.
#include <string>

#include "flowgrad/autodiff/io/safetensors.hpp"
#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/autodiff/optim.hpp"

namespace flowgrad {

// Tensor names under this prefix hold optimizer state; load_module ignores them, so a training
// checkpoint also loads as a plain model.
inline constexpr const char* optimizer_prefix = "optimizer.";

// Writes every named parameter and buffer of `m`, with `metadata`, atomically (write_file_atomic).
// Throws std::runtime_error naming the path on failure.
template <Scalar T>
void save_module(const std::string& path, Module<T>& m, const Metadata& metadata = {});

// Loads every named parameter and buffer of `m` and returns the file's metadata. All or nothing:
// the whole file is checked first (every tensor of `m` present, no other tensor except under
// "optimizer.", each of dtype T and of the shape `m` has, and the file itself well-formed), and on
// any error `m` is unchanged and std::runtime_error says "<path>: <what>".
template <Scalar T>
Metadata load_module(const std::string& path, Module<T>& m);
// The same from a file already read.
template <Scalar T>
Metadata load_module(const SafetensorsFile& file, Module<T>& m);

// The metadata only (the file is still checked whole).
Metadata read_metadata(const std::string& path);

// A checkpoint to resume training from exactly: the model's tensors, and for each named parameter
// p the optimizer's "optimizer.exp_avg.<p>" and "optimizer.exp_avg_sq.<p>" (torch's names), with
// the step count in metadata "optimizer.step" and the options in "optimizer.lr",
// "optimizer.beta1", "optimizer.beta2", "optimizer.eps", "optimizer.weight_decay" (these keys
// override any of the same name in `metadata`). `adam` must have been built over
// model.parameters(), in that order; otherwise std::invalid_argument says so.
template <Scalar T>
void save_training_checkpoint(const std::string& path, Module<T>& model, Adam<T>& adam,
                              const Metadata& metadata = {});

// Restores the model, and the optimizer's moments, step count and options, so that the next
// step equals the one an uninterrupted run would take, bit for bit. All or nothing as load_module:
// on any error (the optimizer's tensors or keys missing or malformed included) neither `model`
// nor `adam` changes. Returns the metadata.
template <Scalar T>
Metadata load_training_checkpoint(const std::string& path, Module<T>& model, Adam<T>& adam);

}  // namespace flowgrad
