// SPDX-License-Identifier: BSD-3-Clause
/* An untraced bystander that talks TCP: N round trips of one byte over a
 * loopback connection (send, recv on the other end, and back), on one
 * thread. Prints the nanoseconds per round trip (4 socket calls, each of
 * which passes weft's socket-layer tracepoints when they are enabled).
 * Built and run by bench/bystander (BENCH_WORKLOAD=sock). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 1) || getsockname(l, (void *)&a, &al))
		return perror("listen"), 1;
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (void *)&a, sizeof(a)))
		return perror("connect"), 1;
	int s = accept(l, NULL, NULL);
	if (s < 0)
		return perror("accept"), 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	char b = 'x';
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		if (send(c, &b, 1, 0) != 1 || recv(s, &b, 1, 0) != 1 || send(s, &b, 1, 0) != 1 ||
		    recv(c, &b, 1, 0) != 1)
			return perror("round trip"), 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
	return 0;
}
