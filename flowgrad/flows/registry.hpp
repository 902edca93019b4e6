#pragma once
// Whole flows in one file: save_flow stores the architecture (every layer's Bijector::spec())
// in the metadata beside the tensors, and load_density_flow / load_variational_flow rebuild the
// model from the file alone, without the caller knowing what was saved.
//
// Metadata written by save_flow (docs/design.md §7):
//   "flowgrad.architecture"  JSON of the chain's spec, settings as strings:
//                            {"kind": "composition", "dim": "2", "layers": [
//                              {"kind": "planar", "dim": "2"}, ...]}
//   "flowgrad.model"         "density" or "variational"
//   "flowgrad.dtype"         "float32" or "float64"
//
// Adding a layer: give it spec() and one line in the table in registry.cpp.
#include <cstddef>
#include <memory>
#include <string>

#include "flowgrad/autodiff/io/module_io.hpp"
#include "flowgrad/flows/models.hpp"

namespace flowgrad {

// Writes the model's tensors (save_module) with the three keys above added to `extra`; they
// override keys of the same name in `extra`, so metadata read from one file can be passed back.
// Throws std::logic_error if a layer has no spec(), std::runtime_error if the write fails.
template <Scalar T>
void save_flow(const std::string& path, FlowModel<T>& model, const Metadata& extra = {});
// The metadata save_flow writes: `extra` with the three keys above set.
template <Scalar T>
Metadata flow_metadata(FlowModel<T>& model, const Metadata& extra = {});

// Rebuild the model a file holds and load its tensors. The model comes back in training mode, as a
// freshly built one does: call eval() before evaluating or sampling a model with batch norm.
// Errors are std::runtime_error "<path>: <what>": the file holds the other kind of model, was
// written for the other scalar type, has no architecture (not written by save_flow), names an
// unknown layer kind ("unknown layer kind 'foo' at layers.3") or a bad setting, or any error of
// load_module. Read the rest of the metadata with read_metadata(path).
template <Scalar T>
std::unique_ptr<DensityFlow<T>> load_density_flow(const std::string& path);
template <Scalar T>
std::unique_ptr<VariationalFlow<T>> load_variational_flow(const std::string& path);

// Bounds on what a description may ask for (docs/design.md §7): at most 100,000 layers in all,
// compositions nested at most 15 deep, widths (dim, hidden) up to 65536, and the model's tensors
// within a byte budget (TensorBudget), refused at the first allocation that would pass it, before
// it is made. load_*_flow allows four times the file's tensor data plus 16 MiB (every parameter
// and buffer is in the file; gradients, masks and initialisation take the rest); build_flow takes
// the budget from its caller.
inline constexpr std::size_t default_build_budget = std::size_t{1} << 32;  // 4 GiB

// The chain an architecture describes (the JSON of "flowgrad.architecture"), with parameters
// initialised as the builders do (from a fixed seed), for callers that load the tensors
// themselves. Throws std::invalid_argument naming the layer ("at layers.3") on a bad architecture,
// one over the bounds above included.
template <Scalar T>
std::unique_ptr<Composition<T>> build_flow(const std::string& architecture_json,
                                           std::size_t max_tensor_bytes = default_build_budget);

// The architecture JSON of a spec (the chain's: model.transform().spec()).
std::string architecture_json(const LayerSpec& spec);

}  // namespace flowgrad
