/* The program check: each of weft's BPF programs loaded on its own, with
 * the verifier's statistics (log level 4), and when the kernel refuses it,
 * loaded once more with the verifier's full log (level 1) for the reason. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "go.skel.h"
#include "tls.skel.h"
#include "log.h"
#include "progcheck.h"
#include "propagation.skel.h"
#include "capture.skel.h"

#define STATS_LOG_SIZE (64 << 10)
#define FULL_LOG_SIZE (16 << 20)
#define MAX_RESULTS 64
#define MAX_FRAMES_LISTED 256 /* subprograms of one program */
#define MAX_CHAIN 16 /* frames followed down one chain (the verifier allows 8) */

/* One BPF object: opens its skeleton (*obj: its bpf_object), configures it
 * as weft attach does, destroys it. */
struct object_ops {
	const char *name;
	void *(*open)(struct bpf_object **obj);
	int (*configure)(void *skel);
	void (*destroy)(void *skel);
};

static void *capture_obj_open(struct bpf_object **obj)
{
	struct capture_bpf *skel = capture_bpf__open();
	if (skel)
		*obj = skel->obj;
	return skel;
}

/* weft attach's defaults (user/main.c, user/agent.c). */
static int capture_obj_configure(void *skel)
{
	struct capture_opts o = {
		.trace_all = false,
		.discovery = true, /* weft run --config's program is checked too */
		.self_tgid = getpid(),
		.req_capture = WEFT_REQ_CAP_DEFAULT,
		.resp_capture = WEFT_RESP_CAP_DEFAULT,
		.ringbuf_bytes = 0, /* the object's default */
	};
	return capture_bpf_configure(skel, &o);
}

static void capture_obj_destroy(void *skel)
{
	capture_bpf__destroy(skel);
}

static void *propagation_obj_open(struct bpf_object **obj)
{
	struct propagation_bpf *skel = propagation_bpf__open();
	if (skel)
		*obj = skel->obj;
	return skel;
}

static int propagation_obj_configure(void *skel)
{
	return propagation_bpf_configure(skel, false, getpid(), true); /* the largest variant */
}

static void propagation_obj_destroy(void *skel)
{
	propagation_bpf__destroy(skel);
}

static void *go_obj_open(struct bpf_object **obj)
{
	struct go_bpf *skel = go_bpf__open();
	if (skel)
		*obj = skel->obj;
	return skel;
}

static int go_obj_configure(void *skel)
{
	return go_bpf_configure(skel, false, getpid());
}

static void go_obj_destroy(void *skel)
{
	go_bpf__destroy(skel);
}

static void *tls_obj_open(struct bpf_object **obj)
{
	struct tls_bpf *skel = tls_bpf__open();
	if (skel)
		*obj = skel->obj;
	return skel;
}

static int tls_obj_configure(void *skel)
{
	struct capture_opts o = {
		.self_tgid = getpid(),
		.req_capture = WEFT_REQ_CAP_DEFAULT,
		.resp_capture = WEFT_RESP_CAP_DEFAULT,
	};
	return tls_bpf_configure(skel, &o);
}

static void tls_obj_destroy(void *skel)
{
	tls_bpf__destroy(skel);
}

static const struct object_ops objects[] = {
	{ "capture", capture_obj_open, capture_obj_configure, capture_obj_destroy },
	{ "propagation", propagation_obj_open, propagation_obj_configure, propagation_obj_destroy },
	{ "go", go_obj_open, go_obj_configure, go_obj_destroy },
	{ "tls", tls_obj_open, tls_obj_configure, tls_obj_destroy },
};

/* libbpf's messages during the check: refusals are what we measure, not
 * noise to print. The first warning of a load is kept: the reason of a
 * failure that never reached the verifier (a map it could not create). */
static char libbpf_warning[256];

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	if (level != LIBBPF_WARN || libbpf_warning[0] || strstr(fmt, "BEGIN PROG LOAD LOG"))
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0])
		snprintf(libbpf_warning, sizeof(libbpf_warning), "%s",
			 strncmp(buf, "libbpf: ", 8) ? buf : buf + 8);
	return 0;
}

/* Opens object o into *skel (*obj: its bpf_object) and configures it.
 * 0 or -errno (logged). */
