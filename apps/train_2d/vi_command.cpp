// vi: fit a flow (planar, radial, iaf, nsf, nsf-ar) to one of the energies U1..U4 by reverse KL.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "atomic_file.hpp"
#include "commands.hpp"
#include "density_training.hpp"
#include "energies.hpp"
#include "ranks.hpp"
#include "vi_training.hpp"

namespace train2d {

int run_vi(const ViOptions& opt) {
  const int which = energy_from_name(opt.energy);
  const std::string name = "U" + std::to_string(which);
  ViOptions o = opt;
  o.model.dim = 2;
  // Data-parallel (under mpirun): every rank trains, rank 0 alone reports and writes.
  if (!is_root()) o.quiet = true;
  check_model_for(o.model.model, false);
  validate(o.model);
  if (o.steps < 1 || o.batch < 1) throw std::invalid_argument("--steps and --batch must be >= 1");
  const std::string dir = o.out.empty() ? "runs/vi-" + name : o.out;
  if (is_root()) make_output_dir(dir);
  Metadata meta = to_metadata(o.model);
  meta["kind"] = "variational";
  meta["energy"] = name;
  meta["seed"] = std::to_string(o.seed);
  const std::string checkpoint = dir + "/model.safetensors";
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train_2d vi: %s fitted to %s by reverse KL, %ld steps of batch %ld, lr %g%s\n",
                 describe(o.model).c_str(), name.c_str(), o.steps, static_cast<long>(o.batch), o.lr,
                 o.anneal ? ", annealed" : "");
    std::fprintf(stderr,
                 "loss = E_q[log q + beta U]; it tends to -log Z, so it can be negative.\n");
  }
  ViRun run = train_vi(o, which, checkpoint, meta);
  if (!is_root()) return run.signal != 0 ? 128 + run.signal : 0;
  write_loss_csv(dir + "/loss.csv", run.losses);
  if (run.signal != 0) {
    std::fprintf(stderr, "interrupted (signal %d) at step %ld; checkpoint saved to %s\n",
                 run.signal, run.steps_done, checkpoint.c_str());
    return 128 + run.signal;
  }
  run.model->eval();
  const KlEstimate kl = estimate_kl(*run.model, which, o.kl_samples, o.seed + 1);
  std::printf(
      "KL(q || p) = %.4f +- %.4f nats  (E_q[log q + U] = %.4f, log Z = %.4f, %ld samples)\n", kl.kl,
      kl.std_error, kl.kl - kl.log_z, kl.log_z, static_cast<long>(o.kl_samples));
  write_density_pair_png(dir + "/vi.png", q_grid(*run.model, which, 300),
                         "q (" + std::to_string(o.model.layers) + " " + o.model.model + " layers)",
                         target_grid(which, 300), "exp(-" + name + ")");
  nlohmann::json metrics = {{"kind", "variational"},
                            {"energy", name},
                            {"config", meta},
                            {"steps", run.steps_done},
                            {"batch", o.batch},
                            {"lr", o.lr},
                            {"anneal", o.anneal},
                            {"seed", o.seed},
                            {"wall_time_s", run.wall_seconds},
                            {"kl_nats", kl.kl},
                            {"kl_std_error", kl.std_error},
                            {"log_z", kl.log_z},
                            {"kl_samples", o.kl_samples},
                            {"final_loss", run.losses.back()}};
  write_file_atomic(dir + "/metrics.json", metrics.dump(2) + "\n");
  std::printf("outputs in %s/: model.safetensors, loss.csv, metrics.json, vi.png\n", dir.c_str());
  return 0;
}

}  // namespace train2d
