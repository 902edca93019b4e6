#include "flowgrad/parallel/collective.hpp"

namespace flowgrad {

namespace {
thread_local Collective* current = nullptr;
}

Collective* batch_collective() { return current; }

BatchCollectiveScope::BatchCollectiveScope(Collective* c) : previous_(current) { current = c; }

BatchCollectiveScope::~BatchCollectiveScope() { current = previous_; }

}  // namespace flowgrad
