#include "flowgrad/autodiff/io/atomic_file.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace flowgrad {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("cannot write " + path + ": " + what);
}
std::string os_error() { return std::strerror(errno); }

// The temporary's name: "<file>.tmp-<pid>-" and mkstemp's six characters. The writer's pid in the
// name lets a later save tell a dead writer's leftover from a file being written right now.
std::string temporary_prefix(const std::string& file_name) { return file_name + ".tmp-"; }

// The pid in a temporary's name after the prefix ("<pid>-XXXXXX"), or 0 if the rest is not that.
pid_t writer_of(std::string_view rest) {
  const auto dash = rest.find('-');
  if (dash == std::string_view::npos || rest.size() - dash - 1 != 6) return 0;
  long pid = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + dash, pid);
  if (ec != std::errc() || end != rest.data() + dash || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

// Removes what writers of this same file left when they died mid-write (SIGKILL, a crash): the
// temporaries whose writer process no longer exists. This process's own are left alone (another
// thread may be writing one), and so is anything whose pid is alive or cannot be checked (EPERM),
// or that is not named as this function writes. Best effort: a failure here stops no save. (A pid
// reused since leaves its leftover in place until that process ends too; that errs on the safe
// side.)
void remove_stale_temporaries(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = temporary_prefix(target.filename().string());
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const pid_t pid = writer_of(std::string_view(name).substr(prefix.size()));
    if (pid == 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code ignored;
    fs::remove(it->path(), ignored);
  }
}
}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  remove_stale_temporaries(path);
  std::string tmpl_str =
      temporary_prefix(path) + std::to_string(static_cast<long>(::getpid())) + "-XXXXXX";
  std::vector<char> tmpl(tmpl_str.begin(), tmpl_str.end());
  tmpl.push_back('\0');
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) fail(path, os_error());
  const std::string tmp(tmpl.data());
  auto abandon = [&](const std::string& why) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, why);
  };
  // mkstemp makes the file private; these are ordinary files.
  if (::fchmod(fd, 0644) != 0) abandon(os_error());
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      abandon(os_error());
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) abandon(os_error());
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail(path, os_error());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = os_error();
    ::unlink(tmp.c_str());
    fail(path, why);
  }
}

}  // namespace flowgrad
