// Writes the fuzz targets' seed corpora, fuzz/corpus/<target>/, with the library's own writers:
// small models of every layer kind saved by save_flow (and their architecture JSON), safetensors
// files of the shapes a file can hold, training checkpoints, CSVs and IDX files. The corpora are
// checked in; run this again when a layer or a format changes:
//   ./build/fuzz/fuzz_make_corpus fuzz
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "flowgrad/flowgrad.hpp"

namespace fs = std::filesystem;
using namespace flowgrad;

namespace {

fs::path root;

std::string at(const std::string& target, const std::string& name) {
  fs::create_directories(root / "corpus" / target);
  return (root / "corpus" / target / name).string();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  if (!f || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) <= 0 ||
      gzclose(f) != Z_OK)
    throw std::runtime_error("cannot write " + path);
}

// Small versions of every model, so that files stay a few kilobytes and mutations reach them.
template <Scalar T>
std::vector<std::pair<std::string, std::unique_ptr<Composition<T>>>> models() {
  Generator gen(7);
  std::vector<std::pair<std::string, std::unique_ptr<Composition<T>>>> out;
  RealNVPConfig realnvp;
  realnvp.couplings = 2;
  realnvp.coupling.hidden = 4;
  realnvp.coupling.hidden_layers = 1;
  out.emplace_back("realnvp", make_realnvp<T>(realnvp, gen));
  NSFConfig nsf;
  nsf.couplings = 2;
  nsf.coupling.bins = 3;
  nsf.coupling.hidden = 4;
  nsf.coupling.hidden_layers = 1;
  out.emplace_back("nsf", make_nsf<T>(nsf, gen));
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 2;
  maf.layer.made.hidden = 4;
  maf.layer.made.hidden_layers = 1;
  out.emplace_back("maf", make_maf<T>(maf, gen));
  NSFARConfig nsf_ar;
  nsf_ar.layers = 2;
  nsf_ar.layer.bins = 3;
  nsf_ar.layer.hidden = 4;
  nsf_ar.layer.hidden_layers = 1;
  out.emplace_back("nsf_ar", make_nsf_ar<T>(nsf_ar, gen));
  out.emplace_back("planar", make_planar_stack<T>(2, 2, gen));
  out.emplace_back("radial", make_radial_stack<T>(3, 2, gen));
  // The layers no builder uses alone, one of each, with a composition inside the composition.
  auto mixed = std::make_unique<Composition<T>>(3);
  mixed->add(std::make_unique<ActNorm<T>>(3));
  mixed->add(std::make_unique<Permutation<T>>(3, PermutationMode::random, gen));
  mixed->add(std::make_unique<LULinear<T>>(3));
  mixed->add(std::make_unique<BatchNorm<T>>(3));
  auto inner = std::make_unique<Composition<T>>(3);
  inner->add(std::make_unique<Permutation<T>>(3, PermutationMode::reverse, gen));
  inner->add(std::make_unique<Planar<T>>(3, gen));
  mixed->add(std::move(inner));
  out.emplace_back("mixed", std::move(mixed));
  return out;
}

template <Scalar T>
void model_files(const char* type) {
  for (auto& [name, chain] : models<T>()) {
    const std::string arch = architecture_json(chain->spec());
    const std::string stem = name + "-" + type;
    write_text(at("architecture", stem + ".json"), arch);
    DensityFlow<T> density(build_flow<T>(arch));
    save_flow(at("model", stem + "-density.safetensors"), density);
    VariationalFlow<T> q(std::move(chain));
    save_flow(at("model", stem + "-variational.safetensors"), q);
  }
}

void safetensors_files() {
  // The model the safetensors target loads into: a 2-D planar stack of 2 layers.
  Generator gen(3);
  DensityFlow<float> planar(make_planar_stack<float>(2, 2, gen));
  save_module(at("safetensors", "planar.safetensors"), planar, {{"note", "a module"}});
  Adam<float> adam(planar.parameters());
  save_training_checkpoint(at("safetensors", "planar-checkpoint.safetensors"), planar, adam);
  // Every rank a Shape holds, an empty tensor, and float64.
  const TensorF scalar = TensorF::scalar(1.5f);
  const TensorF row(Shape{3}, 2.0f), empty(Shape{0, 4}), cube(Shape{2, 1, 2}, -1.0f),
      four(Shape{1, 2, 1, 2}, 0.25f);
  write_text(at("safetensors", "ranks.safetensors"),
             encode_safetensors<float>(
                 {{"scalar", &scalar}, {"row", &row}, {"empty", &empty}, {"cube", &cube},
                  {"four", &four}},
                 {{"a", "b"}}));
  const TensorD d(Shape{2, 2}, 3.0);
  write_text(at("safetensors", "f64.safetensors"), encode_safetensors<double>({{"d", &d}}, {}));
  write_text(at("safetensors", "nothing.safetensors"), encode_safetensors<float>({}, {}));
}

void csv_files() {
  write_text(at("csv", "header.csv"), "x,y\n0.5,-1.25\n1e-3,2E+2\n-0,+7\n");
  write_text(at("csv", "plain.csv"), "1,2,3\n4,5,6\n");
  write_text(at("csv", "crlf-bom.csv"), "\xEF\xBB\xBF a , b \r\n1\t,2\r\n\r\n3,4\r\n");
  write_text(at("csv", "wide.csv"), "a,b,c,d,e\n1,2,3,4,5\n0.1,0.2,0.3,0.4,0.5\n");
  write_text(at("csv", "doubles.csv"), "p,q\n1e39,-2.5e-300\n3.4028234663852886e38,1e-45\n");
}

std::string be32(std::uint32_t x) {
  return {static_cast<char>(x >> 24), static_cast<char>(x >> 16), static_cast<char>(x >> 8),
          static_cast<char>(x)};
}

void idx_files() {
  std::string images = be32(0x803) + be32(2) + be32(3) + be32(3);
  for (int i = 0; i < 18; ++i) images.push_back(static_cast<char>(i * 14));
  const std::string labels = be32(0x801) + be32(4) + std::string("\x01\x09\x00\x05", 4);
  write_text(at("idx", "images-idx3-ubyte"), images);
  write_text(at("idx", "labels-idx1-ubyte"), labels);
  write_gz(at("idx", "images-idx3-ubyte.gz"), images);
  write_gz(at("idx", "labels-idx1-ubyte.gz"), labels);
  write_text(at("idx", "rank4"), be32(0x804) + be32(1) + be32(1) + be32(2) + be32(1) + "ab");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus FUZZ_DIR\n");
    return 2;
  }
  root = argv[1];
  model_files<float>("f32");
  model_files<double>("f64");
  safetensors_files();
  csv_files();
  idx_files();
  std::printf("wrote the seed corpora under %s/corpus\n", root.string().c_str());
}
