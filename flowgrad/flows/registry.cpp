#include "flowgrad/flows/registry.hpp"

#include <cerrno>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "flowgrad/autodiff/io/detail/bounded_json.hpp"
#include "flowgrad/flows/actnorm.hpp"
#include "flowgrad/flows/autoregressive.hpp"
#include "flowgrad/flows/batch_norm.hpp"
#include "flowgrad/flows/lu_linear.hpp"
#include "flowgrad/flows/permutation.hpp"
#include "flowgrad/flows/planar.hpp"
#include "flowgrad/flows/radial.hpp"
#include "flowgrad/flows/spline_coupling.hpp"
#include "flowgrad/tensor/budget.hpp"

namespace flowgrad {

using json = nlohmann::json;

namespace {

const char* const key_architecture = "flowgrad.architecture";
const char* const key_model = "flowgrad.model";
const char* const key_dtype = "flowgrad.dtype";

// Limits on sizes read from a file, so that a corrupt one fails with a message rather than an
// attempt to allocate terabytes.
constexpr long long max_width = 1 << 16;  // dim, hidden
constexpr long long max_hidden_layers = 64;
constexpr std::size_t max_layers = 100000;  // in the whole model, nested compositions included
// Containers may open at depths 0..max_json_depth: 15 compositions nested inside each other.
constexpr int max_json_depth = 31;
// Rebuilding the model a file holds may allocate, in tensors, four times the file's tensor data
// (the parameters and buffers, which must all be in the file; their gradients; a MADE's masks, one
// per weight; and the temporaries a layer initialises its weights through) and this much more; a
// description of a larger model is refused at the allocation that passes it.
constexpr std::size_t load_budget_factor = 4;
constexpr std::size_t load_budget_slack = std::size_t{16} << 20;

template <Scalar T>
const char* dtype_name() {
  return std::is_same_v<T, float> ? "float32" : "float64";
}

// An error that already names its layer, as opposed to a constructor's own std::invalid_argument.
struct SpecError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::string at(const std::string& where) { return where.empty() ? "the top level" : where; }

// A layer's settings as its factory reads them: each read checks the value, and build_layer then
// rejects any setting no read asked for (a misspelt key, a setting of another layer).
class Settings {
 public:
  Settings(const LayerSpec& spec, std::string where) : spec_(spec), where_(std::move(where)) {}

  const std::string& text(const std::string& key) {
    const auto it = spec_.settings.find(key);
    if (it == spec_.settings.end()) bad("has no setting '" + key + "'");
    used_.insert(key);
    return it->second;
  }
  long long integer(const std::string& key, long long lo, long long hi) {
    const std::string& v = text(key);
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno != 0 || x < lo || x > hi)
      bad("has setting '" + key + "' = '" + v + "', not an integer in " + std::to_string(lo) +
          ".." + std::to_string(hi));
    return x;
  }
  double real(const std::string& key) {
    const std::string& v = text(key);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') bad("has setting '" + key + "' = '" + v + "', not a number");
    return x;
  }
  Index dim() { return static_cast<Index>(integer("dim", 1, max_width)); }
  Activation activation(const std::string& key) {
    const std::string& v = text(key);
    try {
      return activation_from_string(v);
    } catch (const std::invalid_argument& e) {
      bad("has setting '" + key + "' = '" + v + "': " + e.what());
    }
  }
  // "1,0,1": one 0/1 per column.
  std::vector<int> mask(const std::string& key, Index dim) {
    const std::string& v = text(key);
    std::vector<int> m;
    for (std::size_t i = 0; i < v.size(); i += 2) {
      if ((v[i] != '0' && v[i] != '1') || (i + 1 < v.size() && v[i + 1] != ','))
        bad("has setting '" + key + "' = '" + v + "', not a comma-separated list of 0 and 1");
      m.push_back(v[i] - '0');
    }
    if (static_cast<Index>(m.size()) != dim || v.empty() || v.back() == ',')
      bad("has setting '" + key + "' = '" + v + "', not " + std::to_string(dim) +
          " comma-separated 0s and 1s");
    return m;
  }
  // A setting files from before it existed do not have: `fallback` when absent.
  long long optional_integer(const std::string& key, long long lo, long long hi,
                             long long fallback) {
    return spec_.settings.count(key) ? integer(key, lo, hi) : fallback;
  }
  Index context() { return static_cast<Index>(optional_integer("context", 0, max_width, 0)); }
  const std::vector<LayerSpec>& layers() {
    layers_used_ = true;
    return spec_.layers;
  }

