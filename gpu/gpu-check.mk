# gpu/gpu-check.mk -- `make gpu-check` (the top Makefile runs $(MAKE) -f gpu/gpu-check.mk
# BUILD=build/gpu): build and run the GPU check on a machine with CUDA.
#
# Needs only nvcc, cuBLAS, a C compiler and pthreads: NOT OpenBLAS, LMDB, libevent, jansson
# or check. Sources: the .cu files of gpu/, gpu/gpu_cuda.c, gpu/gpu_options.c, core/error.c,
# core/alloc.c and gpu/check/gpu_check.c (which carries its own CPU references), linked
# directly (not through the library's plugin loader). Code for sm_90 plus compute_90 PTX
# (H100/H200; newer GPUs JIT the PTX).
#
#   make -f gpu/gpu-check.mk BUILD=build/gpu          build, then run (the default)
#   make -f gpu/gpu-check.mk BUILD=build/gpu build    build only (works without a GPU)
#   make -f gpu/gpu-check.mk BUILD=build/gpu emu      no GPU needed: the suite "gpu" and
#        gpu-check --small on the CPU emulation (gpu/check/cuda_emu.*; needs libcheck)
#   make -f gpu/gpu-check.mk BUILD=build/gpu emu-flat the suite "flat" (tests/check_index_flat.c)
#        linked with core/, index/ and the emulation, so that index/flat.c's GPU batch path
#        (QV_GPU_AUTO / QV_GPU_REQUIRE) runs without a GPU (also needs OpenBLAS)
#   make -f gpu/gpu-check.mk BUILD=build/gpu emu-ivf  the suites "ivf" and "kmeans" likewise
#   make -f gpu/gpu-check.mk BUILD=build/gpu device-bundle  the suites gpu, flat, ivf, kmeans
#        against the real CUDA objects, with the shared libraries they need, to carry to a
#        GPU machine that has neither OpenBLAS nor check (see the rule below)
#
# Run: gpu-check prints one line per step, then gpu/check/torch_bench.py times
# torch.matmul + torch.topk on the same shapes and prints the summary table last (if
# Python or PyTorch is missing the table is printed without the torch column).
# Without a usable device gpu-check prints "gpu-check: no usable CUDA device: <why> --
# nothing measured" and the target FAILS (exit status 2): a GPU check that measured
# nothing must not look like a pass. A failed correctness check also fails the target.
# The run takes about 30 s on an H100 (14 s of it gpu-check) once built.

BUILD ?= build/gpu
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(shell command -v nvcc 2>/dev/null || { test -x $(CUDA_HOME)/bin/nvcc && echo $(CUDA_HOME)/bin/nvcc; })
NVCC := $(NVCC)
CC ?= cc
CXX ?= c++
PYTHON ?= python3
CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
DATA ?= $(firstword $(wildcard ../shared/data shared/data) ../shared/data)

OUT := $(BUILD)/check
BIN := $(OUT)/gpu-check
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
CFLAGS_CHK := -std=c11 -D_GNU_SOURCE -O2 -g -pthread $(WARN) -Iinclude -I. -DQV_HAVE_CUDA=1
NVFLAGS := -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall -Iinclude -I. -DQV_HAVE_CUDA=1
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ -lpthread -lm

