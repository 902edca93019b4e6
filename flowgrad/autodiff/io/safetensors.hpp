#pragma once
// safetensors files (docs/design.md §7): an 8-byte little-endian header length, a JSON header
// giving each tensor's dtype, shape and data_offsets plus "__metadata__" (a map of strings),
// padded with spaces so that the data starts 8-byte aligned, then the raw little-endian data.
// Python reads them with safetensors.torch.load_file.
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flowgrad/tensor/tensor.hpp"

namespace flowgrad {

using Metadata = std::map<std::string, std::string>;

// The element types flowgrad reads and writes: float tensors are F32, double tensors F64.
enum class DType { F32, F64 };
const char* to_string(DType d);  // "F32", "F64"
template <Scalar T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::F32 : DType::F64;
}

struct TensorInfo {
  DType dtype;
  std::vector<Index> shape;
  std::uint64_t begin = 0, end = 0;  // byte range within the data that follows the header
};

// A whole file, read into memory and checked: the header length against the file size, the JSON,
// every entry's dtype, shape and offsets (within the data, of the size the shape and dtype give,
// not overlapping, together covering the data with nothing left over), and a metadata map of
// strings. Every error is a std::runtime_error "<path>: <what>" naming the tensor where there is
// one.
//
// Resource bounds, for files from elsewhere (issue 18; docs/design.md §7): the header length is
// checked against the file's size and against 100 MB before the file is read; the file is then
// read once into one buffer of its size (the tensors' data is not copied again); the header's JSON
// may nest containers 3 deep (header, entry, shape), checked before its tree is built, and that
// tree takes at most about 25 bytes per header byte (23 measured for the worst shape, a metadata
// map of empty strings); a tensor's shape is checked against the data's size with overflow guards
// before anything is allocated for it. So a file of S bytes with a header of H costs at most
// S + 25 H bytes, and time linear in S.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const Metadata& metadata() const { return metadata_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }

  // Copies tensor `name` into `out`, whose shape and element type must equal the file's; throws
  // (leaving `out` as it was) otherwise.
  template <Scalar T>
  void copy_to(const std::string& name, Tensor<T>& out) const;

 private:
  std::string path_;
  Metadata metadata_;
  std::map<std::string, TensorInfo> tensors_;
  std::string bytes_;             // the whole file
  std::uint64_t data_begin_ = 0;  // where the tensors' data starts in it
};

// The file's bytes for these tensors, in this order, and the metadata. Names must be distinct and
// must not be "__metadata__" (std::invalid_argument).
template <Scalar T>
std::string encode_safetensors(const std::vector<std::pair<std::string, const Tensor<T>*>>& tensors,
                               const Metadata& metadata);

// encode_safetensors written with write_file_atomic.
template <Scalar T>
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor<T>*>>& tensors,
                       const Metadata& metadata);

// "[2, 64]"
std::string shape_string(const std::vector<Index>& dims);
std::vector<Index> dims_of(const Shape& shape);

}  // namespace flowgrad
