#pragma once
// The few collective operations data-parallel training needs, behind an interface so that the
// library builds without MPI: flowgrad/parallel/mpi.hpp implements it over MPI (the
// FLOWGRAD_MPI=ON build, target flowgrad::mpi), and a trainer given one (FitOptions::collective)
// trains data-parallel over its ranks (docs/design.md, "Data-parallel training").
//
// Every operation is collective: all ranks call it, in the same order, with the same sizes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace flowgrad {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  // data := the element-wise sum of every rank's data, on every rank, in place.
  virtual void sum(float* data, std::size_t n) = 0;
  virtual void sum(double* data, std::size_t n) = 0;
  // data := rank 0's data, on every rank.
  virtual void broadcast(float* data, std::size_t n) = 0;
  virtual void broadcast(double* data, std::size_t n) = 0;
  // Whether every rank passed the same value.
  virtual bool same_everywhere(std::uint64_t value) = 0;
  // Rank 0 gets every rank's text, in rank order; the others get an empty vector.
  virtual std::vector<std::string> gather(const std::string& text) = 0;
  // Rank 0's text, on every rank.
  virtual std::string broadcast(const std::string& text) = 0;
};

// The collective of the data-parallel training step running on this thread, or nullptr: how a
// layer whose first training batch initialises it (ActNorm) reduces that batch's statistics over
// all ranks. The trainer sets it around each step's forward pass.
Collective* batch_collective();

class BatchCollectiveScope {
 public:
  explicit BatchCollectiveScope(Collective* c);
  ~BatchCollectiveScope();
  BatchCollectiveScope(const BatchCollectiveScope&) = delete;
  BatchCollectiveScope& operator=(const BatchCollectiveScope&) = delete;

 private:
  Collective* previous_;
};

}  // namespace flowgrad
