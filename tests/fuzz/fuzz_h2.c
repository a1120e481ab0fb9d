/* libFuzzer harness for the HTTP/2 parser (user/protocols/http2: framing,
 * HPACK through libnghttp2's inflater, one span per stream): the input is
 * a sequence of kernel events (struct stream_chunk_event, abi/stream.h, and
 * struct stream_inject_event) for up to 4 connections, both directions,
 * with any flags, as the agent's ring buffer callback hands them over.
 *
 * Input: records, each
 *   b0: bits 0-1 connection, bit 2 direction (0 read, 1 write), bits 3-6
 *       STREAM_F_* flags (START, GAP, MIDWAY, MORE), bit 7 the sequence
 *       number skips (an event was lost in the kernel)
 *   b1: bits 0-1 the kernel's role (unknown, server, client, invalid),
 *       bit 2 a new socket behind the fd (a reused fd), bit 3 an
 *       injection event instead of a chunk (data: stream id, big endian,
 *       then trace id, span id, parent span id, flags), bit 4 the
 *       connection is closed before this record (conn_free, as at a
 *       close event)
 *   b2-b3: data length (little endian; cut at WEFT_STREAM_CAP and at the
 *       end of the input), then the data: the kernel's filtered bytes
 *       (every frame whole but DATA payloads, cut to 5 bytes).
 * Seeds: tests/fuzz/make_h2_seeds (nghttp2 client and server sessions).
 *
 * Checked: no memory error, leak or undefined behaviour (each event is
 * allocated at its exact length, so a read past it is caught); every span
 * is well formed (name, kind, times, attributes readable); the parser's
 * span count agrees with what it emitted; and the spans do not depend on
 * how the kernel cut the bytes into events: the same input replayed with
 * every chunk split into small events (MORE set, as the kernel does for a
 * chunk over WEFT_STREAM_CAP) gives the same spans. Built and run by
 * tests/fuzz/run_h2. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "h2_conn.h"
#include "span.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define CONNS 4
#define DIGEST_MAX (1 << 20)

struct digest {
	char *p;
	size_t len;
	size_t spans;
};

struct conn {
	struct h2_conn *h;
	uint64_t sk;
	uint32_t seq[2];
};

static void digest_put(struct digest *d, const char *s, size_t n)
{
	if (d->len + n > DIGEST_MAX)
		n = DIGEST_MAX - d->len;
	memcpy(d->p + d->len, s, n);
	d->len += n;
}

static void digest_fmt(struct digest *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void digest_fmt(struct digest *d, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		digest_put(d, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* What of a span does not depend on chance: ids are random for a root
 * (the parent's and the trace's otherwise), the rest is the bytes'. */
static void emit(void *ctx, struct span *s, uint32_t pid)
{
	struct digest *d = ctx;
	CHECK(s->name && s->name[0]);
	CHECK(s->kind == SPAN_KIND_SERVER || s->kind == SPAN_KIND_CLIENT);
	CHECK(s->end_ns >= s->start_ns);
	CHECK(s->status == SPAN_STATUS_UNSET || s->status == SPAN_STATUS_ERROR);
	CHECK(!all_zero(s->span_id, 8));
	CHECK(!all_zero(s->trace_id, 16) || !all_zero(s->parent_span_id, 8));
	digest_fmt(d, "pid %u kind %d %llu-%llu status %d name %zu:", pid, s->kind, (unsigned long long)s->start_ns,
		   (unsigned long long)s->end_ns, s->status, strlen(s->name));
	digest_put(d, s->name, strlen(s->name));
	if (!all_zero(s->parent_span_id, 8)) {
		for (int i = 0; i < 8; i++)
			digest_fmt(d, "%02x", s->parent_span_id[i]);
		for (int i = 0; i < 16; i++)
			digest_fmt(d, "%02x", s->trace_id[i]);
		digest_fmt(d, " flags %u", s->trace_flags);
	}
	if (s->trace_state)
		digest_fmt(d, " state %zu:%s", strlen(s->trace_state), s->trace_state);
	if (s->status_message)
		digest_fmt(d, " msg %zu:%s", strlen(s->status_message), s->status_message);
	for (size_t i = 0; i < s->attrs.len; i++) {
		const struct attr *a = &s->attrs.items[i];
		CHECK(a->key && a->key[0]);
		digest_fmt(d, " %s=", a->key);
		switch (a->type) {
		case ATTR_STR:
			CHECK(a->str);
			digest_fmt(d, "%zu:", strlen(a->str));
			digest_put(d, a->str, strlen(a->str));
			break;
		case ATTR_INT:
			digest_fmt(d, "%lld", (long long)a->i);
			break;
		default:
			CHECK(0); /* the parser sets strings and integers only */
		}
	}
	CHECK(attrs_get(&s->attrs, "network.protocol.version"));
	digest_put(d, "\n", 1);
	d->spans++;
	span_free(s);
}

