#pragma once
// Checkpoints as safetensors (docs/design.md §7): an 8-byte little-endian header length, a JSON
// header giving each tensor's dtype, shape and data_offsets plus a "__metadata__" map of strings
// (the model's configuration), then the raw little-endian data. Names are PyTorch-style
// ("layers.0.s.0.weight"), so the same file loads in Python with safetensors.torch.load_file.
#include <map>
#include <string>

#include "flowgrad/autodiff/module.hpp"

namespace train2d {

using Metadata = std::map<std::string, std::string>;

// Writes every parameter and buffer of `model` (float32) and the metadata. Atomic: the file is
// written beside the target, flushed to disk and renamed over it, so a crash never leaves a
// half-written checkpoint in place. Throws std::runtime_error naming the path on failure.
void save_checkpoint(const std::string& path, flowgrad::Module<float>& model,
                     const Metadata& metadata);

// Reads only the metadata (to rebuild the model before loading its tensors).
Metadata read_checkpoint_metadata(const std::string& path);

// Loads every parameter and buffer of `model` from the file. The file must hold exactly the
// model's tensors with the model's shapes; anything else (missing or extra tensors, a shape or
// dtype that disagrees, truncation, a header that is not safetensors JSON) throws
// std::runtime_error naming the path and the problem, and leaves the model unchanged.
void load_checkpoint(const std::string& path, flowgrad::Module<float>& model);

}  // namespace train2d
