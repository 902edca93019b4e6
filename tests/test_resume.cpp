// Exact resume (flowgrad/flows/fit_checkpoint.hpp): a run stopped at some step, "killed" after a
// later step without saving, and continued from its last checkpoint in a fresh trainer over a model
// rebuilt from the file alone, ends bit for bit where the uninterrupted run ends.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "flowgrad/flows/fit_checkpoint.hpp"
#include "flowgrad/flows/registry.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
namespace fs = std::filesystem;
using flowgrad::testing::TempDir;

namespace {

struct ThreadsGuard {
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(1); }
};

TensorF ring_data(Index n, std::uint64_t seed) {
  Generator gen(seed);
  TensorF t(Shape{n, 2});
  for (Index i = 0; i < n; ++i) {
    const double a = 6.283185307179586 * gen.uniform(), r = 2 + 0.2 * gen.normal();
    t(i, 0) = static_cast<float>(r * std::cos(a));
    t(i, 1) = static_cast<float>(r * std::sin(a));
  }
  return t;
}

std::unique_ptr<DensityFlow<float>> realnvp(Index hidden) {
  Generator gen(3);
  RealNVPConfig c;
  c.couplings = 4;
  c.coupling.hidden = hidden;
  return std::make_unique<DensityFlow<float>>(make_realnvp<float>(c, gen));
}

// Every parameter, buffer and Adam moment, and the step counts: what must match bit for bit.
std::vector<float> everything(Trainer<float>& t) {
  std::vector<float> v;
  for (const auto& p : t.module().named_parameters())
    v.insert(v.end(), p.param->value.data(), p.param->value.data() + p.param->value.numel());
  for (const auto& b : t.module().named_buffers())
    v.insert(v.end(), b.tensor->data(), b.tensor->data() + b.tensor->numel());
  const AdamState<float> s = t.optimizer().state();
  for (const auto* moments : {&s.exp_avg, &s.exp_avg_sq})
    for (const auto& m : *moments) v.insert(v.end(), m.data(), m.data() + m.numel());
  v.push_back(static_cast<float>(s.steps));
  v.push_back(static_cast<float>(t.step()));
  return v;
}

// Runs `make_trainer` to `last` uninterrupted, and again with a checkpoint at `saved_at`, a few
// more steps after it that are lost, and a resume from the checkpoint in fresh objects; the two
// ends and the losses of the steps after the checkpoint must be identical.
template <class MakeModel, class MakeTrainer>
void check_resume(const std::string& ckpt, long saved_at, long lost_until, long last,
                  MakeModel make_model, MakeTrainer make_trainer) {
  auto model_a = make_model();
  auto a = make_trainer(*model_a);
  const FitReport ra = a->run_to(last);

  {
    auto model_b = make_model();
    auto b = make_trainer(*model_b);
    b->run_to(saved_at);
    save_trainer(ckpt, *b);
    b->run_to(lost_until);  // then the process dies: these steps are not saved
  }

  auto model_c = [&] {
    if constexpr (std::is_same_v<decltype(make_model()), std::unique_ptr<DensityFlow<float>>>)
      return load_density_flow<float>(ckpt);
    else
      return load_variational_flow<float>(ckpt);
  }();
  auto c = make_trainer(*model_c);
  resume_trainer(ckpt, *c);
  CHECK(c->step() == saved_at);
  const FitReport rc = c->run_to(last);
  CHECK(rc.first_step == saved_at + 1);
  const std::vector<float> tail(ra.losses.begin() + saved_at, ra.losses.end());
  CHECK(rc.losses == tail);
  CHECK(everything(*c) == everything(*a));
}

}  // namespace