struct rec {
	uint8_t b0, b1;
	const uint8_t *data;
	size_t len;
};

static size_t next_rec(const uint8_t *p, size_t n, struct rec *r)
{
	if (n < 4)
		return 0;
	size_t len = (size_t)p[2] | (size_t)p[3] << 8;
	if (len > WEFT_STREAM_CAP)
		len = WEFT_STREAM_CAP;
	if (len > n - 4)
		len = n - 4;
	r->b0 = p[0];
	r->b1 = p[1];
	r->data = p + 4;
	r->len = len;
	return 4 + len;
}

static void inject(struct conn *c, uint32_t pid, uint32_t fd, const struct rec *r)
{
	struct stream_inject_event *ev = calloc(1, sizeof(*ev));
	uint8_t b[37] = { 0 };
	memcpy(b, r->data, r->len < sizeof(b) ? r->len : sizeof(b));
	ev->type = WEFT_EV_STREAM_INJECT;
	ev->pid = pid;
	ev->fd = fd;
	ev->stream_id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	ev->sk = c->sk;
	memcpy(ev->trace_id, b + 4, 16);
	memcpy(ev->span_id, b + 20, 8);
	memcpy(ev->parent_span_id, b + 28, 8);
	ev->trace_flags = b[36];
	ev->trace_id[0] |= 1; /* the kernel's ids are random, never all zero */
	ev->span_id[0] |= 1;
	h2_conn_injected(c->h, ev);
	free(ev);
}

static void chunk(struct conn *c, uint32_t pid, uint32_t fd, uint8_t b0, uint8_t b1, uint64_t ts, const uint8_t *data,
		  size_t len, uint8_t flags, const struct protocol_ctx *ctx)
{
	int dir = b0 >> 2 & 1;
	/* Exactly the event's length: ASan sees any read past data[len]. */
	struct stream_chunk_event *ev = malloc(WEFT_STREAM_HDR_SIZE + len);
	CHECK(ev);
	memset(ev, 0, WEFT_STREAM_HDR_SIZE);
	ev->type = WEFT_EV_STREAM_CHUNK;
	ev->pid = pid;
	ev->tid = pid;
	ev->fd = fd;
	ev->ts_ns = ts;
	ev->sk = c->sk;
	switch (fd % 3) {
	case 0:
		ev->addr.family = AF_INET;
		memcpy(ev->addr.laddr, "\x7f\0\0\x01", 4);
		memcpy(ev->addr.raddr, "\x0a\0\0\x02", 4);
		break;
	case 1:
		ev->addr.family = AF_INET6;
		memset(ev->addr.raddr, 0x20, 16);
		break;
	default:
		ev->addr.family = AF_UNIX;
		strcpy(ev->addr.unix_path, "/run/grpc.sock");
	}
	ev->addr.lport = 50051;
	ev->addr.rport = 40000 + fd;
	ev->orig_len = (uint32_t)len;
	ev->len = (uint32_t)len;
	ev->seq = c->seq[dir]++;
	ev->dir = (uint8_t)dir;
	ev->role = b1 & 3;
	ev->proto = WEFT_PROTO_HTTP2;
	ev->flags = flags;
	memcpy(ev->data, data, len);
	h2_conn_chunk(c->h, ev, ctx);
	free(ev);
}

