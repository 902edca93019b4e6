#pragma once
// MPI for data-parallel training: the FLOWGRAD_MPI=ON build's target flowgrad::mpi (Open MPI).
//
//   flowgrad::MpiSession mpi(argc, argv);       // MPI_Init ... MPI_Finalize
//   flowgrad::MpiCollective ranks;               // MPI_COMM_WORLD
//   options.collective = &ranks;                 // FitOptions: the trainer goes data-parallel
//
// and run the program with `mpirun -np N`. A rank that ends without MPI_Finalize (a crash, a
// signal, an uncaught exception) makes mpirun end the others; a program that catches an error on
// one rank should call MpiSession::abort, since the others would wait for it in the next
// collective.
#include <cstdint>
#include <string>
#include <vector>

#include "flowgrad/parallel/collective.hpp"

namespace flowgrad {

class MpiSession {
 public:
  // Initialises MPI unless something else already has; finalises it on destruction if it did.
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  // MPI_Abort over MPI_COMM_WORLD: ends every rank with this exit code.
  [[noreturn]] static void abort(int code);

 private:
  bool owns_ = false;
};

// MPI_COMM_WORLD as a Collective; MPI must be initialised. Sums are MPI_Allreduce in place.
class MpiCollective : public Collective {
 public:
  MpiCollective();
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float* data, std::size_t n) override;
  void sum(double* data, std::size_t n) override;
  void broadcast(float* data, std::size_t n) override;
  void broadcast(double* data, std::size_t n) override;
  bool same_everywhere(std::uint64_t value) override;
  std::vector<std::string> gather(const std::string& text) override;
  std::string broadcast(const std::string& text) override;

  // Wall time spent inside sum() so far, and how many calls: the communication share of a step.
  double sum_seconds() const { return sum_seconds_; }
  long sum_calls() const { return sum_calls_; }

 private:
  int rank_ = 0, size_ = 1;
  double sum_seconds_ = 0;
  long sum_calls_ = 0;
};

}  // namespace flowgrad
