/* Listening sockets of a process: the LISTEN entries of its network
 * namespace's /proc/PID/net/tcp{,6}, kept when the process holds their
 * inode (/proc/PID/fd/N -> "socket:[inode]"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen_ports.h"

#define LISTENERS_MAX 256 /* listening sockets of one namespace looked at */
#define NET_FILE_MAX (4 << 20)

struct listener {
	uint16_t port;
	uint64_t inode;
};

struct listeners {
	struct listener l[LISTENERS_MAX];
	size_t n;
};

void listen_ports_parse(const char *text, size_t len, listen_cb cb, void *ctx)
{
	/* "  sl  local_address rem_address   st tx_queue ... uid  timeout inode"
	 * "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 ... 0 0 12345 ..." */
	const char *line = memchr(text, '\n', len); /* skip the header */
	while (line && line < text + len) {
		line++;
		const char *nl = memchr(line, '\n', text + len - line);
		size_t n = (nl ? nl : text + len) - line;
		char buf[512];
		if (n && n < sizeof(buf)) {
			memcpy(buf, line, n);
			buf[n] = '\0';
			char local[64], remote[64], state[8];
			unsigned long long inode;
			unsigned uid, timeout;
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(buf, " %*[^:]: %63s %63s %7s %*s %*s %*s %u %u %llu", local, remote, state, &uid,
				   &timeout, &inode) == 6 &&
			    !strcmp(state, "0A")) {
				const char *colon = strrchr(local, ':');
				unsigned port;
				if (colon && sscanf(colon + 1, "%x", &port) == 1 && port && port <= 65535)
					cb(ctx, port, inode);
			}
		}
		line = nl;
	}
}

static void add_listener(void *ctx, uint16_t port, uint64_t inode)
{
	struct listeners *ls = ctx;
	if (ls->n < LISTENERS_MAX)
		ls->l[ls->n++] = (struct listener){ port, inode };
}

static void read_net_file(uint32_t pid, const char *name, struct listeners *ls)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/net/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size_t cap = 64 << 10, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n <= 0)
			break;
		len += n;
		if (len == cap) {
			if (cap >= NET_FILE_MAX)
				break;
			char *bigger = realloc(buf, cap * 2);
			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	close(fd);
	if (buf)
		listen_ports_parse(buf, len, add_listener, ls);
	free(buf);
}

int listen_ports_of_pid(uint32_t pid, uint16_t *out, size_t max)
{
	static struct listeners ls;
	uint64_t socks[LISTENERS_MAX];
	size_t n_socks = 0, n = 0;
	char path[64], link[64];
	/* The process's sockets first: most have none (a program just
	 * exec'd), and then the namespace's tables are not read at all. */
	snprintf(path, sizeof(path), "/proc/%u/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) && n_socks < LISTENERS_MAX) {
		char fdpath[96];
		unsigned long long inode;
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		ssize_t l = readlink(fdpath, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		if (sscanf(link, "socket:[%llu]", &inode) == 1)
			socks[n_socks++] = inode;
	}
	closedir(d);
	if (!n_socks)
		return 0;
	ls.n = 0;
	read_net_file(pid, "tcp", &ls);
	read_net_file(pid, "tcp6", &ls);
	for (size_t i = 0; i < ls.n; i++) {
		for (size_t j = 0; j < n_socks && n < max; j++) {
			if (ls.l[i].inode != socks[j])
				continue;
			bool dup = false;
			for (size_t k = 0; k < n; k++)
				dup |= out[k] == ls.l[i].port;
			if (!dup)
				out[n++] = ls.l[i].port;
		}
	}
	return n;
}
