#ifndef PESVI_ALLOCATION_COUNTER_H
#define PESVI_ALLOCATION_COUNTER_H
/// Number of heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc,
/// memalign) made by this process since it started. Test-only: the test executable defines
/// these functions, which takes precedence over glibc's, and forwards to glibc.
long pesvi_allocation_count(void);
#endif
