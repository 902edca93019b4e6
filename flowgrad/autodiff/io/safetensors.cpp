#include "flowgrad/autodiff/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "flowgrad/autodiff/io/atomic_file.hpp"
#include "flowgrad/autodiff/io/detail/bounded_json.hpp"

namespace flowgrad {

using json = nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian, and is copied as it is");

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::uint64_t dtype_size(DType d) { return d == DType::F32 ? 4 : 8; }

// A header larger than this is not a model of ours (the reference implementation's limit too).
constexpr std::uint64_t max_header_bytes = 100u << 20;
// Containers open at depth 0 (the header), 1 (an entry, __metadata__) and 2 (a shape, offsets).
constexpr int max_header_depth = 2;

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                       std::uint64_t data_size) {
  const std::string where = "tensor '" + name + "'";
  if (!e.is_object()) fail(path, where + ": header entry is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!e.contains(key)) fail(path, where + ": header entry has no \"" + key + "\"");
  TensorInfo t{};
  const json& dtype = e["dtype"];
  if (!dtype.is_string()) fail(path, where + ": dtype is not a string");
  const std::string d = dtype.get<std::string>();
  if (d == "F32")
    t.dtype = DType::F32;
  else if (d == "F64")
    t.dtype = DType::F64;
  else
    fail(path, where + " has dtype " + d + "; flowgrad reads F32 and F64");
  const json& shape = e["shape"];
  if (!shape.is_array()) fail(path, where + ": shape is not an array");
  // Counted in elements with an overflow guard: no valid shape holds more elements than the data
  // has bytes.
  std::uint64_t numel = 1;
  bool too_big = false, empty = false;
  for (const json& dim : shape) {
    if (!dim.is_number_unsigned())
      fail(path, where + ": shape " + shape.dump() + " is not a list of non-negative integers");
    const auto n = dim.get<std::uint64_t>();
    t.shape.push_back(static_cast<Index>(n));
    if (n == 0)
      empty = true;
    else if (!too_big && numel > data_size / n)
      too_big = true;
    else if (!too_big)
      numel *= n;
  }
  if (empty) numel = 0, too_big = false;
  const json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    fail(path, where + ": data_offsets " + off.dump() + " is not [begin, end]");
  t.begin = off[0].get<std::uint64_t>();
  t.end = off[1].get<std::uint64_t>();
  if (t.end < t.begin)
    fail(path, where + ": data_offsets " + off.dump() + " end before they begin");
  if (t.end > data_size)
    fail(path, "truncated: " + where + " needs bytes up to " + std::to_string(t.end) +
                   " but the data has " + std::to_string(data_size));
  if (too_big || numel * dtype_size(t.dtype) != t.end - t.begin)
    fail(path, where + ": data_offsets " + off.dump() + " span " + std::to_string(t.end - t.begin) +
                   " bytes; shape " + shape_string(t.shape) + " of " + d + " needs " +
                   (too_big ? std::string("more than the whole file")
                            : std::to_string(numel * dtype_size(t.dtype))));
  return t;
}

}  // namespace

const char* to_string(DType d) { return d == DType::F32 ? "F32" : "F64"; }

