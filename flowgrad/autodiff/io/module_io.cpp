#include "flowgrad/autodiff/io/module_io.hpp"

#include <charconv>
#include <cstdlib>
#include <set>
#include <stdexcept>

namespace flowgrad {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

template <Scalar T>
struct Slot {
  std::string name;
  Tensor<T>* tensor;
};

template <Scalar T>
std::vector<Slot<T>> slots_of(Module<T>& m) {
  std::vector<Slot<T>> out;
  for (auto& p : m.named_parameters()) out.push_back({p.name, &p.param->value});
  for (auto& b : m.named_buffers()) out.push_back({b.name, b.tensor});
  return out;
}

const char* type_name(DType d) { return d == DType::F32 ? "float" : "double"; }

// Every check of load_module that does not need the optimizer: afterwards copy_to cannot fail.
template <Scalar T>
void check_model_tensors(const SafetensorsFile& f, const std::vector<Slot<T>>& slots,
                         bool ignore_optimizer_tensors) {
  std::set<std::string> wanted;
  for (const auto& s : slots) {
    wanted.insert(s.name);
    const auto it = f.tensors().find(s.name);
    if (it == f.tensors().end())
      fail(f.path(), "tensor '" + s.name + "' is missing (the model needs it)");
    const TensorInfo& t = it->second;
    if (t.dtype != dtype_of<T>())
      fail(f.path(), "tensor '" + s.name + "' is " + to_string(t.dtype) + " (" +
                         type_name(t.dtype) + "); this is a " + type_name(dtype_of<T>()) +
                         " model, which needs " + to_string(dtype_of<T>()));
    if (t.shape != dims_of(s.tensor->shape()))
      fail(f.path(), "tensor '" + s.name + "' has shape " + shape_string(t.shape) +
                         " in the file; the model expects " +
                         shape_string(dims_of(s.tensor->shape())));
  }
  for (const auto& [name, t] : f.tensors()) {
    if (wanted.count(name)) continue;
    if (ignore_optimizer_tensors && name.rfind(optimizer_prefix, 0) == 0) continue;
    fail(f.path(), "tensor '" + name +
                       "' is not part of this model (was it saved from another configuration?)");
  }
}

// The shortest text that reads back as the same double.
std::string number(double x) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
}

double parse_number(const SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end())
    fail(f.path(), "metadata has no '" + key + "' (not a training checkpoint?)");
  const char* s = it->second.c_str();
  char* end = nullptr;
  const double x = std::strtod(s, &end);
  if (it->second.empty() || *end != '\0')
    fail(f.path(), "metadata '" + key + "' is '" + it->second + "', not a number");
  return x;
}

template <Scalar T>
void check_optimizer_over(const std::string& path, const Adam<T>& adam,
                          const std::vector<NamedParameter<T>>& params) {
  const auto& ap = adam.params();
  bool same = ap.size() == params.size();
  for (std::size_t k = 0; same && k < ap.size(); ++k) same = ap[k] == params[k].param;
  if (!same)
    throw std::invalid_argument(path + ": the optimizer holds " + std::to_string(ap.size()) +
                                " parameters that are not the model's " +
                                std::to_string(params.size()) +
                                " in model.parameters() order; build it with "
                                "Adam(model.parameters(), ...)");
}

std::string exp_avg_name(const std::string& p) {
  return std::string(optimizer_prefix) + "exp_avg." + p;
}
std::string exp_avg_sq_name(const std::string& p) {
  return std::string(optimizer_prefix) + "exp_avg_sq." + p;
}

}  // namespace

template <Scalar T>
void save_module(const std::string& path, Module<T>& m, const Metadata& metadata) {
  std::vector<std::pair<std::string, const Tensor<T>*>> tensors;
  for (const auto& s : slots_of(m)) tensors.emplace_back(s.name, s.tensor);
  write_safetensors(path, tensors, metadata);
}

template <Scalar T>
Metadata load_module(const SafetensorsFile& file, Module<T>& m) {
  const auto slots = slots_of(m);
  check_model_tensors(file, slots, true);
  for (const auto& s : slots) file.copy_to(s.name, *s.tensor);
  return file.metadata();
}

