// Persistence: safetensors files, modules and optimizer state in them, and whole flows rebuilt
// from a file alone.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "flowgrad/flowgrad.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
namespace fs = std::filesystem;
using json = nlohmann::json;
using flowgrad::testing::read_bytes;
using flowgrad::testing::TempDir;
using flowgrad::testing::write_bytes;

namespace {

// A file's header and data, to be edited and written back.
struct Parts {
  json header;
  std::string data;
};
Parts split(const std::string& bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}
std::string join(const Parts& p) {
  std::string text = p.header.dump();
  while (text.size() % 8) text += ' ';
  std::string out(8, '\0');
  const std::uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  return out + text + p.data;
}

template <Scalar T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0;
}

// Copies of every parameter and buffer, by name.
template <Scalar T>
std::vector<std::pair<std::string, Tensor<T>>> snapshot(Module<T>& m) {
  std::vector<std::pair<std::string, Tensor<T>>> out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.name, p.param->value);
  for (auto& b : m.named_buffers()) out.emplace_back(b.name, *b.tensor);
  return out;
}
template <Scalar T>
bool same_state(const std::vector<std::pair<std::string, Tensor<T>>>& a,
                const std::vector<std::pair<std::string, Tensor<T>>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k)
    if (a[k].first != b[k].first || !same_bits(a[k].second, b[k].second)) return false;
  return true;
}
template <Scalar T>
bool same_adam(const Adam<T>& a, const Adam<T>& b) {
  const AdamState<T> x = a.state(), y = b.state();
  if (x.steps != y.steps || x.options.lr != y.options.lr || x.exp_avg.size() != y.exp_avg.size())
    return false;
  for (std::size_t k = 0; k < x.exp_avg.size(); ++k)
    if (!same_bits(x.exp_avg[k], y.exp_avg[k]) || !same_bits(x.exp_avg_sq[k], y.exp_avg_sq[k]))
      return false;
  return true;
}

template <Scalar T>
std::unique_ptr<DensityFlow<T>> small_realnvp(std::uint64_t seed, int couplings = 3) {
  RealNVPConfig c;
  c.couplings = couplings;
  c.coupling.hidden = 8;
  Generator gen(seed);
  return std::make_unique<DensityFlow<T>>(make_realnvp<T>(c, gen));
}

// A few Adam steps on a fixed batch sequence, so that parameters, running statistics and moments
// all move away from their initial values.
template <Scalar T>
void train_steps(DensityFlow<T>& model, Adam<T>& adam, Generator& data, int steps) {
  Tape<T> tape;
  for (int i = 0; i < steps; ++i) {
    tape.reset();
    adam.zero_grad();
    const Var<T> loss =
        -mean(model.log_prob(tape.constant(data.normal<T>(Shape{32, 2}, T(0.5), T(1.5)))));
    tape.backward(loss);
    adam.step();
  }
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no std::runtime_error)";
}

}  // namespace

TEST_CASE_TEMPLATE("a module round trips bit for bit, running statistics included", T, float,
                   double) {
  TempDir dir;
  auto model = small_realnvp<T>(1);
  Adam<T> adam(model->parameters());
  Generator data(2);
  train_steps(*model, adam, data, 3);
  const std::string path = dir / "m.safetensors";
  save_module(path, *model, {{"note", "hello"}});
  auto loaded = small_realnvp<T>(99);
  CHECK_FALSE(same_state(snapshot(*model), snapshot(*loaded)));
  const Metadata meta = load_module(path, *loaded);
  CHECK(meta.at("note") == "hello");
  CHECK(read_metadata(path) == meta);
  CHECK(same_state(snapshot(*model), snapshot(*loaded)));
  // The running statistics moved in training and came back too.
  CHECK(loaded->named_buffers().size() == 6);
  auto& bn = dynamic_cast<BatchNorm<T>&>(loaded->transform()[1]);
  CHECK(bn.num_batches_tracked[0] == T(3));
}

