#pragma once
// The energies U1..U4 of Rezende & Mohamed (2015, Table 1) plus the soft wall of docs/design.md §6,
// written with the tape's ops so that their gradients come from the tape.
#include <string>

#include "flowgrad/autodiff/ops.hpp"

namespace train2d {

using flowgrad::Index;
using flowgrad::Var;

// which in 1..4. z is [n, 2]; returns U(z) + W(z), [n, 1]. Throws std::invalid_argument for
// another which or another shape. Instantiated for float and double.
template <flowgrad::Scalar T>
Var<T> energy(int which, const Var<T>& z);
int energy_from_name(const std::string& name);  // "U1".."U4" (or "u1"), else std::invalid_argument

// The box that holds exp(-U - W) up to negligible mass, for integration and plotting.
struct Box {
  double x0, x1, y0, y1;
};
Box energy_box(int which);

// log Z = log of the integral of exp(-U - W) over the plane, by the midpoint rule on an
// n x n grid over energy_box (float64, max-shifted sums). Throws std::invalid_argument for n < 1.
double log_partition(int which, Index n = 1000);

}  // namespace train2d
