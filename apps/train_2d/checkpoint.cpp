#include "checkpoint.hpp"

#include "atomic_file.hpp"

#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace train2d {

using flowgrad::Index;
using flowgrad::Shape;
using flowgrad::TensorF;
using json = nlohmann::json;

namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

struct Entry {
  std::string name;
  TensorF* tensor;
};

std::vector<Entry> model_tensors(flowgrad::Module<float>& model) {
  std::vector<Entry> out;
  for (auto& p : model.named_parameters()) out.push_back({p.name, &p.param->value});
  for (auto& b : model.named_buffers()) out.push_back({b.name, b.tensor});
  return out;
}

std::vector<Index> dims_of(const Shape& s) {
  std::vector<Index> d;
  for (int i = 0; i < s.rank(); ++i) d.push_back(s[i]);
  return d;
}

std::string dims_str(const std::vector<Index>& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

struct FileContents {
  json header;
  std::string data;  // the byte buffer after the header
};

FileContents read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 8)
    fail(path, "not a safetensors file (" + std::to_string(bytes.size()) +
                   " bytes, too short for a header)");
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > bytes.size() - 8)
    fail(path, "not a safetensors file, or truncated: header length " + std::to_string(n) +
                   " exceeds the " + std::to_string(bytes.size() - 8) + " bytes that follow");
  FileContents f;
  try {
    f.header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const json::exception& e) {
    fail(path, std::string("not a safetensors file: header is not valid JSON (") + e.what() + ")");
  }
  if (!f.header.is_object()) fail(path, "not a safetensors file: header is not a JSON object");
  f.data = bytes.substr(8 + n);
  return f;
}

}  // namespace

void save_checkpoint(const std::string& path, flowgrad::Module<float>& model,
                     const Metadata& metadata) {
  json header = json::object();
  header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  const auto entries = model_tensors(model);
  for (const auto& e : entries) {
    const auto bytes = static_cast<std::uint64_t>(e.tensor->numel()) * sizeof(float);
    header[e.name] = {{"dtype", "F32"},
                      {"shape", dims_of(e.tensor->shape())},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');
  const std::uint64_t n = text.size();

  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  bytes += text;
  for (const auto& e : entries)
    bytes.append(reinterpret_cast<const char*>(e.tensor->data()),
                 static_cast<std::size_t>(e.tensor->numel()) * sizeof(float));
  write_file_atomic(path, bytes);
}

Metadata read_checkpoint_metadata(const std::string& path) {
  const FileContents f = read_file(path);
  Metadata m;
  if (!f.header.contains("__metadata__")) return m;
  const json& meta = f.header["__metadata__"];
  if (!meta.is_object()) fail(path, "__metadata__ is not a JSON object");
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    if (!it.value().is_string())
      fail(path, "__metadata__ value for '" + it.key() + "' is not a string");
    m[it.key()] = it.value().get<std::string>();
  }
  return m;
}

void load_checkpoint(const std::string& path, flowgrad::Module<float>& model) {
  const FileContents f = read_file(path);
  const auto entries = model_tensors(model);
  // Validate everything first, so that a bad file leaves the model as it was.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const auto& e : entries) {
    if (!f.header.contains(e.name))
      fail(path, "tensor '" + e.name + "' is missing (the model needs it)");
    const json& t = f.header[e.name];
    try {
      const std::string dtype = t.at("dtype").get<std::string>();
      if (dtype != "F32")
        fail(path, "tensor '" + e.name + "' has dtype " + dtype + "; only F32 is supported");
      const auto shape = t.at("shape").get<std::vector<Index>>();
      const auto offsets = t.at("data_offsets").get<std::vector<std::uint64_t>>();
      const auto want = dims_of(e.tensor->shape());
      if (shape != want)
        fail(path, "tensor '" + e.name + "' has shape " + dims_str(shape) +
                       " in the file; the model expects " + dims_str(want));
      if (offsets.size() != 2 || offsets[1] < offsets[0] ||
          offsets[1] - offsets[0] != static_cast<std::uint64_t>(e.tensor->numel()) * sizeof(float))
        fail(path, "tensor '" + e.name + "' has data_offsets that disagree with its shape " +
                       dims_str(shape));
      if (offsets[1] > f.data.size())
        fail(path, "truncated: tensor '" + e.name + "' needs bytes up to " +
                       std::to_string(offsets[1]) + " but the data has " +
                       std::to_string(f.data.size()));
      ranges.emplace_back(offsets[0], offsets[1]);
    } catch (const json::exception& ex) {
      fail(path, "tensor '" + e.name + "' has a malformed header entry (" + ex.what() + ")");
    }
  }
  for (auto it = f.header.begin(); it != f.header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    bool known = false;
    for (const auto& e : entries) known = known || e.name == it.key();
    if (!known)
      fail(path, "tensor '" + it.key() +
                     "' is not part of this model (was it saved from another configuration?)");
  }
  for (std::size_t k = 0; k < entries.size(); ++k)
    std::memcpy(entries[k].tensor->data(), f.data.data() + ranges[k].first,
                ranges[k].second - ranges[k].first);
}

}  // namespace train2d
