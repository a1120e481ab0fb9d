/* The TCP ports a process listens on, from /proc (for weft run's
 * open_ports selectors, for the processes that were running before weft:
 * later listeners are reported by the kernel, bpf/capture sock_listen). */
#ifndef WEFT_DISCOVERY_LISTEN_PORTS_H
#define WEFT_DISCOVERY_LISTEN_PORTS_H

#include <stddef.h>
#include <stdint.h>

/* Up to max distinct ports pid listens on (IPv4 and IPv6); the count, or
 * a negative errno when the process is gone. */
int listen_ports_of_pid(uint32_t pid, uint16_t *out, size_t max);

/* Parses the text of /proc/net/tcp or tcp6: calls cb for every socket in
 * LISTEN state with its local port and inode. Exposed for tests. */
typedef void (*listen_cb)(void *ctx, uint16_t port, uint64_t inode);
void listen_ports_parse(const char *text, size_t len, listen_cb cb, void *ctx);

#endif