std::string shape_string(const std::vector<Index>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::vector<Index> dims_of(const Shape& shape) {
  std::vector<Index> d;
  for (int i = 0; i < shape.rank(); ++i) d.push_back(shape[i]);
  return d;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  const std::streamoff size = in.tellg();
  if (size < 0) fail(path, "cannot tell the file's size");
  const auto file_size = static_cast<std::uint64_t>(size);
  if (file_size < 8)
    fail(path, "not a safetensors file (" + std::to_string(file_size) +
                   " bytes, too short for a header)");
  // The header length is checked against the file's size before the file is read, and the file is
  // read once into a buffer of its exact size: a claim costs nothing.
  std::uint64_t n = 0;
  in.seekg(0);
  in.read(reinterpret_cast<char*>(&n), 8);
  if (!in) fail(path, "read error");
  if (n > file_size - 8)
    fail(path, "not a safetensors file, or truncated: header length " + std::to_string(n) +
                   " exceeds the " + std::to_string(file_size - 8) + " bytes that follow");
  if (n > max_header_bytes)
    fail(path, "not a safetensors file: header length " + std::to_string(n) + " is over 100 MB");
  bytes_.resize(static_cast<std::size_t>(file_size));
  in.seekg(0);
  in.read(bytes_.data(), static_cast<std::streamsize>(file_size));
  if (in.gcount() != size) fail(path, "read error (the file changed while it was read?)");
  data_begin_ = 8 + n;
  json header;
  try {
    header = detail::parse_json_bounded(std::string_view(bytes_).substr(8, n), max_header_depth);
  } catch (const json::exception& e) {
    fail(path, std::string("not a safetensors file: header is not valid JSON (") + e.what() + ")");
  } catch (const detail::JsonTooDeep& e) {
    fail(path, std::string("not a safetensors file: header is ") + e.what());
  }
  if (!header.is_object()) fail(path, "not a safetensors file: header is not a JSON object");
  const std::uint64_t data_size = file_size - data_begin_;

  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(path, "__metadata__ is not a JSON object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          fail(path, "__metadata__ value for '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    tensors_[it.key()] = parse_entry(path, it.key(), it.value(), data_size);
  }

  // The tensors must tile the data exactly: sorted by offset, each begins where the last ended.
  std::vector<std::pair<const std::string*, const TensorInfo*>> order;
  for (const auto& [name, t] : tensors_) order.emplace_back(&name, &t);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->begin, a.second->end) < std::pair(b.second->begin, b.second->end);
  });
  std::uint64_t covered = 0;
  const std::string* last = nullptr;
  for (const auto& [name, t] : order) {
    if (t->begin < covered)
      fail(path, "tensors '" + *last + "' and '" + *name + "' overlap in the data");
    if (t->begin > covered)
      fail(path, "bytes " + std::to_string(covered) + ".." + std::to_string(t->begin) +
                     " of the data belong to no tensor (before '" + *name + "')");
    covered = t->end;
    if (t->end > t->begin) last = name;
  }
  if (covered != data_size)
    fail(path,
         std::to_string(data_size - covered) + " bytes of trailing data after the last tensor");
}

template <Scalar T>
void SafetensorsFile::copy_to(const std::string& name, Tensor<T>& out) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, "tensor '" + name + "' is missing");
  const TensorInfo& t = it->second;
  if (t.dtype != dtype_of<T>())
    fail(path_, "tensor '" + name + "' is " + to_string(t.dtype) + "; this " +
                    (std::is_same_v<T, float> ? "float" : "double") + " tensor needs " +
                    to_string(dtype_of<T>()));
  if (t.shape != dims_of(out.shape()))
    fail(path_, "tensor '" + name + "' has shape " + shape_string(t.shape) +
                    " in the file; the model expects " + shape_string(dims_of(out.shape())));
  if (t.end > t.begin)
    std::memcpy(out.data(), bytes_.data() + data_begin_ + t.begin, t.end - t.begin);
}

template <Scalar T>
std::string encode_safetensors(const std::vector<std::pair<std::string, const Tensor<T>*>>& tensors,
                               const Metadata& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name))
      throw std::invalid_argument("safetensors: tensor name '" + name +
                                  "' is reserved or used twice");
    const auto size = static_cast<std::uint64_t>(tensor->numel()) * sizeof(T);
    header[name] = {{"dtype", to_string(dtype_of<T>())},
                    {"shape", dims_of(tensor->shape())},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text = header.dump();
  // Spaces until the data starts 8-byte aligned, as the reference writer pads.
  while (text.size() % 8 != 0) text.push_back(' ');
  const std::uint64_t n = text.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  bytes.reserve(8 + text.size() + offset);
  bytes += text;
  for (const auto& entry : tensors)
    if (entry.second->numel() > 0)
      bytes.append(reinterpret_cast<const char*>(entry.second->data()),
                   static_cast<std::size_t>(entry.second->numel()) * sizeof(T));
  return bytes;
}

template <Scalar T>
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor<T>*>>& tensors,
                       const Metadata& metadata) {
  write_file_atomic(path, encode_safetensors(tensors, metadata));
}

#define FLOWGRAD_INSTANTIATE(T)                                                                 \
  template void SafetensorsFile::copy_to(const std::string&, Tensor<T>&) const;                 \
  template std::string encode_safetensors(                                                      \
      const std::vector<std::pair<std::string, const Tensor<T>*>>&, const Metadata&);           \
  template void write_safetensors(const std::string&,                                           \
                                  const std::vector<std::pair<std::string, const Tensor<T>*>>&, \
                                  const Metadata&);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
