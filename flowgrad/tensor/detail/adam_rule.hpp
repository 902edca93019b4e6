#pragma once
// Not installed: Adam's elementwise rule in SIMD batches, shared by adam_update() and adam_apply()
// so that an update applied inside the backward pass gives the same bits as step(). Included from
// kernel files only.
#include <cmath>

#include "flowgrad/tensor/detail/adam_update.hpp"
#include "flowgrad/tensor/detail/simd.hpp"

namespace flowgrad::FLOWGRAD_ISA_NS::detail {

template <class T>
class AdamRule {
 public:
  using B = simd::batch<T>;
  static constexpr Index width = simd::width<T>;

  explicit AdamRule(const AdamCoefficients& c)
      : b1_(static_cast<T>(c.beta1)),
        b2_(static_cast<T>(c.beta2)),
        // 1 - beta rounded once from double, as torch.optim.Adam does: T(1) - T(0.999) is 1.3e-5
        // off in float, a bias that every step's second moment would carry.
        a1_(static_cast<T>(1 - c.beta1)),
        a2_(static_cast<T>(1 - c.beta2)),
        step_(static_cast<T>(c.step)),
        inv_(static_cast<T>(c.inv_sqrt_c2)),
        eps_(static_cast<T>(c.eps)),
        wd_(static_cast<T>(c.weight_decay)) {}

  // count elements: whole batches, then the rest through a zero-padded batch, so that every
  // element goes through the same vector instructions wherever it sits.
  void run(T* w, const T* g, T* m, T* v, Index count) const {
    Index i = 0;
    for (; i + width <= count; i += width) {
      B mi = B::load_unaligned(m + i), vi = B::load_unaligned(v + i);
      apply(B::load_unaligned(w + i), B::load_unaligned(g + i), mi, vi).store_unaligned(w + i);
      mi.store_unaligned(m + i);
      vi.store_unaligned(v + i);
    }
    if (i == count) return;
    const Index rest = count - i;
    alignas(64) T wb[width] = {}, gb[width] = {}, mb[width] = {}, vb[width] = {};
    for (Index j = 0; j < rest; ++j)
      wb[j] = w[i + j], gb[j] = g[i + j], mb[j] = m[i + j], vb[j] = v[i + j];
    B mi = B::load_aligned(mb), vi = B::load_aligned(vb);
    apply(B::load_aligned(wb), B::load_aligned(gb), mi, vi).store_aligned(wb);
    mi.store_aligned(mb);
    vi.store_aligned(vb);
    for (Index j = 0; j < rest; ++j) w[i + j] = wb[j], m[i + j] = mb[j], v[i + j] = vb[j];
  }

 private:
  // With g' = g + weight_decay w: m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; returns the new
  // w = w - step m / (sqrt(v) inv_sqrt_c2 + eps).
  B apply(B w, B g, B& m, B& v) const {
    const B gd = g + wd_ * w;
    m = b1_ * m + a1_ * gd;
    v = b2_ * v + a2_ * (gd * gd);
    return w - step_ * m / (xsimd::sqrt(v) * inv_ + eps_);
  }

  B b1_, b2_, a1_, a2_, step_, inv_, eps_, wd_;
};

}  // namespace flowgrad::FLOWGRAD_ISA_NS::detail
