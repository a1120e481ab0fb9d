/* Short-lived traced processes for tests/e2e/test_churn.py: makes N
 * processes, at most P at a time, each sending one HTTP/1 request to
 * 127.0.0.1:PORT and exiting. Every K-th one execs this program again
 * (same PID, OTEL_SERVICE_NAME=churn-exec, argv[1] "exec-child") before its
 * request; the others only fork. The request path names the process and
 * how it was made, /k/churn/PID/f or /k/churn/PID/e, so that the test can
 * check each span's resource against the process that really sent it.
 *
 * Usage: churn PORT N P K        prints "done N failed F" at the end
 *        churn exec-child PORT   (internal)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int request(int port, char how)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[512];
	int fd, len, ret = 1;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto cleanup;
	len = snprintf(buf, sizeof(buf),
		       "GET /k/churn/%d/%c HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
		       (int)getpid(), how);
	if (write(fd, buf, len) != len)
		goto cleanup;
	/* read to the end: the response completes the exchange */
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	ret = n < 0;
cleanup:
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	int port, n, par, k, running = 0, failed = 0, status;
	char self[4096], portstr[16];
	ssize_t sl;

	if (argc == 3 && strcmp(argv[1], "exec-child") == 0)
		return request(atoi(argv[2]), 'e');
	if (argc != 5) {
		fprintf(stderr, "usage: churn PORT N P K\n");
		return 2;
	}
	port = atoi(argv[1]);
	n = atoi(argv[2]);
	par = atoi(argv[3]);
	k = atoi(argv[4]);
	if (port <= 0 || n <= 0 || par <= 0 || k <= 0)
		return 2;
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl < 0)
		return 1;
	self[sl] = 0;
	snprintf(portstr, sizeof(portstr), "%d", port);

	for (int i = 0; i < n; i++) {
		pid_t pid;

		if (running >= par) {
			if (wait(&status) > 0) {
				running--;
				failed += !WIFEXITED(status) || WEXITSTATUS(status);
			}
		}
		pid = fork();
		if (pid < 0) {
			failed++;
			continue;
		}
		if (pid == 0) {
			if (i % k == 0) {
				char *av[] = { "churn", "exec-child", portstr, NULL };
				char *ev[] = { "OTEL_SERVICE_NAME=churn-exec", NULL };

				execve(self, av, ev);
				_exit(127);
			}
			_exit(request(port, 'f'));
		}
		running++;
	}
	while (running > 0 && wait(&status) > 0) {
		running--;
		failed += !WIFEXITED(status) || WEXITSTATUS(status);
	}
	printf("done %d failed %d\n", n, failed);
	return failed != 0;
}
