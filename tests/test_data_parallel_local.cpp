// Data-parallel training without MPI: the trainer's part (one gradient buffer, shards, the sum a
// step, reduced ActNorm statistics, checksums) over "ranks" that are threads of this process,
// joined by an in-process Collective. So the logic is tested in every build, the sanitizer build
// (which has no MPI) included; tests/mpi/ runs the same over real MPI ranks.
#include <doctest/doctest.h>

#include <barrier>
#include <cmath>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/parallel/data_parallel.hpp"
#include "parallel_helpers.hpp"

using namespace flowgrad;
using flowgrad::testing::curved_data;
using flowgrad::testing::max_relative;
using flowgrad::testing::parameters_of;

namespace {

// Ranks as threads: every operation is deposit, wait, combine in rank order, wait.
class ThreadRanks {
 public:
  explicit ThreadRanks(int size)
      : size_(size), slots_(static_cast<std::size_t>(size)), sync_(size) {}
  int size() const { return size_; }

  template <class F>
  void exchange(int rank, const void* mine, F&& combine) {
    slots_[static_cast<std::size_t>(rank)] = mine;
    sync_.arrive_and_wait();
    combine(slots_);
    sync_.arrive_and_wait();
  }

 private:
  int size_;
  std::vector<const void*> slots_;
  std::barrier<> sync_;
};

class ThreadCollective : public Collective {
 public:
  ThreadCollective(ThreadRanks& ranks, int rank) : ranks_(ranks), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return ranks_.size(); }
  void sum(float* data, std::size_t n) override { sum_of(data, n); }
  void sum(double* data, std::size_t n) override { sum_of(data, n); }
  void broadcast(float* data, std::size_t n) override { broadcast_of(data, n); }
  void broadcast(double* data, std::size_t n) override { broadcast_of(data, n); }
  bool same_everywhere(std::uint64_t value) override {
    bool same = true;
    ranks_.exchange(rank_, &value, [&](const std::vector<const void*>& all) {
      for (const void* v : all) same &= *static_cast<const std::uint64_t*>(v) == value;
    });
    return same;
  }
  std::vector<std::string> gather(const std::string& text) override {
    std::vector<std::string> out;
    ranks_.exchange(rank_, &text, [&](const std::vector<const void*>& all) {
      if (rank_ == 0)
        for (const void* t : all) out.push_back(*static_cast<const std::string*>(t));
    });
    return out;
  }
  std::string broadcast(const std::string& text) override {
    std::string out;
    ranks_.exchange(rank_, &text, [&](const std::vector<const void*>& all) {
      out = *static_cast<const std::string*>(all[0]);
    });
    return out;
  }

 private:
  template <class T>
  void sum_of(T* data, std::size_t n) {
    std::vector<T> total(n, T(0));
    ranks_.exchange(rank_, data, [&](const std::vector<const void*>& all) {
      for (const void* p : all)
        for (std::size_t i = 0; i < n; ++i) total[i] += static_cast<const T*>(p)[i];
    });
    std::copy(total.begin(), total.end(), data);
  }
  template <class T>
  void broadcast_of(T* data, std::size_t n) {
    std::vector<T> root(n);
    ranks_.exchange(rank_, data, [&](const std::vector<const void*>& all) {
      const T* r = static_cast<const T*>(all[0]);
      std::copy(r, r + n, root.begin());
    });
    std::copy(root.begin(), root.end(), data);
  }

  ThreadRanks& ranks_;
  int rank_;
};

// ActNorm first, so that its first-batch initialisation must use the global batch.
std::unique_ptr<DensityFlow<double>> actnorm_maf(std::uint64_t seed) {
  Generator gen(seed);
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 2;
  maf.layer.made.hidden = 12;
  auto chain = std::make_unique<Composition<double>>(3);
  chain->add(std::make_unique<ActNorm<double>>(3));
  chain->add(make_maf<double>(maf, gen));
  return std::make_unique<DensityFlow<double>>(std::move(chain));
}

// Runs body(rank, collective) on `size` threads.
void on_ranks(int size, const std::function<void(int, Collective&)>& body) {
  ThreadRanks ranks(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r)
    threads.emplace_back([&, r] {
      ThreadCollective c(ranks, r);
      body(r, c);
    });
  for (auto& t : threads) t.join();
}

}  // namespace

