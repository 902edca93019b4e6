// Files that claim huge sizes (issue 18): each is refused with a clear error, quickly, and without
// allocating what it claims. Where the build is not sanitized, the load runs in a child process
// whose address space is capped (RLIMIT_AS; AddressSanitizer reserves terabytes of shadow memory,
// so under it the claim is only timed).
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "flowgrad/flowgrad.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
using json = nlohmann::json;
using flowgrad::testing::read_bytes;
using flowgrad::testing::TempDir;
using flowgrad::testing::write_bytes;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

// The process's current virtual size, from /proc/self/status.
std::size_t vm_size_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  std::size_t kb = 0;
  while (in >> key) {
    if (key == "VmSize:") {
      in >> kb;
      return kb << 10;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0;
}

// The message `f` throws (std::exception), run in a child whose address space may grow by at most
// `extra_bytes` (unsanitized builds), within `seconds`.
std::string refusal(const std::function<void()>& f, std::size_t extra_bytes, double seconds) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (!sanitized) {
      const rlim_t cap = vm_size_bytes() + extra_bytes;
      const rlimit limit{cap, cap};
      ::setrlimit(RLIMIT_AS, &limit);
    }
    std::string msg = "(no exception)";
    try {
      f();
    } catch (const std::bad_alloc&) {
      msg = "(std::bad_alloc: over the memory cap)";
    } catch (const std::exception& e) {
      msg = e.what();
    }
    [[maybe_unused]] const auto w = ::write(pipe_fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string msg;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(took < seconds);
  return msg;
}

constexpr std::size_t MiB = std::size_t{1} << 20;

// A safetensors file from a header and data, padded as the writer pads.
std::string safetensors_bytes(const json& header, const std::string& data) {
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';
  std::string out(8, '\0');
  const std::uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  return out + text + data;
}

// A small saved density flow whose architecture is replaced by `arch`.
std::string flow_file_claiming(const TempDir& dir, const std::string& name, const json& arch) {
  Generator gen(0);
  DensityFlow<float> model(make_planar_stack<float>(2, 1, gen));
  Metadata meta = flow_metadata(model);
  meta["flowgrad.architecture"] = arch.dump();
  const std::string path = dir / name;
  save_module(path, model, meta);
  return path;
}

json composition(Index dim, json layers) {
  return {{"kind", "composition"}, {"dim", std::to_string(dim)}, {"layers", std::move(layers)}};
}

}  // namespace

TEST_CASE("bounds: a header length of 2^60 bytes") {
  TempDir dir;
  std::string bytes(8, '\0');
  const std::uint64_t n = std::uint64_t{1} << 60;
  std::memcpy(bytes.data(), &n, 8);
  const std::string path = dir.write("header", bytes + "{}");
  const std::string msg = refusal([&] { SafetensorsFile f(path); }, 64 * MiB, 5);
  CHECK(msg == path +
                   ": not a safetensors file, or truncated: header length 1152921504606846976 "
                   "exceeds the 2 bytes that follow");
}

TEST_CASE("bounds: a tensor of 10^12 elements") {
  TempDir dir;
  const json header = {
      {"w", {{"dtype", "F32"}, {"shape", {1000000, 1000000}}, {"data_offsets", {0, 8}}}}};
  const std::string path = dir.write("tensor", safetensors_bytes(header, std::string(8, '\0')));
  const std::string msg = refusal([&] { SafetensorsFile f(path); }, 64 * MiB, 5);
  CHECK(msg.find(path + ": tensor 'w': data_offsets [0,8] span 8 bytes; shape [1000000, 1000000] "
                        "of F32 needs more than the whole file") == 0);
}

TEST_CASE("bounds: a header nested a million levels deep") {
  TempDir dir;
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  const std::string path = dir.write("deep", safetensors_bytes(json::object(), "") + "");
  std::string bytes(8, '\0');
  const std::uint64_t n = deep.size();
  std::memcpy(bytes.data(), &n, 8);
  write_bytes(path, bytes + deep);
  const std::string msg = refusal([&] { SafetensorsFile f(path); }, 256 * MiB, 10);
  CHECK(msg == path + ": not a safetensors file: header is JSON nested deeper than 3 levels");
}

