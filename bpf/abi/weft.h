/* The whole kernel<->agent contract, for code that needs most of it. */
#ifndef WEFT_ABI_WEFT_H
#define WEFT_ABI_WEFT_H

#include "abi/conn.h"
#include "abi/counters.h"
#include "abi/events.h"
#include "abi/exchange.h"
#include "abi/go.h"
#include "abi/h2_parent.h"
#include "abi/process.h"
#include "abi/protocols.h"
#include "abi/stream.h"

#endif
