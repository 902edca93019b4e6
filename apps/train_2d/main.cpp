// train_2d: normalizing flows on 2-D benchmarks, user CSVs and the energies U1..U4.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.hpp"
#include "conditional_toy.hpp"
#include "flowgrad/tensor/threads.hpp"
#include "ranks.hpp"
#include "toy_datasets.hpp"

using namespace train2d;

#if defined(__SANITIZE_ADDRESS__)
// Cairo's text rendering leaves fontconfig's caches allocated at exit; they are not ours.
extern "C" const char* __lsan_default_suppressions() { return "leak:libfontconfig.so\n"; }
#endif

namespace {

void add_model_options(CLI::App& cmd, ModelConfig& m, bool density) {
  if (density)
    cmd.add_option("--model", m.model,
                   "Flow: realnvp, nsf (neural spline flow, couplings), maf (masked "
                   "autoregressive), nsf-ar (autoregressive splines), planar or radial")
        ->check(CLI::IsMember({"realnvp", "nsf", "maf", "nsf-ar", "planar", "radial"}))
        ->capture_default_str();
  else
    cmd.add_option("--model", m.model,
                   "Flow: planar, radial, iaf (inverse autoregressive), nsf or nsf-ar")
        ->check(CLI::IsMember({"planar", "radial", "iaf", "nsf", "nsf-ar"}))
        ->capture_default_str();
  cmd.add_option("--layers", m.layers,
                 "Couplings or autoregressive layers (default 8; maf/iaf 5), or planar/radial "
                 "layers")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd.add_option("--hidden", m.hidden,
                 "Width of the coupling networks' or MADEs' hidden layers (maf/iaf: 50)")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();
  cmd.add_option("--hidden-layers", m.hidden_layers, "Hidden layers of each network")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd.add_option("--activation", m.activation, "The networks' activation (maf/iaf: tanh)")
      ->check(CLI::IsMember({"relu", "leaky_relu", "tanh", "softplus", "sigmoid"}))
      ->capture_default_str();
  if (density)
    cmd.add_flag("!--no-batch-norm", m.batch_norm, "RealNVP without batch norm between couplings");
  cmd.add_option("--bins", m.bins, "nsf, nsf-ar: spline bins per coordinate")
      ->check(CLI::Range(1, 128))
      ->capture_default_str();
  cmd.add_option("--tail-bound", m.tail_bound,
                 "nsf, nsf-ar: splines act on [-B, B], identity outside")
      ->check(CLI::Range(1e-3, 1e6))
      ->capture_default_str();
}

// What the command line left to the model's own defaults.
GivenOptions given_options(const CLI::App& cmd) {
  return {cmd.count("--layers") > 0, cmd.count("--hidden") > 0, cmd.count("--activation") > 0};
}

void add_threads(CLI::App& cmd, int& threads) {
  cmd.add_option("--threads", threads, "Threads for the large matrix products")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
}

bool is_subcommand(const char* arg) {
  for (const char* s : {"train", "eval", "sample", "vi", "gallery"})
    if (std::strcmp(arg, s) == 0) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "train_2d: normalizing flows on 2-D data, on your CSV, and fitted to the energies U1-U4.\n"
      "With no subcommand it trains (train): RealNVP on two moons by default."};
  app.require_subcommand(1, 1);

  std::string datasets;
  for (const auto& n : toy_dataset_names()) datasets += (datasets.empty() ? "" : ", ") + n;