/* Replays the input; split: every chunk cut into events of at most that
 * many bytes (0: as given). The first piece keeps the flags and at least
 * the 24 bytes of an HTTP/2 preface (the kernel's first event of a
 * connection always has them: they are one write). */
static void replay(const uint8_t *p, size_t n, size_t split, struct digest *d)
{
	struct conn conns[CONNS] = { 0 };
	struct protocol_ctx ctx = { .mono_to_real = 1000, .emit = emit, .emit_ctx = d };
	struct h2_stats before, after;
	uint64_t ts = 1000000;
	struct rec r;
	size_t used;

	h2_get_stats(&before);
	for (int i = 0; i < CONNS; i++) {
		conns[i].h = h2_conn_new();
		conns[i].sk = 0xffff000000000000ull + (uint64_t)i * 4096;
	}
	while ((used = next_rec(p, n, &r))) {
		p += used;
		n -= used;
		int ci = r.b0 & 3;
		struct conn *c = &conns[ci];
		uint32_t pid = 100 + (uint32_t)ci / 2, fd = 3 + (uint32_t)ci;
		ts += 1000 + (uint64_t)r.len;
		if (r.b1 & 0x10) { /* closed: the agent frees the connection's state */
			h2_conn_free(c->h);
			c->h = h2_conn_new();
			memset(c->seq, 0, sizeof(c->seq));
		}
		if (r.b1 & 0x04) { /* the fd now names another socket */
			c->sk += 64;
			memset(c->seq, 0, sizeof(c->seq));
		}
		if (r.b1 & 0x08) {
			inject(c, pid, fd, &r);
			continue;
		}
		int dir = r.b0 >> 2 & 1;
		if (r.b0 & 0x80)
			c->seq[dir] += 1 + r.b1 / 32;
		uint8_t flags = r.b0 >> 3 & 0x0f;
		if (!split || r.len <= split) {
			chunk(c, pid, fd, r.b0, r.b1, ts, r.data, r.len, flags, &ctx);
			continue;
		}
		size_t first = split < 24 && (flags & STREAM_F_START) ? 24 : split;
		for (size_t off = 0; off < r.len;) {
			size_t k = off ? split : first;
			if (k > r.len - off)
				k = r.len - off;
			uint8_t f = off ? (flags & STREAM_F_MORE) : flags;
			if (off + k < r.len)
				f |= STREAM_F_MORE;
			chunk(c, pid, fd, r.b0, r.b1, ts, r.data + off, k, f, &ctx);
			off += k;
		}
	}
	for (int i = 0; i < CONNS; i++)
		h2_conn_free(conns[i].h);
	h2_get_stats(&after);
	CHECK(after.spans - before.spans == d->spans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *buf[2];
	for (int i = 0; i < 2; i++)
		if (!buf[i] && !(buf[i] = malloc(DIGEST_MAX)))
			abort();
	struct digest whole = { .p = buf[0] }, cut = { .p = buf[1] };
	replay(data, size, 0, &whole);
	/* 1 to 64 bytes per event, from the input's size */
	replay(data, size, 1 + size % 64, &cut);
	if (whole.len != cut.len || memcmp(whole.p, cut.p, whole.len)) {
		fprintf(stderr, "spans differ with the chunks cut in %zu-byte events:\n--- whole\n%.*s--- cut\n%.*s",
			1 + size % 64, (int)whole.len, whole.p, (int)cut.len, cut.p);
		abort();
	}
	if (getenv("FUZZ_H2_PRINT")) { /* to see what a seed makes */
		struct h2_stats st;
		h2_get_stats(&st);
		fprintf(stderr, "%.*s(so far: %llu spans, %llu connections lost, %llu mid-way, %llu streams dropped)\n",
			(int)whole.len, whole.p, (unsigned long long)st.spans, (unsigned long long)st.conns_lost,
			(unsigned long long)st.conns_midway, (unsigned long long)st.streams_dropped);
	}
	return 0;
}
