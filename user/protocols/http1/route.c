/* Route heuristic (see route.h): span names must stay low-cardinality, so
 * path segments that look like identifiers are replaced by "*".  The rules
 * err on the side of keeping words: a route with one id left in costs a
 * little cardinality, a route whose words were starred is useless. */
#include "route.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

static const char route_cut_marker[] = "/...";
#define ROUTE_CUT_MARKER_LEN (sizeof(route_cut_marker) - 1)

/* Random tokens are at least this long before letters+digits mark them. */
#define ROUTE_TOKEN_MIN_LEN 16
/* Pure hex of this length (with a digit) is a hash or an object id. */
#define ROUTE_HEX_MIN_LEN 8

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_one_of(unsigned char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "%XX" at s[i]: percent-encoded bytes count as one byte, not as two hex
 * digits (so "%20" does not make a segment look numeric). */
static bool is_pct_triplet(const char *s, size_t n, size_t i)
{
	return s[i] == '%' && i + 2 < n &&
	       is_hex((unsigned char)s[i + 1]) && is_hex((unsigned char)s[i + 2]);
}

struct seg_stats {
	size_t digits, letters, others;
	bool has_at; /* '@' or "%40" */
};

static struct seg_stats seg_count(const char *s, size_t n)
{
	struct seg_stats st = { 0 };

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_pct_triplet(s, n, i)) {
			if (s[i + 1] == '4' && s[i + 2] == '0')
				st.has_at = true;
			st.others++;
			i += 2;
		} else if (is_digit(c)) {
			st.digits++;
		} else if (is_alpha(c)) {
			st.letters++;
		} else {
			if (c == '@')
				st.has_at = true;
			st.others++;
		}
	}
	return st;
}

/* 8-4-4-4-12 hex digits, any case. */
static bool is_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash_pos = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash_pos ? s[i] != '-' : !is_hex((unsigned char)s[i]))
			return false;
	}
	return true;
}

static bool is_all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_hex((unsigned char)s[i]))
			return false;
	return true;
}

/* Digits with date/time/number punctuation only: "2024-01-31", "1.2.3",
 * "10:30", "+33612345678".  All-digit segments are the simplest case. */
static bool is_numeric_like(const char *s, size_t n)
{
	bool digit = false;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_digit(c))
			digit = true;
		else if (!is_one_of(c, "-_.:,+"))
			return false;
	}
	return digit;
}

/* API versions: "v1", "V2", "v1.2", "v10". */
static bool is_version(const char *s, size_t n)
{
	bool digit_run = false;

	if (n < 2 || (s[0] != 'v' && s[0] != 'V'))
		return false;
	for (size_t i = 1; i < n; i++) {
		if (is_digit((unsigned char)s[i]))
			digit_run = true;
		else if (s[i] == '.' && digit_run)
			digit_run = false;
		else
			return false;
	}
	return digit_run;
}

/* Lower-to-upper case changes: a few in camelCase, many in random base64. */
static size_t case_flips(const char *s, size_t n)
{
	size_t flips = 0;

	for (size_t i = 1; i < n; i++)
		if (s[i - 1] >= 'a' && s[i - 1] <= 'z' && s[i] >= 'A' && s[i] <= 'Z')
			flips++;
	return flips;
}

/* A word as people name things: letters, possibly with a short number
 * before or after ("oauth2", "2fa", "ipv6", "v10"), or any 3 alphanumerics.
 * Random tokens interleave letters and digits, or flip case all along. */
static bool piece_is_word(const char *s, size_t n)
{
	struct seg_stats st = seg_count(s, n);
	size_t lead = 0, trail = 0;

	if (st.others)
		return false;
	if (n <= 3)
		return true;
	if (case_flips(s, n) * 4 > st.letters)
		return false;
	if (st.digits == 0)
		return true;
	while (lead < n && is_digit((unsigned char)s[lead]))
		lead++;
	while (trail < n && is_digit((unsigned char)s[n - 1 - trail]))
		trail++;
	return st.digits <= 2 && (lead == st.digits || trail == st.digits);
}

