/* tls.* attributes from the ServerHello's version and cipher suite. */
#include <errno.h>
#include <stddef.h>

#include "tls_attrs.h"

struct cipher_name {
	uint16_t code;
	const char *name;
};

static const struct cipher_name ciphers[] = {
#include "tls_ciphers.h"
};

const char *tls_cipher_name(uint16_t code)
{
	size_t lo = 0, hi = sizeof(ciphers) / sizeof(ciphers[0]);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ciphers[mid].code == code)
			return ciphers[mid].name;
		if (ciphers[mid].code < code)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int span_add_tls(struct attr_list *a, uint8_t version, uint16_t cipher)
{
	static const char *const versions[] = { NULL, "1.0", "1.1", "1.2", "1.3" };
	if (version == 0 || version >= sizeof(versions) / sizeof(versions[0]))
		return 0;
	const char *name = tls_cipher_name(cipher);
	/* A semantic-conventions value is one of IANA's names: an unknown
	 * code is left out rather than invented. */
	if (attrs_add_str(a, "tls.protocol.name", "tls") || attrs_add_str(a, "tls.protocol.version", versions[version]) ||
	    (name && attrs_add_str(a, "tls.cipher", name)))
		return -ENOMEM;
	return 0;
}
