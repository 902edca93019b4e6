// MADE and the masked autoregressive layers (MAF, NSF-AR, IAF): the autoregressive property of
// the masks, log-dets against brute-force Jacobians, inverse round trips, gradchecks through the
// builders' models in both directions, normalisation in 2-D and the file round trip.
#include <doctest/doctest.h>

#include <unistd.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "flow_helpers.hpp"
#include "flowgrad/flows/autoregressive.hpp"
#include "flowgrad/flows/made.hpp"
#include "flowgrad/flows/models.hpp"
#include "flowgrad/flows/registry.hpp"
#include "gradcheck_helpers.hpp"

using namespace flowgrad;
using namespace flowgrad::testing;
using D = double;

namespace {

// d out[0, o] / d x[0, i] for every o and i, from the tape, one backward per output.
std::vector<std::vector<double>> jacobian(MADE<D>& made, const Tensor<D>& x) {
  std::vector<std::vector<double>> jac;
  const Index outs = made.dim() * made.outputs_per_dim();
  for (Index o = 0; o < outs; ++o) {
    Tape<D> t;
    const Var<D> xv = t.constant(x, true);
    const Var<D> y = made(xv);
    Tensor<D> seed(Shape{1, outs}, 0.0);
    seed[o] = 1;
    t.backward(y, seed);
    jac.emplace_back(xv.grad().data(), xv.grad().data() + made.dim());
  }
  return jac;
}

SplineCouplingConfig small_spline(Index bins, double bound) {
  SplineCouplingConfig c;
  c.bins = bins;
  c.tail_bound = bound;
  c.hidden = 8;
  c.hidden_layers = 2;
  c.activation = Activation::tanh;
  return c;
}

MaskedAffineConfig small_affine() {
  MaskedAffineConfig c;
  c.made = {8, 2, Activation::tanh};
  return c;
}

const Index dims[] = {2, 3, 5, 8};

}  // namespace

TEST_CASE("made: outputs of dimension i depend on exactly the inputs before i") {
  Generator gen(501);
  for (Index d : {Index{1}, Index{2}, Index{3}, Index{5}, Index{8}})
    for (Index per_dim : {Index{1}, Index{2}, Index{3}})
      for (int hidden_layers : {1, 2, 3}) {  // 3 hidden layers take the unfused path
        CAPTURE(d);
        CAPTURE(per_dim);
        CAPTURE(hidden_layers);
        MADE<D> made(d, per_dim, MADEConfig{16, hidden_layers, Activation::tanh}, gen, false);
        const auto jac = jacobian(made, gen.normal<D>(Shape{1, d}));
        for (Index o = 0; o < d * per_dim; ++o)
          for (Index i = 0; i < d; ++i) {
            const double v = jac[static_cast<std::size_t>(o)][static_cast<std::size_t>(i)];
            if (i < o / per_dim)
              CHECK(std::abs(v) > 1e-12);  // every allowed input reaches it
            else
              CHECK(v == 0.0);  // strictly triangular in the order
          }
      }
}

TEST_CASE("made: the saved weights show the masks, and masked weights get no gradient") {
  Generator gen(502);
  MADE<D> made(4, 2, MADEConfig{6, 2, Activation::relu}, gen, false);
  REQUIRE(made.layers().size() == 3);
  for (std::size_t l = 0; l < 3; ++l) {
    const Tensor<D>& w = made.layers()[l].weight.value;
    const Tensor<D>& m = made.masks()[l];
    REQUIRE(w.shape() == m.shape());
    for (Index k = 0; k < w.numel(); ++k)
      if (m[k] == 0) CHECK(w[k] == 0.0);
  }
  randomize_parameters(made, gen, 0.5);
  Tape<D> t;
  made.zero_grad();
  t.backward(sum(square(made(t.constant(gen.normal<D>(Shape{5, 4}))))));
  for (std::size_t l = 0; l < 3; ++l) {
    const Tensor<D>& g = made.layers()[l].weight.grad;
    const Tensor<D>& m = made.masks()[l];
    for (Index k = 0; k < g.numel(); ++k)
      if (m[k] == 0) CHECK(g[k] == 0.0);
  }
  CHECK_THROWS_AS(MADE<D>(0, 1, MADEConfig{}, gen), std::invalid_argument);
  CHECK_THROWS_AS(MADE<D>(3, 1, MADEConfig{4, 17, Activation::tanh}, gen), std::invalid_argument);
}

TEST_CASE("masked affine autoregressive: log-det against the Jacobian, d-pass inverse") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(510 + static_cast<std::uint64_t>(d));
    MaskedAffineAutoregressive<D> f(d, small_affine(), gen);
    randomize_parameters(f, gen, 0.8);
    check_bijector(f, gen.normal<D>(Shape{12, d}, 0.0, 2.0));
  }
}

