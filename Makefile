# Quiver -- build, test and run.
#
#   make              library (build/libquiver.a, .so), quiverd, quiver, quiver-bench
#   make test         install missing Debian packages, build, run the unit/integration
#                     tests, cluster-test, install-test, then the same tests under
#                     AddressSanitizer + UBSan, then make fuzz
#   make run          build and start quiverd on 127.0.0.1:6333 with ./quiver-data
#   make tsan-test    the concurrency suites and cluster-test under ThreadSanitizer
#   make fuzz         60 s of mutated requests against the ASan+UBSan quiverd (FUZZ_SECONDS)
#   make install      header, static + shared library (with a soname) and quiver.pc under
#                     PREFIX (default /usr/local; DESTDIR for staging)
#   make python       the Python module build/python/quiver*.so (python/python.mk);
#                     make python-test runs its pytest suite (make test does too)
#   make gpu-check    GPU correctness + timing on a machine with CUDA (see gpu/gpu-check.mk)
#
# Knobs: make USE_CUDA=no|yes|auto SANITIZER=address,undefined OPT=-O0 BUILD=dir

# The compiler: clang 19 where it is installed (make deps installs it), else cc. Its code
# is faster on the quantized walk: bit1 +3-4% (6-8% in session 21), measured alternated against
# gcc 12 on the same tree (bench/RESULTS.md "Session 22"). The sanitizer builds keep cc
# (gcc): the Python suite under ASan preloads gcc's runtime. make CC=... picks another.
ifeq ($(origin CC),default)
  ifeq ($(SANITIZER),)
    CC := $(or $(shell command -v clang-19 2>/dev/null),cc)
  endif
endif
CXX ?= c++
PKG_CONFIG ?= pkg-config
BUILD ?= build
OPT ?= -O3 -g
SANITIZER ?=
USE_CUDA ?= auto
CUDA_HOME ?= /usr/local/cuda
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
# No fused multiply-adds the source does not ask for (gcc's default under -std=c11; clang's
# default fuses), so both compilers round alike.
STD  := -std=c11 -D_GNU_SOURCE -ffp-contract=off
SAN  := $(if $(SANITIZER),-fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all)
CPPFLAGS += -Iinclude -I.

# pkg-config first, plain -l second
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs   = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null || echo $(2))
BLAS_CFLAGS := $(call pc_cflags,openblas)
BLAS_LIBS   := $(call pc_libs,openblas,-lopenblas)
LMDB_LIBS   := $(call pc_libs,lmdb,-llmdb)
JSON_CFLAGS := $(call pc_cflags,jansson)
JSON_LIBS   := $(call pc_libs,jansson,-ljansson)
EVENT_LIBS  := $(call pc_libs,libevent_pthreads libevent,-levent_pthreads -levent)
CHECK_LIBS  := $(call pc_libs,check,-lcheck -lsubunit -lrt -lm -lpthread)
# SHA-256 of backups (storage/sha256.c is the only user)
CRYPTO_LIBS := $(call pc_libs,libcrypto,-lcrypto)
# quiverd's TLS (libevent's OpenSSL bufferevents) and tokens (HMAC-SHA256); the tests'
# TLS client uses libssl too
TLS_LIBS    := $(call pc_libs,libevent_openssl openssl,-levent_openssl -lssl -lcrypto)
# Snowball stemming of the full-text index (storage/text_tokenize.c); Debian ships no .pc
STEM_LIBS   := -lstemmer