static int open_configured(const struct object_ops *o, void **skel, struct bpf_object **obj)
{
	int err;
	*skel = o->open(obj);
	if (!*skel) {
		err = -errno;
		log_error("program check: cannot open BPF object %s: %s", o->name, strerror(-err));
		return err;
	}
	err = o->configure(*skel); /* logs its errors */
	if (err) {
		o->destroy(*skel);
		*skel = NULL;
	}
	return err;
}

static void result_init(struct progcheck_result *r, const char *object, const char *program)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->object, sizeof(r->object), "%s", object);
	snprintf(r->program, sizeof(r->program), "%s", program);
	r->insns = -1;
	r->stack = -1;
	r->stack_sum = -1;
	r->insn_limit = PROGCHECK_INSN_LIMIT;
}

/* The programs of o that its configuration leaves on, as results to fill. */
static int list_programs(const struct object_ops *o, struct progcheck_result *res, size_t *n)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	void *skel;
	int err = open_configured(o, &skel, &obj);
	if (err)
		return err;
	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		if (*n == MAX_RESULTS) {
			log_error("program check: more than %d programs", MAX_RESULTS);
			o->destroy(skel);
			return -E2BIG;
		}
		result_init(&res[(*n)++], o->name, bpf_program__name(p));
	}
	o->destroy(skel);
	return 0;
}

/* Next line of a log: [*l, *l + *len), advancing *cur; false at its end. */
static bool next_line(const char **cur, const char **l, size_t *len)
{
	if (!**cur)
		return false;
	*l = *cur;
	*len = strcspn(*cur, "\n");
	*cur += *len + ((*cur)[*len] == '\n');
	return true;
}

/* What the statistics say: the instructions processed, and the stack of
 * each subprogram (frame), in the order of their first instruction. */
struct verifier_stats {
	long insns, limit;
	long depth[MAX_FRAMES_LISTED];
	size_t n_depth;
};

/* "A+B+C": one frame's stack each. */
static void parse_depths(const char *s, size_t len, struct verifier_stats *st)
{
	char buf[1024], *p = buf, *end;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
	st->n_depth = 0;
	for (long d = strtol(p, &end, 10); end != p && st->n_depth < MAX_FRAMES_LISTED; d = strtol(p, &end, 10)) {
		st->depth[st->n_depth++] = d;
		if (*end != '+')
			break;
		p = end + 1;
	}
}

/* "processed N insns (limit L) ..." and "stack depth A+B+C". */
static void parse_stats(const char *log, struct verifier_stats *st)
{
	const char *cur = log, *l;
	size_t len;
	memset(st, 0, sizeof(*st));
	st->insns = -1;
	while (next_line(&cur, &l, &len)) {
		char line[256];
		snprintf(line, sizeof(line), "%.*s", (int)len, l);
		if (sscanf(line, "processed %ld insns (limit %ld)", &st->insns, &st->limit) >= 1)
			continue;
		if (!strncmp(l, "stack depth ", 12))
			parse_depths(l + 12, len - 12, st);
	}
}

/* The subprogram a BPF-to-BPF call or a callback's address (bpf_loop)
 * at insns[i] leads to, or -1. */
static long call_target(const struct bpf_insn *insns, size_t i)
{
	const struct bpf_insn *in = &insns[i];
	bool call = in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL;
	bool func = in->code == (BPF_LD | BPF_IMM | BPF_DW) && in->src_reg == BPF_PSEUDO_FUNC;
	return call || func ? (long)i + in->imm + 1 : -1;
}

/* A program's subprograms as the verifier numbers them: by first
 * instruction, each a call's or a callback's target. */
struct subprogs {
	const struct bpf_insn *insns;
	size_t n_insns;
	size_t start[MAX_FRAMES_LISTED + 1]; /* start[n] = n_insns */
	size_t n;
};

static int add_start(struct subprogs *sp, long at)
{
	size_t i = 0;
	if (at < 0 || (size_t)at >= sp->n_insns)
		return -EINVAL;
	while (i < sp->n && sp->start[i] < (size_t)at)
		i++;
	if (i < sp->n && sp->start[i] == (size_t)at)
		return 0;
	if (sp->n == MAX_FRAMES_LISTED)
		return -E2BIG;
	memmove(&sp->start[i + 1], &sp->start[i], (sp->n - i) * sizeof(sp->start[0]));
	sp->start[i] = at;
	sp->n++;
	return 0;
}

