/* Selectors: parsing one criterion, matching one process. */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pod_meta.h"
#include "regex_cost.h"
#include "selector.h"

#define REGEX_TEXT_MAX 1024

int selector_set_regex(struct name_regex *r, const char *what, const char *text, char *err, size_t errlen)
{
	char anchored[REGEX_TEXT_MAX + 8];
	if (strlen(text) > REGEX_TEXT_MAX) {
		snprintf(err, errlen, "%s: regular expression longer than %d characters", what, REGEX_TEXT_MAX);
		return -EINVAL;
	}
	int rc = regex_cost_check(what, text, err, errlen);
	if (rc)
		return rc;
	if (r->set) {
		regfree(&r->re);
		free(r->text);
		r->set = false;
	}
	/* The whole name must match, as in OBI/Beyla (use .* for parts). */
	snprintf(anchored, sizeof(anchored), "^(%s)$", text);
	rc = regcomp(&r->re, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[128];
		regerror(rc, &r->re, msg, sizeof(msg));
		snprintf(err, errlen, "%s: '%s' is not a regular expression: %s", what, text, msg);
		return -EINVAL;
	}
	r->text = strdup(text);
	if (!r->text) {
		regfree(&r->re);
		return -ENOMEM;
	}
	r->set = true;
	return 0;
}

static void regex_free(struct name_regex *r)
{
	if (!r->set)
		return;
	regfree(&r->re);
	free(r->text);
	r->set = false;
}

static int parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;
	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

int selector_add_ports(struct selector *s, const char *text, char *err, size_t errlen)
{
	const char *p = text;
	for (;;) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, ",");
		while (len && p[len - 1] == ' ')
			len--;
		const char *dash = memchr(p, '-', len);
		struct port_range r;
		int bad = dash ? parse_port(p, dash - p, &r.lo) || parse_port(dash + 1, p + len - dash - 1, &r.hi)
			       : parse_port(p, len, &r.lo);
		if (!dash)
			r.hi = r.lo;
		if (bad || r.lo > r.hi) {
			snprintf(err, errlen, "open_ports: '%.*s' in '%s' is not a port (1-65535) or a range LO-HI", (int)len,
				 p, text);
			return -EINVAL;
		}
		if (s->n_ports == SELECTOR_MAX_PORT_RANGES) {
			snprintf(err, errlen, "open_ports: more than %d ports or ranges", SELECTOR_MAX_PORT_RANGES);
			return -E2BIG;
		}
		s->ports[s->n_ports++] = r;
		p += strcspn(p, ",");
		if (!*p)
			return 0;
		p++;
	}
}

int selector_add_label(struct selector *s, const char *key, const char *value, char *err, size_t errlen)
{
	if (!*key) {
		snprintf(err, errlen, "k8s_pod_labels: empty label name");
		return -EINVAL;
	}
	if (s->n_labels == SELECTOR_MAX_LABELS) {
		snprintf(err, errlen, "k8s_pod_labels: more than %d labels", SELECTOR_MAX_LABELS);
		return -E2BIG;
	}
	struct label_regex *l = &s->labels[s->n_labels];
	memset(l, 0, sizeof(*l));
	char what[300];
	snprintf(what, sizeof(what), "k8s_pod_labels.%s", key);
	int rc = selector_set_regex(&l->value, what, value, err, errlen);
	if (rc)
		return rc;
	l->key = strdup(key);
	if (!l->key) {
		regex_free(&l->value);
		return -ENOMEM;
	}
	s->n_labels++;
	return 0;
}

int selector_add_labels(struct selector *s, const char *text, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL;
	int rc = 0;
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq) {
			snprintf(err, errlen, "k8s_pod_labels: '%s' is not NAME=REGEX", tok);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		rc = selector_add_label(s, tok, eq + 1, err, errlen);
	}
	free(copy);
	return rc;
}

static bool regex_ok(const struct name_regex *r, const char *value)
{
	if (!r->set)
		return true;
	return value && regexec(&r->re, value, 0, NULL, 0) == 0;
}