# ---- GPU: the CUDA part is a plugin, $(BUILD)/libquiver-gpu.so (linked against cuBLAS and
# the CUDA runtime), built only when nvcc exists. The library never links CUDA: its loader
# (gpu/gpu_loader.c) opens the plugin on the first GPU call, so a process that never asks
# for the GPU does not pay cuBLAS's ~155 MB of resident memory (gpu/gpu_plugin.h). Without
# nvcc the loader answers QV_ENODEV and callers take the CPU path.
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
NVCC := $(NVCC)
CUDA_SRC := $(wildcard gpu/*.cu gpu/gpu_cuda*.c)
HAVE_CUDA := $(if $(filter auto,$(USE_CUDA)),$(if $(NVCC),$(if $(CUDA_SRC),yes,no),no),$(USE_CUDA))
GPU_SRC := gpu/gpu_loader.c gpu/gpu_options.c
ifeq ($(HAVE_CUDA),yes)
  $(if $(NVCC),,$(error USE_CUDA=yes but nvcc not found; set NVCC= or CUDA_HOME=))
  GPU_PLUGIN := $(BUILD)/libquiver-gpu.so
  PLUGIN_SRC := $(CUDA_SRC) gpu/gpu_plugin.c
  CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
  CPPFLAGS  += -DQV_HAVE_CUDA=1
  CUDA_INC  := -I$(CUDA_HOME)/include
  NVCCFLAGS ?= -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -fPIC,-Wall
endif
ifeq ($(MAKELEVEL),0)
  $(info quiver: GPU part $(if $(filter yes,$(HAVE_CUDA)),BUILT as a plugin ($(NVCC)),NOT built (no nvcc; GPU calls return QV_ENODEV)))
endif

ALL_CFLAGS  = $(STD) $(WARN) $(OPT) $(SAN) -fPIC -pthread $(CPPFLAGS) $(BLAS_CFLAGS) $(JSON_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) -pthread $(LDFLAGS)
LIB_LIBS    = $(LMDB_LIBS) $(JSON_LIBS) $(CRYPTO_LIBS) $(STEM_LIBS) $(BLAS_LIBS) -ldl -lm

LIB_SRC := $(wildcard core/*.c index/*.c storage/*.c) $(GPU_SRC)
LIB_OBJ := $(LIB_SRC:%=$(BUILD)/obj/%.o)
SRV_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(wildcard server/*.c))
# The dashboard's files (GET /dashboard) go into quiverd as a generated C table.
DASH_SRC := $(wildcard server/dashboard/*.html server/dashboard/*.css server/dashboard/*.js)
SRV_OBJ += $(if $(SRV_OBJ),$(BUILD)/obj/gen/dashboard_files.c.o)
CLI_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(wildcard cli/*.c))
# The JSON form of the API (api/): shared by quiverd, the CLI and the tests.
API_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(wildcard api/*.c))
TST_OBJ := $(patsubst %,$(BUILD)/obj/%.o,$(wildcard tests/*.c))

BINS := $(BUILD)/libquiver.a $(BUILD)/libquiver.so $(GPU_PLUGIN)
BINS += $(if $(SRV_OBJ),$(BUILD)/quiverd)
BINS += $(if $(CLI_OBJ),$(BUILD)/quiver)

all: $(BINS) $(BUILD)/quiver-bench

# Library objects hide every symbol but the QV_API functions of quiver.h.
LIB_VISIBILITY := -fvisibility=hidden
# Rebuild everything when the flags change.
FLAGS_SIG := $(CC) $(ALL_CFLAGS) | $(HAVE_CUDA) $(NVCCFLAGS) | $(LIB_VISIBILITY)
$(BUILD)/.flags: FORCE
	@mkdir -p $(@D); echo '$(FLAGS_SIG)' | cmp -s - $@ || echo '$(FLAGS_SIG)' > $@

$(BUILD)/obj/%.c.o: %.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CUDA_INC) -MMD -MP -c $< -o $@
$(BUILD)/obj/%.cu.o: %.cu $(BUILD)/.flags
	@mkdir -p $(@D)
	$(NVCC) $(NVCCFLAGS) $(CPPFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@
-include $(LIB_OBJ:.o=.d) $(PLUGIN_SRC:%=$(BUILD)/obj/%.d) $(API_OBJ:.o=.d) $(SRV_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TST_OBJ:.o=.d)

$(BUILD)/libquiver.a: $(LIB_OBJ) $(BUILD)/libquiver.deps
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)
# What a program linking libquiver.a also needs (differs with and without CUDA).
$(BUILD)/libquiver.deps: $(BUILD)/.flags Makefile
	@echo '-pthread $(LIB_LIBS)' > $@
$(LIB_OBJ): CFLAGS += $(LIB_VISIBILITY)
$(LIB_OBJ): NVCCFLAGS += -Xcompiler $(LIB_VISIBILITY)
VERSION   := $(shell sed -n 's/^\#define QV_VERSION "\(.*\)"/\1/p' include/quiver.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
$(BUILD)/libquiver.so: $(LIB_OBJ)
	$(CC) -shared $(ALL_LDFLAGS) -Wl,-soname,libquiver.so.$(SOVERSION) -o $@ $^ $(LIB_LIBS)
# The loader looks beside its own module first, then in these two (gpu/gpu_loader.c).
$(BUILD)/obj/gpu/gpu_loader.c.o: CPPFLAGS += -DQV_GPU_PLUGIN_BUILD_DIR='"$(abspath $(BUILD))"' \
                                            -DQV_GPU_PLUGIN_LIBDIR='"$(LIBDIR)"'
# The plugin: the CUDA code with its own copies of the error and allocation helpers
# (objects shared with the library), exporting its table only (gpu/plugin.map).
PLUGIN_OBJ := $(PLUGIN_SRC:%=$(BUILD)/obj/%.o) $(BUILD)/obj/gpu/gpu_options.c.o \
              $(BUILD)/obj/core/error.c.o $(BUILD)/obj/core/alloc.c.o
$(PLUGIN_SRC:%=$(BUILD)/obj/%.o): CFLAGS += $(LIB_VISIBILITY)
$(PLUGIN_SRC:%=$(BUILD)/obj/%.o): NVCCFLAGS += -Xcompiler $(LIB_VISIBILITY)
$(BUILD)/libquiver-gpu.so: $(PLUGIN_OBJ) gpu/plugin.map
	$(CC) -shared $(ALL_LDFLAGS) -Wl,--version-script=gpu/plugin.map -o $@ $(PLUGIN_OBJ) $(CUDA_LIBS) -lm
$(BUILD)/gen/dashboard_files.c: server/dashboard/embed.sh $(DASH_SRC)
	@mkdir -p $(@D)
	sh server/dashboard/embed.sh $(DASH_SRC) > $@.tmp && mv $@.tmp $@
$(BUILD)/obj/gen/dashboard_files.c.o: $(BUILD)/gen/dashboard_files.c $(BUILD)/.flags
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
$(BUILD)/quiverd: $(SRV_OBJ) $(API_OBJ) $(BUILD)/libquiver.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LIBS) $(EVENT_LIBS) $(TLS_LIBS)
$(BUILD)/quiver: $(CLI_OBJ) $(API_OBJ) $(BUILD)/libquiver.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LIBS) $(JSON_LIBS)

# Test suites are found, not listed: every tests/check_*.c defines one or more
# "Suite *qv_<name>_suite(void)", and tests/run.c includes the generated list.
SUITES := $(shell sed -n 's/^Suite \*\(qv_[a-z0-9_]*_suite\)(void).*/\1/p' tests/check_*.c 2>/dev/null)
$(BUILD)/suites.inc: $(wildcard tests/check_*.c) $(BUILD)/.flags
	@mkdir -p $(@D)
	@printf '%s\n' $(foreach s,$(SUITES),'SUITE($(s))') > $@.tmp; cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp
$(BUILD)/obj/tests/run.c.o: $(BUILD)/suites.inc
$(BUILD)/obj/tests/%.c.o: CPPFLAGS += -I$(BUILD) -DQV_BUILD_DIR='"$(BUILD)"'
# Suite functions are declared only in the generated list, so no prototype warning there.
$(BUILD)/obj/tests/%.c.o: CFLAGS += -Wno-missing-prototypes
# The search parser and the writers (api/) are checked directly against jansson
# (check_server_json.c).
$(BUILD)/quiver-tests: $(TST_OBJ) $(API_OBJ) $(BUILD)/libquiver.a | $(GPU_PLUGIN)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIB_LIBS) $(CHECK_LIBS) $(EVENT_LIBS) $(TLS_LIBS)

