// The training loops of flowgrad/flows/fit.hpp: that they fit, stop on a non-finite loss with the
// model as it was, continue bit for bit across runs, measure held-out data when asked, and obey
// their callbacks.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "flowgrad/flows/fit.hpp"
#include "flowgrad/tensor/threads.hpp"

using namespace flowgrad;

namespace {

// x = mu + L e with mu = (1, -1), L = [[0.5, 0], [0.6, 0.3]]: entropy log(2 pi e) + log(0.15) =
// 0.9408 nats; a standard normal scores 1.8379 + |mu|^2 / 2 + tr(L L^T) / 2 = 3.19 nats on it.
TensorF gaussian_data(Index n, std::uint64_t seed) {
  Generator gen(seed);
  TensorF t(Shape{n, 2});
  for (Index i = 0; i < n; ++i) {
    const double e1 = gen.normal(), e2 = gen.normal();
    t(i, 0) = static_cast<float>(1 + 0.5 * e1);
    t(i, 1) = static_cast<float>(-1 + 0.6 * e1 + 0.3 * e2);
  }
  return t;
}

std::unique_ptr<DensityFlow<float>> small_realnvp(std::uint64_t seed, Index hidden = 16) {
  Generator gen(seed);
  RealNVPConfig c;
  c.couplings = 4;
  c.coupling.hidden = hidden;
  return std::make_unique<DensityFlow<float>>(make_realnvp<float>(c, gen));
}

// Every parameter and buffer value, in order.
std::vector<float> snapshot(Module<float>& m) {
  std::vector<float> v;
  for (const auto& p : m.named_parameters())
    v.insert(v.end(), p.param->value.data(), p.param->value.data() + p.param->value.numel());
  for (const auto& b : m.named_buffers())
    v.insert(v.end(), b.tensor->data(), b.tensor->data() + b.tensor->numel());
  return v;
}

bool all_finite(const std::vector<float>& v) {
  for (const float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

struct ThreadsGuard {
  explicit ThreadsGuard(int n) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(1); }
};

}  // namespace

TEST_CASE("fit_density: a small RealNVP learns a correlated Gaussian") {
  const TensorF train = gaussian_data(2000, 1), test = gaussian_data(2000, 2);
  auto model = small_realnvp(0);
  const double before = test_nll(*model, train);
  FitOptions opt;
  opt.steps = 300;
  opt.batch = 128;
  opt.adam.lr = 5e-3;
  opt.eval_every = 100;
  const FitReport r = fit_density(*model, train, test, opt);
  CHECK(r.first_step == 1);
  CHECK(r.last_step == 300);
  CHECK(r.losses.size() == 300);
  REQUIRE(r.held_out.size() == 3);
  const double after = r.held_out.back().second;
  INFO("held-out NLL before " << before << ", after " << after);
  CHECK(model->training());  // evaluation went back to training mode
  CHECK(after == doctest::Approx(test_nll(*model, test)).epsilon(1e-12));
  // The data's entropy is 0.94 nats, the lowest NLL any model can reach on average; the untrained
  // model scores 2.68. Measured after these 300 steps: 0.95. 1.1 leaves room for another machine's
  // rounding, not for a fit that stalled halfway.
  CHECK(before > 2.5);
  CHECK(after < 1.1);
}

TEST_CASE("test_nll: -mean log p in eval mode, in batches, mode restored") {
  const TensorF data = gaussian_data(1000, 3);
  auto model = small_realnvp(1);
  fit_density(*model, data, {.steps = 5, .batch = 64});
  model->train();
  const double a = test_nll(*model, data, 4096), b = test_nll(*model, data, 64);
  CHECK(model->training());
  model->eval();
  const TensorF lp = model->log_prob(data);
  double sum = 0;
  for (Index i = 0; i < lp.numel(); ++i) sum += lp[i];
  CHECK(a == doctest::Approx(-sum / 1000).epsilon(1e-12));
  CHECK(b == doctest::Approx(a).epsilon(1e-12));
  CHECK_FALSE(model->training());
  test_nll(*model, data);
  CHECK_FALSE(model->training());
}

TEST_CASE("a planted huge value stops the fit at its step, with the model as it was before") {
  TensorF data = gaussian_data(640, 4);
  const Index bad_row = 333;
  data(bad_row, 0) = 1e25f;  // its square overflows float: the loss becomes inf
  FitOptions opt;
  opt.steps = 40;
  opt.batch = 64;
  opt.seed = 9;
  // The step whose batch holds the bad row, found by drawing the same batches.
  long bad_step = 0;
  {
    BatchSampler<float> s(data, {.batch = 64}, 9);
    TensorF b;
    for (long k = 1; bad_step == 0; ++k) {
      s.next(b);
      for (Index i = 0; i < b.rows(); ++i)
        if (b(i, 0) == 1e25f) bad_step = k;
    }
  }
  REQUIRE(bad_step >= 2);  // with seed 9 it is not the first; a first-step failure is tested below
  auto model = small_realnvp(5);
  DensityTrainer<float> trainer(*model, data, opt);
  long failed_at = -1;
  std::string what;
  try {
    trainer.run();
  } catch (const NonFiniteLossError& e) {
    failed_at = e.step();
    what = e.what();
  }
  CHECK(failed_at == bad_step);
  CHECK(trainer.step() == bad_step - 1);
  CHECK(what.find("step " + std::to_string(bad_step) + ":") != std::string::npos);
  CHECK(what.find("learning rate") != std::string::npos);
  const std::vector<float> kept = snapshot(*model);
  CHECK(all_finite(kept));
  auto reference = small_realnvp(5);
  DensityTrainer<float> good(*reference, data, opt);
  good.run_to(bad_step - 1);
  CHECK(kept == snapshot(*reference));  // parameters and batch-norm statistics
}

TEST_CASE(
    "a learning rate of 1e6 stops with an error naming the step, and the model stays finite") {
  const TensorF data = gaussian_data(512, 6);
  auto model = small_realnvp(2);
  FitOptions opt;
  opt.steps = 50;
  opt.batch = 64;
  opt.adam.lr = 1e6;
  DensityTrainer<float> trainer(*model, data, opt);
  CHECK_THROWS_AS(trainer.run(), NonFiniteLossError);
  CHECK(trainer.step() < 50);
  CHECK(all_finite(snapshot(*model)));
  CHECK_THROWS_WITH_AS(trainer.train_step(),
                       doctest::Contains(("step " + std::to_string(trainer.step() + 1)).c_str()),
                       NonFiniteLossError);
}

// The second run goes on with the same Adam moments, sampler position and step count, so nothing
// tells the two apart. At 2 threads the batch is 512: the couplings' MLP node cuts it into 4 blocks
// of 128 rows for the threads to share, where batch 64 would be a single block (§8).
TEST_CASE("run_to(70) then run_to(200) equals run_to(200) bit for bit, at 1 and 2 threads") {
  const TensorF data = gaussian_data(2000, 7);
  struct Case {
    int threads;
    bool replacement;
    Index batch, hidden;
    long first, last;
  };
  for (const Case c : {Case{1, false, 64, 16, 70, 200}, Case{1, true, 64, 16, 30, 80},
                       Case{2, false, 512, 16, 10, 25}}) {
    CAPTURE(c.threads);
    CAPTURE(c.replacement);
    ThreadsGuard guard(c.threads);
    FitOptions opt;
    opt.steps = c.last;
    opt.batch = c.batch;
    opt.clip = 5;
    opt.seed = 3;
    opt.replacement = c.replacement;
    auto a = small_realnvp(11, c.hidden), b = small_realnvp(11, c.hidden);
    DensityTrainer<float> ta(*a, data, opt), tb(*b, data, opt);
    const FitReport first = ta.run_to(c.first);
    const FitReport rest = ta.run();
    const FitReport whole = tb.run();
    CHECK(first.last_step == c.first);
    CHECK(rest.first_step == c.first + 1);
    CHECK(rest.last_step == c.last);
    std::vector<float> joined = first.losses;
    joined.insert(joined.end(), rest.losses.begin(), rest.losses.end());
    CHECK(joined == whole.losses);
    CHECK(snapshot(*a) == snapshot(*b));
    CHECK(ta.batch_state() == tb.batch_state());
    CHECK(ta.optimizer().steps() == tb.optimizer().steps());
    CHECK(ta.run().losses.empty());  // already at the end
  }
}

TEST_CASE("held-out NLL is measured exactly every eval_every steps, and callbacks as documented") {
  const TensorF data = gaussian_data(300, 8), held = gaussian_data(100, 9);
  auto model = small_realnvp(3, 8);
  FitOptions opt;
  opt.steps = 25;
  opt.batch = 32;
  opt.eval_every = 10;
  DensityTrainer<float> trainer(*model, data, opt);
  trainer.set_held_out(held);
  std::vector<long> called, evaluated;
  FitCallbacks cb;
  cb.every = 7;
  cb.on_progress = [&](const FitProgress& p) {
    called.push_back(p.step);
    if (p.held_out_nll) {
      evaluated.push_back(p.step);
      CHECK(std::isfinite(*p.held_out_nll));
    }
    CHECK(std::isfinite(p.loss));
    CHECK(p.seconds >= 0);
    return FitAction::proceed;
  };
  const FitReport r = trainer.run(cb);
  CHECK(called == std::vector<long>{7, 10, 14, 20, 21, 25});
  CHECK(evaluated == std::vector<long>{10, 20});
  REQUIRE(r.held_out.size() == 2);
  CHECK(r.held_out[0].first == 10);
  CHECK(r.held_out[1].first == 20);
  CHECK(model->training());
  CHECK_FALSE(r.stopped);
}

TEST_CASE("a callback can stop the run, and running again continues from there") {
  const TensorF data = gaussian_data(300, 10);
  auto model = small_realnvp(4, 8);
  DensityTrainer<float> trainer(*model, data, {.steps = 30, .batch = 32});
  FitCallbacks cb;
  cb.on_progress = [](const FitProgress& p) {
    return p.step == 12 ? FitAction::stop : FitAction::proceed;
  };
  const FitReport r = trainer.run(cb);
  CHECK(r.stopped);
  CHECK(r.last_step == 12);
  CHECK(trainer.step() == 12);
  const FitReport rest = trainer.run();
  CHECK(rest.first_step == 13);
  CHECK(rest.last_step == 30);
}

TEST_CASE("epochs set the step count, and a batch source feeds a trainer") {
  const TensorF data = gaussian_data(100, 11);
  auto model = small_realnvp(6, 8);
  DensityTrainer<float> by_epochs(*model, data, {.epochs = 3, .batch = 32});
  CHECK(by_epochs.total_steps() == 12);  // 4 batches per epoch, the last of 4 rows
  by_epochs.run();
  CHECK(by_epochs.sampler().epoch() == 3);

  // A source drawing fresh points: the trainer's generator, seeded with options.seed.
  long calls = 0;
  BatchSource<float> source = [&](Index n, Generator& gen, TensorF& out) {
    ++calls;
    out = gen.normal<float>(Shape{n, 2});
  };
  auto m2 = small_realnvp(7, 8);
  DensityTrainer<float> t(*m2, source, {.steps = 6, .batch = 16, .seed = 5});
  const std::string start = t.batch_state();
  CHECK(start == Generator(5).state());
  t.run();
  CHECK(calls == 6);
  CHECK(t.batch_state() != start);
  CHECK_THROWS_AS(t.sampler(), std::logic_error);
  CHECK_THROWS_AS(DensityTrainer<float>(*m2, source, {.epochs = 2}), std::invalid_argument);
  const TensorF few = gaussian_data(10, 1);
  CHECK_THROWS_AS(DensityTrainer<float>(*m2, few, {.batch = 0}), std::invalid_argument);
}

TEST_CASE("fit_variational reduces KL to a Gaussian target, and beta sees every step") {
  // p = N((1, 0.5), I), given unnormalised: KL(q || p) = E_q[log q - log p~] + log(2 pi).
  const LogDensity<float> log_p = [](const Var<float>& x) {
    Tape<float>& t = x.tape();
    const Var<float> d = x - t.constant(TensorF(Shape{1, 2}, {1.0f, 0.5f}));
    return sum(square(d), 1) * -0.5f;
  };
  Generator gen(0);
  VariationalFlow<float> q(make_planar_stack<float>(2, 8, gen));
  const auto kl = [&](std::uint64_t seed) {
    Tape<float> tape;
    NoGradGuard<float> guard(tape);
    Generator g(seed);
    const auto s = q.sample_and_log_prob(tape, 20000, g);
    const TensorF lq = s.log_q.value(), lp = log_p(s.x).value();
    double total = 0;
    for (Index i = 0; i < lq.numel(); ++i) total += double(lq[i]) - double(lp[i]);
    return total / 20000 + std::log(2 * 3.14159265358979);
  };
  const double before = kl(100);
  std::vector<long> beta_steps;
  FitOptions opt;
  opt.steps = 300;
  opt.batch = 128;
  opt.adam.lr = 1e-2;
  opt.beta = [&](long step) {
    beta_steps.push_back(step);
    return 1.0;
  };
  const FitReport r = fit_variational(q, log_p, opt);
  const double after = kl(100);
  INFO("KL before " << before << ", after " << after);
  CHECK(r.last_step == 300);
  CHECK(beta_steps.size() == 300);
  CHECK(beta_steps.front() == 1);
  CHECK(beta_steps.back() == 300);
  // Measured: 1.42 nats before (the untrained planar stack is not the identity), 0.009 after. 0.1
  // asks for most of the gap to close.
  CHECK(before > 0.4);
  CHECK(after < 0.1);

  // A log-density of the wrong shape is refused instead of broadcast.
  const LogDensity<float> row = [](const Var<float>& x) { return square(x); };  // [n, 2]
  CHECK_THROWS_AS(fit_variational(q, row, {.steps = 1, .batch = 8}), std::invalid_argument);
}

// A user's energy is the one input a variational fit cannot check in advance: where q's samples
// make it NaN or -inf, the fit must stop at once, say so, and leave q as it was.
TEST_CASE("a log-density that is NaN or -inf where q samples stops the fit, naming the step") {
  for (const bool nan : {true, false}) {
    CAPTURE(nan);
    const LogDensity<float> broken = [nan](const Var<float>& x) {
      const Var<float> x0 = narrow(x, 0, 1);
      // log of a negative number (about half of q's samples) is NaN; log 0 is -inf.
      return nan ? log(x0) : log(x0 * 0.0f);
    };
    Generator gen(4);
    VariationalFlow<float> q(make_planar_stack<float>(2, 4, gen));
    const std::vector<float> before = snapshot(q);
    FitOptions opt;
    opt.steps = 20;
    opt.batch = 64;
    VariationalTrainer<float> trainer(q, broken, opt);
    long failed_at = -1;
    std::string what;
    try {
      trainer.run();
    } catch (const NonFiniteLossError& e) {
      failed_at = e.step();
      what = e.what();
    }
    CHECK(failed_at == 1);
    CHECK(trainer.step() == 0);
    CHECK(what.find("step 1:") != std::string::npos);
    CHECK(what.find("log-density is finite") != std::string::npos);
    CHECK(snapshot(q) == before);
  }
}

// Issue 18's numbers in a conditional fit: denormal values train like any other; a context of 1e38
// works (the MADE's tanh saturates, the model stays finite); NaN in a context, or 1e38 in x (its
// square overflows float in the base density), stops at the step that met it, naming the step
// (and, for NaN, the context), with the model as before that step.
TEST_CASE(
    "denormals in x and c train, and so does 1e38 in c; NaN in c or 1e38 in x stops the fit") {
  Generator gen(12);
  MAFConfig config;
  config.layers = 2;
  config.layer.made.hidden = 8;
  config.layer.made.context = 1;
  const TensorF xy = gaussian_data(256, 13);
  TensorF rows(Shape{256, 3});
  for (Index i = 0; i < 256; ++i) {
    rows(i, 0) = xy(i, 0);
    rows(i, 1) = i % 3 == 0 ? std::numeric_limits<float>::denorm_min() : xy(i, 1);
    rows(i, 2) = i % 2 == 0 ? std::numeric_limits<float>::denorm_min() * 7 : 0.5f;
  }
  FitOptions opt;
  opt.steps = 30;
  opt.batch = 256;  // every batch holds every row
  struct Case {
    Index column;
    float value;
    bool works;
  };
  for (const Case c : {Case{2, 0.5f, true}, Case{2, 1e38f, true}, Case{2, std::nanf(""), false},
                       Case{0, 1e38f, false}}) {
    CAPTURE(c.column);
    CAPTURE(c.value);
    TensorF poisoned = rows;
    poisoned(17, c.column) = c.value;
    DensityFlow<float> model(make_maf<float>(config, gen));
    const std::vector<float> before = snapshot(model);
    DensityTrainer<float> trainer(model, poisoned, opt);
    std::string what;
    try {
      const FitReport r = trainer.run();
      CHECK(r.losses.back() < r.losses.front());
    } catch (const NonFiniteLossError& e) {
      what = e.what();
    }
    if (c.works) {
      CHECK(what.empty());
      CHECK(all_finite(snapshot(model)));
      continue;
    }
    CHECK(what.find("step 1:") != std::string::npos);
    if (std::isnan(c.value)) CHECK(what.find("context has NaN") != std::string::npos);
    CHECK(snapshot(model) == before);
  }
}
