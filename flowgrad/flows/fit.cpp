#include "flowgrad/flows/fit.hpp"

#include <chrono>
#include <cmath>
#include <limits>

#include "flowgrad/tensor/ops.hpp"

namespace flowgrad {

namespace {
void check_options(const FitOptions& o) {
  if (o.check_every < 1)
    throw std::invalid_argument("FitOptions: check_every must be at least 1, got " +
                                std::to_string(o.check_every));
  if (o.steps < 0 || o.epochs < 0 || o.batch < 1 || !(o.clip >= 0) || o.eval_every < 0 ||
      o.eval_batch < 1 || !(o.adam.lr > 0))
    throw std::invalid_argument(
        "FitOptions: need steps >= 0, epochs >= 0, batch >= 1, clip >= 0, eval_every >= 0, "
        "eval_batch >= 1 and adam.lr > 0; got steps " +
        std::to_string(o.steps) + ", epochs " + std::to_string(o.epochs) + ", batch " +
        std::to_string(o.batch) + ", clip " + std::to_string(o.clip) + ", eval_every " +
        std::to_string(o.eval_every) + ", eval_batch " + std::to_string(o.eval_batch) + ", lr " +
        std::to_string(o.adam.lr));
}

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

BatchOptions batch_options(const FitOptions& o) {
  return BatchOptions{o.batch, o.replacement, o.drop_last};
}

long density_steps(const FitOptions& o, Index batches_per_epoch) {
  return o.epochs > 0 ? o.epochs * static_cast<long>(batches_per_epoch) : o.steps;
}

long no_epochs(const FitOptions& o, const char* who) {
  if (o.epochs > 0)
    throw std::invalid_argument(std::string(who) +
                                ": FitOptions::epochs needs a data tensor; set steps instead");
  return o.steps;
}
}  // namespace

// Rows of a conditional model's data are x then c.
template <Scalar T>
void check_row_width(const DensityFlow<T>& model, const Shape& rows) {
  const Index d = model.dim(), c = model.context_dim();
  if (rows.rank() != 2 || rows.cols() != d + c)
    throw std::invalid_argument(
        "data of shape " + rows.str() + "; the model takes " + std::to_string(d) + " columns" +
        (c > 0 ? " and a context of " + std::to_string(c) + " (rows are x, then c)"
               : std::string()));
}

template <Scalar T>
Var<T> log_prob_of_rows(DensityFlow<T>& model, const Var<T>& rows) {
  const Index d = model.dim(), c = model.context_dim();
  check_row_width(model, rows.shape());
  if (c == 0) return model.log_prob(rows);
  return model.log_prob(narrow(rows, 0, d), narrow(rows, d, c));
}

template <Scalar T>
Tensor<T> log_prob_of_rows(DensityFlow<T>& model, const Tensor<T>& rows) {
  const Index d = model.dim(), c = model.context_dim();
  check_row_width(model, rows.shape());
  if (c == 0) return model.log_prob(rows);
  Tensor<T> x(Shape{rows.rows(), d}), ctx(Shape{rows.rows(), c});
  for (Index i = 0; i < rows.rows(); ++i) {
    std::copy(rows.data() + i * (d + c), rows.data() + i * (d + c) + d, x.data() + i * d);
    std::copy(rows.data() + i * (d + c) + d, rows.data() + (i + 1) * (d + c), ctx.data() + i * c);
  }
  return model.log_prob(x, ctx);
}

template <Scalar T>
double test_nll(DensityFlow<T>& model, const Tensor<T>& data, Index batch) {
  if (data.rows() < 1) throw std::invalid_argument("test_nll: no rows to evaluate");
  if (batch < 1) throw std::invalid_argument("test_nll: batch must be at least 1");
  const bool was_training = model.training();
  model.eval();
  double total = 0;
  Tensor<T> part;
  try {
    for (Index start = 0; start < data.rows(); start += batch) {
      const Index m = std::min(batch, data.rows() - start);
      part.resize(Shape{m, data.cols()});
      std::copy(data.data() + start * data.cols(), data.data() + (start + m) * data.cols(),
                part.data());
      const Tensor<T> lp = log_prob_of_rows(model, part);
      for (Index i = 0; i < m; ++i) total += static_cast<double>(lp[i]);
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return -total / static_cast<double>(data.rows());
}

// ---- Trainer ----

template <Scalar T>
Trainer<T>::Trainer(Module<T>& model, FitOptions options, long total_steps)
    : model_(model),
      options_(std::move(options)),
      adam_(model.parameters(), options_.adam),
      total_steps_(total_steps) {
  check_options(options_);
  for (const auto& b : model.named_buffers()) buffers_.push_back(b.tensor);
  saved_buffers_.resize(buffers_.size());
  if (options_.collective) {
    parallel_ = std::make_unique<DataParallel<T>>(*options_.collective, model);
    parallel_->shard(options_.batch);  // throws if the batch is smaller than the ranks
  }
}

template <Scalar T>
std::pair<Index, Index> Trainer<T>::shard_of(Index rows) const {
  if (!parallel_) return {0, rows};
  return parallel_->shard(rows);
}

template <Scalar T>
std::uint64_t Trainer<T>::rank_seed() const {
  const int r = options_.collective ? options_.collective->rank() : 0;
  // Golden-ratio steps keep the ranks' splitmix streams apart.
  return options_.seed + 0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(r);
}

template <Scalar T>
void Trainer<T>::set_step(long step) {
  if (step < 0) throw std::invalid_argument("Trainer::set_step: negative step");
  step_ = step;
}

template <Scalar T>
void Trainer<T>::fail(long step, double loss, const std::string& what) {
  for (std::size_t i = 0; i < buffers_.size(); ++i) *buffers_[i] = saved_buffers_[i];
  std::string msg = "step " + std::to_string(step) + ": " + what + "; the model is left as it was";
  msg += step > 1 ? " after step " + std::to_string(step - 1) : " before training";
  msg += ". " + advice();
  throw NonFiniteLossError(step, loss, what, msg);
}

template <Scalar T>
double Trainer<T>::train_step() {
  const long step = step_ + 1;
  // A training-mode forward moves buffers such as batch norm's running averages; a bad step must
  // not leave them behind.
  for (std::size_t i = 0; i < buffers_.size(); ++i) saved_buffers_[i] = *buffers_[i];
  tape_.reset();
  adam_.clear_grad();
  double value = 0;
  Index shard_rows = 1, global_rows = 1;
  std::string error;
  try {
    // A layer initialised by its first batch (ActNorm) reduces its statistics over the ranks.
    const BatchCollectiveScope scope(options_.collective);
    const Var<T> l = loss(tape_, step);
    value = static_cast<double>(l.item());
    if (std::isfinite(value))
      tape_.backward(l);
    else
      error = "the loss became " + number(value);
    shard_rows = last_shard_rows_;
    global_rows = last_global_rows_;
  } catch (const std::domain_error& e) {  // a layer met NaN or inf on its way
    value = std::numeric_limits<double>::quiet_NaN();
    error = e.what();
    // In a data-parallel first step the other ranks may be inside a layer's first-batch
    // initialisation (ActNorm's sum over the ranks), which this rank can no longer join: stop here
    // with an error the program must end every rank on (MPI_Abort, as the apps do).
    if (parallel_ && step == 1) {
      for (std::size_t i = 0; i < buffers_.size(); ++i) *buffers_[i] = saved_buffers_[i];
      throw std::runtime_error("step 1 failed on rank " +
                               std::to_string(options_.collective->rank()) + " of " +
                               std::to_string(options_.collective->size()) + ": " + e.what() +
                               "; the ranks cannot stop together in a first step, so end them all "
                               "(MPI_Abort). " +
                               advice());
    }
  }
  // Every rank joins the sum, even after its own failure, so that all of them stop at this step.
  if (parallel_) {
    const double global = parallel_->reduce(value, shard_rows, global_rows);
    if (error.empty() && !std::isfinite(global))
      error = "the loss became " + number(global) + " on another rank";
    value = global;
  }
  if (!error.empty()) fail(step, value, error);
  // A finite loss can still have an infinite gradient, which Adam would spread over every
  // parameter.
  const auto& params = adam_.params();
  if (options_.clip > 0) {
    const T norm = clip_grad_norm(params, static_cast<T>(options_.clip));
    if (!std::isfinite(norm)) fail(step, value, "the gradient's norm became " + number(norm));
  } else {
    for (const Parameter<T>* p : params)
      if (!all_finite(p->grad)) fail(step, value, "the gradient became non-finite");
  }
  adam_.step();
  step_ = step;
  if (parallel_ && (!checked_ranks_ || step % options_.check_every == 0)) {
    parallel_->check_identical(step);
    checked_ranks_ = true;
  }
  return value;
}

template <Scalar T>
FitReport Trainer<T>::run(const FitCallbacks& callbacks) {
  return run_to(total_steps_, callbacks);
}

template <Scalar T>
FitReport Trainer<T>::run_to(long last_step, const FitCallbacks& callbacks) {
  if (callbacks.every < 1) throw std::invalid_argument("FitCallbacks::every must be at least 1");
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  FitReport report;
  report.first_step = step_ + 1;
  report.last_step = step_;
  if (last_step > step_) report.losses.reserve(static_cast<std::size_t>(last_step - step_));
  while (step_ < last_step) {
    const double loss = train_step();
    const long s = step_;
    report.losses.push_back(static_cast<float>(loss));
    report.last_step = s;
    FitProgress progress{s, loss, std::nullopt, 0};
    if (has_held_out() && options_.eval_every > 0 && s % options_.eval_every == 0) {
      progress.held_out_nll = held_out_nll();
      report.held_out.emplace_back(s, *progress.held_out_nll);
    }
    if (callbacks.on_progress &&
        (s % callbacks.every == 0 || progress.held_out_nll || s == last_step)) {
      progress.seconds = seconds();
      if (callbacks.on_progress(progress) == FitAction::stop) {
        report.stopped = s < last_step;
        break;
      }
    }
  }
  report.seconds = seconds();
  return report;
}

// ---- DensityTrainer ----

template <Scalar T>
DensityTrainer<T>::DensityTrainer(DensityFlow<T>& model, const Tensor<T>& data, FitOptions options)
    : Trainer<T>(
          model, options,
          density_steps(
              options,
              BatchSampler<T>(data, batch_options(options), options.seed).batches_per_epoch())),
      flow_(model) {
  if (data.cols() != model.dim() + model.context_dim())
    throw std::invalid_argument("DensityTrainer: the data has " + std::to_string(data.cols()) +
                                " columns; the model has dimension " + std::to_string(model.dim()) +
                                (model.context_dim() > 0
                                     ? " and a context of " + std::to_string(model.context_dim())
                                     : std::string()));
  sampler_.emplace(data, batch_options(this->options_), this->options_.seed);
  const FitOptions& o = this->options_;
  if (o.collective && !o.replacement && !o.drop_last) {
    const Index last = data.rows() % o.batch;
    if (last > 0 && last < o.collective->size())
      throw std::invalid_argument(
          "DensityTrainer: each epoch ends with a batch of " + std::to_string(last) +
          " rows, fewer than the " + std::to_string(o.collective->size()) +
          " ranks that would share it; set FitOptions::drop_last or change the batch size");
  }
}

template <Scalar T>
DensityTrainer<T>::DensityTrainer(DensityFlow<T>& model, BatchSource<T> source, FitOptions options)
    : Trainer<T>(model, options, no_epochs(options, "DensityTrainer")),
      flow_(model),
      source_(std::move(source)),
      source_gen_(this->rank_seed()) {
  if (!source_) throw std::invalid_argument("DensityTrainer: empty batch source");
}

template <Scalar T>
void DensityTrainer<T>::set_held_out(const Tensor<T>& held_out) {
  if (held_out.rows() < 1 || held_out.cols() != flow_.dim() + flow_.context_dim())
    throw std::invalid_argument("DensityTrainer::set_held_out: shape " + held_out.shape().str() +
                                " for a model of dimension " + std::to_string(flow_.dim()) +
                                " and context width " + std::to_string(flow_.context_dim()));
  held_out_ = &held_out;
}

template <Scalar T>
BatchSampler<T>& DensityTrainer<T>::sampler() {
  if (!sampler_) throw std::logic_error("DensityTrainer::sampler: batches come from a BatchSource");
  return *sampler_;
}

template <Scalar T>
Generator& DensityTrainer<T>::generator() {
  return sampler_ ? sampler_->generator() : source_gen_;
}

template <Scalar T>
std::string DensityTrainer<T>::batch_state() const {
  return sampler_ ? sampler_->state() : source_gen_.state();
}

template <Scalar T>
void DensityTrainer<T>::set_batch_state(const std::string& state) {
  if (sampler_)
    sampler_->set_state(state);
  else
    source_gen_.set_state(state);
}

template <Scalar T>
Var<T> DensityTrainer<T>::loss(Tape<T>& tape, long) {
  if (!sampler_) {
    const Index rows = this->shard_of(this->options_.batch).second;
    source_(rows, source_gen_, batch_);
    this->set_shard(rows, this->options_.batch);
    return -mean(log_prob_of_rows(flow_, tape.constant(batch_)));
  }
  sampler_->next(batch_);
  if (!this->data_parallel()) {
    this->set_shard(batch_.rows(), batch_.rows());
    return -mean(log_prob_of_rows(flow_, tape.constant(batch_)));
  }
  // Every rank draws the same global batch from the shared sampler and keeps its rows of it.
  const auto [begin, rows] = this->shard_of(batch_.rows());
  const Index cols = batch_.cols();
  shard_.resize(Shape{rows, cols});
  std::copy(batch_.data() + begin * cols, batch_.data() + (begin + rows) * cols, shard_.data());
  this->set_shard(rows, batch_.rows());
  return -mean(log_prob_of_rows(flow_, tape.constant(shard_)));
}

template <Scalar T>
double DensityTrainer<T>::held_out_nll() {
  return test_nll(flow_, *held_out_, this->options_.eval_batch);
}

template <Scalar T>
std::string DensityTrainer<T>::advice() const {
  return "Lower the learning rate (FitOptions::adam.lr), clip the gradients (FitOptions::clip), "
         "or look for extreme values in the data";
}

// ---- VariationalTrainer ----

template <Scalar T>
VariationalTrainer<T>::VariationalTrainer(VariationalFlow<T>& q, LogDensity<T> log_density,
                                          FitOptions options)
    : Trainer<T>(q, options, no_epochs(options, "VariationalTrainer")),
      q_(q),
      log_density_(std::move(log_density)),
      gen_(this->rank_seed()) {
  if (!log_density_) throw std::invalid_argument("VariationalTrainer: empty log-density");
}

template <Scalar T>
Var<T> VariationalTrainer<T>::loss(Tape<T>& tape, long step) {
  const Index n = this->shard_of(this->options_.batch).second;
  this->set_shard(n, this->options_.batch);
  const VariationalSample<T> s = q_.sample_and_log_prob(tape, n, gen_);
  const Var<T> log_p = log_density_(s.x);
  // A [1, n] or [n, n] log p would broadcast against log q's [n, 1] without complaint.
  if (log_p.rows() != n || log_p.cols() != 1)
    throw std::invalid_argument("VariationalTrainer: the log-density returned shape " +
                                log_p.shape().str() + " for " + std::to_string(n) +
                                " points; expected [" + std::to_string(n) + ", 1]");
  if (!this->options_.beta) return mean(s.log_q - log_p);
  const auto beta = static_cast<T>(this->options_.beta(step));
  return mean(s.log_q - log_p * beta);
}

template <Scalar T>
std::string VariationalTrainer<T>::advice() const {
  return "Lower the learning rate (FitOptions::adam.lr), clip the gradients (FitOptions::clip), "
         "or check that the log-density is finite wherever q puts samples";
}

// ---- one-call forms ----

template <Scalar T>
FitReport fit_density(DensityFlow<T>& model, const Tensor<T>& data, const FitOptions& options,
                      const FitCallbacks& callbacks) {
  DensityTrainer<T> trainer(model, data, options);
  return trainer.run(callbacks);
}

template <Scalar T>
FitReport fit_density(DensityFlow<T>& model, const Tensor<T>& data, const Tensor<T>& held_out,
                      const FitOptions& options, const FitCallbacks& callbacks) {
  DensityTrainer<T> trainer(model, data, options);
  trainer.set_held_out(held_out);
  return trainer.run(callbacks);
}

template <Scalar T>
FitReport fit_variational(VariationalFlow<T>& q,
                          const std::type_identity_t<LogDensity<T>>& log_density,
                          const FitOptions& options, const FitCallbacks& callbacks) {
  VariationalTrainer<T> trainer(q, log_density, options);
  return trainer.run(callbacks);
}

#define FLOWGRAD_INSTANTIATE_FIT(T)                                                    \
  template Var<T> log_prob_of_rows(DensityFlow<T>&, const Var<T>&);                    \
  template Tensor<T> log_prob_of_rows(DensityFlow<T>&, const Tensor<T>&);              \
  template double test_nll(DensityFlow<T>&, const Tensor<T>&, Index);                  \
  template class Trainer<T>;                                                           \
  template class DensityTrainer<T>;                                                    \
  template class VariationalTrainer<T>;                                                \
  template FitReport fit_density(DensityFlow<T>&, const Tensor<T>&, const FitOptions&, \
                                 const FitCallbacks&);                                 \
  template FitReport fit_density(DensityFlow<T>&, const Tensor<T>&, const Tensor<T>&,  \
                                 const FitOptions&, const FitCallbacks&);              \
  template FitReport fit_variational(VariationalFlow<T>&,                              \
                                     const std::type_identity_t<LogDensity<T>>&,       \
                                     const FitOptions&, const FitCallbacks&);
FLOWGRAD_INSTANTIATE_FIT(float)
FLOWGRAD_INSTANTIATE_FIT(double)
#undef FLOWGRAD_INSTANTIATE_FIT

}  // namespace flowgrad
