/* An HTTP/2 connection, followed from the kernel's filtered byte stream
 * (bpf/protocols/http2.bpf.h): frames are cut per direction, header
 * blocks (HEADERS, PUSH_PROMISE + CONTINUATION) are decoded in order with
 * one HPACK inflater per direction (nghttp2), and each stream becomes a
 * span when its response ends (END_STREAM) or it is reset.
 *
 * Anything that breaks the chain of a direction (a lost event, a frame
 * that does not parse, an HPACK error) makes every later header block of
 * the connection undecodable: the connection is given up, counted, and
 * produces no more spans rather than wrong ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#include "h2_conn.h"
#include "h2_span.h"
#include "h2_stream.h"
#include "log.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
#define H2_STREAMS_MAX 1024	       /* in flight per connection */
#define H2_BUF_MAX (2 * WEFT_STREAM_CAP) /* unparsed bytes of a direction */
#define H2_BLOCK_MAX (64 * 1024)       /* one header block, CONTINUATIONs included */
#define H2_INJECTS 128 /* ids sk_msg injected for streams still to come (one write may open many) */
#define H2_PARENTS 128 /* in-process parents of streams still to come (grpc-go
			 * batches the HEADERS of concurrent calls into one write) */

enum h2_frame_type {
	H2_DATA = 0,
	H2_HEADERS = 1,
	H2_PRIORITY = 2,
	H2_RST_STREAM = 3,
	H2_SETTINGS = 4,
	H2_PUSH_PROMISE = 5,
	H2_PING = 6,
	H2_GOAWAY = 7,
	H2_WINDOW_UPDATE = 8,
	H2_CONTINUATION = 9,
};

#define H2_F_END_STREAM 0x1
#define H2_F_ACK 0x1
#define H2_F_END_HEADERS 0x4
#define H2_F_PADDED 0x8
#define H2_F_PRIORITY 0x20
#define H2_SETTINGS_HEADER_TABLE_SIZE 1

struct h2_dir {
	uint8_t *buf; /* filtered bytes not parsed yet (a frame cut between events) */
	size_t len, cap;
	uint32_t preface_left; /* bytes of the client preface still to skip */
	bool started;
	uint32_t next_seq;
	uint64_t ts; /* the current event's time */
	nghttp2_hd_inflater *hd;
	/* The header block being assembled. */
	uint8_t *block;
	size_t block_len, block_cap;
	uint32_t block_stream;
	uint8_t block_type;
	bool block_end_stream, in_block;
};

struct h2_inject {
	uint32_t stream_id;
	uint8_t trace_id[16], span_id[8], parent[8], flags;
};

/* A Go uprobe's finding for a client stream whose HEADERS were not seen yet. */
struct h2_pending_parent {
	uint64_t sk;
	uint32_t stream_id;
	struct h2_parent parent;
};

struct h2_conn {
	struct h2_conn_info info;
	uint64_t sk;
	uint64_t start_ns; /* the connection's first event: older parent records are an earlier one's */
	bool role_known, dead;
	struct h2_dir dir[2]; /* by enum io_dir: 0 read, 1 write */
	struct h2_stream *streams;
	size_t n_streams;
	struct h2_inject inj[H2_INJECTS];
	size_t n_inj;
	struct h2_pending_parent par[H2_PARENTS];
	size_t n_par;
};

static struct h2_stats stats;

void h2_get_stats(struct h2_stats *out)
{
	*out = stats;
}

static void streams_free(struct h2_conn *c, bool count)
{
	while (c->streams) {
		struct h2_stream *s = c->streams;
		c->streams = s->next;
		free(s);
		if (count)
			stats.streams_dropped++;
	}
	c->n_streams = 0;
}

static void dir_reset(struct h2_dir *d)
{
	free(d->buf);
	free(d->block);
	if (d->hd)
		nghttp2_hd_inflate_del(d->hd);
	memset(d, 0, sizeof(*d));
}

struct h2_conn *h2_conn_new(void)
{
	return calloc(1, sizeof(struct h2_conn));
}

