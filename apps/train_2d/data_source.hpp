#pragma once
// Where training and test points come from: a toy dataset (a fresh batch from the generator every
// step; test points drawn with their own seed) or a user's CSV (batches drawn from a training
// split, the test split held out). For a conditional model p(x | c) every row is x followed by
// its context c: the "rotating" toy set (conditional_toy.hpp), or a CSV whose context columns
// are named by --context-columns.
#include <string>

#include "flowgrad/data/split.hpp"
#include "flowgrad/flows/fit.hpp"
#include "plots.hpp"

namespace train2d {

using flowgrad::Generator;
using flowgrad::Index;
using flowgrad::TensorF;

class DataSource {
 public:
  static DataSource toy(const std::string& name);
  // context_columns: "" (none), or comma-separated header names or 0-based indices.
  static DataSource csv(const std::string& path, double test_fraction, std::uint64_t split_seed,
                        const std::string& context_columns = "");

  const std::string& name() const { return name_; }  // dataset name or CSV path
  bool is_csv() const { return is_csv_; }
  Index dim() const { return dim_; }  // of x
  Index context_dim() const { return context_dim_; }
  // The columns picked as context, as given (for the checkpoint's metadata).
  const std::string& context_columns() const { return context_columns_; }
  // Every row of a CSV (training and test), x then c.
  TensorF all_rows() const;
  // A CSV's training rows, the tensor batches are drawn from.
  const TensorF& train_rows() const { return split_.train; }
  // A toy dataset as the source of a fresh batch every step.
  flowgrad::BatchSource<float> toy_source() const;
  // The test set: n toy points drawn with Generator(seed), or the CSV's held-out rows.
  TensorF test_set(Index n, std::uint64_t seed) const;
  // Points to draw beside the model's samples.
  TensorF show_set(Index n, std::uint64_t seed) const;
  // The plotting window: [-4, 4]^2 for toys, the data's range with a margin for a CSV.
  Extent extent() const { return extent_; }

 private:
  std::string name_;
  bool is_csv_ = false;
  Index dim_ = 2;
  Index context_dim_ = 0;
  std::string context_columns_;
  flowgrad::Split split_;
  Extent extent_;
};

}  // namespace train2d
