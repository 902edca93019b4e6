#pragma once
// The bijector interface. Direction convention (fixed, docs/design.md §4): forward(x) returns y and
// log|det dy/dx| per sample; inverse(y) returns x and log|det dx/dy|. Both differentiable through
// the tape unless a layer says otherwise.
#include <map>
#include <string>
#include <vector>

#include "flowgrad/autodiff/module.hpp"
#include "flowgrad/autodiff/ops.hpp"

namespace flowgrad {

// What rebuilds a layer from a file (flowgrad/flows/registry.hpp): its kind(), its constructor's
// settings as strings ("dim", "hidden", ...), and for a chain the specs of its layers in order.
// Parameter values are not part of it: they are the file's tensors.
struct LayerSpec {
  std::string kind;
  std::map<std::string, std::string> settings;
  std::vector<LayerSpec> layers;
};

template <Scalar T>
struct FlowResult {
  Var<T> out;      // [batch, dim]
  Var<T> log_det;  // [batch, 1]
};

template <Scalar T>
class Bijector : public Module<T> {
 public:
  explicit Bijector(Index dim) : dim_(dim) {}

  // Check the input (width, finite values) and name this layer in any error. `context` is the
  // conditioning input c of p(x | c), [batch, context_dim()], on the same tape; layers whose
  // parameters come from a network feed it to that network, the others ignore it. A layer with
  // context_dim() > 0 needs one; a layer with context_dim() == 0 takes none or ignores it.
  FlowResult<T> forward(const Var<T>& x, const Var<T>& context = {});
  FlowResult<T> inverse(const Var<T>& y, const Var<T>& context = {});

  Index dim() const { return dim_; }
  // The width of the context this layer conditions on; 0 for none.
  virtual Index context_dim() const { return 0; }
  virtual std::string kind() const = 0;  // "planar", "affine_coupling", ...
  // Every layer of the library describes itself, so that save_flow can store the architecture; a
  // layer of your own that does not (this default throws std::logic_error) is saved with
  // save_module and rebuilt by your code.
  virtual LayerSpec spec() const;
  // How errors name this layer; a composition sets "layers.3 (planar)".
  std::string label() const { return label_.empty() ? kind() : label_; }
  void set_label(std::string label) { label_ = std::move(label); }

 protected:
  // context is checked before these run: defined and [batch, context_dim()] when context_dim()
  // > 0; possibly undefined, and to be ignored, when it is 0.
  virtual FlowResult<T> forward_impl(const Var<T>& x, const Var<T>& context) = 0;
  virtual FlowResult<T> inverse_impl(const Var<T>& y, const Var<T>& context) = 0;
  // A chain leaves the NaN/inf check to its first layer, so the error names a real layer.
  virtual bool checks_values() const { return true; }
  // log_det of a layer whose determinant is the same for every sample, as a [batch, 1] column.
  static Var<T> per_sample(const Var<T>& log_det_row, Index batch);

 private:
  void check_input(const char* direction, const Var<T>& v) const;
  void check_context(const char* direction, const Var<T>& v, const Var<T>& context) const;
  Index dim_;
  std::string label_;
};

extern template class Bijector<float>;
extern template class Bijector<double>;

}  // namespace flowgrad
