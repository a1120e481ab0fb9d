/* Listening sockets from /proc/net/tcp text (user/discovery/listen_ports.c),
 * and of this very process. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "listen_ports.h"

struct seen {
	uint16_t port[8];
	uint64_t inode[8];
	int n;
};

static void collect(void *ctx, uint16_t port, uint64_t inode)
{
	struct seen *s = ctx;
	s->port[s->n] = port;
	s->inode[s->n++] = inode;
}

static void test_parse(void **state)
{
	const char *text =
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0\n"
		"   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1\n"
		"   2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 99 1 0 100 0 0 10 0\n"
		"garbage\n";
	struct seen s = {};
	listen_ports_parse(text, strlen(text), collect, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.port[0], 8080);
	assert_int_equal(s.inode[0], 123456);
	assert_int_equal(s.port[1], 80);
	assert_int_equal(s.inode[1], 99);
}

static void test_this_process(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	uint16_t ports[8];
	int n = listen_ports_of_pid(getpid(), ports, 8);
	assert_int_equal(n, 1);
	assert_int_equal(ports[0], ntohs(a.sin_port));
	close(fd);
	assert_int_equal(listen_ports_of_pid(getpid(), ports, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_this_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