/* Everything but the injections still to come (they may precede the new
 * connection's first chunk on a reused fd). */
static void conn_reset(struct h2_conn *c)
{
	streams_free(c, true);
	for (int i = 0; i < 2; i++)
		dir_reset(&c->dir[i]);
	c->role_known = c->dead = false;
	c->sk = 0;
	c->start_ns = 0;
}

void h2_conn_free(struct h2_conn *c)
{
	if (!c)
		return;
	conn_reset(c);
	free(c);
}

static void give_up(struct h2_conn *c, const char *why, long detail)
{
	if (c->dead)
		return;
	log_debug("HTTP/2: pid %u connection %#llx given up: %s (%ld)", c->info.pid,
		  (unsigned long long)c->sk, why, detail);
	c->dead = true;
	stats.conns_lost++;
	streams_free(c, true);
	for (int i = 0; i < 2; i++)
		dir_reset(&c->dir[i]);
}

void h2_conn_injected(struct h2_conn *c, const struct stream_inject_event *ev)
{
	if (c->n_inj == H2_INJECTS) { /* the oldest was for a stream never seen */
		memmove(c->inj, c->inj + 1, sizeof(c->inj[0]) * (H2_INJECTS - 1));
		c->n_inj--;
	}
	struct h2_inject *in = &c->inj[c->n_inj++];
	in->stream_id = ev->stream_id;
	memcpy(in->trace_id, ev->trace_id, 16);
	memcpy(in->span_id, ev->span_id, 8);
	memcpy(in->parent, ev->parent_span_id, 8);
	in->flags = ev->trace_flags;
}

static void take_injection(struct h2_conn *c, struct h2_stream *s)
{
	for (size_t i = 0; i < c->n_inj; i++) {
		if (c->inj[i].stream_id != s->id)
			continue;
		s->injected = true;
		memcpy(s->inj_trace_id, c->inj[i].trace_id, 16);
		memcpy(s->inj_span_id, c->inj[i].span_id, 8);
		memcpy(s->inj_parent, c->inj[i].parent, 8);
		s->inj_flags = c->inj[i].flags;
		memmove(&c->inj[i], &c->inj[i + 1], sizeof(c->inj[0]) * (c->n_inj - i - 1));
		c->n_inj--;
		return;
	}
}

static struct h2_stream *stream_find(struct h2_conn *c, uint32_t id, struct h2_stream ***link);

/* --- in-process parents (bpf/abi/h2_parent.h) --- */

static void parent_set(struct h2_stream *s, const struct h2_parent *p, bool late)
{
	s->has_parent = true;
	s->parent = *p;
	stats.parents++;
	if (late)
		stats.parents_late++;
}

void h2_conn_parent(struct h2_conn *c, const struct h2_parent_event *ev)
{
	/* The uprobe runs when the call's stream id is assigned, which may be
	 * after its HEADERS were written and decoded: then the stream is here. */
	if (ev->parent.at_ns < c->start_ns)
		return; /* recorded before this connection began: an earlier one's */
	struct h2_stream *s = c->sk == ev->sk && !c->dead ? stream_find(c, ev->stream_id, NULL) : NULL;
	if (s) {
		if (c->info.client && !s->has_parent)
			parent_set(s, &ev->parent, true);
		return;
	}
	if (c->n_par == H2_PARENTS) { /* the oldest was for a stream never seen */
		memmove(c->par, c->par + 1, sizeof(c->par[0]) * (H2_PARENTS - 1));
		c->n_par--;
	}
	c->par[c->n_par++] = (struct h2_pending_parent){ .sk = ev->sk, .stream_id = ev->stream_id,
							 .parent = ev->parent };
}

static void take_parent(struct h2_conn *c, struct h2_stream *s)
{
	for (size_t i = 0; i < c->n_par; i++) {
		if (c->par[i].stream_id != s->id || c->par[i].sk != c->sk || c->par[i].parent.at_ns < c->start_ns)
			continue;
		parent_set(s, &c->par[i].parent, false);
		memmove(&c->par[i], &c->par[i + 1], sizeof(c->par[0]) * (c->n_par - i - 1));
		c->n_par--;
		return;
	}
}

