// A writer killed with SIGKILL in the middle of write_file_atomic leaves the last complete file and
// a temporary; the next write into that directory removes the temporary.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "flowgrad/autodiff/io/atomic_file.hpp"
#include "temp_files.hpp"

using namespace flowgrad;
using flowgrad::testing::read_bytes;
using flowgrad::testing::TempDir;

namespace {

std::vector<std::string> names_in(const TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Forks a process that starts writing `bytes` to `path` and is killed by SIGKILL once 64 KiB of
// the temporary are on disk: the file-size limit raises SIGXFSZ in the middle of write(), and its
// handler sends SIGKILL, so the writer dies exactly where a kill -9 would have caught it.
pid_t killed_writer(const std::string& path, const std::string& bytes) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, [](int) { ::kill(::getpid(), SIGKILL); });
    const rlimit limit{64 << 10, 64 << 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      write_file_atomic(path, bytes);
    } catch (...) {
    }
    ::_exit(0);  // not reached: the write cannot finish
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  return pid;
}

}  // namespace

TEST_CASE("write_file_atomic: a writer's SIGKILL leftover is removed by the next write") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  write_file_atomic(path, "first complete file");

  const pid_t dead = killed_writer(path, std::string(1 << 20, 'x'));
  const std::string leftover_prefix = "model.safetensors.tmp-" + std::to_string(dead) + "-";
  auto names = names_in(dir);
  REQUIRE(names.size() == 2);
  CHECK(names[0] == "model.safetensors");
  CHECK(names[1].rfind(leftover_prefix, 0) == 0);
  CHECK(std::filesystem::file_size(dir.path / names[1]) == 64 << 10);  // killed mid-file
  CHECK(read_bytes(path) == "first complete file");                   // the last complete one

  // Beside it: a temporary of this (living) process, one of another file, and a name this library
  // does not write. The next save removes only the dead writer's leftover of its own file.
  const std::string mine = "model.safetensors.tmp-" + std::to_string(::getpid()) + "-abcdef";
  const std::string other = "other.safetensors.tmp-" + std::to_string(dead) + "-abcdef";
  const std::string odd = "model.safetensors.tmp-notapid";
  for (const auto& n : {mine, other, odd}) dir.write(n, "kept");

  write_file_atomic(path, "second complete file");
  CHECK(read_bytes(path) == "second complete file");
  names = names_in(dir);
  std::vector<std::string> expected{"model.safetensors", mine, odd, other};
  std::sort(expected.begin(), expected.end());
  CHECK(names == expected);
}
