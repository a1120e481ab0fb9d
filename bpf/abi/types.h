/* Fixed-width types for the headers shared by the kernel side and the
 * agent: the kernel's own (vmlinux.h) in BPF code, <linux/types.h> in C. */
#ifndef WEFT_ABI_TYPES_H
#define WEFT_ABI_TYPES_H

#ifdef __bpf__
/* vmlinux.h provides the kernel's __u8 .. __u64 */
#else
#include <linux/types.h>
#endif

#endif
