#include "flowgrad/tensor/detail/cache_sizes.hpp"

#include <unistd.h>

namespace flowgrad::detail {
namespace {

Index reported(int name, Index fallback) {
  const long bytes = sysconf(name);
  return bytes > 0 ? static_cast<Index>(bytes) : fallback;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes{reported(_SC_LEVEL1_DCACHE_SIZE, Index(32) << 10),
                                reported(_SC_LEVEL2_CACHE_SIZE, Index(512) << 10),
                                reported(_SC_LEVEL3_CACHE_SIZE, Index(32) << 20)};
  return sizes;
}

}  // namespace flowgrad::detail
