/* SPDX-License-Identifier: MIT */
/*
 * grpc_tune.cc — the one setting of grpc's runtime that C cannot reach.
 *
 * Contract: gu_tune_runtime() switches off abseil's mutex deadlock
 * detection. Call it before grpc_init(), in every process that serves or
 * drives gRPC traffic (workers, the load generator). Idempotent.
 *
 * Why: Debian builds abseil without NDEBUG, so every absl::Mutex
 * acquisition inside grpc also maintains a global lock-order graph
 * (GraphCycles::GetId/InsertEdge showed up as ~10% of the load
 * generator's CPU and ~2% of a worker's). That bookkeeping finds lock
 * inversions in grpc itself, which is grpc's test suite's job, not ours.
 * This is C++ only because the switch is a C++ function.
 */
#include <absl/synchronization/mutex.h>

extern "C" void
gu_tune_runtime(void)
{
	absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}
