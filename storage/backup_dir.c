/*
 * storage/backup_dir.c -- a directory of backups kept by name (quiver.h:
 * qv_backup_dir_*): naming, sidecar checksums, listing, deleting. The backups themselves
 * are qv_backup_create's (backup_create.c).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "quiver.h"

#define SUFFIX ".snapshot"

/* "<dir>[/<sub>]/<pre><name><post>" into buf; -1 when it does not fit. */
static int join(char *buf, size_t len, const char *dir, const char *sub, const char *pre, const char *name,
                const char *post)
{
    int n = snprintf(buf, len, "%s%s%s/%s%s%s", dir, sub ? "/" : "", sub ? sub : "", pre, name, post);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int too_long(const char *dir)
{
    return qv_fail(QV_EINVAL, "backup path too long under %.100s", dir);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s), sl = strlen(SUFFIX);
    if (n <= sl || n > 200 || s[0] == '.' || strcmp(s + n - sl, SUFFIX) != 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-') return 0;
    return 1;
}

/* A new name "<prefix>-YYYY-MM-DD-HH-MM-SS[-k].snapshot" in dir that no file has: under the
 * mutex, k goes on from the last one issued in the same second (two calls of one second
 * never get one name), and past names that files already have. */
static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_base[256];        /* "<dir>/<prefix>-<stamp>" of the last name issued */
static unsigned last_k;

static int new_name(const char *dir, const char *prefix, char *name, size_t len)
{
    char stamp[32], base[256], path[PATH_MAX];
    struct tm tm;
    time_t now = time(NULL);
    int rc = -1;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &tm);
    snprintf(base, sizeof base, "%.160s/%.60s-%s", dir, prefix, stamp);
    pthread_mutex_lock(&name_lock);
    unsigned k = strcmp(base, last_base) == 0 ? last_k + 1 : 1;
    for (; k < 100000000u; k++) {
        int n = k == 1 ? snprintf(name, len, "%s-%s" SUFFIX, prefix, stamp)
                       : snprintf(name, len, "%s-%s-%u" SUFFIX, prefix, stamp, k);
        if (n < 0 || (size_t)n >= len || join(path, sizeof path, dir, NULL, "", name, "") != 0) break;
        if (access(path, F_OK) != 0) {
            memcpy(last_base, base, sizeof base);
            last_k = k;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&name_lock);
    return rc;
}

/* The sidecar: "<hex>  <name>\n", written to a temporary file and renamed. */
static int write_sidecar(const char *dir, const char *name, const char *hex)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16], line[512];
    int n = snprintf(line, sizeof line, "%s  %s\n", hex, name);
    if (join(path, sizeof path, dir, NULL, "", name, ".sha256") ||
        join(tmp, sizeof tmp, dir, NULL, ".", name, ".sha256.tmp"))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, line, (size_t)n) == n;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* The sidecar's checksum of name into hex (65 bytes; "" when there is no sound one). */
static void read_sidecar(const char *dir, const char *name, char *hex)
{
    char path[PATH_MAX], line[512];
    FILE *f = join(path, sizeof path, dir, NULL, "", name, ".sha256") ? NULL : fopen(path, "r");
    int ok = f && fgets(line, sizeof line, f) != NULL && strlen(line) >= 64;
    if (f) fclose(f);
    for (int i = 0; ok && i < 64; i++) ok = isxdigit((unsigned char)line[i]);
    if (ok) memcpy(hex, line, 64);
    hex[ok ? 64 : 0] = 0;
}

