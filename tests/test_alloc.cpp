// After warm-up, a training step (forward, backward, Adam) makes no heap allocation. This binary
// replaces the global operator new to count them, so it stands alone.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>

#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/autodiff/ops.hpp"
#include "flowgrad/autodiff/optim.hpp"
#include "flowgrad/flows/models.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ++allocations;
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace flowgrad;

TEST_CASE("steady-state MLP training steps allocate nothing") {
  Generator gen(0);
  MLP<float> mlp({2, 32, 32, 2}, Activation::relu, gen, Activation::tanh);
  Adam<float> adam(mlp.parameters());
  Tape<float> tape;
  const TensorF x = gen.normal<float>(Shape{64, 2});
  const TensorF y = gen.normal<float>(Shape{64, 2});
  auto step = [&] {
    tape.reset();
    adam.zero_grad();
    const auto h = mlp(tape.constant(x));
    const auto loss = mean(square(h - tape.constant(y))) + sum(logsumexp(h, 1)) * 0.01f;
    tape.backward(loss);
    clip_grad_norm(adam.params(), 10.f);
    adam.step();
  };
  for (int i = 0; i < 3; ++i) step();
  const long before = allocations.load();
  for (int i = 0; i < 10; ++i) step();
  CHECK(allocations.load() - before == 0);
  // The counter works: an allocation is seen.
  const long probe = allocations.load();
  { TensorF t(Shape{8, 8}); }
  CHECK(allocations.load() > probe);
}

// One thread: at two, which thread first runs a given kind of block, and so first grows its
// scratch, depends on timing, so a warm-up of a fixed length might not cover it.
TEST_CASE("steady-state RealNVP training steps allocate nothing") {
  Generator gen(0);
  RealNVPConfig config;
  config.coupling = {32, 2, Activation::relu};
  DensityFlow<float> model(make_realnvp<float>(config, gen));
  Adam<float> adam(model.parameters());
  Tape<float> tape;
  const TensorF x = gen.normal<float>(Shape{600, 2});
  // fused: Adam inside the backward pass (Adam::backward_step), on emptied gradients.
  for (const bool fused : {false, true}) {
    CAPTURE(fused);
    auto step = [&] {
      tape.reset();
      if (fused) {
        adam.clear_grad();
        adam.backward_step(-mean(model.log_prob(tape.constant(x))));
        return;
      }
      adam.zero_grad();
      tape.backward(-mean(model.log_prob(tape.constant(x))));
      adam.step();
    };
    for (int i = 0; i < 3; ++i) step();
    const long before = allocations.load();
    for (int i = 0; i < 5; ++i) step();
    CHECK(allocations.load() - before == 0);
  }
}

// The modern flows too: spline couplings (the spline op keeps its per-element work on the stack),
// MADE's masked weights (a node each, in the tape's buffers) and the permutations between layers.
TEST_CASE("steady-state NSF, NSF-AR and MAF training steps allocate nothing") {
  Generator gen(0);
  NSFConfig nsf;
  nsf.dim = 3;
  nsf.couplings = 3;
  NSFARConfig ar;
  ar.dim = 3;
  ar.layers = 2;
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 3;
  const TensorF x = gen.normal<float>(Shape{300, 3});
  for (auto* raw : {new DensityFlow<float>(make_nsf<float>(nsf, gen)),
                    new DensityFlow<float>(make_nsf_ar<float>(ar, gen)),
                    new DensityFlow<float>(make_maf<float>(maf, gen))}) {
    std::unique_ptr<DensityFlow<float>> model(raw);
    CAPTURE(model->transform()[0].kind());
    Adam<float> adam(model->parameters());
    Tape<float> tape;
    auto step = [&] {
      tape.reset();
      adam.zero_grad();
      tape.backward(-mean(model->log_prob(tape.constant(x))));
      adam.step();
    };
    for (int i = 0; i < 3; ++i) step();
    const long before = allocations.load();
    for (int i = 0; i < 5; ++i) step();
    CHECK(allocations.load() - before == 0);
  }
}