TEST_CASE("Tensor::view writes into the memory it was given until a resize outgrows it") {
  alignas(64) float memory[32] = {};
  TensorF v = TensorF::view(memory, Shape{4, 4});
  CHECK_FALSE(v.owns_data());
  v.fill(2.0f);
  CHECK(memory[15] == 2.0f);
  CHECK(memory[16] == 0.0f);
  const TensorF threes(Shape{2, 8}, 3.0f);
  v = threes;  // copy-assigned, same size: copied into the view
  CHECK(memory[0] == 3.0f);
  CHECK(v.data() == memory);
  TensorF moved = TensorF::view(memory, Shape{4, 4});
  moved = TensorF(Shape{4, 4}, 5.0f);  // a tensor moved in replaces the view
  CHECK(moved.owns_data());
  CHECK(memory[0] == 3.0f);
  v.resize(Shape{8, 8});  // larger: memory of its own
  CHECK(v.owns_data());
  CHECK(v.data() != memory);
  CHECK_THROWS_AS(TensorF::view(memory + 1, Shape{1, 1}), std::invalid_argument);
}

TEST_CASE("two thread ranks with half the batch each follow one process with the whole batch") {
  const TensorD data = curved_data<double>(500);
  FitOptions o;
  o.steps = 30;
  o.batch = 101;  // shards of 50 and 51 rows: the weights are not one half
  o.adam.lr = 3e-3;
  o.seed = 3;
  o.check_every = 7;
  auto alone = actnorm_maf(11);
  std::vector<double> alone_losses;
  {
    const FitReport r = fit_density(*alone, data, o);
    alone_losses.assign(r.losses.begin(), r.losses.end());
  }
  std::vector<std::vector<double>> losses(2), params(2);
  std::vector<bool> views(2), owned_after(2);
  on_ranks(2, [&](int r, Collective& c) {
    // Different seeds: the trainer must start every rank from rank 0's parameters.
    auto model = actnorm_maf(r == 0 ? 11 : 99);
    FitOptions mine = o;
    mine.collective = &c;
    {
      DensityTrainer<double> trainer(*model, data, mine);
      const FitReport rep = trainer.run();
      losses[static_cast<std::size_t>(r)].assign(rep.losses.begin(), rep.losses.end());
      views[static_cast<std::size_t>(r)] = !model->parameters()[0]->grad.owns_data();
    }
    // The model outlives its trainer: its gradients own their memory again.
    owned_after[static_cast<std::size_t>(r)] = model->parameters()[0]->grad.owns_data();
    params[static_cast<std::size_t>(r)] = parameters_of(*model);
  });
  CHECK(views[0]);
  CHECK(owned_after[0]);
  CHECK(owned_after[1]);
  CHECK(params[0] == params[1]);  // bit for bit
  CHECK(losses[0] == losses[1]);
  CHECK(max_relative(losses[0], alone_losses) < 1e-8);
  CHECK(max_relative(params[0], parameters_of(*alone)) < 1e-8);
  // And not trivially: training moved the parameters away from the start.
  CHECK(max_relative(params[0], parameters_of(*actnorm_maf(11))) > 1e-3);
}

TEST_CASE("thread ranks: a rank whose parameters drift is caught by the checksum") {
  const TensorD data = curved_data<double>(400);
  std::vector<int> caught(2, 0);
  on_ranks(2, [&](int r, Collective& c) {
    auto model = actnorm_maf(5);
    FitOptions o;
    o.steps = 6;
    o.batch = 64;
    o.check_every = 1;
    o.collective = &c;
    DensityTrainer<double> trainer(*model, data, o);
    trainer.run_to(2);
    if (r == 1) model->parameters()[1]->value[0] += 1e-9;
    try {
      trainer.run();
    } catch (const std::runtime_error& e) {
      caught[static_cast<std::size_t>(r)] =
          std::string(e.what()).find("after step 3") != std::string::npos;
    }
  });
  CHECK(caught[0] == 1);
  CHECK(caught[1] == 1);
}