/* An owner-kind criterion: the pod's top owner (or its direct one) is of
 * kind and its name matches. */
static bool owner_ok(const struct name_regex *r, const struct pod_meta *p, const char *kind)
{
	if (!r->set)
		return true;
	if (!p)
		return false;
	if (p->top_kind && !strcmp(p->top_kind, kind) && regex_ok(r, p->top_name))
		return true;
	return p->owner_kind && !strcmp(p->owner_kind, kind) && regex_ok(r, p->owner_name);
}

bool selector_needs_k8s(const struct selector *s)
{
	return s->k8s_namespace.set || s->k8s_pod_name.set || s->k8s_container_name.set || s->k8s_owner_name.set ||
	       s->k8s_deployment_name.set || s->k8s_statefulset_name.set || s->k8s_daemonset_name.set ||
	       s->k8s_replicaset_name.set || s->k8s_job_name.set || s->k8s_cronjob_name.set || s->n_labels;
}

bool selector_needs_ports(const struct selector *s)
{
	return s->n_ports > 0;
}

bool selector_empty(const struct selector *s)
{
	return !s->exe_path && !s->n_ports && !s->container_id && !s->container_name.set && !selector_needs_k8s(s);
}

bool selector_matches(const struct selector *s, const struct proc_facts *f)
{
	if (s->exe_path && (!f->exe_path || fnmatch(s->exe_path, f->exe_path, 0) != 0))
		return false;
	if (s->n_ports) {
		bool any = false;
		for (size_t i = 0; i < f->n_ports && !any; i++)
			for (size_t j = 0; j < s->n_ports && !any; j++)
				any = f->ports[i] >= s->ports[j].lo && f->ports[i] <= s->ports[j].hi;
		if (!any)
			return false;
	}
	if (s->container_id &&
	    (!f->container_id || strncmp(f->container_id, s->container_id, strlen(s->container_id)) != 0))
		return false;
	if (!regex_ok(&s->container_name, f->container_name))
		return false;
	if (!selector_needs_k8s(s))
		return true;
	const struct pod_meta *p = f->pod;
	if (!p)
		return false;
	if (!regex_ok(&s->k8s_namespace, p->ns) || !regex_ok(&s->k8s_pod_name, p->name) ||
	    !regex_ok(&s->k8s_container_name, f->k8s_container_name))
		return false;
	if (s->k8s_owner_name.set &&
	    !regex_ok(&s->k8s_owner_name, p->top_name ? p->top_name : p->owner_name ? p->owner_name : p->name))
		return false;
	if (!owner_ok(&s->k8s_deployment_name, p, "Deployment") || !owner_ok(&s->k8s_statefulset_name, p, "StatefulSet") ||
	    !owner_ok(&s->k8s_daemonset_name, p, "DaemonSet") || !owner_ok(&s->k8s_replicaset_name, p, "ReplicaSet") ||
	    !owner_ok(&s->k8s_job_name, p, "Job") || !owner_ok(&s->k8s_cronjob_name, p, "CronJob"))
		return false;
	for (size_t i = 0; i < s->n_labels; i++)
		if (!regex_ok(&s->labels[i].value, pod_meta_label(p, s->labels[i].key)))
			return false;
	return true;
}

void selector_free(struct selector *s)
{
	free(s->exe_path);
	free(s->container_id);
	struct name_regex *all[] = { &s->container_name,      &s->k8s_namespace,	&s->k8s_pod_name,
				     &s->k8s_container_name,  &s->k8s_owner_name,	&s->k8s_deployment_name,
				     &s->k8s_statefulset_name, &s->k8s_daemonset_name, &s->k8s_replicaset_name,
				     &s->k8s_job_name,	       &s->k8s_cronjob_name };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		regex_free(all[i]);
	for (size_t i = 0; i < s->n_labels; i++) {
		free(s->labels[i].key);
		regex_free(&s->labels[i].value);
	}
	memset(s, 0, sizeof(*s));
}