TEST_CASE_TEMPLATE("the file is safetensors: length prefix, aligned JSON header, raw data", T,
                   float, double) {
  TempDir dir;
  Generator gen(0);
  DensityFlow<T> model(make_planar_stack<T>(3, 2, gen));
  const std::string path = dir / "p.safetensors";
  save_module(path, model, {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);
  const std::string text = bytes.substr(8, n);
  CHECK(text.find_last_not_of(' ') + 1 >= text.size() - 7);
  const json header = json::parse(text);
  const char* dtype = std::is_same_v<T, float> ? "F32" : "F64";
  CHECK(header["__metadata__"] == json{{"k", "v"}});
  CHECK(header.size() == 1 + 6);  // w, u, b of two planar layers
  std::uint64_t total = 0;
  for (const auto& p : model.named_parameters()) {
    const json& e = header.at(p.name);
    CHECK(e["dtype"] == dtype);
    CHECK(e["shape"] == json(dims_of(p.param->value.shape())));
    const auto b = e["data_offsets"][0].get<std::uint64_t>();
    const auto en = e["data_offsets"][1].get<std::uint64_t>();
    CHECK(en - b == p.param->value.numel() * sizeof(T));
    CHECK(std::memcmp(bytes.data() + 8 + n + b, p.param->value.data(), en - b) == 0);
    total += en - b;
  }
  CHECK(bytes.size() == 8 + n + total);
}

TEST_CASE("malformed files are rejected with the file and the problem, the model untouched") {
  TempDir dir;
  Generator gen(0);
  DensityFlow<float> source(make_planar_stack<float>(2, 2, gen));
  const std::string good = dir / "good.safetensors";
  save_module(good, source);
  const std::string bytes = read_bytes(good);
  DensityFlow<float> target(make_planar_stack<float>(2, 2, gen));
  const auto before = snapshot(target);

  auto expect = [&](const std::string& name, const std::string& file_bytes,
                    const std::string& what) {
    const std::string path = dir / name;
    write_bytes(path, file_bytes);
    const std::string msg = message_of([&] { load_module(path, target); });
    INFO(name << ": " << msg);
    CHECK(msg.rfind(path + ": ", 0) == 0);
    CHECK(msg.find(what) != std::string::npos);
    CHECK(same_state(before, snapshot(target)));
  };
  auto edited = [&](const std::function<void(Parts&)>& edit) {
    Parts p = split(bytes);
    edit(p);
    return join(p);
  };

  std::string garbled = bytes;
  garbled[8] = '#';
  expect("garbled", garbled, "not valid JSON");
  expect("text", "hello, this is not a model at all, just some text", "not a safetensors file");
  expect("array", join({json::array({1, 2}), ""}), "not a JSON object");
  expect("dtype", edited([](Parts& p) { p.header["layers.0.w"]["dtype"] = "F16"; }),
         "tensor 'layers.0.w' has dtype F16");
  expect("shape", edited([](Parts& p) {
           p.header["layers.0.w"]["shape"] = {1, 2};
         }),
         "tensor 'layers.0.w' has shape [1, 2] in the file; the model expects [2]");
  expect("negative", edited([](Parts& p) { p.header["layers.0.w"]["shape"] = {-2}; }),
         "non-negative");
  expect("offsets", edited([](Parts& p) {
           p.header["layers.0.b"]["data_offsets"] = {0, 3};
         }),
         "tensor 'layers.0.b': data_offsets [0,3] span 3 bytes");
  expect("backwards", edited([](Parts& p) {
           p.header["layers.0.b"]["data_offsets"] = {4, 0};
         }),
         "end before they begin");
  expect("beyond", edited([](Parts& p) {
           p.header["layers.1.b"]["data_offsets"] = {40, 44};
         }),
         "truncated: tensor 'layers.1.b' needs bytes up to 44 but the data has 40");
  expect("overlap", edited([](Parts& p) {
           p.header["layers.0.u"]["data_offsets"] = p.header["layers.0.w"]["data_offsets"];
         }),
         "overlap");
  expect("trailing", bytes + "junk", "4 bytes of trailing data");
  expect("hole", edited([](Parts& p) { p.header.erase("layers.0.u"); }),
         "bytes 8..16 of the data belong to no tensor");
  expect("metadata", edited([](Parts& p) {
           p.header["__metadata__"] = {{"k", 3}};
         }),
         "__metadata__ value for 'k' is not a string");
  expect("entry", edited([](Parts& p) { p.header["layers.0.b"].erase("dtype"); }),
         "has no \"dtype\"");
  {
    Parts p = split(bytes);
    p.header["layers.0.w"]["dtype"] = "F64";
    p.header["layers.0.w"]["data_offsets"] = {0, 16};
    // Re-tile the rest after the wider tensor.
    std::uint64_t off = 16;
    std::string data = p.data.substr(0, 8) + std::string(8, '\0');
    for (const char* name :
         {"layers.0.u", "layers.0.b", "layers.1.w", "layers.1.u", "layers.1.b"}) {
      const auto b = p.header[name]["data_offsets"][0].get<std::uint64_t>();
      const auto e = p.header[name]["data_offsets"][1].get<std::uint64_t>();
      data += p.data.substr(b, e - b);
      p.header[name]["data_offsets"] = {off, off + e - b};
      off += e - b;
    }
    p.data = data;
    expect("wrong_dtype", join(p), "tensor 'layers.0.w' is F64 (double); this is a float model");
  }
  // Every truncation of a valid file.
  for (std::size_t len = 0; len < bytes.size(); ++len) expect("cut", bytes.substr(0, len), "");
  CHECK(message_of([&] { load_module(dir / "absent", target); }).find("cannot open") !=
        std::string::npos);
}

TEST_CASE("missing, extra and mismatched tensors, and the wrong scalar type") {
  TempDir dir;
  Generator gen(0);
  DensityFlow<float> one(make_planar_stack<float>(2, 1, gen));
  DensityFlow<float> two(make_planar_stack<float>(2, 2, gen));
  DensityFlow<float> wide(make_planar_stack<float>(3, 2, gen));
  DensityFlow<double> twod(make_planar_stack<double>(2, 2, gen));
  save_module(dir / "one", one);
  save_module(dir / "two", two);
  save_module(dir / "twod", twod);
  const auto two_before = snapshot(two), one_before = snapshot(one);
  CHECK(message_of([&] { load_module(dir / "one", two); }).find("tensor 'layers.1.w' is missing") !=
        std::string::npos);
  CHECK(message_of([&] {
          load_module(dir / "two", one);
        }).find("tensor 'layers.1.b' is not part of this model") != std::string::npos);
  CHECK(message_of([&] { load_module(dir / "two", wide); }).find("the model expects [3]") !=
        std::string::npos);
  CHECK(message_of([&] {
          load_module(dir / "twod", two);
        }).find("is F64 (double); this is a float model, which needs F32") != std::string::npos);
  CHECK(same_state(two_before, snapshot(two)));
  CHECK(same_state(one_before, snapshot(one)));
}

TEST_CASE("a failed write leaves the old file in place and no temporary file") {
  TempDir dir;
  Generator gen(0);
  DensityFlow<float> model(make_planar_stack<float>(2, 64, gen));
  // No such directory.
  CHECK(message_of([&] {
          save_module(dir / "no/such/dir/m.safetensors", model);
        }).find("cannot write " + dir / "no/such/dir/m.safetensors") != std::string::npos);
  CHECK(dir.count() == 0);
  // A write that fails half-way (the file size limit), with an old file beside it.
  const std::string path = dir / "m.safetensors";
  write_file_atomic(path, "old contents");
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit small = old;
  small.rlim_cur = 256;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string msg = message_of([&] { save_module(path, model); });
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, SIG_DFL);
  CHECK(msg.find("cannot write " + path + ": ") != std::string::npos);
  CHECK(read_bytes(path) == "old contents");
  CHECK(dir.count() == 1);
  // A directory that cannot be written (root may write anyway).
  if (::geteuid() != 0) {
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
    CHECK(message_of([&] { save_module(path, model); }).find("cannot write " + path) !=
          std::string::npos);
    fs::permissions(dir.path, fs::perms::owner_all);
    CHECK(read_bytes(path) == "old contents");
    CHECK(dir.count() == 1);
  }
}

