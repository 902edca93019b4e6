#pragma once
// The data-parallel ranks a run trains over: set by main() when the program runs under
// `mpirun -np N` with N > 1 in a FLOWGRAD_MPI=ON build (run_with_ranks), else none. Rank 0 alone
// prints progress and writes files; every rank trains.
#include <exception>
#include <functional>

#include "flowgrad/parallel/collective.hpp"

namespace train2d {

flowgrad::Collective* ranks();  // nullptr: this process alone
bool is_root();                 // rank 0, or no ranks

// Runs `command` with the ranks set up from MPI where the build has it and mpirun started the
// program (a program started on its own runs alone, as without MPI): initialises MPI, and ends
// every rank (MPI_Abort) when one of them fails with an exception, which would otherwise leave the
// others waiting in the next collective. A build without MPI runs `command` alone, and refuses to
// run as several copies under mpirun (each would train alone and write the same files). `report`
// prints an exception and returns the exit code.
int run_with_ranks(int& argc, char**& argv, const std::function<int()>& command,
                   const std::function<int(const std::exception&)>& report);

// Collective: whether any rank got a stop request (a signal), the same answer on every rank.
bool all_ranks_agree_to_stop(bool here);

}  // namespace train2d