static int find_subprogs(struct subprogs *sp)
{
	int err = add_start(sp, 0);
	for (size_t i = 0; !err && i < sp->n_insns; i++) {
		long t = call_target(sp->insns, i);
		if (t >= 0)
			err = add_start(sp, t);
	}
	sp->start[sp->n] = sp->n_insns;
	return err;
}

static size_t subprog_of(const struct subprogs *sp, size_t insn)
{
	size_t k = 0;
	while (k + 1 < sp->n && sp->start[k + 1] <= insn)
		k++;
	return k;
}

/* The stack of the deepest chain of frames from subprogram k, as the
 * verifier adds them up against its 512 ("combined stack size of N calls
 * is S. Too large"): each frame rounded up to 32 bytes, the rule of 6.1
 * and of any kernel without the JIT (6.10+ round JITed frames up to 16
 * only, so they may count less). path[0..] gets the chain's subprograms,
 * *n_path their number. */
static long chain_from(const struct subprogs *sp, const struct verifier_stats *st, size_t k, int frames,
		       size_t *path, size_t *n_path)
{
	long deepest = 0, frame = st->depth[k] > 0 ? st->depth[k] : 1;
	size_t sub[MAX_CHAIN], n_sub = 0;
	*n_path = 0;
	if (frames < MAX_CHAIN) /* the verifier allows 8 */
		for (size_t i = sp->start[k]; i < sp->start[k + 1]; i++) {
			long t = call_target(sp->insns, i), d;
			size_t tp[MAX_CHAIN], tn;
			if (t >= 0 && (d = chain_from(sp, st, subprog_of(sp, t), frames + 1, tp, &tn)) > deepest) {
				deepest = d;
				memcpy(sub, tp, tn * sizeof(tp[0]));
				n_sub = tn;
			}
		}
	path[0] = k;
	memcpy(path + 1, sub, n_sub * sizeof(sub[0]));
	*n_path = n_sub + 1;
	return (frame + 31) / 32 * 32 + deepest;
}

static long sum_frames(const struct verifier_stats *st)
{
	long sum = 0;
	for (size_t i = 0; i < st->n_depth; i++)
		sum += st->depth[i];
	return sum;
}

/* The chain's functions by name, from loaded program fd's BTF: its
 * func_info has one record per subprogram, in the verifier's order. */
static void chain_names(int fd, const size_t *path, size_t n, const struct verifier_stats *st, char *out,
			size_t size)
{
	struct bpf_func_info fi[MAX_FRAMES_LISTED];
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct btf *btf = NULL;
	size_t used = 0;
	info.nr_func_info = MAX_FRAMES_LISTED;
	info.func_info_rec_size = sizeof(fi[0]);
	info.func_info = (__u64)(unsigned long)fi;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.func_info_rec_size != sizeof(fi[0]) ||
	    info.nr_func_info != st->n_depth)
		info.nr_func_info = 0;
	if (info.nr_func_info && info.btf_id)
		btf = btf__load_from_kernel_by_id(info.btf_id);
	out[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		const struct btf_type *t = btf ? btf__type_by_id(btf, fi[path[i]].type_id) : NULL;
		const char *name = t ? btf__name_by_offset(btf, t->name_off) : NULL;
		used += snprintf(out + used, size - used, "%s%s %ld", i ? " > " : "", name ? name : "?",
				 st->depth[path[i]]);
	}
	btf__free(btf);
}

/* Deepest chain of frames of the loaded program p; without its call graph
 * (the statistics do not match it), the sum of all its frames, which is
 * never less. chain[size] gets the chain's functions and frames. */
static long stack_of(const struct bpf_program *p, const struct verifier_stats *st, char *chain, size_t size)
{
	struct subprogs sp = { .insns = bpf_program__insns(p), .n_insns = bpf_program__insn_cnt(p) };
	size_t path[MAX_CHAIN], n;
	chain[0] = '\0';
	if (sp.insns && !find_subprogs(&sp) && sp.n == st->n_depth) {
		long depth = chain_from(&sp, st, 0, 1, path, &n);
		if (bpf_program__fd(p) >= 0)
			chain_names(bpf_program__fd(p), path, n, st, chain, size);
		return depth;
	}
	return sum_frames(st);
}