TEST_CASE_TEMPLATE("a training checkpoint resumes Adam exactly", T, float, double) {
  TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  auto model = small_realnvp<T>(1);
  Adam<T> adam(model->parameters(), {.lr = 3e-3, .beta2 = 0.99, .weight_decay = 1e-4});
  Generator data(5);
  train_steps(*model, adam, data, 4);
  save_training_checkpoint(path, *model, adam, {{"run", "a"}});
  Generator data_copy = data;
  train_steps(*model, adam, data, 2);

  auto resumed = small_realnvp<T>(77);
  Adam<T> adam2(resumed->parameters());
  const Metadata meta = load_training_checkpoint(path, *resumed, adam2);
  CHECK(meta.at("run") == "a");
  CHECK(meta.at("optimizer.step") == "4");
  CHECK(adam2.steps() == 4);
  CHECK(adam2.state().options.beta2 == 0.99);
  train_steps(*resumed, adam2, data_copy, 2);
  CHECK(same_state(snapshot(*model), snapshot(*resumed)));
  CHECK(same_adam(adam, adam2));

  // The optimizer's tensors are named after the parameters; a plain load ignores them.
  const json header = split(read_bytes(path)).header;
  CHECK(header.contains("optimizer.exp_avg.layers.0.s.0.weight"));
  CHECK(header.contains("optimizer.exp_avg_sq.layers.1.log_gamma"));
  auto plain = small_realnvp<T>(3);
  load_module(path, *plain);
}

