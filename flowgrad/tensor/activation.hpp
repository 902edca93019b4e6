#pragma once
// The activations a layer can apply after its linear map (linear(), MLP): each is monotone, so its
// derivative follows from its output, which is all the fused kernels keep.

namespace flowgrad {

enum class Activation { none, relu, leaky_relu, tanh, sigmoid, softplus };

}  // namespace flowgrad
