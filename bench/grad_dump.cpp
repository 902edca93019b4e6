// grad_dump: flowgrad's side of bench/check_maf_gradients.py (train_images --model maf vs the
// PyTorch twin). Not part of the CMake build; from the repository root, after a build:
//
//   g++-12 -std=c++20 -march=x86-64-v3 -O2 -I. bench/grad_dump.cpp
//       build/apps/libtrain_images_core.a build/libflowgrad.a -lz -lpthread -o /tmp/grad_dump
//   (one line)
//
// Gradients (and Adam steps) on one preprocessed Fashion-MNIST batch:
//   grad_dump OUT [--seed S | --checkpoint PATH] [--hidden H] [--layers L] [--perturb SIGMA]
//                 [--batch N] [--batch-seed S] [--x BATCHES.f32 --x-index K] [--adam-steps K]
//   OUT/model.safetensors  the weights (save_flow); OUT/grads.safetensors: x, loss, grad.<name>,
//   and with --adam-steps K: step<k>.grad.<name> (k = 1..K, same batch), after.<name>,
//   exp_avg.<name>, exp_avg_sq.<name> after K steps of Adam (lr 1e-3, torch's defaults).
//   --perturb SIGMA adds SIGMA N(0,1)/sqrt(fan_in) to the unmasked weights (SIGMA/32 to biases).
//
// Training exactly as train_images does (same model, batches and steps as --seed S there):
//   grad_dump OUT --train STEPS --seed S [--perturb EPS --batch-seed J]
//   OUT/model.safetensors (step 0), batches.f32 (every step's x, float32 [STEPS, N, 784]),
//   losses.csv, final.safetensors (save_trainer). Here --perturb EPS multiplies every weight by
//   1 + EPS N(0,1) first (generator J), a seed for chaos that leaves zeros at zero.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <flowgrad/flowgrad.hpp>

#include "apps/train_images/image_data.hpp"
#include "apps/train_images/image_models.hpp"

using namespace flowgrad;