TEST_CASE("a bad training checkpoint changes neither the model nor the optimizer") {
  TempDir dir;
  auto model = small_realnvp<float>(1);
  Adam<float> adam(model->parameters());
  Generator data(5);
  train_steps(*model, adam, data, 2);
  const std::string good = dir / "good";
  save_training_checkpoint(good, *model, adam);

  auto target = small_realnvp<float>(2);
  Adam<float> target_adam(target->parameters());
  train_steps(*target, target_adam, data, 1);
  const auto before = snapshot(*target);
  const Adam<float> adam_before = target_adam;
  auto expect = [&](const std::string& path, const std::string& what) {
    const std::string msg =
        message_of([&] { load_training_checkpoint(path, *target, target_adam); });
    INFO(msg);
    CHECK(msg.find(what) != std::string::npos);
    CHECK(same_state(before, snapshot(*target)));
    CHECK(same_adam(adam_before, target_adam));
  };
  // A plain model file: no moments.
  save_module(dir / "plain", *model);
  expect(dir / "plain", "tensor 'optimizer.exp_avg.layers.0.s.0.weight' is missing");
  // Moments present, step count missing or bad.
  Parts p = split(read_bytes(good));
  p.header["__metadata__"].erase("optimizer.step");
  write_bytes(dir / "nostep", join(p));
  expect(dir / "nostep", "metadata has no 'optimizer.step'");
  p.header["__metadata__"]["optimizer.step"] = "-3";
  write_bytes(dir / "badstep", join(p));
  expect(dir / "badstep", "not a step count");
  p.header["__metadata__"]["optimizer.step"] = "2";
  p.header["__metadata__"]["optimizer.beta1"] = "1.5";
  write_bytes(dir / "badbeta", join(p));
  expect(dir / "badbeta", "optimizer state: Adam: need");
  // An optimizer over other parameters.
  Adam<float> partial({target->parameters()[0]});
  CHECK_THROWS_AS(save_training_checkpoint(dir / "x", *target, partial), std::invalid_argument);
  CHECK_THROWS_AS(load_training_checkpoint(good, *target, partial), std::invalid_argument);
  CHECK(same_state(before, snapshot(*target)));
}