  // Settings no factory read are errors too: the file says something this library would ignore.
  void check_all_used() const {
    for (const auto& [key, value] : spec_.settings)
      if (!used_.count(key))
        bad("has a setting '" + key + "' that " + spec_.kind + " does not take");
    if (!spec_.layers.empty() && !layers_used_)
      bad("has layers, but " + spec_.kind + " holds none");
  }
  const std::string& where() const { return where_; }
  [[noreturn]] void bad(const std::string& what) const {
    throw SpecError("the " + spec_.kind + " layer at " + at(where_) + " " + what);
  }

 private:
  const LayerSpec& spec_;
  std::string where_;
  std::set<std::string> used_;
  bool layers_used_ = false;
};

template <Scalar T>
using LayerPtr = std::unique_ptr<Bijector<T>>;
template <Scalar T>
using Factory = LayerPtr<T> (*)(Settings&, Generator&);

template <Scalar T>
LayerPtr<T> build_layer(const LayerSpec& spec, const std::string& where, Generator& gen);

template <Scalar T>
std::unique_ptr<Composition<T>> build_chain(Settings& s, Generator& gen) {
  auto chain = std::make_unique<Composition<T>>(s.dim());
  const auto& layers = s.layers();
  // An empty chain builds but cannot be used (its forward and inverse throw): refuse it here.
  if (layers.empty()) s.bad("has no layers");
  if (layers.size() > max_layers) s.bad("has more than " + std::to_string(max_layers) + " layers");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string where =
        (s.where().empty() ? "" : s.where() + ".") + "layers." + std::to_string(i);
    LayerPtr<T> layer = build_layer<T>(layers[i], where, gen);
    if (layer->dim() != chain->dim())
      throw SpecError("the " + layers[i].kind + " layer at " + where + " has dimension " +
                      std::to_string(layer->dim()) + " in a chain of dimension " +
                      std::to_string(chain->dim()));
    chain->add(std::move(layer));
  }
  return chain;
}