# The README's C example, compiled exactly as the README says and run by the tests.
$(BUILD)/readme-example: tests/readme/example.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) -Wpedantic $(OPT) $(SAN) -Iinclude -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
# Storage benchmark: load a dataset through the database API (bench/RESULTS.md).
$(BUILD)/quiver-db-bench: bench/db/db_bench.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -Iinclude -I. -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
all: $(if $(wildcard bench/db/db_bench.c),$(BUILD)/quiver-db-bench)
# Backup and restore of a large collection (bench/RESULTS.md, issue 20).
$(BUILD)/quiver-backup-bench: bench/db/backup_bench.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -Iinclude -I. -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
all: $(if $(wildcard bench/db/backup_bench.c),$(BUILD)/quiver-backup-bench)
# In-process side of bench/load.sh: the same searches on the collection quiverd served.
$(BUILD)/quiver-inproc-search: bench/db/inproc_search.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -Iinclude -I. -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
all: $(if $(wildcard bench/db/inproc_search.c),$(BUILD)/quiver-inproc-search)

# A quantized collection re-scoring from LMDB against the same index from the heap (issues 15, 16).
$(BUILD)/quiver-vecsrc-bench: bench/db/vecsrc_bench.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -Iinclude -I. -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
all: $(if $(wildcard bench/db/vecsrc_bench.c),$(BUILD)/quiver-vecsrc-bench)

