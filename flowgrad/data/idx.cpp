#include "flowgrad/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>

namespace flowgrad {

namespace {

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw std::runtime_error(name + ": " + what);
}

// Deflate never encodes more than 1032 output bytes per input byte (its densest code: a 258-byte
// match in one bit and a little), so a gzip file of S bytes cannot hold more than this.
constexpr std::uint64_t deflate_max_ratio = 1032;
constexpr std::uint64_t gzip_slack = 1024;

bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

// The file's contents as a stream of bytes: the bytes themselves, or what they inflate to. Only
// what a read asks for is decompressed, so nothing is held that the claim does not need.
class ByteStream {
 public:
  ByteStream(std::string_view bytes, std::string name) : in_(bytes), name_(std::move(name)) {
    gzip_ = is_gzip(bytes);
    if (!gzip_) return;
    z_ = z_stream{};
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
    // zlib's avail_in is 32 bits: feed larger files in pieces (refill()).
    refill();
    if (inflateInit2(&z_, 15 + 16) != Z_OK) fail(name_, "cannot start zlib");  // 16: gzip only
  }
  ~ByteStream() {
    if (gzip_) inflateEnd(&z_);
  }
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  bool gzip() const { return gzip_; }
  // The most bytes the stream can still yield: exact for a plain file, deflate's limit for gzip.
  std::uint64_t most_left() const {
    const std::uint64_t left = in_.size() - consumed();
    return gzip_ ? left * deflate_max_ratio + gzip_slack : left;
  }
  // Reads up to n bytes into out; fewer only at the end of the data.
  std::size_t read(std::uint8_t* out, std::size_t n) {
    if (!gzip_) {
      const std::size_t k = std::min(n, in_.size() - pos_);
      if (k) std::memcpy(out, in_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    std::size_t got = 0;
    while (got < n && !done_) {
      const std::size_t ask = std::min<std::size_t>(n - got, 1u << 30);
      z_.next_out = out + got;
      z_.avail_out = static_cast<uInt>(ask);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      got += ask - z_.avail_out;
      if (rc == Z_STREAM_END) {
        next_member();
      } else if (rc == Z_BUF_ERROR || (rc == Z_OK && z_.avail_out > 0 && z_.avail_in == 0)) {
        if (!refill()) fail(name_, "truncated: the gzip data ends early");
      } else if (rc != Z_OK) {
        fail(name_, std::string("corrupt gzip data (") + (z_.msg ? z_.msg : "zlib error") + ")");
      }
    }
    return got;
  }

 private:
  std::size_t consumed() const {
    return gzip_ ? static_cast<std::size_t>(z_.next_in - reinterpret_cast<const Bytef*>(in_.data()))
                 : pos_;
  }
  // Hands zlib the next piece of input; false when there is none.
  bool refill() {
    const std::size_t left = in_.size() - consumed();
    z_.avail_in = static_cast<uInt>(std::min<std::size_t>(left, std::numeric_limits<uInt>::max()));
    return left > 0;
  }
  // gzip allows members one after another (as gzread reads them); anything else after a member is
  // an error rather than silently ignored.
  void next_member() {
    refill();
    const std::string_view rest = in_.substr(consumed());
    if (rest.empty()) {
      done_ = true;
      return;
    }
    if (!is_gzip(rest)) fail(name_, std::to_string(rest.size()) + " bytes after the gzip data");
    if (inflateReset(&z_) != Z_OK) fail(name_, "cannot restart zlib");
  }

  std::string_view in_;
  std::string name_;
  bool gzip_ = false, done_ = false;
  std::size_t pos_ = 0;
  z_stream z_{};
};

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::string hex(std::uint32_t x, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, x);
  return buf;
}

}  // namespace

IdxArray decode_idx(std::string_view bytes, const std::string& name) {
  ByteStream in(bytes, name);
  std::uint8_t head[4];
  if (in.read(head, 4) != 4) fail(name, "not an IDX file (shorter than its 4-byte magic)");
  const std::uint32_t magic = big_endian(head);
  if (head[0] != 0 || head[1] != 0)
    fail(name, "not an IDX file (magic " + hex(magic, 8) + " does not begin with two zero bytes)");
  if (head[2] != 0x08)
    fail(name, "IDX element type " + hex(head[2], 2) + " is not supported (magic " + hex(magic, 8) +
                   "); flowgrad reads unsigned bytes (0x08)");
  const int rank = head[3];
  if (rank < 1 || rank > 4)
    fail(name, "IDX rank " + std::to_string(rank) + " (magic " + hex(magic, 8) + ") is not 1 to 4");

  IdxArray out;
  std::uint64_t total = 1;
  bool overflow = false;
  for (int i = 0; i < rank; ++i) {
    std::uint8_t d[4];
    if (in.read(d, 4) != 4)
      fail(name, "truncated: the header ends inside dimension " + std::to_string(i + 1));
    const std::uint32_t n = big_endian(d);
    out.dims.push_back(static_cast<Index>(n));
    if (n != 0 && total > std::numeric_limits<std::uint64_t>::max() / n) overflow = true;
    total *= n;  // unsigned: wraps harmlessly when overflow is set
  }
  std::string shape;
  for (const Index d : out.dims) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
  if (overflow || total > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
    fail(name, "dimensions " + shape + " overflow: their product does not fit 64 bits");
  if (total > in.most_left())
    fail(name, "claims " + shape + " = " + std::to_string(total) + " values, more than the " +
                   (in.gzip() ? "gzip data can hold" : "file holds") + " (" +
                   std::to_string(bytes.size()) + " bytes)");

  // Grow with the data actually read, so a false claim costs no more than the bytes behind it.
  constexpr std::size_t chunk = 1u << 20;
  while (out.values.size() < total) {
    const std::size_t have = out.values.size();
    const std::size_t want = std::min<std::uint64_t>(total - have, std::max(chunk, have));
    out.values.resize(have + want);
    const std::size_t got = in.read(out.values.data() + have, want);
    if (got < want)
      fail(name, "truncated: " + std::to_string(have + got) + " of " + std::to_string(total) +
                     " values (" + shape + ")");
  }
  std::uint8_t extra = 0;
  if (in.read(&extra, 1) != 0) fail(name, "bytes after the " + std::to_string(total) + " values");
  return out;
}

IdxArray read_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open: ") + std::strerror(errno));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(path, "read error");
  return decode_idx(bytes, path);
}

IdxImages load_idx_images(const std::string& path) {
  IdxArray a = read_idx(path);
  if (a.dims.size() != 3)
    fail(path, "holds an IDX array of rank " + std::to_string(a.dims.size()) +
                   "; images are rank 3 (magic 0x00000803)");
  return IdxImages{a.dims[0], a.dims[1], a.dims[2], std::move(a.values)};
}

std::vector<std::uint8_t> load_idx_labels(const std::string& path) {
  IdxArray a = read_idx(path);
  if (a.dims.size() != 1)
    fail(path, "holds an IDX array of rank " + std::to_string(a.dims.size()) +
                   "; labels are rank 1 (magic 0x00000801)");
  return std::move(a.values);
}

Tensor<float> images_as_rows(const IdxImages& images) {
  Tensor<float> out(Shape{images.count, images.rows * images.cols});
  std::transform(images.pixels.begin(), images.pixels.end(), out.data(),
                 [](std::uint8_t v) { return static_cast<float>(v); });
  return out;
}

}  // namespace flowgrad
