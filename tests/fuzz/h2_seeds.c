/* Seeds of the HTTP/2 fuzzer (tests/fuzz/fuzz_h2.c), from real HTTP/2:
 * an nghttp2 client session and an nghttp2 server session talk in memory
 * (gRPC calls with trailers, plain requests, concurrent streams, resets,
 * padding, priorities, a header block long enough for CONTINUATION, a
 * smaller HPACK table), and what each writes is recorded as the kernel
 * would send it: filtered (DATA payloads cut to 5 bytes), one event per
 * write, cut at WEFT_STREAM_CAP with MORE, from the client's or the
 * server's side. Built and run by tests/fuzz/make_h2_seeds; argv[1] is the
 * corpus directory. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#define CAP 16384 /* WEFT_STREAM_CAP */
#define F_START 0x01
#define F_GAP 0x02
#define F_MORE 0x08

/* A seed being written: fuzz_h2.c's records. */
struct seed {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		if (!s->p)
			abort();
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void record(struct seed *s, int conn, int dir, uint8_t flags, uint8_t b1, const uint8_t *p, size_t n)
{
	do {
		size_t k = n > CAP ? CAP : n;
		uint8_t f = flags | (k < n ? F_MORE : 0);
		uint8_t h[4] = { (uint8_t)(conn | dir << 2 | f << 3), b1, (uint8_t)k, (uint8_t)(k >> 8) };
		put(s, h, 4);
		put(s, p, k);
		p += k;
		n -= k;
		flags = 0;
	} while (n);
}

/* The kernel's filter of one direction (bpf/protocols/http2.bpf.h): every
 * frame whole, but of a DATA frame's payload only the first 5 bytes. */
struct filter {
	uint32_t preface; /* bytes of the client preface to pass as they are */
	uint8_t hdr[9];
	size_t hlen;
	uint32_t left, keep; /* payload bytes still to come, of them to keep */
};

static size_t filter(struct filter *f, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (f->preface) {
			out[o++] = in[i];
			f->preface--;
			continue;
		}
		if (f->left) {
			if (f->keep) {
				out[o++] = in[i];
				f->keep--;
			}
			f->left--;
			continue;
		}
		f->hdr[f->hlen++] = in[i];
		out[o++] = in[i];
		if (f->hlen == 9) {
			f->left = (uint32_t)f->hdr[0] << 16 | (uint32_t)f->hdr[1] << 8 | f->hdr[2];
			f->keep = f->hdr[3] == 0 ? (f->left < 5 ? f->left : 5) : f->left;
			f->hlen = 0;
		}
	}
	return o;
}

/* What the server answers, per request path. */
struct scenario {
	const char *name;
	bool client_side; /* recorded as the client's events, else the server's */
	bool padding, priority, small_table, inject, gap, second_conn;
	int n_req;
	const char *paths[6];
	const char *long_header; /* a header long enough for CONTINUATION */
};

struct peer {
	nghttp2_session *s;
	const struct scenario *sc;
	int body_left[64]; /* server: response body to send per stream (by id / 2) */
	char path[64][128];
	int conn;
};

static ssize_t body_read(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct peer *p = user;
	bool grpc = strncmp(p->path[sid / 2 % 64], "/grpc.", 6) == 0 || strncmp(p->path[sid / 2 % 64], "/pkg.", 5) == 0;
	if (src->ptr) { /* a client's request body */
		static const uint8_t msg[] = { 0, 0, 0, 0, 7, 0x0a, 5, 'w', 'o', 'r', 'l', 'd' };
		memcpy(buf, msg, sizeof(msg));
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return sizeof(msg);
	}
	size_t n = length < 300 ? length : 300;
	memset(buf, 'x', n);
	if (grpc && n >= 5)
		memcpy(buf, "\0\0\0\x01\x27", 5);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (grpc) {
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		bool fail = strstr(p->path[sid / 2 % 64], "Fail") != NULL;
		nghttp2_nv tr[] = {
			{ (uint8_t *)"grpc-status", (uint8_t *)(fail ? "5" : "0"), 11, 1, NGHTTP2_NV_FLAG_NONE },
			{ (uint8_t *)"grpc-message", (uint8_t *)"not found: item\x7f", 12, 16, NGHTTP2_NV_FLAG_NONE },
		};
		nghttp2_submit_trailer(session, sid, tr, fail ? 2 : 1);
	}
	return (ssize_t)n;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	struct peer *p = user;
	if (namelen == 5 && !memcmp(name, ":path", 5))
		snprintf(p->path[fr->hd.stream_id / 2 % 64], 128, "%.*s", (int)valuelen, value);
	return 0;
}

