#include "flowgrad/tensor/random.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <string_view>

namespace flowgrad {

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Generator::Generator(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Generator::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Generator::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  // 1 - uniform() lies in (0, 1], so the log is finite.
  const double r = std::sqrt(-2.0 * std::log(1.0 - uniform()));
  const double theta = 2.0 * std::numbers::pi * uniform();
  spare_normal_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

std::uint64_t Generator::below(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("Generator::below: empty range");
  // Rejection from the largest multiple of n keeps every value equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

template <Scalar T>
Tensor<T> Generator::uniform(Shape shape, T low, T high) {
  Tensor<T> t(shape);
  // low + (high - low) u can round up to high, in double or in the cast to float (for u within
  // 2^-25 of 1, or half of all u on a narrow interval); such a draw takes the largest value below
  // high, so the interval stays half-open.
  const T below_high = std::nextafter(high, low);
  for (Index i = 0; i < t.numel(); ++i) {
    const T v =
        static_cast<T>(static_cast<double>(low) + (static_cast<double>(high) - low) * uniform());
    t[i] = low < high && v >= high ? below_high : v;
  }
  return t;
}

template <Scalar T>
Tensor<T> Generator::normal(Shape shape, T mean, T stddev) {
  Tensor<T> t(shape);
  for (Index i = 0; i < t.numel(); ++i)
    t[i] = static_cast<T>(static_cast<double>(mean) + static_cast<double>(stddev) * normal());
  return t;
}

template <Scalar T>
Tensor<T> Generator::bernoulli(Shape shape, double p) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument("Generator::bernoulli: p outside [0, 1]");
  Tensor<T> t(shape);
  for (Index i = 0; i < t.numel(); ++i) t[i] = uniform() < p ? T(1) : T(0);
  return t;
}

std::vector<Index> Generator::permutation(Index n) {
  std::vector<Index> p(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) p[static_cast<std::size_t>(i)] = i;
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(below(static_cast<std::uint64_t>(i + 1)));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

namespace {
void append_hex_word(std::string& out, std::uint64_t w) {
  static constexpr char digits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) out += digits[(w >> shift) & 0xf];
}

// Exactly 16 hex digits: a shorter or longer field is a damaged state, not a smaller number.
bool parse_hex_word(std::string_view f, std::uint64_t& w) {
  if (f.size() != 16) return false;
  for (const char c : f)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), w, 16);
  return ec == std::errc() && ptr == f.data() + f.size();
}
}  // namespace

std::string Generator::state() const {
  std::string out;
  out.reserve(5 * 17);
  for (const std::uint64_t w : s_) {
    append_hex_word(out, w);
    out += ',';
  }
  if (has_spare_)
    append_hex_word(out, std::bit_cast<std::uint64_t>(spare_normal_));
  else
    out += '-';
  return out;
}

void Generator::set_state(const std::string& state) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("Generator::set_state: " + why + " in '" + state +
                                "' (expected 4 words of 16 hex digits and a spare, '-' or 16 "
                                "hex digits, separated by commas)");
  };
  std::uint64_t words[5] = {};
  std::string_view rest = state;
  int fields = 0;
  bool spare = false;
  for (; fields < 5; ++fields) {
    const std::size_t comma = rest.find(',');
    const std::string_view f = rest.substr(0, comma);
    if (fields == 4 && f == "-") {
      spare = false;
    } else {
      if (!parse_hex_word(f, words[fields]))
        fail("field " + std::to_string(fields + 1) + " is bad");
      spare = fields == 4;
    }
    if (comma == std::string_view::npos) {
      rest = {};
      ++fields;
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  if (fields != 5 || !rest.empty()) fail("not 5 fields");
  if ((words[0] | words[1] | words[2] | words[3]) == 0) fail("the all-zero xoshiro state");
  const double spare_value = std::bit_cast<double>(words[4]);
  if (spare && !std::isfinite(spare_value)) fail("a non-finite spare normal");
  for (int i = 0; i < 4; ++i) s_[i] = words[i];
  has_spare_ = spare;
  spare_normal_ = spare ? spare_value : 0.0;
}

template Tensor<float> Generator::uniform(Shape, float, float);
template Tensor<double> Generator::uniform(Shape, double, double);
template Tensor<float> Generator::normal(Shape, float, float);
template Tensor<double> Generator::normal(Shape, double, double);
template Tensor<float> Generator::bernoulli(Shape, double);
template Tensor<double> Generator::bernoulli(Shape, double);

}  // namespace flowgrad