// One factory per layer: its constructor's arguments read back from its spec().
template <Scalar T>
LayerPtr<T> make_planar(Settings& s, Generator& g) {
  return std::make_unique<Planar<T>>(s.dim(), g);
}
template <Scalar T>
LayerPtr<T> make_radial(Settings& s, Generator& g) {
  return std::make_unique<Radial<T>>(s.dim(), g);
}
template <Scalar T>
LayerPtr<T> make_coupling(Settings& s, Generator& g) {
  std::vector<int> mask = s.mask("mask", s.dim());
  CouplingConfig c;
  c.hidden = static_cast<Index>(s.integer("hidden", 1, max_width));
  c.hidden_layers = static_cast<int>(s.integer("hidden_layers", 1, max_hidden_layers));
  c.activation = s.activation("activation");
  c.context = s.context();
  return std::make_unique<AffineCoupling<T>>(std::move(mask), c, g);
}
template <Scalar T>
LayerPtr<T> make_spline_coupling(Settings& s, Generator& g) {
  std::vector<int> mask = s.mask("mask", s.dim());
  SplineCouplingConfig c;
  c.bins = static_cast<Index>(s.integer("bins", 1, 128));
  c.tail_bound = s.real("tail_bound");
  c.hidden = static_cast<Index>(s.integer("hidden", 1, max_width));
  c.hidden_layers = static_cast<int>(s.integer("hidden_layers", 1, max_hidden_layers));
  c.activation = s.activation("activation");
  c.context = s.context();
  return std::make_unique<SplineCoupling<T>>(std::move(mask), c, g);
}
MADEConfig made_settings(Settings& s) {
  MADEConfig c;
  c.hidden = static_cast<Index>(s.integer("hidden", 1, max_width));
  c.hidden_layers = static_cast<int>(s.integer("hidden_layers", 1, made_max_hidden_layers));
  c.activation = s.activation("activation");
  c.context = s.context();
  return c;
}
template <Scalar T>
LayerPtr<T> make_masked_affine(Settings& s, Generator& g) {
  const Index dim = s.dim();
  MaskedAffineConfig c;
  c.made = made_settings(s);
  c.log_scale_bound = s.real("log_scale_bound");
  return std::make_unique<MaskedAffineAutoregressive<T>>(dim, c, g);
}
template <Scalar T>
LayerPtr<T> make_masked_spline(Settings& s, Generator& g) {
  const Index dim = s.dim();
  SplineCouplingConfig c;
  c.bins = static_cast<Index>(s.integer("bins", 1, 128));
  c.tail_bound = s.real("tail_bound");
  const MADEConfig m = made_settings(s);
  c.hidden = m.hidden;
  c.hidden_layers = m.hidden_layers;
  c.activation = m.activation;
  c.context = m.context;
  return std::make_unique<MaskedSplineAutoregressive<T>>(dim, c, g);
}
template <Scalar T>
LayerPtr<T> make_batch_norm(Settings& s, Generator&) {
  const Index dim = s.dim();
  const double momentum = s.real("momentum");
  return std::make_unique<BatchNorm<T>>(dim, momentum, s.real("eps"));
}
template <Scalar T>
LayerPtr<T> make_actnorm(Settings& s, Generator&) {
  return std::make_unique<ActNorm<T>>(s.dim());
}
template <Scalar T>
LayerPtr<T> make_permutation(Settings& s, Generator& g) {
  const Index dim = s.dim();
  const std::string& mode = s.text("mode");
  PermutationMode m{};
  try {
    m = permutation_mode_from_string(mode);
  } catch (const std::invalid_argument& e) {
    s.bad("has setting 'mode' = '" + mode + "': " + e.what());
  }
  // A random order drawn here is overwritten by the file's `order` buffer.
  return std::make_unique<Permutation<T>>(dim, m, g);
}
template <Scalar T>
LayerPtr<T> make_lu_linear(Settings& s, Generator&) {
  return std::make_unique<LULinear<T>>(s.dim());
}
template <Scalar T>
LayerPtr<T> make_composition(Settings& s, Generator& g) {
  return build_chain<T>(s, g);
}

// Every layer the library can rebuild, by kind(): a new layer is its spec(), a factory above and
// one line here.
template <Scalar T>
const std::map<std::string, Factory<T>>& layer_table() {
  static const std::map<std::string, Factory<T>> table{
      {"planar", &make_planar<T>},
      {"radial", &make_radial<T>},
      {"affine_coupling", &make_coupling<T>},
      {"spline_coupling", &make_spline_coupling<T>},
      {"masked_affine_autoregressive", &make_masked_affine<T>},
      {"masked_spline_autoregressive", &make_masked_spline<T>},
      {"batch_norm", &make_batch_norm<T>},
      {"actnorm", &make_actnorm<T>},
      {"permutation", &make_permutation<T>},
      {"lu_linear", &make_lu_linear<T>},
      {"composition", &make_composition<T>},
  };
  return table;
}

