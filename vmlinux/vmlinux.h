/* Dispatch to the BTF dump of the target architecture. Regenerate one with
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/<arch>/vmlinux.h
 * CO-RE relocates field offsets at load time, so one dump serves every kernel
 * of that architecture that has BTF. */
#if defined(__TARGET_ARCH_x86)
#include "x86/vmlinux.h"
#else
#error "no vmlinux.h for this architecture: generate vmlinux/<arch>/vmlinux.h (see vmlinux/vmlinux.h)"
#endif
