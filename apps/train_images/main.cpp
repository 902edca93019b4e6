// train_images: a normalizing flow fitted to Fashion-MNIST (784 pixels), reported in bits per
// dimension of the 8-bit test images, with PNG grids of samples (docs/design.md §13).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string>

#include "atomic_file.hpp"
#include "flowgrad/flows/fit.hpp"
#include "flowgrad/flows/registry.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "image_data.hpp"
#include "image_models.hpp"
#include "plots.hpp"
#include "ranks.hpp"
#include "training_loop.hpp"

#if defined(__SANITIZE_ADDRESS__)
// Cairo's text rendering leaves fontconfig's caches allocated at exit; they are not ours.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace {

using namespace trainimg;

struct Options {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  ImageModelConfig model;
  long epochs = 10;
  long steps = 0;  // computed from epochs
  Index batch = 256;
  double lr = 1e-3;
  double lambda = 0.05;
  bool conditional = false;
  Index limit_train = 0, limit_test = 0;
  std::uint64_t seed = 0;
  int threads = 1;
  std::string out = "runs/fashion-mnist";
  long log_every = 50;
  long checkpoint_every = 500;
  bool quiet = false;
};

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

int run(Options opt) {
  if (opt.epochs < 1 || opt.batch < 2) throw std::invalid_argument("--epochs >= 1, --batch >= 2");
  if (!(opt.lambda > 0 && opt.lambda < 0.5)) throw std::invalid_argument("--lambda in (0, 0.5)");
  const ImageSet train = load_fashion_mnist(opt.data_dir, "train", opt.limit_train);
  const ImageSet test = load_fashion_mnist(opt.data_dir, "test", opt.limit_test);
  const Index D = train.dim();
  opt.model.dim = D;
  opt.model.context = opt.conditional ? kClasses : 0;
  opt.steps = opt.epochs * std::max<Index>(1, train.count / opt.batch);
  // Data-parallel (under mpirun): rank 0 alone reports and writes.
  const bool root = train2d::is_root();
  if (!root) opt.quiet = true;
  if (root) train2d::make_output_dir(opt.out);

  Generator gen(opt.seed);
  flowgrad::DensityFlow<float> model(build_image_flow(opt.model, gen));
  if (!opt.quiet)
    std::fprintf(stderr,
                 "train_images: %s (%d layers, hidden %ld x %d%s, %ld parameters) on %ld images of "
                 "%ld pixels: %ld epochs = %ld steps of batch %ld, Adam lr %g, lambda %g\n",
                 opt.model.model.c_str(),
                 opt.model.layers > 0 ? opt.model.layers : default_layers(opt.model.model),
                 static_cast<long>(opt.model.hidden), opt.model.hidden_layers,
                 opt.conditional ? ", class-conditional" : "",
                 static_cast<long>(model.parameter_count()), static_cast<long>(train.count),
                 static_cast<long>(D), opt.epochs, opt.steps, static_cast<long>(opt.batch), opt.lr,
                 opt.lambda);

  flowgrad::FitOptions fit;
  fit.steps = opt.steps;
  fit.batch = opt.batch;
  fit.adam.lr = opt.lr;
  fit.seed = opt.seed;
  fit.collective = train2d::ranks();
  // Each step: `batch` images drawn with replacement, freshly dequantised.
  std::vector<Index> rows;
  flowgrad::DensityTrainer<float> trainer(
      model,
      [&](Index n, Generator& g, TensorF& out) {
        rows.resize(static_cast<std::size_t>(n));
        for (Index& r : rows)
          r = static_cast<Index>(g.below(static_cast<std::uint64_t>(train.count)));
        preprocess(train, rows, opt.lambda, opt.conditional, g, out);
      },
      fit);
  // The batches continue the stream that initialised the model; a generator of their own with the
  // same seed would replay the numbers behind the weights and permutations as indices and noise.
  // Data-parallel ranks draw from streams of their own (seeded per rank by the trainer).
  if (!fit.collective) trainer.generator() = gen;
  flowgrad::Metadata meta{{"kind", "density"},
                          {"dataset", "fashion-mnist"},
                          {"model", opt.model.model},
                          {"lambda", std::to_string(opt.lambda)},
                          {"conditional", opt.conditional ? "true" : "false"}};
  train2d::LoopSettings settings;
  settings.steps = opt.steps;
  settings.log_every = opt.log_every;
  settings.checkpoint_every = opt.checkpoint_every;
  settings.quiet = opt.quiet;
  settings.hint = "try a lower --lr";
  const std::string checkpoint = opt.out + "/model.safetensors";
  settings.save = [&](const train2d::LoopResult& so_far) {
    if (root) train2d::write_loss_csv(opt.out + "/loss.csv", so_far.losses);
    flowgrad::save_trainer(checkpoint, trainer, meta);  // every rank: rank 0 writes
  };
  const train2d::LoopResult result = train2d::run_training_loop(settings, trainer);
  if (result.signal != 0) return 128 + result.signal;
  if (!root) return 0;

  // Test bits/dim: every test image, one dequantisation draw (seed + 1), in eval mode.
  model.eval();
  Generator test_gen(opt.seed + 1);
  std::vector<Index> all(static_cast<std::size_t>(test.count));
  std::iota(all.begin(), all.end(), Index{0});
  TensorF test_rows;
  std::vector<double> log_jac;
  preprocess(test, all, opt.lambda, opt.conditional, test_gen, test_rows, &log_jac);
  const double nll = flowgrad::test_nll(model, test_rows, 500);
  const double mean_jac =
      std::accumulate(log_jac.begin(), log_jac.end(), 0.0) / static_cast<double>(log_jac.size());
  const double bpd = bits_per_dim(-nll, mean_jac, D);
  std::printf("test: %.4f bits/dim on %ld images (-log p_x %.2f nats, preprocessing %.2f nats)\n",
              bpd, static_cast<long>(test.count), nll, -mean_jac);

  // A 10 x 10 grid of samples; a class-conditional model draws row k from class k.
  Generator sample_gen(opt.seed + 2);
  TensorF samples;
  if (opt.conditional) {
    TensorF labels(flowgrad::Shape{100, kClasses}, 0.0f);
    for (Index i = 0; i < 100; ++i) labels(i, i / 10) = 1;
    samples = model.sample(labels, sample_gen);
  } else {
    samples = model.sample(100, sample_gen);
  }
  train2d::write_image_grid_png(opt.out + "/samples.png", to_pixels(samples, D, opt.lambda), 100,
                                train.height, train.width, 10);
  const double steps_per_s = static_cast<double>(result.steps_done - result.first_step) /
                             std::max(result.wall_seconds, 1e-9);
  nlohmann::json metrics = {
      {"dataset", "fashion-mnist"},
      {"model", opt.model.model},
      {"layers", opt.model.layers > 0 ? opt.model.layers : default_layers(opt.model.model)},
      {"hidden", opt.model.hidden},
      {"hidden_layers", opt.model.hidden_layers},
      {"conditional", opt.conditional},
      {"parameters", model.parameter_count()},
      {"epochs", opt.epochs},
      {"steps", result.steps_done},
      {"batch", opt.batch},
      {"lr", opt.lr},
      {"lambda", opt.lambda},
      {"seed", opt.seed},
      {"threads", opt.threads},
      {"train_images", train.count},
      {"test_images", test.count},
      {"wall_time_s", result.wall_seconds},
      {"steps_per_s", steps_per_s},
      {"peak_rss_mb", peak_rss_mb()},
      {"test_bits_per_dim", bpd},
      {"test_nll_logit_space_nats", nll}};
  train2d::write_file_atomic(opt.out + "/metrics.json", metrics.dump(2) + "\n");
  std::printf(
      "%ld steps in %.1f s (%.2f steps/s), peak memory %.0f MB; outputs in %s/: "
      "model.safetensors, loss.csv, metrics.json, samples.png\n",
      result.steps_done, result.wall_seconds, steps_per_s, peak_rss_mb(), opt.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Fit a normalizing flow to Fashion-MNIST; report test bits/dim and draw samples"};
  app.add_option("--data-dir", opt.data_dir, "Directory of the Fashion-MNIST IDX files (.gz)")
      ->capture_default_str();
  app.add_option("--model", opt.model.model, "realnvp, maf or nsf")
      ->check(CLI::IsMember({"realnvp", "maf", "nsf"}))
      ->capture_default_str();
  app.add_option("--layers", opt.model.layers, "Layers (default: realnvp 6, maf 5, nsf 4)")
      ->check(CLI::Range(1, 100));
  app.add_option("--hidden", opt.model.hidden, "Width of the networks' hidden layers")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  app.add_option("--hidden-layers", opt.model.hidden_layers, "Hidden layers per network")
      ->check(CLI::Range(1, 3))
      ->capture_default_str();
  app.add_option("--epochs", opt.epochs, "Passes over the training images")
      ->check(CLI::Range(1L, 100000L))
      ->capture_default_str();
  app.add_option("--batch", opt.batch, "Images per step")
      ->check(CLI::Range(2, 1 << 16))
      ->capture_default_str();
  app.add_option("--lr", opt.lr, "Adam learning rate")
      ->check(CLI::Range(1e-8, 1.0))
      ->capture_default_str();
  app.add_option("--lambda", opt.lambda, "Logit squeeze: p = lambda + (1 - 2 lambda) u")
      ->capture_default_str();
  app.add_flag("--conditional", opt.conditional,
               "Class-conditional: p(x | label), one-hot context");
  app.add_option("--limit-train", opt.limit_train, "Use only the first N training images")
      ->check(CLI::Range(Index{1}, Index{1} << 30));
  app.add_option("--limit-test", opt.limit_test, "Use only the first N test images")
      ->check(CLI::Range(Index{1}, Index{1} << 30));
  app.add_option("--seed", opt.seed, "Seed")->capture_default_str();
  app.add_option("--threads", opt.threads, "Threads for the large products")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--out", opt.out, "Output directory")->capture_default_str();
  app.add_option("--log-every", opt.log_every, "Progress line every N steps when not on a terminal")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  app.add_option("--checkpoint-every", opt.checkpoint_every, "Save the run every N steps")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  app.add_flag("--quiet", opt.quiet, "No progress output");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const auto command = [&] {
    if (opt.threads != 1) flowgrad::set_num_threads(opt.threads);
    return run(opt);
  };
  const auto report = [](const std::exception& e) {
    std::fprintf(stderr, "train_images: %s\n", e.what());
    return dynamic_cast<const std::invalid_argument*>(&e) != nullptr ? 2 : 1;
  };
  // Under mpirun (a FLOWGRAD_MPI=ON build) it trains data-parallel over the ranks.
  return train2d::run_with_ranks(argc, argv, command, report);
}