TEST_CASE("bounds: a model of 10^6 layers") {
  // 10^6 one-dimensional ActNorm layers, 29 MB of JSON: refused while it is read, before any
  // layer is built.
  std::string arch = R"({"kind": "composition", "dim": "1", "layers": [)";
  for (int i = 0; i < 1000000; ++i) arch += R"({"kind": "actnorm", "dim": "1"},)";
  arch.back() = ']';
  arch += '}';
  const std::string msg = refusal([&] { build_flow<float>(arch); }, 1024 * MiB, 30);
  CHECK(msg == "the architecture has more than 100000 layers (at layers.100000)");
  // Nesting does not get around the count: two compositions of 60,000 layers each.
  json half = json::array();
  for (int i = 0; i < 60000; ++i) half.push_back({{"kind", "actnorm"}, {"dim", "1"}});
  const std::string nested = composition(1, {composition(1, half), composition(1, half)}).dump();
  CHECK(refusal([&] { build_flow<float>(nested); }, 1024 * MiB, 30) ==
        "the architecture has more than 100000 layers (at layers.1.layers.39998)");
}

TEST_CASE("bounds: a hidden width of 10^9") {
  const json coupling = {
      {"kind", "affine_coupling"}, {"dim", "2"},           {"mask", "1,0"},
      {"hidden", "1000000000"},    {"hidden_layers", "2"}, {"activation", "relu"}};
  const std::string arch = composition(2, {coupling}).dump();
  CHECK(refusal([&] { build_flow<float>(arch); }, 64 * MiB, 5) ==
        "the affine_coupling layer at layers.0 has setting 'hidden' = '1000000000', not an "
        "integer in 1..65536");
}

TEST_CASE("bounds: widths within the limits, but a model far larger than its file") {
  TempDir dir;
  // 100,000 planar layers of dimension 65536 would be 52 GB of parameters; the file holds 20
  // bytes of tensors, so the rebuild may allocate 16 MiB and 80 bytes. Each layer takes about
  // 1 MiB (its 2 x 65536 + 1 parameters, and as much again in temporaries while it initialises
  // them), so the 16th is refused.
  json layers = json::array();
  for (int i = 0; i < 100000; ++i) layers.push_back({{"kind", "planar"}, {"dim", "65536"}});
  const std::string path = flow_file_claiming(dir, "wide", composition(65536, std::move(layers)));
  std::string msg = refusal([&] { load_density_flow<float>(path); }, 512 * MiB, 30);
  CHECK(msg.find(path + ": the planar layer at layers.15 makes the model larger than allowed "
                        "(tensor memory over its budget") == 0);
  // One coupling of width 65536 asks for 16 GiB in its first weight: refused before it is made.
  const json wide_coupling = {{"kind", "affine_coupling"},
                              {"dim", "65536"},
                              {"mask",
                               [] {
                                 std::string m;
                                 for (int i = 0; i < 65536; ++i)
                                   m += i % 2 ? ",0" : (i ? ",1" : "1");
                                 return m;
                               }()},
                              {"hidden", "65536"},
                              {"hidden_layers", "64"},
                              {"activation", "relu"}};
  const std::string path2 =
      flow_file_claiming(dir, "coupling", composition(65536, {wide_coupling}));
  msg = refusal([&] { load_density_flow<float>(path2); }, 512 * MiB, 10);
  CHECK(msg.find(path2 + ": the affine_coupling layer at layers.0 makes the model larger than "
                         "allowed") == 0);
  // And build_flow on its own, with a budget of the caller's.
  msg = refusal([&] { build_flow<float>(composition(65536, {wide_coupling}).dump(), 64 * MiB); },
                512 * MiB, 10);
  CHECK(msg.find("the affine_coupling layer at layers.0 makes the model larger than allowed") == 0);
}