  TrainOptions train;
  CLI::App* t =
      app.add_subcommand("train", "Fit a density flow by maximum likelihood (the default)");
  std::vector<std::string> toy_names = toy_dataset_names();
  toy_names.push_back(kRotating);
  t->add_option("--dataset", train.dataset,
                "Toy dataset: " + datasets + "; or " + kRotating +
                    ", a conditional one (x | c rotates and shifts with c)")
      ->check(CLI::IsMember(toy_names))
      ->capture_default_str();
  t->add_option("--data", train.data_csv,
                "Train on a CSV of 2+ numeric columns instead (header optional)")
      ->check(CLI::ExistingFile);
  t->add_option("--context-columns", train.context_columns,
                "CSV columns (header names or 0-based indices, comma-separated) to condition "
                "on: the model is p(other columns | these)");
  t->add_option("--test-fraction", train.test_fraction, "CSV rows held out for the test NLL")
      ->check(CLI::Range(0.01, 0.9))
      ->capture_default_str();
  add_model_options(*t, train.model, true);
  t->add_option("--steps", train.steps, "Training steps (one fresh batch each)")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  t->add_option("--batch", train.batch, "Batch size")
      ->check(CLI::Range(2, 1 << 22))
      ->capture_default_str();
  t->add_option("--lr", train.lr, "Adam learning rate")
      ->check(CLI::Range(1e-12, 10.0))
      ->capture_default_str();
  t->add_option("--clip", train.clip, "Clip the gradients' global norm (0: off)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  t->add_option("--seed", train.seed,
                "Seed of initialisation and batches; test points use seed + 1")
      ->capture_default_str();
  add_threads(*t, train.threads);
  t->add_option("--out", train.out, "Output directory (default runs/<dataset>-<model>)");
  t->add_option("--checkpoint-every", train.checkpoint_every,
                "Save model.safetensors every N steps")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  t->add_option("--log-every", train.log_every,
                "Progress line every N steps when not on a terminal")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  t->add_option("--test-samples", train.test_samples, "Fresh toy points for the test NLL")
      ->check(CLI::Range(Index{1}, Index{100000000}))
      ->capture_default_str();
  t->add_flag("!--no-plots", train.plots, "Skip density.png and samples.png");
  t->add_flag("--quiet", train.quiet, "No progress output");
  t->add_option("--resume", train.resume,
                "Continue the run in this directory from its last checkpoint, with its settings "
                "(to --steps, if given), as if it had never stopped")
      ->check(CLI::ExistingDirectory);

  EvalOptions eval;
  CLI::App* e = app.add_subcommand(
      "eval", "Test NLL of a checkpoint; optionally per-point log-densities and plots");
  e->add_option("--checkpoint", eval.checkpoint, "model.safetensors written by train")->required();
  e->add_option("--data", eval.data_csv,
                "Evaluate on every row of this CSV instead of the model's test set")
      ->check(CLI::ExistingFile);
  e->add_option("--log-prob-out", eval.log_prob_out,
                "Write each test point and its log-density to this CSV");
  e->add_option("--test-samples", eval.test_samples, "Fresh toy points for the test NLL")
      ->check(CLI::Range(Index{1}, Index{100000000}))
      ->capture_default_str();
  e->add_option("--plots", eval.plots_dir,
                "Redraw density.png and samples.png into this directory");
  add_threads(*e, eval.threads);

  SampleOptions sample;
  CLI::App* s = app.add_subcommand("sample", "Draw samples from a checkpoint into a CSV");
  s->add_option("--checkpoint", sample.checkpoint, "model.safetensors written by train or vi")
      ->required();
  s->add_option("-n,--count", sample.n, "Number of samples")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  s->add_option("-o,--out", sample.out, "CSV to write (default: standard output)");
  s->add_option("--context", sample.context,
                "A conditional model's context, comma-separated values (every sample uses it)");
  s->add_option("--seed", sample.seed, "Seed of the base samples")->capture_default_str();
  add_threads(*s, sample.threads);