TEST_CASE("masked spline autoregressive: log-det against the Jacobian, tails, d-pass inverse") {
  for (Index d : dims) {
    CAPTURE(d);
    Generator gen(520 + static_cast<std::uint64_t>(d));
    MaskedSplineAutoregressive<D> f(d, small_spline(5, 2.5), gen);
    randomize_parameters(f, gen, 0.7);
    // Scale 2 puts about a fifth of the coordinates in the identity tails, outside +-2.5.
    Tensor<D> x = gen.normal<D>(Shape{12, d}, 0.0, 2.0);
    x[0] = 2.5;  // on the last knot
    x[1] = -2.5 + 1e-7;
    check_bijector(f, x);
  }
}

// Sampling runs the d-pass inverse without gradients: each pass then goes on a scratch tape, so
// the caller's tape holds the result alone, not d passes of nodes (at 784 dimensions the passes
// of a MAF's sampling once filled 24 GB), and the values are those of the recorded inverse.
template <class Layer, class Config>
void check_inverse_without_gradients(const Config& config, std::uint64_t seed) {
  constexpr Index d = 16;
  Generator gen(seed);
  Layer f(d, config, gen);
  randomize_parameters(f, gen, 0.7);
  const Tensor<D> y = gen.normal<D>(Shape{9, d});
  Tape<D> recorded, plain, one_pass;
  const FlowResult<D> r = f.inverse(recorded.constant(y));
  NoGradGuard<D> g1(plain), g2(one_pass);
  const FlowResult<D> p = f.inverse(plain.constant(y));
  for (Index i = 0; i < y.numel(); ++i)
    CHECK(p.out.value()[i] == doctest::Approx(r.out.value()[i]).epsilon(1e-12));
  for (Index i = 0; i < y.rows(); ++i)
    CHECK(p.log_det.value()[i] == doctest::Approx(r.log_det.value()[i]).epsilon(1e-12));
  f.forward(one_pass.constant(y));
  CHECK(plain.bytes_reserved() < one_pass.bytes_reserved());
  // A second call reuses the scratch tape and gives the same numbers.
  const FlowResult<D> again = f.inverse(plain.constant(y));
  CHECK(std::equal(again.out.value().data(), again.out.value().data() + y.numel(),
                   p.out.value().data()));
}

TEST_CASE("the d-pass inverse without gradients: the recorded values, one pass's memory") {
  check_inverse_without_gradients<MaskedAffineAutoregressive<D>>(small_affine(), 530);
  check_inverse_without_gradients<MaskedSplineAutoregressive<D>>(small_spline(5, 2.5), 531);
}

TEST_CASE("masked affine autoregressive: the log-scale stays within +-log_scale_bound") {
  Generator gen(530);
  MaskedAffineConfig c = small_affine();
  c.log_scale_bound = 0.5;
  MaskedAffineAutoregressive<D> f(3, c, gen);
  randomize_parameters(f, gen, 30.0);  // raw log-scales far beyond the bound
  Tape<D> t;
  const auto r = f.forward(t.constant(gen.normal<D>(Shape{50, 3}, 0.0, 5.0)));
  for (Index i = 0; i < 50; ++i) CHECK(std::abs(r.log_det.value()[i]) <= 3 * 0.5 + 1e-12);
  c.log_scale_bound = 0;
  CHECK_THROWS_AS(MaskedAffineAutoregressive<D>(3, c, gen), std::invalid_argument);
  CHECK_THROWS_AS(MaskedSplineAutoregressive<D>(3, small_spline(0, 2.0), gen),
                  std::invalid_argument);
}

TEST_CASE("gradcheck: -mean log p through make_maf and make_nsf_ar, every parameter") {
  Generator gen(540);
  MAFConfig maf;
  maf.dim = 3;
  maf.layers = 2;
  maf.layer = small_affine();
  NSFARConfig nsf;
  nsf.dim = 3;
  nsf.layers = 2;
  nsf.layer = small_spline(4, 2.5);
  for (auto* model :
       {new DensityFlow<D>(make_maf<D>(maf, gen)), new DensityFlow<D>(make_nsf_ar<D>(nsf, gen))}) {
    std::unique_ptr<DensityFlow<D>> m(model);
    randomize_parameters(*m, gen, 0.5);
    const auto x = gen.normal<D>(Shape{8, 3}, 0.0, 1.5);
    const auto params = m->parameters();
    CHECK(params.size() == 12);  // 2 layers x 3 masked linear layers x (weight, bias)
    CHECK_GRADCHECK(
        gradcheck([&](Tape<D>& t) { return -mean(m->log_prob(t.constant(x))); }, params));
  }
}

