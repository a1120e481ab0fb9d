/* An HTTP/2 (h2c) server that makes the two directions of each
 * connection start together on two CPUs: once a connection's client
 * preface, SETTINGS and request HEADERS are all in its receive queue, one
 * thread reads them while another writes the server's SETTINGS, both
 * released by one store to a flag they spin on. The read starts from 2 us
 * before to 14 us after the write (80 ns steps, another offset for each
 * connection), since a send returns later than a recv of queued bytes. A
 * Go or grpc-go server does the same by chance (its writer and reader
 * goroutines); this does it on purpose, so that a tracer whose
 * per-connection stream state is begun by each direction without regard
 * for the other shows it within a few dozen connections.
 *
 * Then it answers the request (HEADERS :status 200, END_STREAM) and waits
 * for the client to close. Prints its port, serves N connections, exits.
 *
 *   h2race N    (N connections; the client sends preface + SETTINGS +
 *                one HEADERS frame in one write: tests/e2e/test_grpc.py) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PREFACE_LEN 24

static atomic_int go_round;  /* the round both threads start; 0: none yet */
static atomic_int done_round; /* the round the writer finished */
static int conn_fd = -1;

static _Atomic long write_delay_ns;

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void spin_ns(long ns)
{
	long end = now_ns() + ns;
	while (now_ns() < end)
		;
}

static const unsigned char server_settings[9] = { 0, 0, 0, 4, 0, 0, 0, 0, 0 };
/* HEADERS, END_STREAM | END_HEADERS, stream 1: ":status: 200" (static index 8). */
static const unsigned char response[10] = { 0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88 };

static void *writer(void *arg)
{
	(void)arg;
	for (int round = 1;; round++) {
		while (atomic_load_explicit(&go_round, memory_order_acquire) < round)
			; /* spin: the write must start when the read does */
		spin_ns(atomic_load(&write_delay_ns));
		if (send(conn_fd, server_settings, sizeof(server_settings), MSG_NOSIGNAL) < 0)
			perror("h2race: send");
		atomic_store_explicit(&done_round, round, memory_order_release);
	}
	return NULL;
}

/* Waits until n bytes are queued on fd (FIONREAD: nothing read yet). */
static int wait_queued(int fd, int n)
{
	for (int i = 0; i < 5000; i++) {
		int q = 0;
		if (ioctl(fd, FIONREAD, &q) == 0 && q >= n)
			return 0;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 1);
		usleep(200);
	}
	return -1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 16) ||
	    getsockname(ls, (struct sockaddr *)&a, &al)) {
		perror("h2race: listen");
		return 1;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	pthread_t th;
	if (pthread_create(&th, NULL, writer, NULL)) {
		fprintf(stderr, "h2race: no thread\n");
		return 1;
	}
	unsigned char buf[4096];
	for (int round = 1; round <= n; round++) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) {
			perror("h2race: accept");
			return 1;
		}
		/* The client's first write: preface, SETTINGS and HEADERS. */
		if (wait_queued(fd, PREFACE_LEN + 9 + 9 + 1)) {
			fprintf(stderr, "h2race: the client's first bytes never came\n");
			return 1;
		}
		conn_fd = fd;
		long offset = -2000 + (round * 37 % 200) * 80L; /* the read's start after the write's */
		atomic_store(&write_delay_ns, offset < 0 ? -offset : 0);
		atomic_store_explicit(&go_round, round, memory_order_release);
		if (offset > 0)
			spin_ns(offset);
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		while (atomic_load_explicit(&done_round, memory_order_acquire) < round)
			;
		if (r < PREFACE_LEN || memcmp(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", PREFACE_LEN)) {
			fprintf(stderr, "h2race: no client preface\n");
			return 1;
		}
		if (send(fd, response, sizeof(response), MSG_NOSIGNAL) < 0)
			perror("h2race: send");
		while (recv(fd, buf, sizeof(buf), 0) > 0)
			; /* the client's SETTINGS ack, then its close */
		close(fd);
	}
	return 0;
}