/* The server answers a request once it has all of it. */
static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr, void *user)
{
	struct peer *p = user;
	if (!nghttp2_session_check_server_session(s) || !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA))
		return 0;
	int32_t sid = fr->hd.stream_id;
	const char *path = p->path[sid / 2 % 64];
	if (strstr(path, "reset"))
		return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
	nghttp2_data_provider dp = { .read_callback = body_read };
	if (!strncmp(path, "/grpc.", 6) || !strncmp(path, "/pkg.", 5)) {
		nghttp2_nv h[] = { NV(":status", "200"), NV("content-type", "application/grpc") };
		return nghttp2_submit_response(s, sid, h, 2, &dp);
	}
	if (strstr(path, "missing")) {
		nghttp2_nv h[] = { NV(":status", "404"), NV("content-length", "0") };
		return nghttp2_submit_response(s, sid, h, 2, NULL);
	}
	nghttp2_nv h[] = { NV(":status", "200"), NV("content-type", "text/plain"), NV("server", "seed") };
	return nghttp2_submit_response(s, sid, h, 3, &dp);
}

static ssize_t pad(nghttp2_session *s, const nghttp2_frame *fr, size_t max, void *user)
{
	size_t want = fr->hd.length + 17;
	return (ssize_t)(want < max ? want : max);
}

static nghttp2_session *session(bool server, bool padding, struct peer *p)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *s;
	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	if (padding)
		nghttp2_session_callbacks_set_select_padding_callback(cb, pad);
	if (server ? nghttp2_session_server_new(&s, cb, p) : nghttp2_session_client_new(&s, cb, p))
		abort();
	nghttp2_session_callbacks_del(cb);
	return s;
}

/* Everything a session has to send, as one write. */
static size_t drain(nghttp2_session *s, uint8_t **out)
{
	static uint8_t buf[1 << 20];
	size_t n = 0;
	const uint8_t *d;
	ssize_t k;
	while ((k = nghttp2_session_mem_send(s, &d)) > 0) {
		if (n + (size_t)k > sizeof(buf))
			abort();
		memcpy(buf + n, d, (size_t)k);
		n += (size_t)k;
	}
	*out = buf;
	return n;
}

struct side {
	struct filter f[2]; /* by direction: 0 read, 1 write */
	bool started[2];
};

static void emit(struct seed *seed, struct side *sd, int conn, int dir, uint8_t b1, const uint8_t *p, size_t n,
		 bool gap)
{
	uint8_t *out = malloc(n + 1);
	if (!sd->started[dir] && n >= 4 && !memcmp(p, "PRI ", 4))
		sd->f[dir].preface = 24;
	size_t o = filter(&sd->f[dir], p, n, out);
	uint8_t flags = sd->started[dir] ? 0 : F_START;
	if (gap)
		flags |= F_GAP;
	sd->started[dir] = true;
	if (o)
		record(seed, conn, dir, flags, b1, out, o);
	free(out);
}

/* Client and server talk until neither has anything to say; the traced
 * side's writes are direction 1, its reads direction 0. */
static void converse(struct seed *seed, struct peer *cl, struct peer *sv, struct side *sd, bool gap_late)
{
	const struct scenario *sc = cl->sc;
	uint8_t b1 = sc->client_side ? 2 : 1; /* the kernel's role: client (connected) or server (accepted) */
	int rounds = 0;
	for (;;) {
		uint8_t *d;
		size_t n = drain(cl->s, &d), m;
		if (n) {
			emit(seed, sd, cl->conn, sc->client_side ? 1 : 0, b1, d, n, gap_late && rounds == 0);
			if (nghttp2_session_mem_recv(sv->s, d, n) != (ssize_t)n)
				abort();
		}
		m = drain(sv->s, &d);
		if (m) {
			emit(seed, sd, cl->conn, sc->client_side ? 0 : 1, b1, d, m, false);
			if (nghttp2_session_mem_recv(cl->s, d, m) != (ssize_t)m)
				abort();
		}
		rounds++;
		if (!n && !m)
			break;
	}
}