// ---- whole flows ----

namespace {

template <Scalar T>
std::unique_ptr<Composition<T>> mixed_flow(Generator& gen) {
  auto flow = std::make_unique<Composition<T>>(3);
  flow->add(std::make_unique<Planar<T>>(3, gen));
  flow->add(std::make_unique<AffineCoupling<T>>(std::vector<int>{1, 0, 1},
                                                CouplingConfig{8, 1, Activation::tanh}, gen));
  flow->add(std::make_unique<BatchNorm<T>>(3, 0.05, 1e-4));
  flow->add(std::make_unique<Radial<T>>(3, gen));
  flow->add(std::make_unique<ActNorm<T>>(3));
  flow->add(std::make_unique<Permutation<T>>(3, PermutationMode::random, gen));
  flow->add(std::make_unique<LULinear<T>>(3));
  auto inner = std::make_unique<Composition<T>>(3);
  inner->add(std::make_unique<Planar<T>>(3, gen));
  inner->add(std::make_unique<AffineCoupling<T>>(std::vector<int>{0, 1, 1},
                                                 CouplingConfig{4, 3, Activation::softplus}, gen));
  inner->add(std::make_unique<BatchNorm<T>>(3));
  inner->add(std::make_unique<Permutation<T>>(3, PermutationMode::reverse, gen));
  flow->add(std::move(inner));
  return flow;
}

template <Scalar T>
std::vector<std::pair<std::string, std::unique_ptr<Composition<T>>>> every_builder(Generator& g) {
  std::vector<std::pair<std::string, std::unique_ptr<Composition<T>>>> out;
  const Activation acts[] = {Activation::relu, Activation::tanh, Activation::leaky_relu};
  int k = 0;
  for (Index d : {2, 3, 5})
    for (bool bn : {true, false}) {
      RealNVPConfig c;
      c.dim = d;
      c.couplings = 2 + k % 3;
      c.coupling = {4 + 4 * (k % 2), 1 + k % 3, acts[k % 3]};
      c.batch_norm = bn;
      out.emplace_back("realnvp d=" + std::to_string(d) + (bn ? " bn" : ""), make_realnvp<T>(c, g));
      ++k;
    }
  for (Index d : {2, 3, 5}) {
    out.emplace_back("planar d=" + std::to_string(d), make_planar_stack<T>(d, 3, g));
    out.emplace_back("radial d=" + std::to_string(d), make_radial_stack<T>(d, 2, g));
  }
  out.emplace_back("mixed, nested", mixed_flow<T>(g));
  return out;
}

template <Scalar T>
std::vector<std::pair<std::string, std::vector<Index>>> layout(Module<T>& m) {
  std::vector<std::pair<std::string, std::vector<Index>>> out;
  for (auto& p : m.named_parameters()) out.emplace_back(p.name, dims_of(p.param->value.shape()));
  for (auto& b : m.named_buffers()) out.emplace_back(b.name, dims_of(b.tensor->shape()));
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("every builder's flow comes back from the file alone", T, float, double) {
  TempDir dir;
  Generator gen(11);
  for (auto& [name, chain] : every_builder<T>(gen)) {
    INFO(name);
    const Index d = chain->dim();
    const std::string arch = architecture_json(chain->spec());
    // Density: eval mode, with batch-norm statistics from data.
    DensityFlow<T> density(std::move(chain));
    density.set_batch_norm_statistics(gen.normal<T>(Shape{64, d}));
    const std::string path = dir / "density.safetensors";
    save_flow(path, density, {{"extra", "kept"}});
    auto loaded = load_density_flow<T>(path);
    CHECK(loaded->training());
    CHECK(layout(*loaded) == layout(density));
    CHECK(same_state(snapshot(density), snapshot(*loaded)));
    CHECK(architecture_json(loaded->transform().spec()) == arch);
    const Metadata meta = read_metadata(path);
    CHECK(meta.at("extra") == "kept");
    CHECK(meta.at("flowgrad.model") == "density");
    CHECK(meta.at("flowgrad.architecture") == arch);
    CHECK(meta.at("flowgrad.dtype") == (std::is_same_v<T, float> ? "float32" : "float64"));
    density.eval();
    loaded->eval();
    const Tensor<T> x = gen.normal<T>(Shape{16, d});
    CHECK(same_bits(density.log_prob(x), loaded->log_prob(x)));

    // Variational: training mode on both sides, the same base samples.
    Generator init(3);
    VariationalFlow<T> q(build_flow<T>(arch));
    for (auto& p : q.named_parameters())
      p.param->value = init.normal<T>(p.param->value.shape(), T(0), T(0.3));
    const std::string vpath = dir / "q.safetensors";
    save_flow(vpath, q);
    auto q2 = load_variational_flow<T>(vpath);
    CHECK(same_state(snapshot(q), snapshot(*q2)));
    Tape<T> t1, t2;
    Generator s1(9), s2(9);
    const auto a = q.sample_and_log_prob(t1, 32, s1);
    const auto b = q2->sample_and_log_prob(t2, 32, s2);
    CHECK(same_bits(a.x.value(), b.x.value()));
    CHECK(same_bits(a.log_q.value(), b.log_q.value()));
  }
}

TEST_CASE("loading a flow names the file and what is wrong with it") {
  TempDir dir;
  Generator gen(0);
  DensityFlow<float> density(make_planar_stack<float>(2, 4, gen));
  VariationalFlow<float> q(make_planar_stack<float>(2, 4, gen));
  DensityFlow<double> dd(make_planar_stack<double>(2, 4, gen));
  save_flow(dir / "density", density);
  save_flow(dir / "q", q);
  save_flow(dir / "double", dd);
  save_module(dir / "plain", density);
  auto msg = [](const std::function<void()>& f) { return message_of(f); };
  CHECK(msg([&] { load_variational_flow<float>(dir / "density"); }) ==
        dir / "density" + ": holds a density flow; load it with load_density_flow");
  CHECK(msg([&] { load_density_flow<float>(dir / "q"); }) ==
        dir / "q" + ": holds a variational flow; load it with load_variational_flow");
  CHECK(msg([&] {
          load_density_flow<float>(dir / "double");
        }).find(dir / "double" + ": holds a float64 flow; this call loads float32") == 0);
  CHECK(msg([&] {
          load_density_flow<float>(dir / "plain");
        }).find(dir / "plain" + ": metadata has no 'flowgrad.architecture'") == 0);

  // Architectures edited by hand.
  const Metadata good = read_metadata(dir / "density");
  auto with_arch = [&](const std::string& name, const std::string& arch) {
    Metadata m = good;
    m["flowgrad.architecture"] = arch;
    save_module(dir / name, density, m);
    return msg([&] { load_density_flow<float>(dir / name); });
  };
  json arch = json::parse(good.at("flowgrad.architecture"));
  json foo = arch;
  foo["layers"][3]["kind"] = "foo";
  CHECK(with_arch("foo", foo.dump()) == dir / "foo" + ": unknown layer kind 'foo' at layers.3");
  json nested = arch;
  nested["layers"][2] = {{"kind", "composition"}, {"dim", "2"}, {"layers", {{{"kind", "bar"}}}}};
  CHECK(with_arch("nested", nested.dump()) ==
        dir / "nested" + ": unknown layer kind 'bar' at layers.2.layers.0");
  json bad_dim = arch;
  bad_dim["layers"][1]["dim"] = "two";
  CHECK(with_arch("bad_dim", bad_dim.dump()) ==
        dir / "bad_dim" +
            ": the planar layer at layers.1 has setting 'dim' = 'two', not an integer in 1..65536");
  json wrong_dim = arch;
  wrong_dim["layers"][1]["dim"] = "3";
  CHECK(
      with_arch("wrong_dim", wrong_dim.dump()).find("has dimension 3 in a chain of dimension 2") !=
      std::string::npos);
  json extra = arch;
  extra["layers"][0]["hidden"] = "8";
  CHECK(with_arch("extra", extra.dump()).find("has a setting 'hidden' that planar does not take") !=
        std::string::npos);
  json number = arch;
  number["layers"][0]["dim"] = 2;
  CHECK(with_arch("number", number.dump()).find("setting 'dim' is 2, not a string") !=
        std::string::npos);
  CHECK(with_arch("json", "{not json").find(": the architecture is not valid JSON") !=
        std::string::npos);
  CHECK(with_arch("top", R"({"kind": "planar", "dim": "2"})")
            .find(": the architecture's top level is a 'planar', not a composition") !=
        std::string::npos);
  // The architecture builds, but the tensors are another model's.
  json fewer = arch;
  fewer["layers"].erase(3);
  CHECK(with_arch("fewer", fewer.dump()).find("tensor 'layers.3.b' is not part of this model") !=
        std::string::npos);

  // Bad settings of the other layers, checked by build_flow itself.
  const std::string coupling =
      R"({"kind": "composition", "dim": "2", "layers": [{"kind": "affine_coupling", "dim": "2",)";
  CHECK_THROWS_WITH_AS(build_flow<float>(coupling + R"("mask": "1,1", "hidden": "8",
      "hidden_layers": "2", "activation": "relu"}]})"),
                       "the affine_coupling layer at layers.0: affine_coupling: the mask must fix "
                       "some columns and change others",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_flow<float>(coupling + R"("mask": "1,0", "hidden": "8",
      "hidden_layers": "2", "activation": "swish"}]})"),
                       doctest::Contains("at layers.0 has setting 'activation' = 'swish'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(build_flow<float>(coupling + R"("mask": "1,0,1", "hidden": "8",
      "hidden_layers": "2", "activation": "relu"}]})"),
                       doctest::Contains("has setting 'mask' = '1,0,1', not 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      build_flow<float>(
          R"({"kind": "composition", "dim": "2", "layers": [{"kind": "batch_norm", "dim": "2", "momentum": "0", "eps": "1e-5"}]})"),
      doctest::Contains("at layers.0: batch_norm: needs momentum in (0, 1]"),
      std::invalid_argument);
}

namespace {
// A layer of a user's own, without spec().
class Shift : public Bijector<float> {
 public:
  explicit Shift(Index d) : Bijector<float>(d) {}
  std::string kind() const override { return "shift"; }
  void named_parameters(const std::string&, std::vector<NamedParameter<float>>&) override {}
  using Module<float>::named_parameters;

 protected:
  FlowResult<float> forward_impl(const Var<float>& x, const Var<float>&) override {
    return {x + 1.f, sum(x, 1) * 0.f};
  }
  FlowResult<float> inverse_impl(const Var<float>& y, const Var<float>&) override {
    return {y - 1.f, sum(y, 1) * 0.f};
  }
};
}  // namespace

TEST_CASE("a layer without spec() cannot be saved as a flow, but as a module") {
  TempDir dir;
  Generator gen(0);
  auto chain = make_planar_stack<float>(2, 1, gen);
  chain->add(std::make_unique<Shift>(2));
  DensityFlow<float> model(std::move(chain));
  CHECK_THROWS_WITH_AS(save_flow(dir / "f", model),
                       doctest::Contains("layers.1 (shift): this layer has no spec()"),
                       std::logic_error);
  CHECK(dir.count() == 0);
  save_module(dir / "m", model);
  load_module(dir / "m", model);
}