# BM25 against SQLite FTS5 (bench/text_fts5.py, issue 22).
$(BUILD)/quiver-text-bench: bench/db/text_bench.c $(BUILD)/libquiver.a
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -Iinclude -I. -o $@ $< $(BUILD)/libquiver.a $(ALL_LDFLAGS) $(LIB_LIBS)
all: $(if $(wildcard bench/db/text_bench.c),$(BUILD)/quiver-text-bench)

TEST_BINS := $(BUILD)/quiver-tests $(if $(wildcard tests/readme/example.c),$(BUILD)/readme-example)

include bench/bench.mk
include python/python.mk

# ---- Debian packages. deps installs only what is missing (needs root and apt-get).
DEB_PKGS := build-essential pkg-config libopenblas-dev liblmdb-dev libevent-dev libjansson-dev libssl-dev openssl \
            check libsubunit-dev curl gnuplot-nox libhnswlib-dev libfaiss-dev wrk \
            python3-dev python3-numpy python3-pytest python3-hnswlib chromium \
            libstemmer-dev sqlite3 etcd-server etcd-client clang-19
# node and npm run the Qdrant client test (tests/qdrant) and the dashboard's browser test
# (tests/dashboard, with chromium): Debian's nodejs and npm when no npm is on the PATH
# (NodeSource's nodejs bundles npm, and conflicts with Debian's npm).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
	  echo "quiver: installing missing packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "quiver: run 'make deps' as root (apt-get)" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing; \
	fi

# The node tests' packages, pinned in each package-lock.json: the official Qdrant JS
# client (tests/qdrant; peer dependencies such as TypeScript are not needed) and
# puppeteer-core, which drives Debian's chromium (tests/dashboard; it downloads no browser).
NODE_TESTS := tests/qdrant tests/dashboard
node-deps:
	@for d in $(NODE_TESTS); do \
	  if [ -f $$d/package-lock.json ] && command -v npm >/dev/null 2>&1; then \
	    npm ci --prefix $$d --omit=peer --no-audit --no-fund --loglevel=error || exit 1; \
	  else echo "quiver: npm not found; the node test in $$d will be skipped"; fi; \
	done
qdrant-deps: node-deps

# The tests find quiverd and quiver through QV_BUILD_DIR; CK_DEFAULT_TIMEOUT is per test.
TEST_ENV := CK_DEFAULT_TIMEOUT=600 QV_DATA_DIR=../shared/data
# make test on 2 cores (CI): the builds use both; the plain and the sanitizer suites run one
# after the other: side by side (2026-12-05) the load made test_connections_spread, which
# needs the second worker thread to wake within its accept yield, fail in one CI run of three.
# Measured in bench/RESULTS.md (suite time).
TEST_JOBS ?= 2
test: deps node-deps
	$(MAKE) -j$(TEST_JOBS) all $(TEST_BINS)
	$(MAKE) test-plain
	$(MAKE) asan-test
	$(MAKE) fuzz

# The unsanitized part of make test after the build: the check suites, cluster, install, Python.
test-plain:
	$(TEST_ENV) $(BUILD)/quiver-tests
	$(MAKE) cluster-test
	$(MAKE) install-test
	$(MAKE) python-test

# Cluster mode (README "Cluster mode"): a 3-member etcd cluster and 3 quiverd nodes on
# loopback (free ports, a temp dir): load, kill -9 of a shard leader, failover, no lost
# acknowledged write, sharded recall = one node's, catch-up after restart. About 30 s.
# Without etcd it prints SKIP; under CI=true that is a failure.
cluster-test: $(BUILD)/quiverd
	QV_BUILD_DIR=$(BUILD) QV_DATA_DIR=../shared/data python3 tests/cluster/cluster_test.py

asan-test:
	$(MAKE) BUILD=build/asan SANITIZER=address,undefined USE_CUDA=no OPT="-O1 -g" \
	  build/asan/quiver-tests build/asan/quiver-bench $(if $(SRV_OBJ),build/asan/quiverd) \
	  $(if $(CLI_OBJ),build/asan/quiver) $(if $(wildcard tests/readme/example.c),build/asan/readme-example)
	$(TEST_ENV) QV_SANITIZED=1 CK_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/asan/quiver-tests
	$(MAKE) BUILD=build/asan SANITIZER=address,undefined USE_CUDA=no OPT="-O1 -g" python-test

