#pragma once
// The subcommands of train_2d. Each returns the process exit code; errors are exceptions, turned
// into messages by main().
#include <cstdint>
#include <string>

#include "model_config.hpp"

namespace train2d {

struct TrainOptions {
  ModelConfig model;
  std::string dataset = "moons";
  std::string data_csv;         // when set, train on this file instead of a toy dataset
  std::string context_columns;  // CSV columns (names or indices) to condition on: p(x | c)
  double test_fraction = 0.2;   // CSV rows held out for the test NLL
  long steps = 3000;            // with resume, 0 means the stopped run's own total
  flowgrad::Index batch = 512;
  double lr = 1e-3;
  double clip = 0;  // global gradient-norm limit; 0 = none
  std::uint64_t seed = 0;
  int threads = 1;
  std::string out;     // output directory; empty = runs/<dataset>-<model>
  std::string resume;  // a run's directory: continue it with the settings its checkpoint holds
  long checkpoint_every = 1000;
  long log_every = 500;
  flowgrad::Index test_samples = 20000;
  bool plots = true;
  bool quiet = false;
};

struct EvalOptions {
  std::string checkpoint;
  std::string data_csv;      // evaluate on this whole file instead of the model's test set
  std::string log_prob_out;  // CSV of each test point's log-density
  flowgrad::Index test_samples = 20000;
  std::string plots_dir;  // redraw density.png and samples.png here
  int threads = 1;
};

struct SampleOptions {
  std::string checkpoint;
  std::string context;  // a conditional model's context: comma-separated values
  flowgrad::Index n = 1000;
  std::string out;  // CSV path
  std::uint64_t seed = 0;
  int threads = 1;
};

struct ViOptions {
  std::string energy = "U1";
  ModelConfig model{"planar", 2, 32, 64, 2, "relu", false};
  long steps = 10000;
  flowgrad::Index batch = 512;
  double lr = 1e-3;
  bool anneal = false;  // loss log q + beta_t U with beta_t = min(1, 0.01 + t / 10000)
  std::uint64_t seed = 0;
  int threads = 1;
  std::string out;  // empty = runs/vi-<energy>
  long checkpoint_every = 1000;
  long log_every = 500;
  flowgrad::Index kl_samples = 100000;
  bool quiet = false;
};

struct GalleryOptions {
  std::string out = "runs/gallery";
  long steps = 3000;     // per dataset
  long vi_steps = 5000;  // per energy
  std::uint64_t seed = 0;
  int threads = 1;
};

int run_train(const TrainOptions& opt);
int run_eval(const EvalOptions& opt);
int run_sample(const SampleOptions& opt);
int run_vi(const ViOptions& opt);
int run_gallery(const GalleryOptions& opt);

}  // namespace train2d
