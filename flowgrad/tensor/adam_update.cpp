// The elementwise pass of an Adam step (detail/adam_update.hpp). Compiled once per ISA.
#include "flowgrad/tensor/detail/isa_prelude.hpp"

#include "flowgrad/tensor/detail/isa_kernels.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS {

template <Scalar T>
void adam_update(Tensor<T>& w, const Tensor<T>& g, Tensor<T>& m, Tensor<T>& v,
                 const AdamCoefficients& c) {
  const Index n = w.numel();
  if (g.numel() != n || m.numel() != n || v.numel() != n)
    throw std::invalid_argument("adam_update: parameter " + w.shape().str() + ", gradient " +
                                g.shape().str() + ", moments " + m.shape().str() + " and " +
                                v.shape().str() + " differ in size");
  const T b1 = static_cast<T>(c.beta1), b2 = static_cast<T>(c.beta2);
  // 1 - beta rounded once from double, as torch.optim.Adam does: T(1) - T(0.999) is 1.3e-5 off
  // in float, a bias that every step's second moment would carry.
  const T a1 = static_cast<T>(1 - c.beta1), a2 = static_cast<T>(1 - c.beta2);
  const T step = static_cast<T>(c.step), inv = static_cast<T>(c.inv_sqrt_c2);
  const T eps = static_cast<T>(c.eps), wd = static_cast<T>(c.weight_decay);
  // One formula for batches and for the scalar tail.
  auto update = [&](auto wi, auto gi, auto& mi, auto& vi) {
    using std::sqrt;
    const auto gd = gi + wd * wi;
    mi = b1 * mi + a1 * gd;
    vi = b2 * vi + a2 * (gd * gd);
    return wi - step * mi / (sqrt(vi) * inv + eps);
  };
  using B = simd::batch<T>;
  constexpr Index width = simd::width<T>;
  T* wp = w.data();
  const T* gp = g.data();
  T* mp = m.data();
  T* vp = v.data();
  // Chunks of whole batches: each element is updated by the same code at any thread count.
  simd::parallel_for(simd::threads_for(n, adam_grain), n, width, [&](Index b, Index e) {
    Index i = b;
    for (; i + width <= e; i += width) {
      B mi = B::load_unaligned(mp + i), vi = B::load_unaligned(vp + i);
      const B wi = update(B::load_unaligned(wp + i), B::load_unaligned(gp + i), mi, vi);
      wi.store_unaligned(wp + i);
      mi.store_unaligned(mp + i);
      vi.store_unaligned(vp + i);
    }
    for (; i < e; ++i) wp[i] = update(wp[i], gp[i], mp[i], vp[i]);
  });
}

template void adam_update(Tensor<float>&, const Tensor<float>&, Tensor<float>&, Tensor<float>&,
                          const AdamCoefficients&);
template void adam_update(Tensor<double>&, const Tensor<double>&, Tensor<double>&, Tensor<double>&,
                          const AdamCoefficients&);

}  // namespace flowgrad::FLOWGRAD_ISA_NS