CU_SRC := $(wildcard gpu/*.cu)
C_SRC := gpu/gpu_cuda.c gpu/gpu_options.c core/error.c core/alloc.c
CU_OBJ := $(CU_SRC:%=$(OUT)/obj/%.o)
C_OBJ := $(C_SRC:%=$(OUT)/obj/%.o)
HDRS := $(wildcard gpu/*.h core/error.h core/alloc.h include/quiver.h)

run: $(BIN)
	@rc=0; $(BIN) --data $(DATA) --results $(OUT)/results.txt || rc=$$?; \
	if [ $$rc = 2 ]; then echo "gpu-check: FAILED: no usable CUDA device, nothing measured" >&2; exit 2; fi; \
	if command -v $(PYTHON) >/dev/null 2>&1; then \
	  $(PYTHON) gpu/check/torch_bench.py --results $(OUT)/results.txt || rc=1; \
	else echo "gpu-check: $(PYTHON) not found: no torch comparison"; cat $(OUT)/results.txt; fi; \
	exit $$rc

build: $(BIN)

check-nvcc:
	@test -n "$(NVCC)" || { echo "gpu-check: nvcc not found (PATH or CUDA_HOME=$(CUDA_HOME)): the GPU part cannot be built" >&2; exit 1; }

$(OUT)/obj/%.cu.o: %.cu $(HDRS) | check-nvcc
	@mkdir -p $(@D)
	$(NVCC) $(NVFLAGS) -c $< -o $@
$(OUT)/obj/%.c.o: %.c $(HDRS) | check-nvcc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) -I$(CUDA_HOME)/include -c $< -o $@
# The check program: native code for its CPU references (built where it runs).
$(OUT)/obj/gpu/check/gpu_check.c.o: gpu/check/gpu_check.c $(HDRS) | check-nvcc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) -O3 -march=native -I$(CUDA_HOME)/include -c $< -o $@
$(BIN): $(CU_OBJ) $(C_OBJ) $(OUT)/obj/gpu/check/gpu_check.c.o
	$(CC) -pthread -o $@ $^ $(CUDA_LIBS)

# ---- the CPU emulation (no GPU, no nvcc needed) ----------------------------------------
EMU := $(BUILD)/emu
EMU_DEF := -DQV_GPU_EMU -DQV_HAVE_CUDA=1 -Iinclude -I. -Itests -I$(EMU)
EMU_CU_OBJ := $(CU_SRC:%=$(EMU)/obj/%.o) $(EMU)/obj/gpu/check/cuda_emu.cu.o
EMU_C_OBJ := $(C_SRC:%=$(EMU)/obj/%.o)
EMU_TST_OBJ := $(EMU)/obj/tests/check_gpu.c.o $(EMU)/obj/tests/test_util.c.o $(EMU)/obj/tests/run.c.o

$(EMU)/obj/%.cu.o: %.cu $(HDRS) gpu/check/cuda_emu.h
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -x c++ $(EMU_DEF) -c $< -o $@
$(EMU)/obj/%.c.o: %.c $(HDRS) gpu/check/cuda_emu.h $(EMU)/suites.inc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) $(EMU_DEF) -c $< -o $@
$(EMU)/suites.inc:
	@mkdir -p $(@D)
	echo 'SUITE(qv_gpu_suite)' > $@
$(EMU)/quiver-tests-gpu: $(EMU_CU_OBJ) $(EMU_C_OBJ) $(EMU_TST_OBJ)
	$(CXX) -pthread -o $@ $^ -lcheck -lsubunit -lrt -lm
$(EMU)/gpu-check: $(EMU_CU_OBJ) $(EMU_C_OBJ) $(EMU)/obj/gpu/check/gpu_check.c.o
	$(CXX) -pthread -o $@ $^ -lm

emu: $(EMU)/quiver-tests-gpu $(EMU)/gpu-check
	CK_FORK=no QV_DATA_DIR=$(DATA) $(EMU)/quiver-tests-gpu
	$(EMU)/gpu-check --small --data $(DATA) --results $(EMU)/results.txt
	$(PYTHON) gpu/check/torch_bench.py --results $(EMU)/results.txt --no-torch

# ---- the flat index on the emulation (emu-flat) ------------------------------------------
# The library's core/ and index/ files (no storage/, no server) are compiled as for the
# emulated build; tests/run.c gets its own suite list naming only qv_flat_suite.
PKG_CONFIG ?= pkg-config
BLAS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openblas 2>/dev/null)
BLAS_LIBS := $(shell $(PKG_CONFIG) --libs openblas 2>/dev/null || echo -lopenblas)
EMUF := $(EMU)/flat
EMUF_LIB_SRC := $(filter-out $(C_SRC),$(wildcard core/*.c index/*.c))
EMUF_OBJ := $(EMU_CU_OBJ) $(EMU_C_OBJ) $(EMUF_LIB_SRC:%=$(EMUF)/obj/%.o) \
            $(EMUF)/obj/tests/check_index_flat.c.o $(EMUF)/obj/tests/test_util.c.o $(EMUF)/obj/tests/run.c.o

$(EMUF)/obj/%.c.o: %.c $(HDRS) $(wildcard core/*.h index/*.h tests/*.h) $(EMUF)/suites.inc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) $(BLAS_CFLAGS) -DQV_GPU_EMU -Iinclude -I. -I$(EMUF) -c $< -o $@
$(EMUF)/suites.inc:
	@mkdir -p $(@D)
	echo 'SUITE(qv_flat_suite)' > $@
$(EMUF)/quiver-tests-flat: $(EMUF_OBJ)
	$(CXX) -pthread -o $@ $^ -lcheck -lsubunit -lrt -lm $(BLAS_LIBS)

emu-flat: $(EMUF)/quiver-tests-flat
	CK_FORK=no QV_DATA_DIR=$(DATA) $(EMUF)/quiver-tests-flat

# ---- IVF and k-means on the emulation (emu-ivf) -------------------------------------------
EMUI := $(EMU)/ivf
EMUI_OBJ := $(EMU_CU_OBJ) $(EMU_C_OBJ) $(EMUF_LIB_SRC:%=$(EMUI)/obj/%.o) \
            $(EMUI)/obj/tests/check_index_ivf.c.o $(EMUI)/obj/tests/check_index_kmeans.c.o \
            $(EMUI)/obj/tests/test_util.c.o $(EMUI)/obj/tests/run.c.o
$(EMUI)/obj/%.c.o: %.c $(HDRS) $(wildcard core/*.h index/*.h tests/*.h) $(EMUI)/suites.inc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) $(BLAS_CFLAGS) -DQV_GPU_EMU -Iinclude -I. -I$(EMUI) -c $< -o $@
$(EMUI)/suites.inc:
	@mkdir -p $(@D)
	printf 'SUITE(qv_ivf_suite)\nSUITE(qv_kmeans_suite)\nSUITE(qv_ivf_concurrency_suite)\n' > $@
$(EMUI)/quiver-tests-ivf: $(EMUI_OBJ)
	$(CXX) -pthread -o $@ $^ -lcheck -lsubunit -lrt -lm $(BLAS_LIBS)

emu-ivf: $(EMUI)/quiver-tests-ivf
	CK_FORK=no QV_DATA_DIR=$(DATA) $(EMUI)/quiver-tests-ivf

# ---- the index suites on a real device (device-tests) -----------------------------------
# The suites "gpu", "flat", "ivf", "kmeans" and "ivf-concurrency" linked with the real
# CUDA objects: the index API's GPU paths (QV_GPU_AUTO / QV_GPU_REQUIRE) against the CPU
# on a device. Built where OpenBLAS and check are installed; `device-bundle` copies the
# binary and the shared libraries it needs beside CUDA's into $(DEV)/bundle, for a
# machine that has a GPU but not those libraries:
#   (there)  cd $(DEV)/bundle && LD_LIBRARY_PATH=. QV_DATA_DIR=<data> ./quiver-tests-dev
DEV := $(BUILD)/dev
DEV_OBJ := $(CU_OBJ) $(C_OBJ) $(EMUF_LIB_SRC:%=$(DEV)/obj/%.o) \
           $(addprefix $(DEV)/obj/tests/,check_gpu.c.o check_index_flat.c.o check_index_ivf.c.o \
             check_index_kmeans.c.o test_util.c.o run.c.o)
$(DEV)/obj/%.c.o: %.c $(HDRS) $(wildcard core/*.h index/*.h tests/*.h) $(DEV)/suites.inc | check-nvcc
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_CHK) $(BLAS_CFLAGS) -I$(CUDA_HOME)/include -Itests -I$(DEV) -c $< -o $@
$(DEV)/suites.inc:
	@mkdir -p $(@D)
	printf 'SUITE(qv_gpu_suite)\nSUITE(qv_flat_suite)\nSUITE(qv_ivf_suite)\nSUITE(qv_kmeans_suite)\nSUITE(qv_ivf_concurrency_suite)\n' > $@
$(DEV)/quiver-tests-dev: $(DEV_OBJ)
	$(CXX) -pthread -o $@ $^ -lcheck -lsubunit -lrt -lm $(BLAS_LIBS) $(CUDA_LIBS)

device-tests: $(DEV)/quiver-tests-dev
device-bundle: $(DEV)/quiver-tests-dev
	rm -rf $(DEV)/bundle && mkdir -p $(DEV)/bundle && cp $< $(DEV)/bundle/
	ldd $< | awk '/=> \// {print $$3}' | grep -v -e 'libcu' -e 'libc\.so' -e 'libm\.so' \
	  -e 'libstdc++' -e 'libgcc_s' -e 'ld-linux' -e 'libdl' -e 'libpthread' -e 'librt' | xargs -I{} cp -L {} $(DEV)/bundle/
	du -sh $(DEV)/bundle

.PHONY: run build emu emu-flat emu-ivf check-nvcc device-tests device-bundle
