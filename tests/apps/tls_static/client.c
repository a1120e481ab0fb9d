/* An HTTPS client with OpenSSL linked in statically (tests/e2e/
 * test_tls_static.py): waits for a line on stdin, then GETs each path from
 * 127.0.0.1:PORT on a connection of its own and prints what its OpenSSL
 * negotiated and the response's first line:
 *   TLSv1.3 TLS_AES_256_GCM_SHA384 HTTP/1.1 200 OK
 * Usage: client PORT PATH... */
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Each connection keeps its fd until the end: a reused fd number whose
 * new socket also reuses the old one's address races with the old
 * connection's close in weft's connection table (seen on the socket
 * front; docs/TLS.md). */
static int get(SSL_CTX *ctx, int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), ret = -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	SSL *ssl = NULL;
	char req[512], buf[8192];
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("connect");
		goto cleanup;
	}
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1) {
		fprintf(stderr, "handshake failed\n");
		goto cleanup;
	}
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path,
		     port);
	if (SSL_write(ssl, req, n) != n)
		goto cleanup;
	int got = 0, r;
	while (got < (int)sizeof(buf) - 1 && (r = SSL_read(ssl, buf + got, (int)sizeof(buf) - 1 - got)) > 0)
		got += r;
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("%s %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl), buf);
	fflush(stdout);
	SSL_shutdown(ssl);
	ret = 0;
cleanup:
	SSL_free(ssl);
	if (ret && fd >= 0)
		close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	char line[16];
	if (argc < 3)
		return 2;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 2; i < argc; i++)
		if (get(ctx, atoi(argv[1]), argv[i]))
			return 1;
	SSL_CTX_free(ctx);
	return 0;
}
