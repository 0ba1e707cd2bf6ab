# bench/bench.mk -- quiver-bench (included by the top Makefile).
# The peer shims (bench/peers_*.cpp) are compiled only when the peer's headers exist,
# with -O3 -march=native: the peers pick their SIMD at compile time, and we compare
# against their strongest build.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(BENCH_SRC))
-include $(BENCH_OBJ:.o=.d)

$(BUILD)/quiver-bench: $(BENCH_OBJ) $(BUILD)/libquiver.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LIBS)
