// train: fit a density flow to a toy dataset or a CSV, then measure and draw it.
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "atomic_file.hpp"
#include "checkpoint.hpp"
#include "commands.hpp"
#include "conditional_toy.hpp"
#include "density_training.hpp"
#include "ranks.hpp"

namespace train2d {

namespace {

std::string default_dir(const TrainOptions& opt) {
  const std::string data =
      opt.data_csv.empty() ? opt.dataset : std::filesystem::path(opt.data_csv).stem().string();
  return "runs/" + data + "-" + opt.model.model;
}

const std::string& need(const Metadata& m, const std::string& key, const std::string& path) {
  const auto it = m.find(key);
  if (it == m.end())
    throw std::runtime_error(path + ": metadata has no '" + key +
                             "' (written by a train_2d that could not resume runs)");
  return it->second;
}

template <class Number>
Number parse(const Metadata& m, const std::string& key, const std::string& path) {
  const std::string& text = need(m, key, path);
  Number x{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
  if (ec != std::errc() || end != text.data() + text.size())
    throw std::runtime_error(path + ": metadata '" + key + "' is '" + text + "', not a number");
  return x;
}

// The settings of the run in cli.resume, as its checkpoint holds them; how to run (threads,
// output, cadence) and, when given, the total steps stay the command line's.
TrainOptions resumed(const TrainOptions& cli) {
  const std::string path = cli.resume + "/model.safetensors";
  const Metadata m = read_checkpoint_metadata(path);
  if (need(m, "kind", path) != "density")
    throw std::runtime_error(path + ": holds a " + m.at("kind") + " run, not a train run");
  TrainOptions o = cli;
  o.out = cli.resume;
  o.model = config_from_metadata(m, path);
  if (need(m, "source", path) == "csv") {
    o.data_csv = need(m, "dataset", path);
    o.test_fraction = parse<double>(m, "test_fraction", path);
    const auto ctx = m.find("context_columns");
    o.context_columns = ctx == m.end() ? "" : ctx->second;
  } else {
    o.dataset = need(m, "dataset", path);
    o.data_csv.clear();
  }
  o.seed = parse<std::uint64_t>(m, "seed", path);
  o.batch = parse<flowgrad::Index>(m, "batch", path);
  o.lr = parse<double>(m, "lr", path);
  o.clip = parse<double>(m, "clip", path);
  if (cli.steps == 0) o.steps = parse<long>(m, "steps", path);
  return o;
}

}  // namespace

int run_train(const TrainOptions& cli) {
  TrainOptions opt = cli.resume.empty() ? cli : resumed(cli);
  // Data-parallel (under mpirun): every rank trains, rank 0 alone reports and writes.
  if (!is_root()) opt.quiet = true;
  check_model_for(opt.model.model, true);
  validate(opt.model);
  if (opt.steps < 1 || opt.batch < 2)
    throw std::invalid_argument("--steps must be >= 1 and --batch >= 2");
  if (!opt.context_columns.empty() && opt.data_csv.empty())
    throw std::invalid_argument("--context-columns picks columns of a CSV given with --data");
  const DataSource data = opt.data_csv.empty() ? DataSource::toy(opt.dataset)
                                               : DataSource::csv(opt.data_csv, opt.test_fraction,
                                                                 opt.seed, opt.context_columns);
  const std::string dir = opt.out.empty() ? default_dir(opt) : opt.out;
  if (is_root()) make_output_dir(dir);
  ModelConfig config = opt.model;
  config.dim = data.dim();
  config.context = data.context_dim();
  validate(config);
  Metadata meta = to_metadata(config);
  if (!data.context_columns().empty()) meta["context_columns"] = data.context_columns();
  meta["kind"] = "density";
  meta["source"] = data.is_csv() ? "csv" : "toy";
  meta["dataset"] = data.name();
  meta["seed"] = std::to_string(opt.seed);
  meta["test_fraction"] = exact_number(opt.test_fraction);
  meta["batch"] = std::to_string(opt.batch);
  meta["lr"] = exact_number(opt.lr);
  meta["clip"] = exact_number(opt.clip);
  meta["steps"] = std::to_string(opt.steps);
  const std::string checkpoint = dir + "/model.safetensors";

  if (!opt.quiet) {
    std::fprintf(
        stderr, "train_2d: %s on %s (dim %ld): %ld steps of batch %ld, Adam lr %g, seed %llu\n",
        describe(config).c_str(), data.name().c_str(), static_cast<long>(data.dim()), opt.steps,
        static_cast<long>(opt.batch), opt.lr, static_cast<unsigned long long>(opt.seed));
    std::fprintf(stderr,
                 "loss = -mean log p(x) in nats per point; a density's NLL can be negative.\n");
  }
  if (!opt.resume.empty() && !opt.quiet)
    std::fprintf(stderr, "train_2d: resuming %s\n", checkpoint.c_str());
  DensityRun run = train_density(opt, data, checkpoint, meta);
  if (!is_root()) return run.signal != 0 ? 128 + run.signal : 0;
  write_loss_csv(dir + "/loss.csv", run.losses);
  const double samples_per_s =
      static_cast<double>((run.steps_done - run.first_step) * opt.batch) / run.wall_seconds;
  if (run.signal != 0) {
    std::fprintf(stderr, "interrupted (signal %d) at step %ld of %ld; checkpoint saved to %s\n",
                 run.signal, run.steps_done, opt.steps, checkpoint.c_str());
    return 128 + run.signal;
  }
  const TensorF test = data.test_set(opt.test_samples, opt.seed + 1);
  const double nll = test_nll(*run.model, test);
  std::printf("test NLL: %.4f nats (%ld %s points, eval mode)\n", nll,
              static_cast<long>(test.rows()), data.is_csv() ? "held-out" : "fresh");
  if (opt.plots)
    draw_density_model(dir, *run.model, data, data.name() + " - " + opt.model.model, opt.seed);

  nlohmann::json metrics = {{"kind", "density"},
                            {"dataset", data.name()},
                            {"config", meta},
                            {"steps", run.steps_done},
                            {"batch", opt.batch},
                            {"lr", opt.lr},
                            {"seed", opt.seed},
                            {"threads", opt.threads},
                            {"wall_time_s", run.wall_seconds},
                            {"train_samples_per_s", samples_per_s},
                            {"final_train_loss", run.losses.back()},
                            {"test_nll_nats", nll},
                            {"test_points", test.rows()}};
  if (data.name() == kRotating) {
    // The true model's NLL on the same points: what a perfect fit would score.
    const double truth = rotating_nll(test);
    metrics["true_nll_nats"] = truth;
    std::printf("true conditional density on the same points: %.4f nats (gap %.4f)\n", truth,
                nll - truth);
  }
  write_file_atomic(dir + "/metrics.json", metrics.dump(2) + "\n");
  std::printf("%ld steps in %.1f s (%.0f samples/s)\n", run.steps_done, run.wall_seconds,
              samples_per_s);
  std::printf("outputs in %s/: model.safetensors, loss.csv, metrics.json%s\n", dir.c_str(),
              opt.plots ? (data.dim() == 2 && data.context_dim() == 0 ? ", density.png, samples.png"
                                                                      : ", samples.png")
                        : "");
  return 0;
}

}  // namespace train2d
