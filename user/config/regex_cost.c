/* A regular expression's cost, estimated from its text (see regex_cost.h):
 * one pass with a stack of groups; a repetition multiplies what it
 * repeats by the copies glibc makes of it. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "regex_cost.h"

#define CAP (1u << 30) /* saturation: far above any limit */

static uint64_t sat(uint64_t v)
{
	return v > CAP ? CAP : v;
}

/* After a bracket expression starting at p ('['): "[]a]", "[^]a]",
 * "[[:alpha:]]", "[[.-.]]" and "[[=e=]]" keep their ']'. */
static const char *skip_bracket(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char close = p[1];
			const char *e = p + 2;
			while (*e && !(e[0] == close && e[1] == ']'))
				e++;
			p = *e ? e + 2 : e;
		} else {
			p++;
		}
	}
	return *p ? p + 1 : p;
}

static uint64_t digits(const char **p)
{
	uint64_t v = 0;
	while (**p >= '0' && **p <= '9')
		v = sat(v * 10 + (uint64_t)(*(*p)++ - '0'));
	return v;
}

/* "{m}", "{m,}", "{m,n}", "{,n}" (glibc reads it as {0,n}) at p: the copies
 * made of what precedes, and p past the '}'; 0 when it is no interval. */
static uint64_t interval(const char **p)
{
	const char *q = *p + 1;
	bool lo_given = *q >= '0' && *q <= '9';
	uint64_t lo = digits(&q), hi = lo;
	if (*q == ',') {
		q++;
		hi = *q >= '0' && *q <= '9' ? digits(&q) : lo + 1; /* open: lo copies and a loop */
	} else if (!lo_given) {
		return 0;
	}
	if (*q != '}')
		return 0;
	*p = q + 1;
	return hi > lo ? hi : lo > 0 ? lo : 1;
}

struct cost {
	uint64_t positions, loops;
};

int regex_cost_check(const char *what, const char *text, char *err, size_t errlen)
{
	struct cost st[REGEX_DEPTH_MAX + 1] = {}, last = {};
	bool have_last = false, last_loops = false; /* last: a group or a repetition */
	bool last_rep = false;			    /* the token before was a repetition */
	bool branch_start = true;		    /* at the text's start, after '(' or '|' */
	int d = 0;
	for (const char *p = text; *p;) {
		uint64_t copies = 0;
		const char *q = p;
		if (*p == '*' || *p == '?')
			copies = 1, q++;
		else if (*p == '+')
			copies = 2, q++;
		else if (*p == '{')
			copies = interval(&q);
		/* POSIX leaves these undefined, and glibc compiles some in
		 * exponential time ("a|||||||b+++", found by fuzz_config):
		 * refused, not estimated. */
		if (copies && last_rep) {
			snprintf(err, errlen, "%s: a repetition of a repetition (\"%.2s\") is undefined in POSIX regular "
				 "expressions: write it once", what, p - 1);
			return -EINVAL;
		}
		if (*p == '|' && (branch_start || !p[1] || p[1] == '|' || p[1] == ')')) {
			snprintf(err, errlen, "%s: an empty alternative ('|' at an end, or next to '|', '(' or ')') is "
				 "undefined in POSIX regular expressions", what);
			return -EINVAL;
		}
		if (*p == ')' && d == 0) {
			snprintf(err, errlen, "%s: unbalanced ')' in a regular expression", what);
			return -EINVAL;
		}
		last_rep = copies != 0;
		branch_start = *p == '(' || *p == '|';
		if (copies && have_last) {
			struct cost r = { sat(last.positions * copies + 1),
					  sat(last.loops * copies + (last_loops ? copies : 0)) };
			st[d].positions = sat(st[d].positions - last.positions + r.positions);
			st[d].loops = sat(st[d].loops - last.loops + r.loops);
			last = r;
			last_loops = true;
			p = q;
		} else if (copies) {
			p = q; /* nothing to repeat: regcomp's to judge */
		} else if (*p == '(') {
			if (d == REGEX_DEPTH_MAX) {
				snprintf(err, errlen, "%s: regular expression with groups nested more than %d deep", what,
					 REGEX_DEPTH_MAX);
				return -EINVAL;
			}
			st[++d] = (struct cost){};
			have_last = false;
			p++;
		} else if (*p == ')' && d > 0) {
			last = (struct cost){ sat(st[d].positions + 1), st[d].loops };
			d--;
			st[d].positions = sat(st[d].positions + last.positions);
			st[d].loops = sat(st[d].loops + last.loops);
			have_last = last_loops = true;
			p++;
		} else if (*p == '|') {
			have_last = false;
			p++;
		} else {
			if (*p == '\\' && p[1] >= '1' && p[1] <= '9') {
				snprintf(err, errlen, "%s: back-references (\\%c) are not supported", what, p[1]);
				return -EINVAL;
			}
			p = *p == '[' ? skip_bracket(p) : p + (*p == '\\' && p[1] ? 2 : 1);
			last = (struct cost){ 1, 0 };
			st[d].positions = sat(st[d].positions + 1);
			have_last = true;
			last_loops = false;
		}
	}
	for (; d > 0; d--) { /* unclosed groups: regcomp refuses them, still counted */
		st[d - 1].positions = sat(st[d - 1].positions + st[d].positions);
		st[d - 1].loops = sat(st[d - 1].loops + st[d].loops);
	}
	if (st[0].positions > REGEX_POSITIONS_MAX || st[0].loops > REGEX_LOOPS_MAX) {
		snprintf(err, errlen,
			 "%s: regular expression too costly to match (%llu positions once its repetitions are "
			 "expanded, at most %d; %llu repeated groups or repetitions, at most %d)",
			 what, (unsigned long long)st[0].positions, REGEX_POSITIONS_MAX,
			 (unsigned long long)st[0].loops, REGEX_LOOPS_MAX);
		return -EINVAL;
	}
	return 0;
}
