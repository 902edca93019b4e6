#include "flowgrad/autodiff/io/atomic_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace flowgrad {

namespace {
[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("cannot write " + path + ": " + what);
}
std::string os_error() { return std::strerror(errno); }
}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmpl_str = path + ".tmp-XXXXXX";
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
