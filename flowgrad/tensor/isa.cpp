// Which ISA's kernels run (flowgrad/tensor/isa.hpp): the CPU's features, FLOWGRAD_ISA, set_isa(),
// and the active kernel table. Compiled with the portable flags.
#include "flowgrad/tensor/isa.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "flowgrad/tensor/detail/kernel_table.hpp"

namespace flowgrad {
namespace {

struct Path {
  const detail::KernelTable<float>* f;
  const detail::KernelTable<double>* d;
};

#if defined(FLOWGRAD_NATIVE_BUILD)
// One path, compiled for the build machine, which is assumed to be the one running it.
constexpr Path kPaths[] = {{&isa_native::kernels_float, &isa_native::kernels_double}};
const char* missing_feature(Isa isa) {
  return isa == kPaths[0].f->isa ? nullptr : "its path (a FLOWGRAD_NATIVE build compiles one)";
}
#else
// Widest first.
constexpr Path kPaths[] = {{&isa_avx512::kernels_float, &isa_avx512::kernels_double},
                           {&isa_avx2::kernels_float, &isa_avx2::kernels_double}};

// The first feature the ISA's kernels need that this CPU lacks, or null. libgcc's
// __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0).
const char* missing_feature(Isa isa) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) return "avx2";
  if (!__builtin_cpu_supports("fma")) return "fma";
  if (isa == Isa::avx2) return nullptr;
  if (!__builtin_cpu_supports("avx512f")) return "avx512f";
  if (!__builtin_cpu_supports("avx512bw")) return "avx512bw";
  if (!__builtin_cpu_supports("avx512cd")) return "avx512cd";
  if (!__builtin_cpu_supports("avx512dq")) return "avx512dq";
  if (!__builtin_cpu_supports("avx512vl")) return "avx512vl";
  return nullptr;
}
#endif

constexpr int kPathCount = static_cast<int>(sizeof(kPaths) / sizeof(kPaths[0]));

int index_of(Isa isa) {
  for (int i = 0; i < kPathCount; ++i)
    if (kPaths[i].f->isa == isa && !missing_feature(isa)) return i;
  return -1;
}

int widest() {
  for (int i = 0; i < kPathCount; ++i)
    if (!missing_feature(kPaths[i].f->isa)) return i;
  return kPathCount - 1;  // the portable code needs AVX2 anyway
}

// The widest path, or the one FLOWGRAD_ISA names when it can run; a value that cannot is reported
// on stderr rather than thrown, so that a script can set it on every machine it runs on.
int initial_path() {
  const int best = widest();
  const char* env = std::getenv("FLOWGRAD_ISA");
  if (!env || !*env) return best;
  const char* fallback = to_string(kPaths[best].f->isa);
  Isa asked;
  try {
    asked = isa_from_string(env);
  } catch (const std::invalid_argument&) {
    std::fprintf(stderr, "flowgrad: FLOWGRAD_ISA=%s is not avx2 or avx512; running %s\n", env,
                 fallback);
    return best;
  }
  if (const char* missing = missing_feature(asked)) {
    std::fprintf(stderr, "flowgrad: FLOWGRAD_ISA=%s, but this CPU or build lacks %s; running %s\n",
                 env, missing, fallback);
    return best;
  }
  return index_of(asked);
}

std::atomic<int> g_path{-1};

const Path& active_path() {
  int i = g_path.load(std::memory_order_relaxed);
  if (i < 0) {
    static const int first = initial_path();
    // Unless set_isa() got there first.
    int expected = -1;
    g_path.compare_exchange_strong(expected, first, std::memory_order_relaxed);
    i = g_path.load(std::memory_order_relaxed);
  }
  return kPaths[i];
}

}  // namespace

const char* to_string(Isa isa) { return isa == Isa::avx512 ? "avx512" : "avx2"; }

Isa isa_from_string(const std::string& name) {
  if (name == "avx2") return Isa::avx2;
  if (name == "avx512") return Isa::avx512;
  throw std::invalid_argument("unknown ISA '" + name + "' (avx2, avx512)");
}

Isa active_isa() { return active_path().f->isa; }

bool isa_available(Isa isa) { return index_of(isa) >= 0; }

void set_isa(Isa isa) {
  if (const char* missing = missing_feature(isa))
    throw std::invalid_argument(std::string("set_isa: cannot run ") + to_string(isa) +
                                ": this CPU or build lacks " + missing);
  g_path.store(index_of(isa), std::memory_order_relaxed);
}

namespace detail {
template <>
const KernelTable<float>& kernels<float>() {
  return *active_path().f;
}
template <>
const KernelTable<double>& kernels<double>() {
  return *active_path().d;
}
}  // namespace detail

}  // namespace flowgrad
