#include "flowgrad/parallel/mpi.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace flowgrad {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("MPI: ") + what + " failed: " + std::string(text, len));
}

// MPI counts are int: larger buffers go in pieces.
template <class F>
void in_chunks(std::size_t n, F&& f) {
  constexpr std::size_t chunk = std::size_t{1} << 30;
  for (std::size_t done = 0; done < n; done += chunk)
    f(done, static_cast<int>(std::min(chunk, n - done)));
}

template <class T>
MPI_Datatype type_of();
template <>
MPI_Datatype type_of<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype type_of<double>() {
  return MPI_DOUBLE;
}

template <class T>
void allreduce_sum(T* data, std::size_t n) {
  in_chunks(n, [&](std::size_t at, int count) {
    check(MPI_Allreduce(MPI_IN_PLACE, data + at, count, type_of<T>(), MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
  });
}

template <class T>
void bcast(T* data, std::size_t n) {
  in_chunks(n, [&](std::size_t at, int count) {
    check(MPI_Bcast(data + at, count, type_of<T>(), 0, MPI_COMM_WORLD), "MPI_Bcast");
  });
}

}  // namespace

MpiSession::MpiSession(int& argc, char**& argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) return;
  check(MPI_Init(&argc, &argv), "MPI_Init");
  owns_ = true;
}

MpiSession::~MpiSession() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_ && !finalised) MPI_Finalize();
}

void MpiSession::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this tells the compiler so
}

MpiCollective::MpiCollective() {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised)
    throw std::logic_error("MpiCollective: MPI is not initialised (create an MpiSession first)");
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
}

void MpiCollective::sum(float* data, std::size_t n) {
  const double start = MPI_Wtime();
  allreduce_sum(data, n);
  sum_seconds_ += MPI_Wtime() - start;
  ++sum_calls_;
}

void MpiCollective::sum(double* data, std::size_t n) {
  const double start = MPI_Wtime();
  allreduce_sum(data, n);
  sum_seconds_ += MPI_Wtime() - start;
  ++sum_calls_;
}

void MpiCollective::broadcast(float* data, std::size_t n) { bcast(data, n); }
void MpiCollective::broadcast(double* data, std::size_t n) { bcast(data, n); }

bool MpiCollective::same_everywhere(std::uint64_t value) {
  // The largest of v and of ~v give the largest and (complemented) the smallest: one reduction.
  std::uint64_t both[2] = {value, ~value};
  check(MPI_Allreduce(MPI_IN_PLACE, both, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD),
        "MPI_Allreduce");
  return both[0] == value && ~both[1] == value;
}

std::vector<std::string> MpiCollective::gather(const std::string& text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX))
    throw std::invalid_argument("MpiCollective::gather: text of more than 2^31 bytes");
  const int length = static_cast<int>(text.size());
  std::vector<int> lengths(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
  check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD),
        "MPI_Gather");
  std::vector<int> offsets(lengths.size());
  long long total = 0;
  for (std::size_t r = 0; r < lengths.size(); ++r) {
    offsets[r] = static_cast<int>(total);
    total += lengths[r];
  }
  if (total > INT_MAX) throw std::invalid_argument("MpiCollective::gather: texts too long");
  std::string all(static_cast<std::size_t>(total), '\0');
  check(MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(),
                    MPI_CHAR, 0, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    out.push_back(
        all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  return out;
}

std::string MpiCollective::broadcast(const std::string& text) {
  unsigned long long length = text.size();
  check(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == 0 ? text : std::string(static_cast<std::size_t>(length), '\0');
  in_chunks(out.size(), [&](std::size_t at, int count) {
    check(MPI_Bcast(out.data() + at, count, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  });
  return out;
}

}  // namespace flowgrad
