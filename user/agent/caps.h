/* The capabilities weft needs (docs/DEPLOY.md, "Capabilities"), checked at
 * start so that a missing one is named rather than seen as a refused load. */
#ifndef WEFT_AGENT_CAPS_H
#define WEFT_AGENT_CAPS_H

#include <stdbool.h>
#include <stdint.h>

/* Checks the effective set: -EPERM (logged, naming the capability) when
 * weft cannot run; a missing CAP_NET_ADMIN turns *propagation off, with a
 * warning. cap_eff: the set to check (caps_effective()). */
int caps_check(uint64_t cap_eff, bool *propagation);
/* This process's effective capabilities (/proc/self/status CapEff). */
uint64_t caps_effective(void);

#endif
