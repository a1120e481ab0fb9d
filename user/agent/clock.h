/* Kernel timestamps are CLOCK_MONOTONIC; spans carry unix time. */
#ifndef WEFT_CLOCK_H
#define WEFT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* realtime - monotonic, measured now. */
static inline int64_t clock_mono_to_real_offset(void)
{
	uint64_t r1 = clock_ns(CLOCK_REALTIME);
	uint64_t m = clock_ns(CLOCK_MONOTONIC);
	uint64_t r2 = clock_ns(CLOCK_REALTIME);
	return (int64_t)(r1 / 2 + r2 / 2) - (int64_t)m;
}

#endif