template <Scalar T>
Metadata load_module(const std::string& path, Module<T>& m) {
  return load_module(SafetensorsFile(path), m);
}

Metadata read_metadata(const std::string& path) { return SafetensorsFile(path).metadata(); }

template <Scalar T>
void save_training_checkpoint(const std::string& path, Module<T>& model, Adam<T>& adam,
                              const Metadata& metadata) {
  const auto params = model.named_parameters();
  check_optimizer_over(path, adam, params);
  const AdamState<T> st = adam.state();
  std::vector<std::pair<std::string, const Tensor<T>*>> tensors;
  for (const auto& s : slots_of(model)) tensors.emplace_back(s.name, s.tensor);
  for (std::size_t k = 0; k < params.size(); ++k) {
    tensors.emplace_back(exp_avg_name(params[k].name), &st.exp_avg[k]);
    tensors.emplace_back(exp_avg_sq_name(params[k].name), &st.exp_avg_sq[k]);
  }
  Metadata meta = metadata;
  const std::string pre = optimizer_prefix;
  meta[pre + "step"] = std::to_string(st.steps);
  meta[pre + "lr"] = number(st.options.lr);
  meta[pre + "beta1"] = number(st.options.beta1);
  meta[pre + "beta2"] = number(st.options.beta2);
  meta[pre + "eps"] = number(st.options.eps);
  meta[pre + "weight_decay"] = number(st.options.weight_decay);
  write_safetensors(path, tensors, meta);
}

template <Scalar T>
Metadata load_training_checkpoint(const std::string& path, Module<T>& model, Adam<T>& adam) {
  const SafetensorsFile f(path);
  const auto params = model.named_parameters();
  check_optimizer_over(path, adam, params);
  const auto slots = slots_of(model);
  // The optimizer's tensors are checked as model tensors of the parameters' shapes would be.
  std::vector<Slot<T>> all = slots;
  for (const auto& p : params) {
    all.push_back({exp_avg_name(p.name), &p.param->value});
    all.push_back({exp_avg_sq_name(p.name), &p.param->value});
  }
  check_model_tensors(f, all, false);

  const std::string pre = optimizer_prefix;
  AdamState<T> st;
  const double steps = parse_number(f, pre + "step");
  if (!(steps >= 0 && steps < 1e18) || steps != static_cast<double>(static_cast<long>(steps)))
    fail(path, "metadata '" + pre + "step' is not a step count");
  st.steps = static_cast<long>(steps);
  st.options.lr = parse_number(f, pre + "lr");
  st.options.beta1 = parse_number(f, pre + "beta1");
  st.options.beta2 = parse_number(f, pre + "beta2");
  st.options.eps = parse_number(f, pre + "eps");
  st.options.weight_decay = parse_number(f, pre + "weight_decay");
  for (const auto& p : params) {
    st.exp_avg.emplace_back(p.param->value.shape());
    st.exp_avg_sq.emplace_back(p.param->value.shape());
    f.copy_to(exp_avg_name(p.name), st.exp_avg.back());
    f.copy_to(exp_avg_sq_name(p.name), st.exp_avg_sq.back());
  }
  try {
    // Checks the options before anything changes; the model's copies below cannot fail.
    adam.set_state(std::move(st));
  } catch (const std::invalid_argument& e) {
    fail(path, std::string("optimizer state: ") + e.what());
  }
  for (const auto& s : slots) f.copy_to(s.name, *s.tensor);
  return f.metadata();
}

#define FLOWGRAD_INSTANTIATE(T)                                                    \
  template void save_module(const std::string&, Module<T>&, const Metadata&);      \
  template Metadata load_module(const std::string&, Module<T>&);                   \
  template Metadata load_module(const SafetensorsFile&, Module<T>&);               \
  template void save_training_checkpoint(const std::string&, Module<T>&, Adam<T>&, \
                                         const Metadata&);                         \
  template Metadata load_training_checkpoint(const std::string&, Module<T>&, Adam<T>&);
FLOWGRAD_INSTANTIATE(float)
FLOWGRAD_INSTANTIATE(double)
#undef FLOWGRAD_INSTANTIATE

}  // namespace flowgrad