namespace {

struct Options {
  std::string out, checkpoint, x_file;
  std::uint64_t seed = 0, batch_seed = 12345;
  Index hidden = 1024, batch = 256;
  int layers = 5, adam_steps = 0;
  long train_steps = 0, x_index = 0;
  double perturb = 0;
};

const char* kData = "/usr/share/datasets/fashion-mnist";

std::unique_ptr<DensityFlow<float>> build(const Options& o, Generator& gen) {
  trainimg::ImageModelConfig c;
  c.model = "maf";
  c.hidden = o.hidden;
  c.layers = o.layers;
  return std::make_unique<DensityFlow<float>>(trainimg::build_image_flow(c, gen));
}

int train(const Options& o) {
  Generator gen(o.seed);  // as train_images: the model, then the batches, from one stream
  auto model = build(o, gen);
  if (o.perturb > 0) {
    Generator jg(o.batch_seed);
    for (auto& np : model->named_parameters())
      for (Index i = 0; i < np.param->value.numel(); ++i)
        np.param->value[i] *= float(1 + o.perturb * jg.normal());
  }
  save_flow(o.out + "/model.safetensors", *model);
  const trainimg::ImageSet data = trainimg::load_fashion_mnist(kData, "train");
  std::ofstream batches(o.out + "/batches.f32", std::ios::binary);
  FitOptions fit;
  fit.steps = o.train_steps;
  fit.batch = o.batch;
  fit.adam.lr = 1e-3;
  fit.seed = o.seed;
  std::vector<Index> rows;
  DensityTrainer<float> trainer(
      *model,
      [&](Index n, Generator& g, TensorF& x) {
        rows.resize(static_cast<std::size_t>(n));
        for (Index& r : rows)
          r = static_cast<Index>(g.below(static_cast<std::uint64_t>(data.count)));
        trainimg::preprocess(data, rows, 0.05, false, g, x);
        batches.write(reinterpret_cast<const char*>(x.data()),
                      static_cast<std::streamsize>(x.numel() * sizeof(float)));
      },
      fit);
  trainer.generator() = gen;
  const FitReport report = trainer.run();
  std::ofstream losses(o.out + "/losses.csv");
  losses << "step,loss\n";
  for (std::size_t i = 0; i < report.losses.size(); ++i)
    losses << i + 1 << "," << report.losses[i] << "\n";
  save_trainer(o.out + "/final.safetensors", trainer);
  std::printf("%ld steps, last loss %.4f, %.1f s\n", report.steps(), double(report.losses.back()),
              report.seconds);
  return 0;
}

void perturb_weights(DensityFlow<float>& model, double sigma) {
  std::vector<const Tensor<float>*> masks;  // the MADEs' masks, in parameter order
  Composition<float>& chain = model.transform();
  for (std::size_t l = 0; l < chain.size(); ++l)
    if (auto* ar = dynamic_cast<MaskedAutoregressive<float>*>(&chain[l]))
      for (const auto& m : ar->made().masks()) masks.push_back(&m);
  Generator pg(777);
  std::size_t w = 0;
  for (auto& np : model.named_parameters()) {
    Tensor<float>& v = np.param->value;
    const bool weight = np.name.ends_with(".weight");
    const Tensor<float>* mask = weight ? masks.at(w++) : nullptr;
    const double scale = sigma / std::sqrt(double(weight ? v.cols() : 1024));
    for (Index i = 0; i < v.numel(); ++i)
      if (!mask || (*mask)[i] != 0) v[i] += float(scale * pg.normal());
  }
}

int gradients(const Options& o) {
  std::unique_ptr<DensityFlow<float>> model;
  if (!o.checkpoint.empty()) {
    model = load_density_flow<float>(o.checkpoint);
  } else {
    Generator gen(o.seed);
    model = build(o, gen);
  }
  if (o.perturb > 0) perturb_weights(*model, o.perturb);
  save_flow(o.out + "/model.safetensors", *model);

  TensorF x;
  if (o.x_file.empty()) {
    const trainimg::ImageSet data = trainimg::load_fashion_mnist(kData, "train");
    Generator bg(o.batch_seed);
    std::vector<Index> rows(static_cast<std::size_t>(o.batch));
    for (Index& r : rows) r = static_cast<Index>(bg.below(static_cast<std::uint64_t>(data.count)));
    trainimg::preprocess(data, rows, 0.05, false, bg, x);
  } else {  // batch x_index of a --train run's batches.f32
    x.resize(Shape{o.batch, model->dim()});
    std::ifstream in(o.x_file, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(o.x_index * x.numel() * sizeof(float)));
    in.read(reinterpret_cast<char*>(x.data()),
            static_cast<std::streamsize>(x.numel() * sizeof(float)));
    if (!in) throw std::runtime_error("cannot read batch " + std::to_string(o.x_index));
  }

  auto named = model->named_parameters();
  Adam<float> adam(model->parameters(), AdamOptions{});
  Tape<float> tape;
  std::vector<std::pair<std::string, Tensor<float>>> keep{{"x", x}};
  for (int s = 1; s <= std::max(o.adam_steps, 1); ++s) {
    tape.reset();
    adam.zero_grad();
    const Var<float> loss = -mean(model->log_prob(tape.constant(x)));
    tape.backward(loss);
    std::printf("step %d: loss %.6f\n", s, double(loss.item()));
    if (s == 1) {
      keep.emplace_back("loss", Tensor<float>(Shape{1}, loss.item()));
      for (auto& np : named) keep.emplace_back("grad." + np.name, np.param->grad);
    }
    if (o.adam_steps > 0) {
      for (auto& np : named)
        keep.emplace_back("step" + std::to_string(s) + ".grad." + np.name, np.param->grad);
      adam.step();
    }
  }
  if (o.adam_steps > 0) {
    const AdamState<float> st = adam.state();
    for (std::size_t k = 0; k < named.size(); ++k) {
      keep.emplace_back("after." + named[k].name, named[k].param->value);
      keep.emplace_back("exp_avg." + named[k].name, st.exp_avg[k]);
      keep.emplace_back("exp_avg_sq." + named[k].name, st.exp_avg_sq[k]);
    }
  }
  std::vector<std::pair<std::string, const Tensor<float>*>> refs;
  for (auto& [n, t] : keep) refs.emplace_back(n, &t);
  write_safetensors<float>(o.out + "/grads.safetensors", refs, Metadata{});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"flowgrad's side of bench/check_maf_gradients.py (see the source's header)"};
  app.add_option("out", o.out, "Output directory")->required();
  app.add_option("--checkpoint", o.checkpoint, "Start from this train_images checkpoint");
  app.add_option("--seed", o.seed, "Seed of the model (and of train_images' batches)");
  app.add_option("--hidden", o.hidden, "MADE hidden width");
  app.add_option("--layers", o.layers, "MAF layers");
  app.add_option("--perturb", o.perturb, "Perturbation of the weights (see the header)");
  app.add_option("--batch", o.batch, "Images per batch");
  app.add_option("--batch-seed", o.batch_seed, "Seed of the batch (and of --perturb's noise)");
  app.add_option("--adam-steps", o.adam_steps, "Adam steps on the same batch");
  app.add_option("--train", o.train_steps, "Train this many steps as train_images does");
  app.add_option("--x", o.x_file, "Take the batch from this float32 file of batches");
  app.add_option("--x-index", o.x_index, "Which batch of --x");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(o.out);
  try {
    return o.train_steps > 0 ? train(o) : gradients(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grad_dump: %s\n", e.what());
    return 1;
  }
}