static struct h2_stream *stream_find(struct h2_conn *c, uint32_t id, struct h2_stream ***link)
{
	for (struct h2_stream **p = &c->streams; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			if (link)
				*link = p;
			return *p;
		}
	}
	return NULL;
}

/* The stream ended (its response's END_STREAM, or a reset) at end_ns:
 * its span goes out and it is forgotten. */
static void stream_finish(struct h2_conn *c, struct h2_stream *st, uint64_t end_ns, const struct protocol_ctx *ctx)
{
	struct h2_stream **link = NULL;
	if (!stream_find(c, st->id, &link))
		return;
	*link = st->next;
	c->n_streams--;
	st->end_ns = end_ns;
	struct span *s = span_new();
	if (s && h2_span_build(&c->info, st, ctx, s) == 0 && ctx->emit) {
		stats.spans++;
		ctx->emit(ctx->emit_ctx, s, c->info.pid);
	} else {
		span_free(s);
	}
	free(st);
}

static void copy_value(char *dst, size_t cap, const nghttp2_nv *nv)
{
	size_t n = nv->valuelen < cap - 1 ? nv->valuelen : cap - 1;
	memcpy(dst, nv->value, n);
	dst[n] = '\0';
}

static bool name_is(const nghttp2_nv *nv, const char *name)
{
	size_t n = strlen(name);
	return nv->namelen == n && memcmp(nv->name, name, n) == 0;
}