  ViOptions vi;
  CLI::App* v = app.add_subcommand(
      "vi", "Fit a flow (planar, radial, iaf, nsf, nsf-ar) to exp(-U) by reverse KL");
  v->add_option("--energy", vi.energy, "U1, U2, U3 or U4")
      ->check(CLI::IsMember({"U1", "U2", "U3", "U4"}, CLI::ignore_case))
      ->capture_default_str();
  add_model_options(*v, vi.model, false);
  v->add_option("--steps", vi.steps, "Training steps")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  v->add_option("--batch", vi.batch, "Samples per step")
      ->check(CLI::Range(1, 1 << 22))
      ->capture_default_str();
  v->add_option("--lr", vi.lr, "Adam learning rate")
      ->check(CLI::Range(1e-12, 10.0))
      ->capture_default_str();
  v->add_flag("--anneal", vi.anneal,
              "Anneal: loss log q + beta_t U, beta_t = min(1, 0.01 + t/10000)");
  v->add_option("--seed", vi.seed, "Seed")->capture_default_str();
  add_threads(*v, vi.threads);
  v->add_option("--out", vi.out, "Output directory (default runs/vi-<energy>)");
  v->add_option("--checkpoint-every", vi.checkpoint_every, "Save model.safetensors every N steps")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  v->add_option("--log-every", vi.log_every, "Progress line every N steps when not on a terminal")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  v->add_option("--kl-samples", vi.kl_samples, "Samples for the final KL estimate")
      ->check(CLI::Range(Index{1}, Index{100000000}))
      ->capture_default_str();
  v->add_flag("--quiet", vi.quiet, "No progress output");

  GalleryOptions gallery;
  CLI::App* g = app.add_subcommand(
      "gallery", "Train every dataset and energy; draw all densities in one figure");
  g->add_option("--out", gallery.out, "Output directory")->capture_default_str();
  g->add_option("--steps", gallery.steps, "Steps per dataset")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  g->add_option("--vi-steps", gallery.vi_steps, "Steps per energy")
      ->check(CLI::Range(1L, 1000000000L))
      ->capture_default_str();
  g->add_option("--seed", gallery.seed, "Seed")->capture_default_str();
  add_threads(*g, gallery.threads);

  // No subcommand means train: `train_2d --steps 100` is `train_2d train --steps 100`.
  std::vector<char*> args(argv, argv + argc);
  static char train_word[] = "train";
  const bool top_help =
      argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
  if (!top_help && (argc == 1 || !is_subcommand(argv[1])))
    args.insert(args.begin() + 1, train_word);

  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::CallForHelp& h) {
    return app.exit(h);
  } catch (const CLI::CallForAllHelp& h) {
    return app.exit(h);
  } catch (const CLI::ParseError& err) {
    std::fprintf(
        stderr,
        "train_2d: %s\nRun `train_2d --help` (or `train_2d <command> --help`) for the options.\n",
        err.what());
    return 2;
  }

  const auto command = [&]() -> int {
    if (*t && !train.resume.empty()) {
      // A resumed run is the stopped run: what decides its results comes from its checkpoint.
      for (const char* flag :
           {"--dataset", "--data", "--context-columns", "--test-fraction", "--model", "--layers",
            "--hidden", "--hidden-layers", "--activation", "--no-batch-norm", "--bins",
            "--tail-bound", "--batch", "--lr", "--clip", "--seed", "--out"})
        if (t->count(flag) > 0)
          throw std::invalid_argument(std::string("--resume continues a run with the settings of "
                                                  "its checkpoint; ") +
                                      flag + " cannot be given with it");
      if (t->count("--steps") == 0) train.steps = 0;
    }
    if (*t && train.resume.empty()) apply_model_defaults(train.model, given_options(*t));
    if (*v) apply_model_defaults(vi.model, given_options(*v));
    // One setting for the whole process: every subcommand's large ops use it.
    for (int n : {train.threads, eval.threads, sample.threads, vi.threads, gallery.threads})
      if (n != 1) flowgrad::set_num_threads(n);
    if (*t) return run_train(train);
    if (*e) return run_eval(eval);
    if (*s) return run_sample(sample);
    if (*v) return run_vi(vi);
    if (*g) return run_gallery(gallery);
    return 0;
  };
  const auto report = [](const std::exception& err) {
    if (dynamic_cast<const std::invalid_argument*>(&err) != nullptr) {
      std::fprintf(stderr, "train_2d: %s\n", err.what());
      return 2;
    }
    std::fprintf(stderr, "train_2d: error: %s\n", err.what());
    return 1;
  };
  // Under mpirun (a FLOWGRAD_MPI=ON build), train and vi train data-parallel over the ranks.
  return run_with_ranks(argc, argv, command, report);
}
