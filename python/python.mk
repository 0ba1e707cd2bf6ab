# python/python.mk -- the `quiver` Python extension module (included by the Makefile).
#
#   make python         build $(BUILD)/python/quiver<EXT_SUFFIX> (libquiver.a linked in)
#   make python-test    build it and run its pytest suite (python/tests)
#
# Built for $(PYTHON), Debian's /usr/bin/python3 by default (python3-dev, python3-numpy),
# not whatever python3 comes first on PATH: a module is tied to the interpreter whose
# headers it was compiled with. Try it with
#   PYTHONPATH=build/python /usr/bin/python3 -c 'import quiver; print(quiver.__version__)'
# `pip install ./python` (python/setup.py) builds the same sources with setuptools.

PYTHON ?= /usr/bin/python3
# Asked of the interpreter once, and only when a Python target needs them.
PY_EXT_SUFFIX = $(eval PY_EXT_SUFFIX := $(shell $(PYTHON) -c \
    'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null))$(PY_EXT_SUFFIX)
PY_INCLUDES = $(eval PY_INCLUDES := $(patsubst -I%,-isystem %,$(shell $(PYTHON)-config --includes 2>/dev/null)) \
    -isystem $(shell $(PYTHON) -c 'import numpy; print(numpy.get_include())' 2>/dev/null))$(PY_INCLUDES)

PY_SRC := $(wildcard python/*.c)
PY_OBJ := $(PY_SRC:%=$(BUILD)/obj/%.o)
PY_MODULE = $(BUILD)/python/quiver$(PY_EXT_SUFFIX)

# Python's headers come in as system headers (their own code is not ours to warn about);
# only PyInit_quiver is exported, and libquiver's symbols stay inside the module.
$(PY_OBJ): CPPFLAGS += $(PY_INCLUDES)
$(PY_OBJ): CFLAGS += -fvisibility=hidden
-include $(PY_OBJ:.o=.d)

$(BUILD)/python/quiver%: $(PY_OBJ) $(BUILD)/libquiver.a
	@mkdir -p $(@D)
	$(CC) -shared $(ALL_LDFLAGS) -o $@ $(PY_OBJ) $(BUILD)/libquiver.a -Wl,--exclude-libs,ALL $(LIB_LIBS)

python:
	@test -n "$(PY_EXT_SUFFIX)" || { echo "quiver: $(PYTHON) not found (apt-get install python3-dev python3-numpy)" >&2; exit 1; }
	$(MAKE) $(PY_MODULE)

# Under the sanitizers (make asan-test) the module and libquiver are instrumented, the
# interpreter is not: the ASan runtime must be loaded first (LD_PRELOAD), and leak
# detection is off because CPython keeps interned objects and type caches alive until exit
# on purpose. QV_SANITIZED skips the RSS measurement (ASan's allocator has its own).
PY_TEST_ENV = PYTHONPATH=$(abspath $(BUILD))/python PYTHONDONTWRITEBYTECODE=1 QV_BUILD_DIR=$(BUILD) $(TEST_ENV)
PY_SAN_ENV = $(if $(SANITIZER),LD_PRELOAD="$(shell $(CC) -print-file-name=libasan.so) $(shell $(CC) -print-file-name=libubsan.so)" \
    QV_SANITIZED=1 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
python-test: python
	$(PY_TEST_ENV) $(PY_SAN_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider python/tests

.PHONY: python python-test