/* grpc-timeout: at most 8 digits and a unit (gRPC over HTTP/2). 0 if not that. */
static uint64_t grpc_timeout_ns(const nghttp2_nv *nv)
{
	static const struct {
		char unit;
		uint64_t ns;
	} units[] = { { 'H', 3600000000000ull }, { 'M', 60000000000ull }, { 'S', 1000000000ull },
		      { 'm', 1000000ull },	 { 'u', 1000ull },	      { 'n', 1 } };
	if (nv->valuelen < 2 || nv->valuelen > 9)
		return 0;
	uint64_t v = 0;
	for (size_t i = 0; i + 1 < nv->valuelen; i++) {
		if (nv->value[i] < '0' || nv->value[i] > '9')
			return 0;
		v = v * 10 + (nv->value[i] - '0');
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (nv->value[nv->valuelen - 1] == units[u].unit)
			return v * units[u].ns;
	return 0;
}

static void request_header(struct h2_stream *st, const nghttp2_nv *nv)
{
	if (name_is(nv, ":method"))
		copy_value(st->method, sizeof(st->method), nv);
	else if (name_is(nv, ":path"))
		copy_value(st->path, sizeof(st->path), nv);
	else if (name_is(nv, ":authority"))
		copy_value(st->authority, sizeof(st->authority), nv);
	else if (name_is(nv, ":scheme"))
		copy_value(st->scheme, sizeof(st->scheme), nv);
	else if (name_is(nv, "content-type"))
		copy_value(st->content_type, sizeof(st->content_type), nv);
	else if (name_is(nv, "user-agent"))
		copy_value(st->user_agent, sizeof(st->user_agent), nv);
	else if (name_is(nv, "traceparent") && !st->traceparent[0])
		copy_value(st->traceparent, sizeof(st->traceparent), nv);
	else if (name_is(nv, "tracestate"))
		copy_value(st->tracestate, sizeof(st->tracestate), nv);
	else if (name_is(nv, "grpc-timeout"))
		st->grpc_timeout_ns = grpc_timeout_ns(nv);
}

static int parse_int(const nghttp2_nv *nv)
{
	int v = 0;
	if (!nv->valuelen || nv->valuelen > 9)
		return -1;
	for (size_t i = 0; i < nv->valuelen; i++) {
		if (nv->value[i] < '0' || nv->value[i] > '9')
			return -1;
		v = v * 10 + (nv->value[i] - '0');
	}
	return v;
}

static void response_header(struct h2_stream *st, const nghttp2_nv *nv)
{
	if (name_is(nv, ":status"))
		st->status = parse_int(nv);
	else if (name_is(nv, "grpc-status"))
		st->grpc_status = parse_int(nv);
	else if (name_is(nv, "grpc-message"))
		copy_value(st->grpc_message, sizeof(st->grpc_message), nv);
	else if (name_is(nv, "content-type") && !st->content_type[0])
		copy_value(st->content_type, sizeof(st->content_type), nv);
}

/* Is dir (enum io_dir) the requests' direction (client to server)? */
static bool is_request_dir(const struct h2_conn *c, int dir)
{
	return c->info.client == (dir == 1);
}

/* A complete header block of d: decoded (always: the inflater's dynamic
 * table must follow every block), then applied to its stream. */
static int header_block(struct h2_conn *c, int dir, const struct protocol_ctx *ctx)
{
	struct h2_dir *d = &c->dir[dir];
	bool request = is_request_dir(c, dir);
	struct h2_stream *st = NULL;
	bool fresh = false;
	if (d->block_type == H2_HEADERS) {
		st = stream_find(c, d->block_stream, NULL);
		if (!st && request) {
			if (c->n_streams >= H2_STREAMS_MAX) {
				stats.streams_dropped++;
			} else if ((st = calloc(1, sizeof(*st)))) {
				st->id = d->block_stream;
				st->start_ns = d->ts;
				st->grpc_status = -1;
				st->next = c->streams;
				c->streams = st;
				c->n_streams++;
				fresh = true;
				if (c->info.client)
					take_injection(c, st);
				if (c->info.client)
					take_parent(c, st);
			}
		}
	}
	if (!d->hd && nghttp2_hd_inflate_new(&d->hd))
		return -ENOMEM;
	static const uint8_t empty[1];
	const uint8_t *in = d->block_len ? d->block : empty; /* an empty block has no buffer */
	size_t left = d->block_len;
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t r = nghttp2_hd_inflate_hd2(d->hd, &nv, &fl, in, left, 1);
		if (r < 0)
			return -EBADMSG;
		in += r;
		left -= (size_t)r;
		if ((fl & NGHTTP2_HD_INFLATE_EMIT) && st) {
			if (request && fresh)
				request_header(st, &nv);
			else if (!request)
				response_header(st, &nv);
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->hd);
			break;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && !left)
			return -EBADMSG;
	}
	d->in_block = false;
	d->block_len = 0;
	if (!st)
		return 0;
	if (request) {
		if (d->block_end_stream)
			st->req_end = true;
	} else {
		st->resp_headers = true;
		if (d->block_end_stream)
			stream_finish(c, st, d->ts, ctx);
	}
	return 0;
}

