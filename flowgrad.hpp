#pragma once
// Everything a user of flowgrad needs, in one include.
#include "tensor/ops.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
#include "autodiff/gradcheck.hpp"
#include "autodiff/module.hpp"
#include "autodiff/ops.hpp"
#include "autodiff/optim.hpp"
#include "autodiff/tape.hpp"
