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

# Benchmark drivers (bench/export builds build/bench/otlp_export). A pattern
# rule, so that it does not become make's default goal; LIB_OBJS is defined
# after this file is included, hence only used in the recipe.
$(BUILD)/bench/%: bench/%.c $(BUILD)/weft
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDLIBS)

-include $(wildcard $(BUILD)/$(OTLP_GEN)/opentelemetry/proto/*/v1/*.d \
	$(BUILD)/$(OTLP_GEN)/opentelemetry/proto/collector/trace/v1/*.d)

# Keep the generated sources (make would delete them as intermediates).
.SECONDARY: $(patsubst %,$(OTLP_GEN)/%.pb-c.c,$(OTLP_PROTOS)) $(patsubst %,$(OTLP_GEN)/%.pb-c.h,$(OTLP_PROTOS))