/* The description of file name in dir; -1 when it is not a regular file. */
static int describe(const char *dir, const char *name, qv_backup_file *f)
{
    char path[PATH_MAX];
    struct stat st;
    if (join(path, sizeof path, dir, NULL, "", name, "") || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    f->mtime = (int64_t)st.st_mtime;
    f->size = (uint64_t)st.st_size;
    read_sidecar(dir, name, f->sha256);
    return 0;
}

/* The directory of collection's backups (NULL: the top one). */
static int dir_of(const char *dir, const char *collection, char *buf, size_t len)
{
    int rc = collection ? qv_coll_name_check(collection) : QV_OK;
    if (rc != QV_OK) return rc;
    int n = snprintf(buf, len, "%s%s%s", dir, collection ? "/" : "", collection ? collection : "");
    return n < 0 || (size_t)n >= len ? too_long(dir) : QV_OK;
}

int qv_backup_dir_create(qv_db *db, const char *dir, const char *collection, qv_backup_file *file,
                         qv_backup_info *info)
{
    char sub[PATH_MAX], name[224], path[PATH_MAX];
    qv_backup_info own;
    int rc;
    if (!dir || !file) return qv_fail(QV_EINVAL, "qv_backup_dir_create: NULL argument");
    if ((rc = dir_of(dir, collection, sub, sizeof sub)) != QV_OK) return rc;
    if (collection && mkdir(sub, 0755) != 0 && errno != EEXIST)
        return qv_fail(errno == ENOSPC ? QV_EFULL : QV_EIO, "%s: %s", sub, strerror(errno));
    if (new_name(sub, collection ? collection : "full-snapshot", name, sizeof name) != 0 ||
        join(path, sizeof path, sub, NULL, "", name, ""))
        return too_long(dir);
    info = info ? info : &own;
    if ((rc = qv_backup_create(db, collection, path, info)) != QV_OK) return rc;
    (void)write_sidecar(sub, name, info->sha256);   /* the file holds the checksum anyway */
    if (describe(sub, name, file) != 0) return qv_fail(QV_EIO, "%s: %s", path, strerror(errno));
    memcpy(file->sha256, info->sha256, sizeof file->sha256);
    return QV_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const qv_backup_file *)a)->name, ((const qv_backup_file *)b)->name);
}

int qv_backup_dir_list(const char *dir, const char *collection, qv_backup_file **files, size_t *n)
{
    char sub[PATH_MAX];
    size_t cap = 0;
    int rc;
    if (!dir || !files || !n) return qv_fail(QV_EINVAL, "qv_backup_dir_list: NULL argument");
    *files = NULL;
    *n = 0;
    if ((rc = dir_of(dir, collection, sub, sizeof sub)) != QV_OK) return rc;
    DIR *d = opendir(sub);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        if (!name_ok(e->d_name)) continue;
        if (*n == cap) {
            qv_backup_file *more = realloc(*files, (cap = cap ? 2 * cap : 8) * sizeof *more);
            if (!more) {
                closedir(d);
                free(*files);
                *files = NULL;
                *n = 0;
                return qv_fail(QV_ENOMEM, "listing %s", sub);
            }
            *files = more;
        }
        if (describe(sub, e->d_name, &(*files)[*n]) == 0) (*n)++;
    }
    if (d) closedir(d);
    if (*n) qsort(*files, *n, sizeof **files, by_name);
    return QV_OK;
}

int qv_backup_dir_path(const char *dir, const char *collection, const char *name, char *buf, size_t len)
{
    if (!dir || !name || !buf) return qv_fail(QV_EINVAL, "qv_backup_dir_path: NULL argument");
    if (!name_ok(name)) return qv_fail(QV_ENOTFOUND, "no snapshot '%.200s'", name);
    int rc = dir_of(dir, collection, buf, len);
    return rc != QV_OK ? rc : join(buf, len, dir, collection, "", name, "") ? too_long(dir) : QV_OK;
}

int qv_backup_dir_delete(const char *dir, const char *collection, const char *name)
{
    char path[PATH_MAX];
    int rc = qv_backup_dir_path(dir, collection, name, path, sizeof path);
    if (rc != QV_OK) return rc;
    if (unlink(path) != 0) {
        if (errno == ENOENT) return qv_fail(QV_ENOTFOUND, "no snapshot '%s'", name);
        return qv_fail(QV_EIO, "%s: %s", path, strerror(errno));
    }
    if (join(path, sizeof path, dir, collection, "", name, ".sha256") == 0) unlink(path);
    return QV_OK;
}
