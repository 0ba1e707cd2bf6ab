# bench/bench.mk -- quiver-bench (included by the top Makefile).
# The peer shims (bench/peers_*.cpp) are compiled only when the peer's headers exist,
# with -O3 -march=native: the peers pick their SIMD at compile time, and we compare
# against their strongest build. With a peer present quiver-bench links through $(CXX)
# (libstdc++, and -fopenmp for Faiss). Faiss is Debian's static libfaiss.a: its BLAS
# calls resolve to OpenBLAS ($(BLAS_LIBS)), never the reference libblas.
#   make BENCH_PEERS=no   build quiver-bench without peers even when they are installed
BENCH_PEERS ?= auto
BENCH_SRC := $(wildcard bench/*.c)
BENCH_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(BENCH_SRC))

HNSWLIB_HDR := $(if $(filter no,$(BENCH_PEERS)),,$(wildcard /usr/include/hnswlib/hnswlib.h))
FAISS_HDR   := $(if $(filter no,$(BENCH_PEERS)),,$(wildcard /usr/include/faiss/IndexFlat.h))
PEER_SRC    := $(strip $(if $(HNSWLIB_HDR),bench/peers_hnswlib.cpp) $(if $(FAISS_HDR),bench/peers_faiss.cpp))
PEER_OBJ    := $(patsubst %,$(BUILD)/obj/%.o,$(PEER_SRC))
PEER_DEFS   := $(if $(HNSWLIB_HDR),-DQV_BENCH_HAVE_HNSWLIB=1) $(if $(FAISS_HDR),-DQV_BENCH_HAVE_FAISS=1)
PEER_LIBS   := $(if $(FAISS_HDR),-lfaiss $(BLAS_LIBS)) $(if $(PEER_SRC),-fopenmp)
BENCH_LD    := $(if $(PEER_SRC),$(CXX),$(CC))
# The shims are thin wrappers around third-party headers, so they are compiled without
# $(SAN): hnswlib 0.6.2 prefetches one element past the end of a link list
# (hnswalg.h:214, *(datal + j + 1)), which ASan reports as a heap overflow in hnswlib, not
# in Quiver. The sanitized quiver-bench still checks all of bench/*.c and the library.
PEER_CXXFLAGS = -std=c++17 -O3 -march=native -g -fopenmp -fPIC -pthread -Wall -Wextra $(CPPFLAGS) \
                $(PEER_DEFS) $(CXXFLAGS)

# Rebuild the bench objects when the set of peers or their flags change.
BENCH_SIG := $(PEER_DEFS) | $(PEER_CXXFLAGS)
$(BUILD)/.bench-flags: FORCE
	@mkdir -p $(@D); echo '$(BENCH_SIG)' | cmp -s - $@ || echo '$(BENCH_SIG)' > $@
$(BENCH_OBJ) $(PEER_OBJ): $(BUILD)/.bench-flags

$(BUILD)/obj/bench/%.c.o: CPPFLAGS += $(PEER_DEFS)
$(BUILD)/obj/bench/%.cpp.o: bench/%.cpp $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CXX) $(PEER_CXXFLAGS) -MMD -MP -c $< -o $@
-include $(BENCH_OBJ:.o=.d) $(PEER_OBJ:.o=.d)

$(BUILD)/quiver-bench: $(BENCH_OBJ) $(PEER_OBJ) $(BUILD)/libquiver.a
	$(BENCH_LD) $(ALL_LDFLAGS) -o $@ $(BENCH_OBJ) $(PEER_OBJ) $(BUILD)/libquiver.a $(PEER_LIBS) $(LIB_LIBS)

# tests/check_bench.c runs $(BUILD)/quiver-bench: build it with the test binary (order
# only, so it is not linked into quiver-tests).
$(BUILD)/quiver-tests: | $(BUILD)/quiver-bench
