#pragma once
// The activations a layer can apply after its linear map (linear(), MLP): each is monotone, so its
// derivative follows from its output, which is all the fused kernels keep.
#include <string>

namespace flowgrad {

enum class Activation { none, relu, leaky_relu, tanh, sigmoid, softplus };

// "none", "relu", "leaky_relu", "tanh", "sigmoid", "softplus": the names checkpoints store.
const char* to_string(Activation a);
// The inverse of to_string; any other string throws std::invalid_argument listing the choices.
Activation activation_from_string(const std::string& s);

}  // namespace flowgrad
