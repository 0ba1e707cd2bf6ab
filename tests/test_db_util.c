/*
 * tests/test_db_util.c -- test helpers that need storage/: apart from tests/test_util.c,
 * which the GPU emulation builds (gpu/gpu-check.mk: core/ and index/ only) link too.
 */
#include "test_util.h"

qv_db *open_db_nosync(const char *dir)
{
    qv_db_options o;
    qv_db *db = NULL;
    qv_db_options_init(&o);
    o.flags = QV_DB_NOSYNC;
    QV_CK(qv_db_open(dir, &o, &db));
    return db;
}