# The suites with threads: index concurrency, storage readers during writes, the server.
TSAN_SUITES := concurrency index_hnsw_reorder storage storage_vecsrc server regressions payload payload_http lifetime backup backup_http access tls server_limits alias text
tsan-test:
	$(MAKE) BUILD=build/tsan SANITIZER=thread USE_CUDA=no OPT="-O1 -g" build/tsan/quiver-tests \
	  $(if $(SRV_OBJ),build/tsan/quiverd) $(if $(CLI_OBJ),build/tsan/quiver)
	set -e; for s in $(TSAN_SUITES); do \
	  $(TEST_ENV) QV_SANITIZED=1 CK_RUN_SUITE=$$s TSAN_OPTIONS=halt_on_error=1 build/tsan/quiver-tests; done
	# The cluster test against the TSan quiverd (~110 s): a node that reports a race exits
	# 66, and the test's check that every node exits 0 on SIGTERM fails.
	$(if $(SRV_OBJ),$(MAKE) BUILD=build/tsan SANITIZER=thread USE_CUDA=no OPT="-O1 -g" cluster-test)

# ---- install: header, libquiver.a, libquiver.so.VERSION (soname libquiver.so.SOVERSION)
# with its two links, and quiver.pc (Libs.private: what a static link needs).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
install: $(BUILD)/libquiver.a $(BUILD)/libquiver.so $(GPU_PLUGIN)
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/quiver.h $(DESTDIR)$(INCLUDEDIR)/quiver.h
	install -m 644 $(BUILD)/libquiver.a $(DESTDIR)$(LIBDIR)/libquiver.a
	install -m 755 $(BUILD)/libquiver.so $(DESTDIR)$(LIBDIR)/libquiver.so.$(VERSION)
	ln -sf libquiver.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libquiver.so.$(SOVERSION)
	ln -sf libquiver.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libquiver.so
	$(if $(GPU_PLUGIN),install -m 755 $(GPU_PLUGIN) $(DESTDIR)$(LIBDIR)/libquiver-gpu.so)
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' 'Name: quiver' \
	  'Description: vector similarity search: HNSW, IVF and flat indexes with LMDB storage' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -lquiver' \
	  'Libs.private: -pthread $(strip $(LIB_LIBS))' > $(DESTDIR)$(LIBDIR)/pkgconfig/quiver.pc

# ---- fuzzing (tests/fuzz): mutated requests for every endpoint of tests/fuzz/endpoints.txt
# against the ASan + UBSan quiverd for FUZZ_SECONDS; fails on a crash, a sanitizer report,
# a 5xx other than 501, or a hang. make test runs it after the sanitizer run.
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
$(BUILD)/quiver-fuzz: tests/fuzz/http_fuzz.c tests/http_client.c tests/http_client.h $(BUILD)/.flags
	$(CC) $(STD) $(WARN) $(OPT) $(SAN) -I. $(JSON_CFLAGS) -o $@ tests/fuzz/http_fuzz.c tests/http_client.c \
	  $(ALL_LDFLAGS) $(JSON_LIBS)
fuzz:
	$(MAKE) BUILD=build/asan SANITIZER=address,undefined USE_CUDA=no OPT="-O1 -g" build/asan/quiverd build/asan/quiver-fuzz
	build/asan/quiver-fuzz --quiverd build/asan/quiverd --endpoints tests/fuzz/endpoints.txt \
	  --seconds $(FUZZ_SECONDS) $(FUZZ_ARGS)

# Installs into a temporary prefix and builds the README example against it with
# pkg-config (shared and static), and checks what libquiver.so exports.
install-test: $(BUILD)/libquiver.a $(BUILD)/libquiver.so
	tests/install_test.sh $(BUILD)

run: deps
	$(MAKE) all
	@echo "quiver: starting quiverd on 127.0.0.1:6333 (native API) and 127.0.0.1:6335 (Qdrant API),"
	@echo "quiver: data in ./quiver-data. Try:"
	@echo "  curl -s http://127.0.0.1:6333/healthz"
	$(BUILD)/quiverd --listen 127.0.0.1:6333 --qdrant-listen 127.0.0.1:6335 --data ./quiver-data

gpu-check:
	$(MAKE) -f gpu/gpu-check.mk BUILD=build/gpu

# No GPU needed: the GPU code paths (gpu suite, flat, ivf, k-means) on a CPU emulation of
# the CUDA calls they make (gpu/check/cuda_emu.*). Slow (minutes): not part of make test.
gpu-emu-test:
	$(MAKE) -f gpu/gpu-check.mk BUILD=build/gpu emu emu-flat emu-ivf

clean:
	rm -rf build

.PHONY: all deps node-deps qdrant-deps test test-plain asan-test cluster-test tsan-test install install-test fuzz run gpu-check gpu-emu-test clean FORCE