static int block_append(struct h2_dir *d, const uint8_t *p, size_t n)
{
	if (d->block_len + n > H2_BLOCK_MAX)
		return -E2BIG;
	if (!n) /* an empty fragment: block may not exist yet */
		return 0;
	if (d->block_len + n > d->block_cap) {
		size_t cap = d->block_cap ? d->block_cap : 4096;
		while (cap < d->block_len + n)
			cap *= 2;
		uint8_t *b = realloc(d->block, cap);
		if (!b)
			return -ENOMEM;
		d->block = b;
		d->block_cap = cap;
	}
	memcpy(d->block + d->block_len, p, n);
	d->block_len += n;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One frame of direction dir: its header fields and the payload bytes the
 * kernel kept (all of it but for DATA). 0, or <0: the connection is lost. */
static int frame(struct h2_conn *c, int dir, uint8_t type, uint8_t flags, uint32_t sid, uint32_t len,
		 const uint8_t *p, size_t n, const struct protocol_ctx *ctx)
{
	struct h2_dir *d = &c->dir[dir];
	if (d->in_block && type != H2_CONTINUATION)
		return -EPROTO; /* a header block is never interleaved */
	switch (type) {
	case H2_HEADERS:
	case H2_PUSH_PROMISE: {
		size_t pad = 0;
		if (flags & H2_F_PADDED) {
			if (n < 1)
				return -EPROTO;
			pad = p[0];
			p++;
			n--;
		}
		size_t skip = type == H2_PUSH_PROMISE ? 4 : (flags & H2_F_PRIORITY) ? 5 : 0;
		if (n < skip + pad)
			return -EPROTO;
		p += skip;
		n -= skip + pad;
		d->in_block = true;
		d->block_len = 0;
		d->block_type = type;
		d->block_stream = sid;
		d->block_end_stream = type == H2_HEADERS && (flags & H2_F_END_STREAM);
		int err = block_append(d, p, n);
		if (err)
			return err;
		return (flags & H2_F_END_HEADERS) ? header_block(c, dir, ctx) : 0;
	}
	case H2_CONTINUATION: {
		if (!d->in_block || sid != d->block_stream)
			return -EPROTO;
		int err = block_append(d, p, n);
		if (err)
			return err;
		return (flags & H2_F_END_HEADERS) ? header_block(c, dir, ctx) : 0;
	}
	case H2_DATA: {
		struct h2_stream *st = stream_find(c, sid, NULL);
		if (!st)
			return 0;
		if (is_request_dir(c, dir)) {
			st->req_body += len;
			if (flags & H2_F_END_STREAM)
				st->req_end = true;
		} else {
			st->resp_body += len;
			if (flags & H2_F_END_STREAM)
				stream_finish(c, st, d->ts, ctx);
		}
		return 0;
	}
	case H2_RST_STREAM: {
		struct h2_stream *st = stream_find(c, sid, NULL);
		if (st) {
			st->reset = true;
			st->reset_by_client = is_request_dir(c, dir);
			st->rst_code = n >= 4 ? be32(p) : 0;
			stream_finish(c, st, d->ts, ctx);
		}
		return 0;
	}
	case H2_SETTINGS:
		/* The sender's decoder limit: the bound of the other direction's
		 * dynamic table, whose inflater must accept what its encoder uses. */
		if (flags & H2_F_ACK)
			return 0;
		for (size_t i = 0; i + 6 <= n; i += 6) {
			if (((uint16_t)p[i] << 8 | p[i + 1]) != H2_SETTINGS_HEADER_TABLE_SIZE)
				continue;
			struct h2_dir *other = &c->dir[!dir];
			if (!other->hd && nghttp2_hd_inflate_new(&other->hd))
				return -ENOMEM;
			if (nghttp2_hd_inflate_change_table_size(other->hd, be32(p + i + 2)))
				return -EPROTO;
		}
		return 0;
	default:
		return 0; /* PRIORITY, PING, GOAWAY, WINDOW_UPDATE, unknown types */
	}
}

/* Cuts d's buffered bytes into frames. */
static int parse(struct h2_conn *c, int dir, const struct protocol_ctx *ctx)
{
	struct h2_dir *d = &c->dir[dir];
	size_t off = 0;
	if (d->preface_left) {
		size_t n = d->len < d->preface_left ? d->len : d->preface_left;
		size_t at = H2_PREFACE_LEN - d->preface_left;
		if (memcmp(d->buf, H2_PREFACE + at, n))
			return -EPROTO;
		d->preface_left -= n;
		off = n;
	}
	while (d->len - off >= 9) {
		const uint8_t *h = d->buf + off;
		uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
		size_t keep = h[3] == H2_DATA ? (len < 5 ? len : 5) : len;
		if (d->len - off < 9 + keep)
			break;
		int err = frame(c, dir, h[3], h[4], be32(h + 5) & 0x7fffffff, len, h + 9, keep, ctx);
		if (err || c->dead)
			return err;
		off += 9 + keep;
	}
	memmove(d->buf, d->buf + off, d->len - off);
	d->len -= off;
	return 0;
}

static int buffer_append(struct h2_dir *d, const uint8_t *p, size_t n)
{
	if (d->len + n > H2_BUF_MAX)
		return -E2BIG;
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		while (cap < d->len + n)
			cap *= 2;
		uint8_t *b = realloc(d->buf, cap);
		if (!b)
			return -ENOMEM;
		d->buf = b;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	return 0;
}

/* The client preface, or its first bytes (a frame never starts with 'P':
 * its length's high byte is 0 for any frame under 5 MB). */
static bool starts_preface(const uint8_t *p, size_t n)
{
	return n > 0 && memcmp(p, H2_PREFACE, n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN) == 0;
}

void h2_conn_chunk(struct h2_conn *c, const struct stream_chunk_event *ev, const struct protocol_ctx *ctx)
{
	if (c->sk && c->sk != ev->sk)
		conn_reset(c); /* the fd now names another socket */
	c->sk = ev->sk;
	if (!c->start_ns)
		c->start_ns = ev->ts_ns;
	if (c->dead)
		return;
	if (ev->flags & STREAM_F_MIDWAY) {
		log_debug("HTTP/2: pid %u connection %#llx joined mid-way: not decoded", ev->pid,
			  (unsigned long long)ev->sk);
		c->dead = true;
		stats.conns_midway++;
		return;
	}
	int dir = ev->dir & 1;
	struct h2_dir *d = &c->dir[dir];
	if ((ev->flags & STREAM_F_GAP) || (d->started && ev->seq != d->next_seq)) {
		give_up(c, (ev->flags & STREAM_F_GAP) ? "the kernel lost bytes before event" : "events lost before event",
			(long)ev->seq);
		return;
	}
	d->next_seq = ev->seq + 1;
	if (!d->started && (ev->flags & STREAM_F_START) && starts_preface(ev->data, ev->len))
		d->preface_left = H2_PREFACE_LEN;
	d->started = true;
	if (!c->role_known) {
		/* The preface's writer is the client; else the kernel's role. */
		if (d->preface_left)
			c->info.client = dir == 1;
		else if (ev->role == WEFT_ROLE_SERVER || ev->role == WEFT_ROLE_CLIENT)
			c->info.client = ev->role == WEFT_ROLE_CLIENT;
		else {
			give_up(c, "role unknown", ev->role);
			return;
		}
		c->role_known = true;
	}
	c->info.pid = ev->pid;
	c->info.addr = ev->addr;
	c->info.tls_version = ev->tls_version;
	c->info.tls_cipher = ev->tls_cipher;
	d->ts = ev->ts_ns;
	/* An empty event (a chunk of DATA payload the kernel cut away) adds
	 * nothing to parse; buf may not exist yet. The bytes go in as far as
	 * they fit and are parsed at once: a frame of up to 16 KiB cut before
	 * its last byte plus a whole event is more than the buffer holds, yet
	 * completes in it. Only a frame larger than the buffer is given up. */
	const uint8_t *p = ev->data;
	size_t left = ev->len;
	while (left && !c->dead) {
		size_t k = H2_BUF_MAX - d->len < left ? H2_BUF_MAX - d->len : left;
		int err = !k ? -E2BIG : buffer_append(d, p, k);
		if (!err)
			err = parse(c, dir, ctx);
		if (err) {
			give_up(c, "frames do not parse", err);
			return;
		}
		p += k;
		left -= k;
	}
}

void h2_conn_closed(struct h2_conn *c, const struct protocol_ctx *ctx)
{
	if (c->dead)
		return;
	uint64_t last = c->dir[0].ts > c->dir[1].ts ? c->dir[0].ts : c->dir[1].ts;
	while (c->streams) {
		struct h2_stream *st = c->streams;
		if (!st->start_ns) { /* nothing of its request: no span */
			c->streams = st->next;
			c->n_streams--;
			stats.streams_dropped++;
			free(st);
			continue;
		}
		st->closed = true;
		stream_finish(c, st, last > st->start_ns ? last : st->start_ns, ctx);
	}
}