template <Scalar T>
LayerPtr<T> build_layer(const LayerSpec& spec, const std::string& where, Generator& gen) {
  const auto& table = layer_table<T>();
  const auto it = table.find(spec.kind);
  if (it == table.end()) throw SpecError("unknown layer kind '" + spec.kind + "' at " + at(where));
  Settings settings(spec, where);
  LayerPtr<T> layer;
  try {
    layer = it->second(settings, gen);
  } catch (const SpecError&) {
    throw;
  } catch (const std::length_error& e) {
    // TensorBudget: the description asks for more memory than the file or the caller allows.
    throw SpecError("the " + spec.kind + " layer at " + at(where) +
                    " makes the model larger than allowed (" + e.what() + ")");
  } catch (const std::invalid_argument& e) {
    // The constructors' own checks (a mask that fixes every column, eps <= 0) name no layer.
    throw SpecError("the " + spec.kind + " layer at " + at(where) + ": " + e.what());
  }
  settings.check_all_used();
  return layer;
}

// `count` is the number of layers read so far in the whole model, below its top level.
LayerSpec spec_from_json(const json& j, const std::string& where, std::size_t& count) {
  if (!where.empty() && ++count > max_layers)
    throw std::invalid_argument("the architecture has more than " + std::to_string(max_layers) +
                                " layers (at " + where + ")");
  if (!j.is_object())
    throw std::invalid_argument("the layer at " + at(where) + " is not a JSON object");
  LayerSpec spec;
  const auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string())
    throw std::invalid_argument("the layer at " + at(where) + " has no \"kind\" string");
  spec.kind = kind->get<std::string>();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "kind") continue;
    if (it.key() == "layers") {
      if (!it.value().is_array())
        throw std::invalid_argument("the layer at " + at(where) + ": \"layers\" is not an array");
      for (std::size_t i = 0; i < it.value().size(); ++i)
        spec.layers.push_back(spec_from_json(
            it.value()[i], (where.empty() ? "" : where + ".") + "layers." + std::to_string(i),
            count));
      continue;
    }
    if (!it.value().is_string())
      throw std::invalid_argument("the " + spec.kind + " layer at " + at(where) + ": setting '" +
                                  it.key() + "' is " + it.value().dump() + ", not a string");
    spec.settings[it.key()] = it.value().get<std::string>();
  }
  return spec;
}

json spec_to_json(const LayerSpec& spec) {
  json j = json::object();
  j["kind"] = spec.kind;
  for (const auto& [key, value] : spec.settings) {
    if (key == "kind" || key == "layers")
      throw std::logic_error(spec.kind + ": spec() uses the reserved setting name '" + key + "'");
    j[key] = value;
  }
  if (!spec.layers.empty()) {
    j["layers"] = json::array();
    for (const auto& child : spec.layers) j["layers"].push_back(spec_to_json(child));
  }
  return j;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// Buffers whose values carry structure are checked as soon as they are loaded, so that a bad
// file fails here, naming the file, and not at the model's first use: a permutation's order.
template <Scalar T>
void check_loaded_values(Composition<T>& chain, const std::string& path) {
  for (std::size_t i = 0; i < chain.size(); ++i) {
    if (auto* inner = dynamic_cast<Composition<T>*>(&chain[i])) {
      check_loaded_values(*inner, path);
    } else if (auto* p = dynamic_cast<Permutation<T>*>(&chain[i])) {
      try {
        p->indices();
      } catch (const std::invalid_argument& e) {
        fail(path, e.what());
      }
    }
  }
}

template <Scalar T, class Model>
std::unique_ptr<Model> load_flow(const std::string& path, const std::string& kind) {
  const SafetensorsFile file(path);
  const Metadata& meta = file.metadata();
  const auto arch = meta.find(key_architecture);
  if (arch == meta.end())
    fail(path, std::string("metadata has no '") + key_architecture +
                   "': not written by save_flow (load the tensors with load_module into a model "
                   "you build)");
  const auto model_kind = meta.find(key_model);
  if (model_kind == meta.end()) fail(path, std::string("metadata has no '") + key_model + "'");
  if (model_kind->second != kind) {
    if (model_kind->second == "density" || model_kind->second == "variational")
      fail(path, "holds a " + model_kind->second + " flow; load it with load_" +
                     model_kind->second + "_flow");
    fail(path, std::string("metadata '") + key_model + "' is '" + model_kind->second +
                   "' (density or variational)");
  }
  const auto dtype = meta.find(key_dtype);
  if (dtype == meta.end()) fail(path, std::string("metadata has no '") + key_dtype + "'");
  if (dtype->second != dtype_name<T>())
    fail(path, "holds a " + dtype->second + " flow; this call loads " + dtype_name<T>() +
                   (std::is_same_v<T, float> ? " (use <double>)" : " (use <float>)"));
  // Every parameter and buffer must be in the file, so the model's tensors cannot need more bytes
  // than the file's data holds (T's size is checked per tensor by load_module).
  std::size_t data_bytes = 0;
  for (const auto& [name, t] : file.tensors())
    data_bytes += static_cast<std::size_t>(t.end - t.begin);
  std::unique_ptr<Composition<T>> chain;
  try {
    chain = build_flow<T>(arch->second, load_budget_factor * data_bytes + load_budget_slack);
  } catch (const std::invalid_argument& e) {
    fail(path, e.what());
  }
  auto model = std::make_unique<Model>(std::move(chain));
  load_module(file, *model);
  check_loaded_values(model->transform(), path);
  return model;
}

}  // namespace

