#include "ranks.hpp"

#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#if defined(FLOWGRAD_WITH_MPI)
#include "flowgrad/parallel/mpi.hpp"
#endif

namespace train2d {

namespace {
flowgrad::Collective* current = nullptr;
}

flowgrad::Collective* ranks() { return current; }

bool is_root() { return current == nullptr || current->is_root(); }

bool all_ranks_agree_to_stop(bool here) {
  if (current == nullptr) return here;
  // Any rank's request stops all of them, at the same step.
  double flag = here ? 1.0 : 0.0;
  current->sum(&flag, 1);
  return flag > 0;
}

namespace {
// mpirun (Open MPI's, or a PMI launcher such as srun) tells its processes so; a program started
// on its own runs alone, without MPI's start-up.
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}
}  // namespace

#if defined(FLOWGRAD_WITH_MPI)
int run_with_ranks(int& argc, char**& argv, const std::function<int()>& command,
                   const std::function<int(const std::exception&)>& report) {
  if (!launched_by_mpirun()) {
    try {
      return command();
    } catch (const std::exception& e) {
      return report(e);
    }
  }
  flowgrad::MpiSession session(argc, argv);
  flowgrad::MpiCollective world;
  if (world.size() > 1) current = &world;
  int code = 0;
  try {
    code = command();
  } catch (const std::exception& e) {
    code = report(e);
    // The other ranks may be waiting for this one in a collective.
    if (current != nullptr) flowgrad::MpiSession::abort(code == 0 ? 1 : code);
  }
  current = nullptr;
  return code;
}
#else
int run_with_ranks(int&, char**&, const std::function<int()>& command,
                   const std::function<int(const std::exception&)>& report) {
  try {
    const char* copies = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (launched_by_mpirun() && copies != nullptr && std::string(copies) != "1")
      throw std::runtime_error(std::string("started by mpirun as ") + copies +
                               " processes, but built without MPI: configure with "
                               "-DFLOWGRAD_MPI=ON (scripts/setup.sh --mpi) to train "
                               "data-parallel");
    return command();
  } catch (const std::exception& e) {
    return report(e);
  }
}
#endif

}  // namespace train2d
