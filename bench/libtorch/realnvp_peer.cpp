// The RealNVP of bench/reference_pytorch.py written against LibTorch, PyTorch's C++ API (Debian's
// libtorch-dev): the third peer of bench/compare_pytorch.py, which shows how much of PyTorch's time
// is Python's. Built by bench/libtorch/build.sh, run by the compare script:
//
//   realnvp_peer --threads 1 --repeats 1 BM_RealNVPTrainStep/H:64/B:256
//   BM_RealNVPSample/H:64/B:4096
//
// It times every named benchmark it has a model for (RealNVPTrainStep, RealNVPLogProb,
// RealNVPSample; a "/threads:n" suffix is ignored) as the Python side does: three warm-up steps,
// runs sized to about 0.3 s, the median of --repeats runs, and prints {"name": ms, ...}.
// With --loss it prints each training row's first loss instead: with torch's seed 0 this is the
// Python model's (the compare script checks it, so the two peers are the same model).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace {

constexpr double kLog2Pi = 1.8378770664093453;

// x -> H -> H -> 1 with ReLU between: the s and t networks of one coupling.
struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(int64_t hidden)
      : a(register_module("a", torch::nn::Linear(1, hidden))),
        b(register_module("b", torch::nn::Linear(hidden, hidden))),
        c(register_module("c", torch::nn::Linear(hidden, 1))) {}
  torch::Tensor forward(const torch::Tensor& x) { return c(torch::relu(b(torch::relu(a(x))))); }
  torch::nn::Linear a, b, c;
};
TORCH_MODULE(Mlp);

// d = 2: parity 0 keeps column 0 fixed, parity 1 column 1; s = tanh(net).
struct CouplingImpl : torch::nn::Module {
  CouplingImpl(int parity_, int64_t hidden)
      : parity(parity_),
        s(register_module("s", Mlp(hidden))),
        t(register_module("t", Mlp(hidden))) {}

  // Returns y and the forward log-determinant per row.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    auto fixed = x.narrow(1, parity, 1), moved = x.narrow(1, 1 - parity, 1);
    auto log_s = torch::tanh(s(fixed));
    auto y = moved * torch::exp(log_s) + t(fixed);
    return {join(fixed, y), log_s.sum(1)};
  }
  std::pair<torch::Tensor, torch::Tensor> inverse(const torch::Tensor& y) {
    auto fixed = y.narrow(1, parity, 1), moved = y.narrow(1, 1 - parity, 1);
    auto log_s = torch::tanh(s(fixed));
    auto x = (moved - t(fixed)) * torch::exp(-log_s);
    return {join(fixed, x), -log_s.sum(1)};
  }
  torch::Tensor join(const torch::Tensor& fixed, const torch::Tensor& moved) const {
    return parity == 0 ? torch::cat({fixed, moved}, 1) : torch::cat({moved, fixed}, 1);
  }

  int parity;
  Mlp s, t;
};
TORCH_MODULE(Coupling);

// Batch norm as a bijector: batch statistics in training (running averages updated with momentum
// 0.1), the running averages otherwise.
struct BatchNormImpl : torch::nn::Module {
  explicit BatchNormImpl(int64_t dim)
      : log_gamma(register_parameter("log_gamma", torch::zeros({dim}))),
        beta(register_parameter("beta", torch::zeros({dim}))),
        running_mean(register_buffer("running_mean", torch::zeros({dim}))),
        running_var(register_buffer("running_var", torch::ones({dim}))) {}

  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    torch::Tensor mean = running_mean, var = running_var;
    if (is_training()) {
      mean = x.mean(0);
      var = (x - mean).pow(2).mean(0);
      torch::NoGradGuard no_grad;
      running_mean.mul_(0.9).add_(0.1 * mean.detach());
      running_var.mul_(0.9).add_(0.1 * var.detach());
    }
    auto var_eps = var + 1e-5;
    auto y = (x - mean) / torch::sqrt(var_eps) * torch::exp(log_gamma) + beta;
    auto log_det = (log_gamma - 0.5 * torch::log(var_eps)).sum();
    return {y, log_det.expand({x.size(0)})};
  }
  std::pair<torch::Tensor, torch::Tensor> inverse(const torch::Tensor& y) {
    auto var_eps = running_var + 1e-5;
    auto x = (y - beta) * torch::exp(-log_gamma) * torch::sqrt(var_eps) + running_mean;
    auto log_det = (-log_gamma + 0.5 * torch::log(var_eps)).sum();
    return {x, log_det.expand({y.size(0)})};
  }

  torch::Tensor log_gamma, beta, running_mean, running_var;
};
TORCH_MODULE(BatchNorm);