/* "user-settings-v2", "oauth2_callback_url": every piece between '-', '_'
 * and '.' is a word.  Such segments stay even when long and mixing letters
 * and digits. */
static bool is_wordy(const char *s, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && !is_one_of((unsigned char)s[i], "-_."))
			continue;
		if (i > start && !piece_is_word(s + start, i - start))
			return false;
		start = i + 1;
	}
	return true;
}

/* Control bytes (NUL above all) have no place in a span name: a segment
 * holding one is starred, so the route is always a clean C string. */
static bool has_control_byte(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

static bool segment_is_identifier(const char *s, size_t n)
{
	struct seg_stats st;

	if (n == 0)
		return false;
	if (has_control_byte(s, n))
		return true;
	if (is_version(s, n))
		return false;
	if (is_numeric_like(s, n) || is_uuid(s, n))
		return true;
	st = seg_count(s, n);
	if (st.has_at)
		return true;
	if (n >= ROUTE_HEX_MIN_LEN && st.digits && is_all_hex(s, n))
		return true;
	if (n >= ROUTE_TOKEN_MIN_LEN && st.digits && st.letters && !is_wordy(s, n))
		return true;
	return st.digits > st.letters;
}

/* Bytes of the output for one segment, its leading '/' included. */
static size_t segment_out_len(const char *s, size_t n)
{
	return 1 + (segment_is_identifier(s, n) ? 1 : n);
}

/* Length of the segment at path[pos] (pos just after a '/'). */
static size_t segment_len(const char *path, size_t len, size_t pos)
{
	const char *slash = pos < len ? memchr(path + pos, '/', len - pos) : NULL;

	return slash ? (size_t)(slash - path) - pos : len - pos;
}

/* Without a query or fragment. */
static size_t path_len_without_query(const char *path, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (path[i] == '?' || path[i] == '#')
			return i;
	return len;
}

static size_t route_full_len(const char *path, size_t len)
{
	size_t total = 0;

	for (size_t pos = 1; pos <= len;) {
		size_t n = segment_len(path, len, pos);

		total += segment_out_len(path + pos, n);
		pos += n + 1;
	}
	return total;
}

/* Output too small even for "/...": the best short answer is "/". */
static int route_write_root(char *out, size_t cap)
{
	if (cap >= 1) {
		out[0] = '/';
		out[1] = '\0';
		return 1;
	}
	out[0] = '\0';
	return 0;
}

int route_from_path(const char *path, size_t len, char *out, size_t outlen)
{
	size_t cap, written = 0; /* cap: bytes available before the NUL */
	bool cut;

	if (!out || outlen == 0)
		return -EINVAL;
	cap = outlen - 1;
	if (cap > INT_MAX)
		cap = INT_MAX;
	len = path ? path_len_without_query(path, len) : 0;
	if (len == 0 || path[0] != '/') {
		route_write_root(out, cap);
		return -EINVAL;
	}
	/* A route is never longer than its path (a segment becomes itself or
	 * "*"): only a path longer than cap needs the pass that measures. */
	cut = len > cap && route_full_len(path, len) > cap;
	if (cut && cap < ROUTE_CUT_MARKER_LEN)
		return route_write_root(out, cap);
	for (size_t pos = 1; pos <= len;) {
		size_t n = segment_len(path, len, pos);
		bool id = segment_is_identifier(path + pos, n); /* once per segment */
		size_t need = 1 + (id ? 1 : n);

		if (cut && written + need + ROUTE_CUT_MARKER_LEN > cap)
			break;
		out[written] = '/';
		if (id)
			out[written + 1] = '*';
		else
			memcpy(out + written + 1, path + pos, n);
		written += need;
		pos += n + 1;
	}
	if (cut) {
		memcpy(out + written, route_cut_marker, ROUTE_CUT_MARKER_LEN);
		written += ROUTE_CUT_MARKER_LEN;
	}
	out[written] = '\0';
	return (int)written;
}
