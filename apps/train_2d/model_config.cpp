#include "model_config.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <stdexcept>

namespace train2d {

void check_model_for(const std::string& model, bool density) {
  if (density && model == "iaf")
    throw std::invalid_argument(
        "iaf is a variational flow (`train_2d vi --model iaf`); as a density model the same "
        "chain is --model maf");
  if (!density && model == "maf")
    throw std::invalid_argument(
        "in vi a masked affine flow samples in one pass: that is --model iaf");
  if (!density && model == "realnvp")
    throw std::invalid_argument(
        "vi fits planar, radial, iaf, nsf or nsf-ar flows (RealNVP's batch norm has no meaning "
        "for base samples)");
}

void apply_model_defaults(ModelConfig& c, const GivenOptions& given) {
  if (c.model == "maf" || c.model == "iaf") {
    if (!given.layers) c.layers = 5;
    if (!given.hidden) c.hidden = 50;
    if (!given.activation) c.activation = "tanh";
  } else if (c.model == "nsf" || c.model == "nsf-ar") {
    if (!given.layers) c.layers = 8;
  }
}

void validate(const ModelConfig& c) {
  static const char* const known[] = {"realnvp", "nsf", "maf", "nsf-ar", "iaf", "planar", "radial"};
  if (std::find(std::begin(known), std::end(known), c.model) == std::end(known))
    throw std::invalid_argument("unknown model '" + c.model +
                                "' (realnvp, nsf, maf, nsf-ar, iaf, planar, radial)");
  if (c.dim < 2 && (c.model == "realnvp" || c.model == "nsf"))
    throw std::invalid_argument(c.model + " needs dimension >= 2");
  if (c.bins < 1 || c.bins > 128) throw std::invalid_argument("bins must be in 1..128");
  if (!(c.tail_bound > 0 && c.tail_bound <= 1e6))
    throw std::invalid_argument("tail bound must be in (0, 1e6]");
  if (c.dim < 1) throw std::invalid_argument("dimension must be >= 1");
  if (c.context < 0 || c.context > 65536) throw std::invalid_argument("context width out of range");
  if (c.context > 0 && (c.model == "planar" || c.model == "radial"))
    throw std::invalid_argument(c.model +
                                " layers have no network to condition on a context; use realnvp, "
                                "nsf, maf or nsf-ar");
  if (c.layers < 1 || c.layers > 1000) throw std::invalid_argument("layers must be in 1..1000");
  if (c.hidden < 1 || c.hidden > 65536) throw std::invalid_argument("hidden must be in 1..65536");
  if (c.hidden_layers < 1 || c.hidden_layers > 16)
    throw std::invalid_argument("hidden layers must be in 1..16");
  flowgrad::activation_from_string(c.activation);
}

std::string exact_number(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

std::string describe(const ModelConfig& c) {
  if (c.model == "nsf")
    return "nsf (" + std::to_string(c.layers) + " spline couplings, " + std::to_string(c.bins) +
           " bins on [-" + exact_number(c.tail_bound) + ", " + exact_number(c.tail_bound) +
           "], hidden " + std::to_string(c.hidden) + " x " + std::to_string(c.hidden_layers) +
           ", " + c.activation + ")";
  if (c.model == "nsf-ar")
    return "nsf-ar (" + std::to_string(c.layers) + " autoregressive spline layers, " +
           std::to_string(c.bins) + " bins on [-" + exact_number(c.tail_bound) + ", " +
           exact_number(c.tail_bound) + "], MADE " + std::to_string(c.hidden) + " x " +
           std::to_string(c.hidden_layers) + ", " + c.activation + ", reverse permutations)";
  if (c.model == "maf" || c.model == "iaf")
    return c.model + " (" + std::to_string(c.layers) +
           " masked affine autoregressive layers, MADE " + std::to_string(c.hidden) + " x " +
           std::to_string(c.hidden_layers) + ", " + c.activation + ", random permutations)";
  if (c.model == "realnvp")
    return "realnvp (" + std::to_string(c.layers) + " couplings, hidden " +
           std::to_string(c.hidden) + " x " + std::to_string(c.hidden_layers) + ", " +
           c.activation + (c.batch_norm ? ", batch norm" : "") + ")";
  return c.model + " (" + std::to_string(c.layers) + " layers)";
}

Metadata to_metadata(const ModelConfig& c) {
  return {{"format", "flowgrad"},
          {"model", c.model},
          {"dim", std::to_string(c.dim)},
          {"layers", std::to_string(c.layers)},
          {"hidden", std::to_string(c.hidden)},
          {"hidden_layers", std::to_string(c.hidden_layers)},
          {"activation", c.activation},
          {"batch_norm", c.batch_norm ? "true" : "false"},
          {"bins", std::to_string(c.bins)},
          {"tail_bound", exact_number(c.tail_bound)},
          {"context", std::to_string(c.context)}};
}

namespace {
const std::string& need(const Metadata& m, const std::string& key, const std::string& path) {
  const auto it = m.find(key);
  if (it == m.end())
    throw std::runtime_error(path + ": metadata has no '" + key + "' (not a flowgrad checkpoint?)");
  return it->second;
}
long long need_int(const Metadata& m, const std::string& key, const std::string& path) {
  const std::string& v = need(m, key, path);
  try {
    std::size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw std::runtime_error(path + ": metadata '" + key + "' is '" + v + "', not an integer");
  }
}
}  // namespace

ModelConfig config_from_metadata(const Metadata& m, const std::string& path) {
  ModelConfig c;
  c.model = need(m, "model", path);
  c.dim = need_int(m, "dim", path);
  c.layers = static_cast<int>(need_int(m, "layers", path));
  c.hidden = need_int(m, "hidden", path);
  c.hidden_layers = static_cast<int>(need_int(m, "hidden_layers", path));
  c.activation = need(m, "activation", path);
  const std::string& bn = need(m, "batch_norm", path);
  if (bn != "true" && bn != "false")
    throw std::runtime_error(path + ": metadata 'batch_norm' is '" + bn + "'");
  c.batch_norm = bn == "true";
  // Files from before spline flows have no bins or tail bound: they are not NSF models.
  if (m.count("bins")) c.bins = need_int(m, "bins", path);
  if (m.count("context")) c.context = need_int(m, "context", path);
  if (m.count("tail_bound")) {
    const std::string& v = need(m, "tail_bound", path);
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), c.tail_bound);
    if (ec != std::errc() || end != v.data() + v.size())
      throw std::runtime_error(path + ": metadata 'tail_bound' is '" + v + "', not a number");
  }
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return c;
}

