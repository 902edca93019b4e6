// eval and sample: load a checkpoint, measure it, draw from it.
#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "atomic_file.hpp"
#include "checkpoint.hpp"
#include "commands.hpp"
#include "density_training.hpp"
#include "flowgrad/data/csv.hpp"

namespace train2d {

namespace {

std::string meta_or(const Metadata& m, const std::string& key, const std::string& fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

// The data a density checkpoint was trained on, rebuilt from its metadata.
DataSource source_of(const LoadedModel& m, const std::string& path) {
  const std::string dataset = meta_or(m.meta, "dataset", "");
  if (dataset.empty())
    throw std::runtime_error(path + ": metadata names no dataset; pass --data FILE.csv");
  if (meta_or(m.meta, "source", "toy") == "csv")
    return DataSource::csv(dataset, std::stod(meta_or(m.meta, "test_fraction", "0.2")),
                           std::stoull(meta_or(m.meta, "seed", "0")),
                           meta_or(m.meta, "context_columns", ""));
  return DataSource::toy(dataset);
}

// --context "0.5,1": as many finite values as the model's context width.
std::vector<double> parse_context(const std::string& text, Index width) {
  if (width == 0) {
    if (!text.empty())
      throw std::invalid_argument("--context: the model is unconditional; it takes no context");
    return {};
  }
  std::vector<double> v;
  for (std::size_t start = 0; start <= text.size() && !text.empty();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string field = text.substr(start, comma - start);
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(field, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != field.size() || !std::isfinite(x))
      throw std::invalid_argument("--context: '" + field + "' is not a finite number");
    v.push_back(x);
    start = comma + 1;
  }
  if (static_cast<Index>(v.size()) != width)
    throw std::invalid_argument("--context: the model takes " + std::to_string(width) +
                                " context value(s), got " + std::to_string(v.size()));
  return v;
}

std::string csv_of_rows(const TensorF& points, const TensorF* extra,
                        const std::string& extra_name) {
  std::string text;
  for (Index j = 0; j < points.cols(); ++j) text += (j ? ",x" : "x") + std::to_string(j);
  if (extra) text += "," + extra_name;
  text += "\n";
  char buf[48];
  for (Index i = 0; i < points.rows(); ++i) {
    for (Index j = 0; j < points.cols(); ++j) {
      std::snprintf(buf, sizeof buf, j ? ",%.9g" : "%.9g", static_cast<double>(points(i, j)));
      text += buf;
    }
    if (extra) {
      std::snprintf(buf, sizeof buf, ",%.9g", static_cast<double>((*extra)[i]));
      text += buf;
    }
    text += "\n";
  }
  return text;
}

}  // namespace

int run_eval(const EvalOptions& opt) {
  LoadedModel m = load_model(opt.checkpoint);
  if (!m.density)
    throw std::runtime_error(opt.checkpoint +
                             " holds a variational model; `train_2d vi` reports its KL, and " +
                             "`train_2d sample` draws from it");
  const std::uint64_t seed = std::stoull(meta_or(m.meta, "seed", "0"));
  TensorF test;
  std::string what;
  std::unique_ptr<DataSource> source;
  if (!opt.data_csv.empty()) {
    // The run's own column choice, so that rows are x then c as in training.
    test = DataSource::csv(opt.data_csv, 0.5, 0, meta_or(m.meta, "context_columns", "")).all_rows();
    what = opt.data_csv + " (all rows)";
  } else {
    source = std::make_unique<DataSource>(source_of(m, opt.checkpoint));
    test = source->test_set(opt.test_samples, seed + 1);
    what = source->is_csv() ? source->name() + " (held-out rows)"
                            : source->name() + " (fresh points, seed + 1)";
  }
  if (test.cols() != m.density->dim() + m.density->context_dim())
    throw std::runtime_error("the data has " + std::to_string(test.cols()) +
                             " columns; the model has dimension " +
                             std::to_string(m.density->dim()) +
                             (m.density->context_dim() > 0
                                  ? " and a context of " + std::to_string(m.density->context_dim())
                                  : std::string()));
  const double nll = test_nll(*m.density, test);
  std::printf("test NLL: %.4f nats on %ld points of %s\n", nll, static_cast<long>(test.rows()),
              what.c_str());
  if (!opt.log_prob_out.empty()) {
    const TensorF lp = flowgrad::log_prob_of_rows(*m.density, test);
    write_file_atomic(opt.log_prob_out, csv_of_rows(test, &lp, "log_prob"));
    std::printf("log-densities written to %s\n", opt.log_prob_out.c_str());
  }
  if (!opt.plots_dir.empty()) {
    make_output_dir(opt.plots_dir);
    if (!source) source = std::make_unique<DataSource>(source_of(m, opt.checkpoint));
    draw_density_model(opt.plots_dir, *m.density, *source, source->name() + " - " + m.name, seed);
    std::printf("plots written to %s/\n", opt.plots_dir.c_str());
  }
  return 0;
}

int run_sample(const SampleOptions& opt) {
  if (opt.n < 1) throw std::invalid_argument("-n must be at least 1");
  LoadedModel m = load_model(opt.checkpoint);
  Generator gen(opt.seed);
  const Index c = m.density ? m.density->context_dim() : m.variational->context_dim();
  const std::vector<double> values = parse_context(opt.context, c);
  TensorF context(flowgrad::Shape{opt.n, c});
  for (Index i = 0; i < opt.n; ++i)
    for (Index j = 0; j < c; ++j) context(i, j) = float(values[static_cast<std::size_t>(j)]);
  TensorF samples;
  if (m.density) {
    samples = c > 0 ? m.density->sample(context, gen) : m.density->sample(opt.n, gen);
  } else {
    flowgrad::Tape<float> tape;
    flowgrad::NoGradGuard<float> guard(tape);
    samples = m.variational
                  ->sample_and_log_prob(tape, opt.n, gen,
                                        c > 0 ? tape.constant(context) : flowgrad::Var<float>{})
                  .x.value();
  }
  const std::string text = csv_of_rows(samples, nullptr, "");
  if (opt.out.empty() || opt.out == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    write_file_atomic(opt.out, text);
    std::fprintf(stderr, "%ld samples written to %s\n", static_cast<long>(opt.n), opt.out.c_str());
  }
  return 0;
}

}  // namespace train2d
