/* Pod entries: counted references, freed with the last. */
#include <stdlib.h>
#include <string.h>

#include "pod_meta.h"

struct pod_meta *pod_meta_get(struct pod_meta *p)
{
	if (p)
		__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void pod_meta_put(struct pod_meta *p)
{
	if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(p->ns);
	free(p->name);
	free(p->uid);
	free(p->node);
	free(p->owner_kind);
	free(p->owner_name);
	free(p->top_kind);
	free(p->top_name);
	for (size_t i = 0; i < p->n_labels; i++) {
		free(p->labels[i].key);
		free(p->labels[i].value);
	}
	free(p->labels);
	for (size_t i = 0; i < p->n_containers; i++) {
		free(p->containers[i].name);
		free(p->containers[i].image);
	}
	free(p->containers);
	free(p);
}

const char *pod_meta_label(const struct pod_meta *p, const char *key)
{
	for (size_t i = 0; i < p->n_labels; i++)
		if (!strcmp(p->labels[i].key, key))
			return p->labels[i].value;
	return NULL;
}

const struct pod_container *pod_meta_container(const struct pod_meta *p, const char *id)
{
	for (size_t i = 0; i < p->n_containers; i++)
		if (p->containers[i].id[0] && !strcmp(p->containers[i].id, id))
			return &p->containers[i];
	return NULL;
}