/* Statistics, an instruction ("123: (85) call ..."), a register state or
 * a source line ("; x = y @ file.c:12") are not reasons. */
static bool reason_candidate(const char *l, size_t len)
{
	size_t digits = strspn(l, "0123456789");
	if (len == 0 || l[0] == ';' || !strncmp(l, "from ", 5) || !strncmp(l, "func#", 5))
		return false;
	if (!strncmp(l, "processed ", 10) || !strncmp(l, "verification time", 17) || !strncmp(l, "stack depth", 11))
		return false;
	if (digits && digits < len && l[digits] == ':')
		return strstr(l, "<invalid") != NULL; /* libbpf's "123: <invalid CO-RE relocation>" */
	return true;
}

static bool has_keyword(const char *l, size_t len)
{
	static const char *const words[] = { "Too large", "too large", "unknown func", "expected", "invalid",
					     "limit", "cannot", "not allowed", "out of bounds", "unbounded",
					     "too many", "unreleased", "failed", "unsupported", "not supported",
					     "misaligned", "back-edge", "infinite loop", "!read_ok" };
	char buf[512];
	snprintf(buf, sizeof(buf), "%.*s", (int)len, l);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(buf, words[i]))
			return true;
	return false;
}

/* The verifier's reason: the last line naming a fault ("Too large",
 * "unknown func", "expected", "invalid", "limit", ...) among the last few
 * that are neither statistics nor instructions, else the last of those;
 * and the instruction logged just before it. False if there is none. */
static bool parse_reason(const char *log, struct progcheck_result *r)
{
	const char *cur = log, *l, *insn = NULL;
	const char *cand[8] = {}, *cand_insn[8] = {};
	size_t len, cand_len[8] = {}, insn_len = 0, n = 0;
	while (next_line(&cur, &l, &len)) {
		size_t digits = strspn(l, "0123456789");
		if (!reason_candidate(l, len)) {
			if (digits && digits + 2 < len && l[digits] == ':' && l[digits + 2] == '(') {
				insn = l;
				insn_len = len;
			}
			continue;
		}
		cand[n % 8] = l;
		cand_len[n % 8] = len;
		cand_insn[n % 8] = insn;
		n++;
	}
	if (!n)
		return false;
	size_t pick = (n - 1) % 8;
	for (size_t i = 0; i < 8 && i < n; i++) {
		size_t k = (n - 1 - i) % 8;
		if (has_keyword(cand[k], cand_len[k])) {
			pick = k;
			break;
		}
	}
	snprintf(r->reason, sizeof(r->reason), "%.*s", (int)cand_len[pick], cand[pick]);
	insn = cand_insn[pick];
	if (insn) {
		insn_len = strcspn(insn, "\n");
		snprintf(r->where, sizeof(r->where), "%.*s", (int)insn_len, insn);
	}
	return true;
}

/* Opens and configures object o with only program r->program on, and loads
 * it with the verifier log at level into log[size]; with the statistics
 * (level 4), r gets the figures. 0 or -errno. */
static int load_one(const struct object_ops *o, struct progcheck_result *r, __u32 level, char *log, size_t size)
{
	struct verifier_stats st;
	struct bpf_object *obj;
	struct bpf_program *p, *target = NULL;
	void *skel;
	int err;
	log[0] = '\0';
	err = open_configured(o, &skel, &obj);
	if (err)
		return err;
	bpf_object__for_each_program(p, obj) {
		if (strcmp(bpf_program__name(p), r->program) == 0)
			target = p;
		else
			bpf_program__set_autoload(p, false);
	}
	if (!target) {
		err = -ENOENT;
		goto cleanup;
	}
	bpf_program__set_log_level(target, level);
	bpf_program__set_log_buf(target, log, size);
	libbpf_warning[0] = '\0';
	err = bpf_object__load(obj);
	if (level & 4) {
		parse_stats(log, &st);
		r->insns = st.insns;
		if (st.limit > 0)
			r->insn_limit = st.limit;
		r->stack = st.n_depth ? stack_of(target, &st, r->chain, sizeof(r->chain)) : -1;
		r->stack_sum = st.n_depth ? sum_frames(&st) : -1;
	}
cleanup:
	o->destroy(skel); /* unloads it */
	return err;
}

