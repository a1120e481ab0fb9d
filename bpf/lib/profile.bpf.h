/* Where the capture front's time goes, for whoever works on its cost: with
 * -DWEFT_PROFILE (`make BUILD=build-prof BPF_EXTRA=-DWEFT_PROFILE
 * build-prof/weft`), PROF_AT(slot) adds the time since the previous
 * checkpoint of this program run to slot's sum and count, in the per-CPU
 * map weft_prof; bench/bpf_cost.py prints them per exchange when the map is
 * there. bpf_stats gives a program's total only. Without the flag the
 * checkpoints compile to nothing: the shipped programs are unchanged.
 * Each checkpoint costs about 25 ns itself (two clock reads, three array
 * lookups), so the sums are upper bounds. */
#ifndef WEFT_LIB_PROFILE_BPF_H
#define WEFT_LIB_PROFILE_BPF_H

/* Checkpoint slots, in the order a server exchange meets them. The names
 * are repeated in bench/bpf_cost.py (PROF_SLOTS). */
enum weft_prof_slot {
	PROF_IO_ARGS = 0,      /* the event's fd, buffer and direction */
	PROF_TLS,              /* is it TLS ciphertext inside an SSL call? */
	PROF_DATA_ENTRY,       /* on_data: clock, where the bytes are */
	PROF_TXN_LOOKUP,       /* the exchange in flight on this fd, if any */
	PROF_CONN_GET,         /* the connection (recorded now if new) */
	PROF_DETECT_PREP,      /* the first bytes, for the protocols */
	PROF_DETECT,           /* which protocol starts here */
	PROF_TXN_HEADER,       /* a new exchange's header in per-CPU scratch */
	PROF_REQ_COPY,         /* its request bytes */
	PROF_CONTEXT,          /* trace context: ids, the header's traceparent */
	PROF_SERVING,          /* the thread's or goroutine's context */
	PROF_TXN_INSERT,       /* a connection's first exchange: its slot into txns */
	PROF_RESP_CAPTURE,     /* the response's first bytes, where it ends */
	PROF_RESP_MORE,        /* the rest of a response event */
	PROF_RB_FLAGS,         /* whether to wake the agent */
	PROF_RINGBUF,          /* the exchange to the ring buffer */
	PROF_TXN_DELETE,       /* contexts released (the slot stays, or goes when txns is crowded) */
	PROF_SLOTS,
};

#ifdef WEFT_PROFILE
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * PROF_SLOTS + 1); /* sum, count per slot; the last: the run's last checkpoint */
	__type(key, __u32);
	__type(value, __u64);
} weft_prof SEC(".maps");

static __always_inline void prof_mark(void)
{
	__u32 k = 2 * PROF_SLOTS;
	__u64 *last = bpf_map_lookup_elem(&weft_prof, &k);
	if (last)
		*last = bpf_ktime_get_ns();
}

static __always_inline void prof_at(__u32 slot)
{
	__u32 k = 2 * PROF_SLOTS, a = 2 * slot, b = 2 * slot + 1;
	__u64 *last = bpf_map_lookup_elem(&weft_prof, &k);
	if (!last || !*last)
		return;
	__u64 *sum = bpf_map_lookup_elem(&weft_prof, &a), *cnt = bpf_map_lookup_elem(&weft_prof, &b);
	if (sum && cnt) {
		*sum += bpf_ktime_get_ns() - *last;
		*cnt += 1;
	}
	*last = bpf_ktime_get_ns(); /* the bookkeeping above is not the next slot's */
}
#define PROF_MARK() prof_mark()
#define PROF_AT(slot) prof_at(slot)
#else
#define PROF_MARK() do { } while (0)
#define PROF_AT(slot) do { } while (0)
#endif

#endif
