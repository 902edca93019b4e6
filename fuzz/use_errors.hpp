#pragma once
// What a rebuilt model may answer with when it is used on a few points, besides results: the
// errors its layers document. A layer that meets NaN or inf says so (std::domain_error), batch
// norm refuses to invert before it has running statistics (a plain std::logic_error), and a value
// check may throw std::runtime_error. Any other exception (std::out_of_range, std::length_error,
// std::bad_alloc...) escapes and is a finding.
#include <stdexcept>
#include <typeinfo>

namespace flowgrad::fuzz {

template <class F>
void allowing_documented_errors(F&& f) {
  try {
    f();
  } catch (const std::domain_error&) {
  } catch (const std::runtime_error&) {
  } catch (const std::logic_error& e) {
    if (typeid(e) != typeid(std::logic_error)) throw;
  }
}

}  // namespace flowgrad::fuzz