/* The verifier ends its log with the count it processed: a log without it
 * lost its end. */
static bool log_complete(const char *log)
{
	return !strncmp(log, "processed ", 10) || strstr(log, "\nprocessed ");
}

/* A refused program's reason: from the full log if the kernel kept its
 * end, else from the statistics run's log (on kernels before 6.4 a full
 * log that overflows loses its end), else libbpf's last warning. */
static void explain(const struct object_ops *o, struct progcheck_result *r, const char *stats_log)
{
	char *full = malloc(FULL_LOG_SIZE);
	if (full) {
		load_one(o, r, 1, full, FULL_LOG_SIZE);
		bool found = log_complete(full) && parse_reason(full, r);
		free(full);
		if (found)
			return;
	}
	if (parse_reason(stats_log, r))
		return;
	snprintf(r->reason, sizeof(r->reason), "%s", libbpf_warning[0] ? libbpf_warning : strerror(-r->err));
}

static void check_one(const struct object_ops *o, struct progcheck_result *r, char *stats_log)
{
	int err = load_one(o, r, 4 /* BPF_LOG_STATS */, stats_log, STATS_LOG_SIZE);
	r->loaded = err == 0;
	r->err = err;
	if (!r->loaded)
		explain(o, r, stats_log);
}

int progcheck_run(struct progcheck_result **out, size_t *n)
{
	struct progcheck_result *res = calloc(MAX_RESULTS, sizeof(*res));
	char *stats_log = malloc(STATS_LOG_SIZE);
	libbpf_print_fn_t prev = libbpf_set_print(quiet_print);
	size_t count = 0;
	int err = 0;

	if (!res || !stats_log) {
		err = -ENOMEM;
		log_error("program check: %s", strerror(-err));
		goto cleanup;
	}
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		size_t first = count;
		err = list_programs(&objects[i], res, &count);
		if (err)
			goto cleanup;
		for (size_t k = first; k < count; k++)
			check_one(&objects[i], &res[k], stats_log);
	}
	*out = res;
	*n = count;
	res = NULL;
cleanup:
	libbpf_set_print(prev);
	free(stats_log);
	free(res);
	return err;
}

bool progcheck_failed(const struct progcheck_result *r)
{
	return !r->loaded || r->insns > PROGCHECK_INSN_BUDGET || r->stack > PROGCHECK_STACK_LIMIT;
}

static void print_one(FILE *f, const struct progcheck_result *r, const char *indent)
{
	char line[768], name[96], insns[48] = "? insns", stack[24] = "stack ?", note[400] = "";
	size_t len;
	snprintf(name, sizeof(name), "%s/%s", r->object, r->program);
	if (r->insns >= 0)
		snprintf(insns, sizeof(insns), "%ld insns (%.1f%% of limit)", r->insns,
			 100.0 * r->insns / (r->insn_limit > 0 ? r->insn_limit : PROGCHECK_INSN_LIMIT));
	if (r->stack >= 0)
		snprintf(stack, sizeof(stack), "stack %ld", r->stack);
	if (!r->loaded)
		snprintf(note, sizeof(note), "refused: %s%s%s", r->reason, r->where[0] ? "  at " : "", r->where);
	else if (r->insns > PROGCHECK_INSN_BUDGET)
		snprintf(note, sizeof(note), "over weft's ceiling of %ld insns", PROGCHECK_INSN_BUDGET);
	else if (r->stack > PROGCHECK_STACK_LIMIT)
		snprintf(note, sizeof(note), "stack over %ld", PROGCHECK_STACK_LIMIT);
	snprintf(line, sizeof(line), "%s%-3s %-40s %-30s %-10s  %s", indent, r->loaded ? "ok" : "no", name, insns,
		 stack, note);
	len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	fprintf(f, "%s\n", line);
	/* Where a deep chain's stack goes: the frames to shrink first. */
	if (r->stack >= PROGCHECK_STACK_MAX / 2 && strchr(r->chain, '>'))
		fprintf(f, "%s      deepest calls (bytes each, before rounding): %s\n", indent, r->chain);
}

void progcheck_print(FILE *f, const struct progcheck_result *r, size_t n, const char *indent)
{
	for (size_t i = 0; i < n; i++)
		print_one(f, &r[i], indent);
}