static void request(struct peer *cl, const struct scenario *sc, const char *path, int i, struct seed *seed)
{
	bool grpc = !strncmp(path, "/grpc.", 6) || !strncmp(path, "/pkg.", 5);
	char tp[64];
	snprintf(tp, sizeof(tp), "00-4bf92f3577b34da6a3ce929d0e0e47%02x-00f067aa0ba902b7-01", i);
	nghttp2_nv h[10];
	int n = 0;
	h[n++] = (nghttp2_nv)NV(":method", grpc ? "POST" : (strstr(path, "missing") ? "HEAD" : "GET"));
	h[n++] = (nghttp2_nv)NV(":scheme", "http");
	h[n++] = (nghttp2_nv)NV(":authority", i % 2 ? "api.example:50051" : "[::1]:8443");
	h[n++] = (nghttp2_nv){ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE };
	if (grpc) {
		h[n++] = (nghttp2_nv)NV("content-type", "application/grpc+proto");
		h[n++] = (nghttp2_nv)NV("te", "trailers");
	}
	h[n++] = (nghttp2_nv)NV("user-agent", "grpc-c/1.51 (linux; chttp2)");
	if (i == 1)
		h[n++] = (nghttp2_nv){ (uint8_t *)"traceparent", (uint8_t *)tp, 11, strlen(tp), NGHTTP2_NV_FLAG_NONE };
	if (i == 1)
		h[n++] = (nghttp2_nv)NV("tracestate", "vendor=opaque,k=v");
	if (sc->long_header && i == 0)
		h[n++] = (nghttp2_nv){ (uint8_t *)"x-long", (uint8_t *)sc->long_header, 6, strlen(sc->long_header),
				       NGHTTP2_NV_FLAG_NO_INDEX };
	nghttp2_priority_spec pri;
	nghttp2_priority_spec_init(&pri, 0, 32 + i, 0);
	nghttp2_data_provider body = { .source.ptr = cl, .read_callback = body_read };
	int32_t sid = nghttp2_submit_request(cl->s, sc->priority ? &pri : NULL, h, (size_t)n, grpc ? &body : NULL, NULL);
	if (sid < 0)
		abort();
	if (sc->inject && sc->client_side) {
		/* sk_msg injected into this stream's HEADERS: its event comes first */
		uint8_t ev[37] = { (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid };
		for (int k = 4; k < 36; k++)
			ev[k] = (uint8_t)(0x10 + k + i);
		ev[36] = 1;
		uint8_t hdr[4] = { (uint8_t)(cl->conn | 1 << 2), 0x08 | 2, sizeof(ev), 0 };
		put(seed, hdr, 4);
		put(seed, ev, sizeof(ev));
	}
}

static void run(const struct scenario *sc, const char *dir)
{
	struct seed seed = { 0 };
	int conns = sc->second_conn ? 2 : 1;
	struct peer cl[2] = { 0 }, sv[2] = { 0 };
	struct side sd[2] = { 0 };
	for (int c = 0; c < conns; c++) {
		cl[c] = (struct peer){ .sc = sc, .conn = c };
		sv[c] = (struct peer){ .sc = sc, .conn = c };
		cl[c].s = session(false, sc->padding, &cl[c]);
		sv[c].s = session(true, sc->padding, &sv[c]);
		nghttp2_settings_entry set[2] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
						  { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 256 } };
		nghttp2_submit_settings(cl[c].s, NGHTTP2_FLAG_NONE, set, sc->small_table ? 2 : 1);
		nghttp2_submit_settings(sv[c].s, NGHTTP2_FLAG_NONE, set, sc->small_table ? 2 : 1);
	}
	/* Concurrent streams: half the requests submitted before any is sent. */
	for (int i = 0; i < sc->n_req; i++) {
		int c = conns == 2 ? i % 2 : 0;
		request(&cl[c], sc, sc->paths[i], i, &seed);
		if (i % 2 || i == sc->n_req - 1)
			for (int k = 0; k < conns; k++)
				converse(&seed, &cl[k], &sv[k], &sd[k], sc->gap && i == sc->n_req - 1);
	}
	nghttp2_submit_ping(cl[0].s, NGHTTP2_FLAG_NONE, NULL);
	nghttp2_submit_goaway(cl[0].s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	converse(&seed, &cl[0], &sv[0], &sd[0], false);
	for (int c = 0; c < conns; c++) {
		nghttp2_session_del(cl[c].s);
		nghttp2_session_del(sv[c].s);
	}
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, sc->name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seed.p, 1, seed.len, f) != seed.len || fclose(f))
		abort();
	printf("%s: %zu bytes\n", path, seed.len);
	free(seed.p);
}

int main(int argc, char **argv)
{
	static char longv[30001];
	memset(longv, 'a', sizeof(longv) - 1);
	const struct scenario sc[] = {
		{ "grpc-client", true, .n_req = 4,
		  .paths = { "/grpc.health.v1.Health/Check", "/pkg.Greeter/SayHello", "/pkg.Greeter/SayHello",
			     "/pkg.Greeter/Fail" } },
		{ "grpc-server", false, .n_req = 4,
		  .paths = { "/pkg.Greeter/SayHello", "/pkg.Greeter/Fail", "/pkg.Greeter/SayHello",
			     "/grpc.reflection.v1.ServerReflection/Info" } },
		{ "http-server", false, .n_req = 5,
		  .paths = { "/", "/users/123/orders?x=1", "/missing", "/static/app.js#frag", "/reset/me" } },
		{ "http-client-inject", true, .inject = true, .n_req = 3,
		  .paths = { "/a", "/pkg.Svc/Get", "/reset" } },
		{ "padded-priority", true, .padding = true, .priority = true, .n_req = 3,
		  .paths = { "/pkg.Svc/Put", "/x", "/missing" } },
		{ "small-table", false, .small_table = true, .n_req = 6,
		  .paths = { "/one", "/two", "/pkg.A/B", "/pkg.A/B", "/three", "/pkg.A/Fail" } },
		{ "continuation", false, .n_req = 2, .long_header = longv, .paths = { "/big", "/pkg.Svc/After" } },
		{ "two-conns", true, .second_conn = true, .n_req = 4,
		  .paths = { "/pkg.A/B", "/c1", "/pkg.A/Fail", "/c1/reset" } },
		{ "gap", false, .gap = true, .n_req = 4, .paths = { "/1", "/2", "/3", "/4" } },
	};
	if (argc != 2)
		return 2;
	for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
		run(&sc[i], argv[1]);
	return 0;
}
