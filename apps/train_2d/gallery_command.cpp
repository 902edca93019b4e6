// gallery: every toy dataset (RealNVP, then NSF) and every energy (planar VI), trained in turn,
// drawn as one grid of densities, every panel on a square extent so that all are the same size.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "atomic_file.hpp"
#include "commands.hpp"
#include "density_training.hpp"
#include "energies.hpp"
#include "toy_datasets.hpp"
#include "vi_training.hpp"

namespace train2d {

namespace {
// The smallest square extent around e with the same centre.
Extent square(const Extent& e) {
  const double half = std::max(e.x1 - e.x0, e.y1 - e.y0) / 2;
  const double cx = (e.x0 + e.x1) / 2, cy = (e.y0 + e.y1) / 2;
  return {cx - half, cx + half, cy - half, cy + half};
}
}  // namespace

int run_gallery(const GalleryOptions& opt) {
  make_output_dir(opt.out);
  std::vector<DensityGrid> panels;
  std::vector<std::string> titles;
  nlohmann::json summary = nlohmann::json::object();
  for (const std::string model : {"realnvp", "nsf"})
    for (const std::string& name : toy_dataset_names()) {
      TrainOptions t;
      t.model.model = model;
      t.dataset = name;
      t.steps = opt.steps;
      t.seed = opt.seed;
      t.threads = opt.threads;
      t.quiet = true;
      const DataSource data = DataSource::toy(name);
      const std::string dir = opt.out + "/" + name + "-" + model;
      make_output_dir(dir);
      Metadata meta = to_metadata(t.model);
      meta["kind"] = "density";
      meta["source"] = "toy";
      meta["dataset"] = name;
      meta["seed"] = std::to_string(t.seed);
      DensityRun run = train_density(t, data, dir + "/model.safetensors", meta);
      if (run.signal != 0) return 128 + run.signal;
      const double nll = test_nll(*run.model, data.test_set(t.test_samples, t.seed + 1));
      std::printf("%-13s %-8s test NLL %.4f nats after %ld steps (%.1f s)\n", name.c_str(),
                  model.c_str(), nll, run.steps_done, run.wall_seconds);
      std::fflush(stdout);
      summary[name + "-" + model] = {{"test_nll_nats", nll}, {"steps", run.steps_done}};
      run.model->eval();
      auto log_density = [&](const TensorF& points) {
        const TensorF lp = run.model->log_prob(points);
        return std::vector<double>(lp.data(), lp.data() + lp.numel());
      };
      panels.push_back(evaluate_grid(log_density, square(data.extent()), 200, 200));
      titles.push_back(name + (model == "nsf" ? " (NSF)" : " (RealNVP)"));
    }
  for (int which = 1; which <= 4; ++which) {
    ViOptions v;
    v.energy = "U" + std::to_string(which);
    v.steps = opt.vi_steps;
    v.seed = opt.seed;
    v.threads = opt.threads;
    v.quiet = true;
    const std::string dir = opt.out + "/vi-" + v.energy;
    make_output_dir(dir);
    Metadata meta = to_metadata(v.model);
    meta["kind"] = "variational";
    meta["energy"] = v.energy;
    ViRun run = train_vi(v, which, dir + "/model.safetensors", meta);
    if (run.signal != 0) return 128 + run.signal;
    run.model->eval();
    const KlEstimate kl = estimate_kl(*run.model, which, v.kl_samples, v.seed + 1);
    std::printf("%-13s KL %.4f nats after %ld steps (%.1f s)\n", v.energy.c_str(), kl.kl,
                run.steps_done, run.wall_seconds);
    std::fflush(stdout);
    summary[v.energy] = {{"kl_nats", kl.kl}, {"steps", run.steps_done}};
    panels.push_back(q_grid(*run.model, square(energy_extent(which)), 200));
    titles.push_back(v.energy + " (planar, K=32)");
  }
  write_gallery_png(opt.out + "/gallery.png", panels, titles, 4);
  write_file_atomic(opt.out + "/gallery.json", summary.dump(2) + "\n");
  std::printf("gallery written to %s/gallery.png\n", opt.out.c_str());
  return 0;
}

}  // namespace train2d
