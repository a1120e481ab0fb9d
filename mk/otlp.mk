# OTLP exporter: protobuf-c code generated at build time from the .proto
# files of Debian's opentelemetry-proto package (nothing copied in the repo).
OTLP_PROTO_DIR ?= /usr/include
OTLP_GEN := $(BUILD)/gen
OTLP_PROTOS := \
	opentelemetry/proto/common/v1/common \
	opentelemetry/proto/resource/v1/resource \
	opentelemetry/proto/trace/v1/trace \
	opentelemetry/proto/collector/trace/v1/trace_service

GEN_SRCS += $(patsubst %,$(OTLP_GEN)/%.pb-c.c,$(OTLP_PROTOS))
GEN_HDRS += $(patsubst %,$(OTLP_GEN)/%.pb-c.h,$(OTLP_PROTOS))
# Generated files include each other as "opentelemetry/proto/...pb-c.h".
CFLAGS += -I$(OTLP_GEN)

# One protoc-c run writes both the .c and the .h (grouped pattern targets).
$(OTLP_GEN)/%.pb-c.c $(OTLP_GEN)/%.pb-c.h: $(OTLP_PROTO_DIR)/%.proto
	$(call msg,PROTOC-C,$@)
	$(Q)mkdir -p $(OTLP_GEN)
	$(Q)protoc-c --c_out=$(OTLP_GEN) -I$(OTLP_PROTO_DIR) $<

# GEN_SRCS are compiled to $(BUILD)/<path>.o.
$(BUILD)/$(OTLP_GEN)/%.o: $(OTLP_GEN)/%.c $(GEN_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Exporter benchmark driver (bench/export builds build/bench/otlp_export).
# Compiled straight from the sources it needs, so that it does not depend on
# the BPF side of the build. A pattern rule: it must not become the default goal.
OTLP_BENCH_SRCS = user/span/span.c user/agent/log.c $(wildcard user/export/otlp/otlp_*.c) \
	$(patsubst %,$(OTLP_GEN)/%.pb-c.c,$(OTLP_PROTOS))
$(BUILD)/bench/otlp_%: bench/otlp_%.c $(wildcard user/export/otlp/otlp*.h) user/span/span.h user/agent/log.h $(GEN_HDRS) $(patsubst %,$(OTLP_GEN)/%.pb-c.c,$(OTLP_PROTOS))
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $< $(OTLP_BENCH_SRCS) -o $@ $(LDLIBS)

-include $(wildcard $(BUILD)/$(OTLP_GEN)/opentelemetry/proto/*/v1/*.d \
	$(BUILD)/$(OTLP_GEN)/opentelemetry/proto/collector/trace/v1/*.d)

# Keep the generated sources (make would delete them as intermediates).
.SECONDARY: $(patsubst %,$(OTLP_GEN)/%.pb-c.c,$(OTLP_PROTOS)) $(patsubst %,$(OTLP_GEN)/%.pb-c.h,$(OTLP_PROTOS))