TEST_CASE("gradcheck: the d-pass inverses, with respect to the input and every parameter") {
  Generator gen(545);
  MaskedAffineAutoregressive<D> affine(3, small_affine(), gen);
  MaskedSplineAutoregressive<D> spline(3, small_spline(4, 2.5), gen);
  for (Bijector<D>* f : {static_cast<Bijector<D>*>(&affine), static_cast<Bijector<D>*>(&spline)}) {
    CAPTURE(f->kind());
    randomize_parameters(*f, gen, 0.5);
    const auto y = gen.normal<D>(Shape{6, 3});
    const auto weights = gen.normal<D>(Shape{6, 3});
    auto params = f->parameters();
    Parameter<D> input(y);
    params.push_back(&input);
    CHECK_GRADCHECK(gradcheck(
        [&](Tape<D>& t) {
          const FlowResult<D> r = f->inverse(t.parameter(input));
          return sum(r.out * t.constant(weights)) + sum(r.log_det);
        },
        params));
  }
}

TEST_CASE("2-D make_maf, make_nsf_ar and make_nsf densities integrate to 1") {
  Generator gen(550);
  MAFConfig maf;
  maf.layer = small_affine();
  NSFARConfig ar;
  ar.layers = 3;
  ar.layer = small_spline(6, 3.0);
  NSFConfig nsf;
  nsf.couplings = 3;
  nsf.coupling = small_spline(6, 3.0);
  for (auto* model :
       {new DensityFlow<D>(make_maf<D>(maf, gen)), new DensityFlow<D>(make_nsf_ar<D>(ar, gen)),
        new DensityFlow<D>(make_nsf<D>(nsf, gen))}) {
    std::unique_ptr<DensityFlow<D>> m(model);
    CAPTURE(m->transform()[0].kind());
    randomize_parameters(*m, gen, 0.4);
    CHECK(mass_2d(*m) == doctest::Approx(1.0).epsilon(0.01));
  }
}

TEST_CASE_TEMPLATE("make_maf and make_nsf_ar: rebuilt from their file alone, identical log_prob", T,
                   float, double) {
  Generator gen(560);
  MAFConfig maf;
  maf.dim = 5;
  maf.layers = 3;
  NSFARConfig ar;
  ar.dim = 5;
  ar.layers = 2;
  ar.layer = small_spline(5, 3.5);
  for (auto* model :
       {new DensityFlow<T>(make_maf<T>(maf, gen)), new DensityFlow<T>(make_nsf_ar<T>(ar, gen))}) {
    std::unique_ptr<DensityFlow<T>> m(model);
    randomize_parameters(*m, gen, 0.3);
    char tmpl[] = "/tmp/flowgrad-ar-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    save_flow(dir + "/flow.safetensors", *m);
    auto loaded = load_density_flow<T>(dir + "/flow.safetensors");
    std::filesystem::remove_all(dir);
    CHECK(architecture_json(loaded->transform().spec()) ==
          architecture_json(m->transform().spec()));
    const Tensor<T> x = gen.normal<T>(Shape{16, 5});
    const Tensor<T> a = m->log_prob(x), b = loaded->log_prob(x);
    REQUIRE(a.shape() == b.shape());
    CHECK(std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * sizeof(T)) == 0);
  }
}

TEST_CASE("IAF: a variational make_maf samples with log q in one pass, and log q matches") {
  Generator gen(570);
  MAFConfig c;
  c.dim = 4;
  c.layers = 3;
  c.layer = small_affine();
  VariationalFlow<D> iaf(make_maf<D>(c, gen));
  randomize_parameters(iaf, gen, 0.5);
  Tape<D> t;
  const VariationalSample<D> s = iaf.sample_and_log_prob(t, 64, gen);
  const Tensor<D> again = iaf.log_prob(s.x.value());  // by the 4-pass inverses
  for (Index i = 0; i < 64; ++i)
    CHECK(again[i] == doctest::Approx(s.log_q.value()[i]).epsilon(1e-10));
}

TEST_CASE("the registry names a bad setting of the autoregressive layers") {
  const std::string arch =
      R"({"kind": "composition", "dim": "2", "layers": [{"kind": "masked_affine_autoregressive",)"
      R"( "dim": "2", "hidden": "8", "hidden_layers": "99", "activation": "tanh",)"
      R"( "log_scale_bound": "3"}]})";
  std::string msg;
  try {
    build_flow<D>(arch);
  } catch (const std::invalid_argument& e) {
    msg = e.what();
  }
  CHECK(msg.find("the masked_affine_autoregressive layer at layers.0 has setting "
                 "'hidden_layers' = '99'") == 0);
}
