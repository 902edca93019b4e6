// train_images' data path: Fashion-MNIST's IDX files (a small set the test writes), the
// dequantise-and-logit preprocessing and its inverse, bits/dim against a hand computation for a
// model whose log-density is known in closed form, and the program end to end on the small set.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/models.hpp"
#include "image_data.hpp"
#include "temp_files.hpp"

using namespace trainimg;
using flowgrad::testing::read_bytes;
using flowgrad::testing::TempDir;
using flowgrad::testing::write_bytes;

namespace {

std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}

// n images of 4 x 4 pixels (plain IDX under the .gz names: the reader goes by the magic bytes)
// and their labels, written to dir with Fashion-MNIST's file names for `stem` (train or t10k).
void write_set(const std::string& dir, const std::string& stem, int n, int labels = -1) {
  std::string images = be32(0x00000803) + be32(std::uint32_t(n)) + be32(4) + be32(4);
  for (int i = 0; i < n * 16; ++i) images.push_back(char((i * 37) % 256));
  std::string lab = be32(0x00000801) + be32(std::uint32_t(labels < 0 ? n : labels));
  for (int i = 0; i < (labels < 0 ? n : labels); ++i) lab.push_back(char(i % 10));
  write_bytes(dir + "/" + stem + "-images-idx3-ubyte.gz", images);
  write_bytes(dir + "/" + stem + "-labels-idx1-ubyte.gz", lab);
}