// The budget must admit every honest file, including one with no optimizer state beside the
// parameters: a MADE keeps each weight's value, gradient and mask, and a layer initialises its
// weights through temporaries as large, so a model may take four times its file's tensor data.
// Each model here is well past the budget's fixed 16 MiB allowance.
TEST_CASE("bounds: large models saved without optimizer state load back: MAF, RealNVP, NSF") {
  TempDir dir;
  Generator gen(77);
  MAFConfig maf;
  maf.dim = 64;
  maf.layers = 5;
  maf.layer.made.hidden = 1024;
  RealNVPConfig nvp;
  nvp.dim = 64;
  nvp.couplings = 4;
  nvp.coupling.hidden = 1024;
  NSFConfig nsf;
  nsf.dim = 64;
  nsf.couplings = 3;
  nsf.coupling.hidden = 1024;
  std::vector<std::pair<std::string, std::unique_ptr<DensityFlow<float>>>> models;
  models.emplace_back("maf", std::make_unique<DensityFlow<float>>(make_maf<float>(maf, gen)));
  models.emplace_back("realnvp",
                      std::make_unique<DensityFlow<float>>(make_realnvp<float>(nvp, gen)));
  models.emplace_back("nsf", std::make_unique<DensityFlow<float>>(make_nsf<float>(nsf, gen)));
  const Tensor<float> x = gen.normal<float>(Shape{8, 64});
  for (auto& [name, model] : models) {
    INFO(name);
    const std::string path = dir / (name + ".safetensors");
    save_flow(path, *model);
    CHECK(std::filesystem::file_size(path) > (std::uintmax_t{16} << 20));
    std::unique_ptr<DensityFlow<float>> loaded;
    REQUIRE_NOTHROW(loaded = load_density_flow<float>(path));
    const Tensor<float> a = model->log_prob(x), b = loaded->log_prob(x);
    for (Index i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
  }
}

TEST_CASE("bounds: compositions nested 16 deep") {
  json arch = composition(2, {{{"kind", "planar"}, {"dim", "2"}}});
  for (int i = 0; i < 16; ++i) arch = composition(2, {arch});
  CHECK(refusal([&] { build_flow<float>(arch.dump()); }, 64 * MiB, 5) ==
        "the architecture is JSON nested deeper than 32 levels");
  json ok = composition(2, {{{"kind", "planar"}, {"dim", "2"}}});
  for (int i = 0; i < 14; ++i) ok = composition(2, {ok});
  CHECK(build_flow<float>(ok.dump())->dim() == 2);
}

TEST_CASE("an empty composition is refused when it is read, not when the model is first used") {
  CHECK_THROWS_WITH_AS(build_flow<float>(composition(2, json::array()).dump()),
                       "the composition layer at the top level has no layers",
                       std::invalid_argument);
  const json inner = composition(2, json::array());
  CHECK_THROWS_WITH_AS(
      build_flow<float>(composition(2, {{{"kind", "planar"}, {"dim", "2"}}, inner}).dump()),
      "the composition layer at layers.1 has no layers", std::invalid_argument);
}

TEST_CASE("a permutation whose order is not one is refused when the file is loaded") {
  TempDir dir;
  Generator gen(0);
  auto chain = std::make_unique<Composition<float>>(3);
  chain->add(std::make_unique<Permutation<float>>(3, PermutationMode::random, gen));
  chain->add(std::make_unique<Planar<float>>(3, gen));
  DensityFlow<float> model(std::move(chain));
  const std::string path = dir / "perm.safetensors";
  save_flow(path, model);
  // The order [a, b, c] in the file's data: its first entry becomes 1.5.
  std::string bytes = read_bytes(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  const auto begin = header["layers.0.order"]["data_offsets"][0].get<std::size_t>();
  const float bad = 1.5f;
  std::memcpy(bytes.data() + 8 + n + begin, &bad, 4);
  write_bytes(path, bytes);
  CHECK_THROWS_WITH_AS(load_density_flow<float>(path),
                       (path + ": layers.0 (permutation): order is not a permutation of 0..2 "
                               "(entry 0 is 1.500000)")
                           .c_str(),
                       std::runtime_error);
}

TEST_CASE("a spline's tail bound beyond float32 is refused when read, for either precision") {
  // 4.2e119 is a double, but T(tail_bound) is inf in a float model (found by fuzz_architecture).
  const json spline = {
      {"kind", "spline_coupling"}, {"dim", "2"},    {"mask", "1,0"},        {"bins", "8"},
      {"tail_bound", "4.2e119"},   {"hidden", "4"}, {"hidden_layers", "1"}, {"activation", "relu"}};
  const std::string arch = composition(2, {spline}).dump();
  const std::string msg =
      "the spline_coupling layer at layers.0: spline_coupling: tail_bound must be positive and "
      "finite in float32";
  CHECK_THROWS_WITH_AS(build_flow<float>(arch), msg.c_str(), std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_flow<double>(arch), msg.c_str(), std::invalid_argument);
}