TEST_CASE("a density fit on a tensor resumes bit for bit, mid-epoch, at 1 and 2 threads") {
  TempDir dir;
  const TensorF data = ring_data(1000, 5);
  for (int threads : {1, 2}) {
    ThreadsGuard guard(threads);
    // At 2 threads batch 512 is split between them (several blocks of the MLP node).
    FitOptions opt;
    opt.batch = threads == 1 ? 64 : 512;
    opt.adam.lr = 3e-3;
    opt.seed = 11;
    INFO("threads " << threads);
    check_resume((dir / "density.safetensors"), 23, 29, 60, [] { return realnvp(16); },
                 [&](DensityFlow<float>& m) {
                   return std::make_unique<DensityTrainer<float>>(m, data, opt);
                 });
  }
}

TEST_CASE("a density fit on a batch source (a toy set) and a variational fit resume bit for bit") {
  TempDir dir;
  FitOptions opt;
  opt.batch = 128;
  opt.seed = 4;
  BatchSource<float> source = [](Index n, Generator& gen, TensorF& out) {
    out.resize(Shape{n, 2});
    for (Index i = 0; i < n; ++i) {
      out(i, 0) = static_cast<float>(gen.normal());
      out(i, 1) = static_cast<float>(0.5 * gen.normal() + out(i, 0) * out(i, 0));
    }
  };
  check_resume((dir / "toy.safetensors"), 17, 25, 40, [] { return realnvp(8); },
               [&](DensityFlow<float>& m) {
                 return std::make_unique<DensityTrainer<float>>(m, source, opt);
               });

  LogDensity<float> target = [](const Var<float>& x) {
    return -0.5f * sum(square(x - 1.0f), 1);  // N((1, 1), I), unnormalised
  };
  auto make_q = [] {
    Generator gen(8);
    return std::make_unique<VariationalFlow<float>>(make_planar_stack<float>(2, 4, gen));
  };
  check_resume((dir / "vi.safetensors"), 13, 20, 35, make_q, [&](VariationalFlow<float>& q) {
    return std::make_unique<VariationalTrainer<float>>(q, target, opt);
  });
}

TEST_CASE("resume_trainer refuses a bad file and leaves the trainer as it was") {
  TempDir dir;
  const TensorF data = ring_data(300, 6);
  FitOptions opt;
  opt.batch = 32;
  auto model = realnvp(8);
  DensityTrainer<float> trainer(*model, data, opt);
  trainer.run_to(5);
  const std::string good = (dir / "good.safetensors");
  save_trainer(good, trainer);
  trainer.run_to(9);
  const std::vector<float> before = everything(trainer);
  const std::string batch_state = trainer.batch_state();

  // A model's file without the trainer's keys.
  const std::string plain = (dir / "plain.safetensors");
  save_flow(plain, *model);
  CHECK_THROWS_WITH_AS(resume_trainer(plain, trainer), doctest::Contains("fit.step"),
                       std::runtime_error);
  // A truncated checkpoint.
  const std::string cut = (dir / "cut.safetensors");
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() - 9);
  }
  CHECK_THROWS_WITH_AS(resume_trainer(cut, trainer), doctest::Contains(cut.c_str()),
                       std::runtime_error);
  // A checkpoint of a wider model: its batch state fits, its tensors do not.
  auto wide = realnvp(16);
  DensityTrainer<float> wide_trainer(*wide, data, opt);
  const std::string other = (dir / "other.safetensors");
  save_trainer(other, wide_trainer);
  CHECK_THROWS_AS(resume_trainer(other, trainer), std::runtime_error);
  // A batch state of another data set's size.
  const TensorF small = ring_data(100, 7);
  auto model2 = realnvp(8);
  DensityTrainer<float> small_trainer(*model2, small, opt);
  const std::string rows = (dir / "rows.safetensors");
  save_trainer(rows, small_trainer);
  CHECK_THROWS_WITH_AS(resume_trainer(rows, trainer), doctest::Contains("fit.batch_state"),
                       std::runtime_error);

  CHECK(everything(trainer) == before);
  CHECK(trainer.batch_state() == batch_state);
  // And the good file still resumes.
  resume_trainer(good, trainer);
  CHECK(trainer.step() == 5);
}