std::string architecture_json(const LayerSpec& spec) { return spec_to_json(spec).dump(); }

template <Scalar T>
std::unique_ptr<Composition<T>> build_flow(const std::string& architecture,
                                           std::size_t max_tensor_bytes) {
  json j;
  try {
    j = detail::parse_json_bounded(architecture, max_json_depth);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("the architecture is not valid JSON (") + e.what() +
                                ")");
  } catch (const detail::JsonTooDeep& e) {
    throw std::invalid_argument(std::string("the architecture is ") + e.what());
  }
  std::size_t count = 0;
  const LayerSpec spec = spec_from_json(j, "", count);
  j = json();  // the tree is done with: free it before the model takes memory
  if (spec.kind != "composition")
    throw std::invalid_argument("the architecture's top level is a '" + spec.kind +
                                "', not a composition");
  Generator gen(0);  // any values do: a load overwrites them
  TensorBudget budget(max_tensor_bytes);
  LayerPtr<T> layer = build_layer<T>(spec, "", gen);
  return std::unique_ptr<Composition<T>>(static_cast<Composition<T>*>(layer.release()));
}

template <Scalar T>
Metadata flow_metadata(FlowModel<T>& model, const Metadata& extra) {
  std::string kind;
  if (dynamic_cast<DensityFlow<T>*>(&model))
    kind = "density";
  else if (dynamic_cast<VariationalFlow<T>*>(&model))
    kind = "variational";
  else
    throw std::invalid_argument(
        "save_flow: the model is neither a DensityFlow nor a VariationalFlow");
  Metadata meta = extra;
  meta[key_architecture] = architecture_json(model.transform().spec());
  meta[key_model] = kind;
  meta[key_dtype] = dtype_name<T>();
  return meta;
}

template <Scalar T>
void save_flow(const std::string& path, FlowModel<T>& model, const Metadata& extra) {
  save_module(path, model, flow_metadata(model, extra));
}

template <Scalar T>
std::unique_ptr<DensityFlow<T>> load_density_flow(const std::string& path) {
  return load_flow<T, DensityFlow<T>>(path, "density");
}

template <Scalar T>
std::unique_ptr<VariationalFlow<T>> load_variational_flow(const std::string& path) {
  return load_flow<T, VariationalFlow<T>>(path, "variational");
}

#define FLOWGRAD_INSTANTIATE(T)                                                           \
  template void save_flow(const std::string&, FlowModel<T>&, const Metadata&);            \
  template Metadata flow_metadata(FlowModel<T>&, const Metadata&);                        \
  template std::unique_ptr<DensityFlow<T>> load_density_flow(const std::string&);         \
  template std::unique_ptr<VariationalFlow<T>> load_variational_flow(const std::string&); \
  template std::unique_ptr<Composition<T>> build_flow(const std::string&, std::size_t);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