int run(const std::string& args) {
  const int status =
      std::system((std::string(TRAIN_IMAGES_PATH) + " " + args + " > /dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("load_fashion_mnist reads images and labels, and names a mismatch") {
  TempDir dir;
  write_set(dir.path.string(), "train", 12);
  const ImageSet s = load_fashion_mnist(dir.path.string(), "train");
  CHECK(s.count == 12);
  CHECK(s.dim() == 16);
  CHECK(s.pixels[17] == std::uint8_t((17 * 37) % 256));
  CHECK(s.labels[11] == 1);
  CHECK(load_fashion_mnist(dir.path.string(), "train", 5).count == 5);
  write_set(dir.path.string(), "t10k", 12, 11);
  try {
    load_fashion_mnist(dir.path.string(), "test");
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/t10k-labels-idx1-ubyte.gz: 11 labels for 12 images") !=
          std::string::npos);
  }
  CHECK_THROWS_AS(load_fashion_mnist(dir.path.string() + "/none", "train"), std::runtime_error);
}

TEST_CASE("preprocess: the logit of dequantised pixels, its Jacobian, and back to the pixels") {
  ImageSet s;
  s.count = 2;
  s.height = 1;
  s.width = 3;
  s.pixels = {0, 128, 255, 7, 200, 33};
  s.labels = {3, 9};
  const double lambda = 0.05;
  flowgrad::Generator gen(3), replay(3);
  TensorF x;
  std::vector<double> jac;
  preprocess(s, {1, 0}, lambda, true, gen, x, &jac);
  REQUIRE(x.shape() == flowgrad::Shape{2, 13});
  // The same computation written out for row 0 (image 1), drawing the noise in the same order.
  double expected_jac = 0;
  for (int i = 0; i < 3; ++i) {
    const double u = (s.pixels[3 + i] + replay.uniform()) / 256;
    const double p = lambda + (1 - 2 * lambda) * u;
    CHECK(x(0, i) == doctest::Approx(std::log(p / (1 - p))).epsilon(1e-6));
    expected_jac += std::log(1 - 2 * lambda) - std::log(p) - std::log(1 - p) - std::log(256.0);
  }
  CHECK(jac[0] == doctest::Approx(expected_jac).epsilon(1e-12));
  for (int k = 0; k < 10; ++k) CHECK(x(0, 3 + k) == (k == 9 ? 1.0f : 0.0f));
  // Dequantisation noise stays inside the pixel's own bin: back to exactly the same pixels.
  TensorF plain;
  preprocess(s, {0, 1}, lambda, false, gen, plain);
  CHECK(to_pixels(plain, 3, lambda) == s.pixels);
}

TEST_CASE("bits/dim of a model whose log-density is known: the identity flow on logit-space data") {
  // With the identity flow (ActNorm at b = 0, logs = 0, marked initialised), log p_x(x) is the
  // standard normal's, so log P(v) is known in closed form for every image.
  ImageSet s;
  s.count = 3;
  s.height = 2;
  s.width = 2;
  s.pixels = {0, 10, 250, 128, 64, 64, 64, 64, 255, 0, 255, 0};
  s.labels = {0, 1, 2};
  const double lambda = 1e-6;
  flowgrad::Generator gen(9);
  TensorF x;
  std::vector<double> jac;
  preprocess(s, {0, 1, 2}, lambda, false, gen, x, &jac);
  auto chain = std::make_unique<flowgrad::Composition<float>>(4);
  auto identity = std::make_unique<flowgrad::ActNorm<float>>(4);
  identity->initialized[0] = 1;
  chain->add(std::move(identity));
  flowgrad::DensityFlow<float> model(std::move(chain));
  const TensorF lp = model.log_prob(x);
  double mean_lp = 0, mean_jac = 0, by_hand = 0;
  for (int r = 0; r < 3; ++r) {
    mean_lp += lp[r] / 3;
    mean_jac += jac[static_cast<std::size_t>(r)] / 3;
    double log_p_v = 0;  // log N(x) + log-Jacobian of v -> x, summed over the 4 pixels
    for (int i = 0; i < 4; ++i) {
      const double xi = x(r, i);
      const double p = 1 / (1 + std::exp(-xi));
      log_p_v += -0.5 * xi * xi - 0.5 * std::log(2 * std::numbers::pi) +
                 std::log((1 - 2 * lambda) / (256 * p * (1 - p)));
    }
    by_hand += -log_p_v / (4 * std::numbers::ln2) / 3;
  }
  CHECK(bits_per_dim(mean_lp, mean_jac, 4) == doctest::Approx(by_hand).epsilon(1e-5));
}

TEST_CASE("train_images end to end on a small set: bits/dim, samples, class-conditional too") {
  TempDir dir;
  write_set(dir.path.string(), "train", 64);
  write_set(dir.path.string(), "t10k", 20);
  for (const std::string extra : {"--model realnvp", "--model maf --conditional", "--model nsf"}) {
    CAPTURE(extra);
    const std::string out = (dir.path / "run").string();
    REQUIRE(run("--data-dir " + dir.path.string() + " " + extra +
                " --epochs 2 --batch 16 --hidden 8 --layers 2 --quiet --out " + out) == 0);
    const auto m = nlohmann::json::parse(read_bytes(out + "/metrics.json"));
    CHECK(std::isfinite(m["test_bits_per_dim"].get<double>()));
    CHECK(m["test_images"] == 20);
    CHECK(!read_bytes(out + "/samples.png").empty());
  }
  CHECK(run("--data-dir " + dir.path.string() + "/none --quiet --out " +
            (dir.path / "x").string()) == 1);
  CHECK(run("--data-dir " + dir.path.string() + " --lambda 0.7 --quiet --out " +
            (dir.path / "x").string()) == 2);
}

#if defined(FLOWGRAD_TEST_MPIEXEC)
// The MPI build: the same program under mpirun trains data-parallel, and rank 0 writes the outputs.
TEST_CASE("mpi: train_images under mpirun -np 2 trains data-parallel and writes its outputs once") {
  TempDir dir;
  write_set(dir.path.string(), "train", 64);
  write_set(dir.path.string(), "t10k", 20);
  const std::string out = (dir.path / "run").string();
  const int status = std::system(
      ("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " FLOWGRAD_TEST_MPIEXEC
       " --oversubscribe -np 2 " +
       std::string(TRAIN_IMAGES_PATH) + " --data-dir " + dir.path.string() +
       " --epochs 2 --batch 16 --hidden 8 --layers 2 --quiet --out " + out + " > " + out +
       ".log 2>&1")
          .c_str());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const auto m = nlohmann::json::parse(read_bytes(out + "/metrics.json"));
  CHECK(std::isfinite(m["test_bits_per_dim"].get<double>()));
  // One report: rank 1 prints nothing.
  const std::string log = read_bytes(out + ".log");
  CHECK(log.find("test:") == log.rfind("test:"));
}
#endif
