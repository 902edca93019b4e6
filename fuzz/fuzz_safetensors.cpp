// The safetensors reader on any bytes: the header checks, then the data of every tensor copied
// out, then the same file loaded into a small model and, with Adam's state, as a training
// checkpoint (module_io's checks of names, dtypes and shapes).
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "flowgrad/autodiff/io/module_io.hpp"
#include "flowgrad/flows/models.hpp"
#include "fuzz_file.hpp"

namespace {

using namespace flowgrad;

// The Shape of a file's dims, when Shape can hold them (rank 0..4).
bool shape_of(const std::vector<Index>& d, Shape& out) {
  switch (d.size()) {
    case 0: out = Shape{}; return true;
    case 1: out = Shape{d[0]}; return true;
    case 2: out = Shape{d[0], d[1]}; return true;
    case 3: out = Shape{d[0], d[1], d[2]}; return true;
    case 4: out = Shape{d[0], d[1], d[2], d[3]}; return true;
    default: return false;
  }
}

template <Scalar T>
void copy_out(const SafetensorsFile& f, const std::string& name, const TensorInfo& info) {
  Shape shape;
  if (!shape_of(info.shape, shape)) return;
  Tensor<T> t(shape);
  f.copy_to(name, t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fuzz::ScratchFile file("safetensors");
  const std::string& path = file.write(data, size);
  try {
    const SafetensorsFile f(path);
    for (const auto& [name, info] : f.tensors()) {
      if (info.dtype == DType::F32)
        copy_out<float>(f, name, info);
      else
        copy_out<double>(f, name, info);
    }
    // The seed corpus holds files of this model (fuzz/make_corpus.cpp), so edits of them reach
    // past the name checks into the copies.
    Generator gen(0);
    DensityFlow<float> model(make_planar_stack<float>(2, 2, gen));
    load_module(f, model);
    Adam<float> adam(model.parameters());
    load_training_checkpoint(path, model, adam);
  } catch (const std::runtime_error&) {
  }
  return 0;
}
