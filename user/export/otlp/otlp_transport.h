/* One OTLP export request over libcurl: OTLP/HTTP (protobuf) or OTLP/gRPC
 * (HTTP/2, h2c or TLS, grpc-status from the trailers). Internal to the OTLP
 * exporter; used from its export thread only, except otlp_transport_abort(). */
#ifndef WEFT_OTLP_TRANSPORT_H
#define WEFT_OTLP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "otlp.h"

enum otlp_outcome {
	OTLP_OUTCOME_OK,
	OTLP_OUTCOME_RETRY,   /* transient: 429/502/503/504, UNAVAILABLE, network */
	OTLP_OUTCOME_FAIL,    /* permanent: drop the batch */
	OTLP_OUTCOME_ABORTED, /* otlp_transport_abort() or deadline */
};

struct otlp_result {
	enum otlp_outcome outcome;
	long http_status;      /* 0 if no response */
	int grpc_status;       /* -1 if none */
	int curl_code;         /* CURLcode of the transfer (0: completed) */
	long retry_after_ms;   /* -1 if the server did not say */
	int64_t rejected;      /* partial_success.rejected_spans */
	char error[256];       /* what failed, for logs; "" on success */
	char partial_msg[256]; /* partial_success.error_message */
	/* a 2xx answer whose body is not an ExportTraceServiceResponse (a web
	 * page, a proxy's form): what it was, for a warning; "" otherwise */
	char not_otlp[128];
};

struct otlp_transport;

/* Returns NULL with a message in err on failure (libcurl without HTTP/2 for
 * gRPC, out of memory...). Does not connect. */
struct otlp_transport *otlp_transport_new(const struct otlp_config *cfg, char *err, size_t errlen);
/* Sends one ExportTraceServiceRequest (body: serialized protobuf), with the
 * configured timeout. Returns 0 (see res->outcome) or -ENOMEM. */
int otlp_transport_send(struct otlp_transport *t, const uint8_t *body, size_t len,
			struct otlp_result *res);
/* Thread-safe: from at_ns on (CLOCK_MONOTONIC), a running or later send
 * gives up at once with OTLP_OUTCOME_ABORTED. Wakes a blocked send. */
void otlp_transport_abort_at(struct otlp_transport *t, uint64_t at_ns);
void otlp_transport_free(struct otlp_transport *t);

uint64_t otlp_now_ns(void); /* CLOCK_MONOTONIC */

#endif