// 8 couplings of alternating parity with batch norm between them.
struct RealNvpImpl : torch::nn::Module {
  explicit RealNvpImpl(int64_t hidden) {
    for (int i = 0; i < 8; ++i) {
      couplings.push_back(register_module("c" + std::to_string(i), Coupling(i % 2, hidden)));
      if (i != 7) norms.push_back(register_module("n" + std::to_string(i), BatchNorm(2)));
    }
  }
  torch::Tensor log_prob(torch::Tensor x) {
    auto log_det = torch::zeros({x.size(0)});
    for (std::size_t i = 0; i < couplings.size(); ++i) {
      auto [y, ld] = couplings[i]->forward(x);
      log_det = log_det + ld;
      x = y;
      if (i < norms.size()) {
        auto [z, ln] = norms[i]->forward(x);
        log_det = log_det + ln;
        x = z;
      }
    }
    return -0.5 * x.pow(2).sum(1) - kLog2Pi + log_det;
  }
  torch::Tensor inverse(torch::Tensor z) {
    auto log_det = torch::zeros({z.size(0)});
    for (std::size_t i = couplings.size(); i-- > 0;) {
      if (i < norms.size()) {
        auto [y, ln] = norms[i]->inverse(z);
        log_det = log_det + ln;
        z = y;
      }
      auto [x, ld] = couplings[i]->inverse(z);
      log_det = log_det + ld;
      z = x;
    }
    return z;
  }

  std::vector<Coupling> couplings;
  std::vector<BatchNorm> norms;
};
TORCH_MODULE(RealNvp);

template <class Step>
double median_ms(Step&& step, int repeats) {
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  auto t0 = clock::now();
  for (int i = 0; i < 3; ++i) step();
  const double per = seconds(clock::now() - t0) / 3;
  const int n = std::max(1, static_cast<int>(0.3 / std::max(per, 1e-6)));
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    t0 = clock::now();
    for (int i = 0; i < n; ++i) step();
    times.push_back(seconds(clock::now() - t0) / n * 1000);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The time of one benchmark (or with loss_only its first loss), or nothing when this peer has no
// such model.
std::optional<double> run(const std::string& name, int repeats, bool loss_only) {
  static const std::regex pattern(
      R"(BM_RealNVP(TrainStep|LogProb|Sample)/H:(\d+)/B:(\d+)(/threads:\d+)?)");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  const std::string kind = m[1];
  const int64_t hidden = std::stoll(m[2]), batch = std::stoll(m[3]);
  torch::manual_seed(0);
  RealNvp model(hidden);
  auto x = torch::randn({batch, 2});
  if (loss_only) {
    if (kind != "TrainStep") return std::nullopt;
    return -model->log_prob(x).mean().item<double>();
  }
  if (kind == "TrainStep") {
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
    model->train();
    return median_ms(
        [&] {
          auto loss = -model->log_prob(x).mean();
          opt.zero_grad();
          loss.backward();
          opt.step();
        },
        repeats);
  }
  {
    // Batch-norm statistics from one training pass, as flowgrad's benchmark sets them.
    torch::NoGradGuard no_grad;
    model->train();
    model->log_prob(x);
  }
  model->eval();
  torch::NoGradGuard no_grad;
  if (kind == "LogProb") return median_ms([&] { model->log_prob(x); }, repeats);
  return median_ms([&] { model->inverse(torch::randn({batch, 2})); }, repeats);
}

int usage() {
  std::cerr << "usage: realnvp_peer [--threads N] [--repeats R] [--loss] BENCHMARK_NAME...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeats = 1;
  bool loss_only = false;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--threads" || arg == "--repeats") && i + 1 < argc) {
      const int value = std::atoi(argv[++i]);
      if (value < 1) return usage();
      (arg == "--threads" ? threads : repeats) = value;
    } else if (arg == "--loss") {
      loss_only = true;
    } else if (arg.rfind("--", 0) == 0) {
      return usage();
    } else {
      names.push_back(arg);
    }
  }
  torch::set_num_threads(threads);
  std::string out = "{";
  for (const auto& name : names) {
    const auto value = run(name, repeats, loss_only);
    if (!value) continue;
    char buf[64];
    std::snprintf(buf, sizeof buf, loss_only ? "%.9g" : "%.6f", *value);
    out += (out.size() > 1 ? ", \"" : "\"") + name + "\": " + buf;
  }
  std::cout << out << "}\n";
  return 0;
}