std::unique_ptr<flowgrad::Composition<float>> build_transform(const ModelConfig& c,
                                                              flowgrad::Generator& gen) {
  validate(c);
  if (c.model == "planar") return flowgrad::make_planar_stack<float>(c.dim, c.layers, gen);
  if (c.model == "radial") return flowgrad::make_radial_stack<float>(c.dim, c.layers, gen);
  if (c.model == "maf" || c.model == "iaf") {
    flowgrad::MAFConfig m;
    m.dim = c.dim;
    m.layers = c.layers;
    m.layer.made = {c.hidden, c.hidden_layers, flowgrad::activation_from_string(c.activation),
                    c.context};
    return flowgrad::make_maf<float>(m, gen);
  }
  if (c.model == "nsf-ar") {
    flowgrad::NSFARConfig n;
    n.dim = c.dim;
    n.layers = c.layers;
    n.layer = {c.bins,
               c.tail_bound,
               c.hidden,
               c.hidden_layers,
               flowgrad::activation_from_string(c.activation),
               c.context};
    return flowgrad::make_nsf_ar<float>(n, gen);
  }
  if (c.model == "nsf") {
    flowgrad::NSFConfig n;
    n.dim = c.dim;
    n.couplings = c.layers;
    n.coupling = {c.bins,
                  c.tail_bound,
                  c.hidden,
                  c.hidden_layers,
                  flowgrad::activation_from_string(c.activation),
                  c.context};
    return flowgrad::make_nsf<float>(n, gen);
  }
  flowgrad::RealNVPConfig r;
  r.dim = c.dim;
  r.couplings = c.layers;
  r.coupling = {c.hidden, c.hidden_layers, flowgrad::activation_from_string(c.activation),
                c.context};
  r.batch_norm = c.batch_norm;
  return flowgrad::make_realnvp<float>(r, gen);
}

}  // namespace train2d
