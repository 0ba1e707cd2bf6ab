/*
 * cli/cmd_backup.c -- backups from the command line (qv_backup_* in quiver.h):
 *
 *   quiver backup DB [COLL] FILE         one collection, or every collection of DB
 *   quiver restore DB FILE [--collection C] [--as NAME] [--replace] [--sha256 HEX]
 *   quiver verify-backup FILE [--sha256 HEX]
 *
 * backup prints the file's SHA-256 as sha256sum does ("HEX  FILE"), so its output can be
 * kept and checked with `sha256sum -c`, or given back to restore --sha256.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_info(const char *verb, const qv_backup_info *in, double secs)
{
    fprintf(stderr, "%s %u collection(s), %" PRIu64 " points, %.1f MiB in %.2f s\n", verb, in->collections,
            in->points, (double)in->bytes / 1048576.0, secs);
}

int cmd_backup(int argc, char **argv)
{
    static const char *usage = "usage: quiver backup DB [COLL] FILE\n";
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            printf("%sWrite a backup of collection COLL (or of every collection) of DB to FILE: one consistent\n"
                   "copy (a single read transaction) with its SHA-256, printed as sha256sum prints it.\n", usage);
            return EXIT_OK;
        }
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    int nargs = argc - optind;
    if (nargs < 2 || nargs > 3) { fputs(usage, stderr); return EXIT_USAGE; }
    const char *dbdir = argv[optind], *coll = nargs == 3 ? argv[optind + 1] : NULL, *file = argv[argc - 1];
    qv_db *db = NULL;
    qv_backup_info info;
    int code = open_db_coll("backup", dbdir, NULL, 0, &db, NULL), rc;
    if (code != EXIT_OK) return code;
    double t0 = cli_now();
    if ((rc = qv_backup_create(db, coll, file, &info)) != QV_OK) {
        code = cli_qv_fail("backup", coll ? coll : dbdir, rc);
    } else {
        printf("%s  %s\n", info.sha256, file);
        print_info("backed up", &info, cli_now() - t0);
    }
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("backup", "close", QV_EIO);
    return code;
}

int cmd_restore(int argc, char **argv)
{
    static const char *usage = "usage: quiver restore DB FILE [--collection C] [--as NAME] [--replace] [--sha256 HEX]\n";
    static const struct option opts[] = {{"collection", required_argument, 0, 'c'}, {"as", required_argument, 0, 'a'},
                                         {"replace", no_argument, 0, 'r'},         {"sha256", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    qv_restore_options o;
    int c;
    qv_restore_options_init(&o);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.collection = optarg; break;
        case 'a': o.rename = optarg; break;
        case 'r': o.flags |= QV_RESTORE_REPLACE; break;
        case 's': o.sha256 = optarg; break;
        case 'h':
            printf("%sRestore the collections of backup FILE into DB (created if needed). The file is checked\n"
                   "whole first (its SHA-256, and --sha256 when given); nothing changes unless it is sound.\n"
                   "  --collection C  restore only collection C of the file\n"
                   "  --as NAME       under this name (one collection)\n"
                   "  --replace       replace collections of the same name (else an error)\n"
                   "  --sha256 HEX    the SHA-256 the whole file must have\n", usage);
            return EXIT_OK;
        default:
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) { fputs(usage, stderr); return EXIT_USAGE; }
    qv_db *db = NULL;
    qv_backup_info info;
    int code = open_db_coll("restore", argv[optind], NULL, 0, &db, NULL), rc;
    if (code != EXIT_OK) return code;
    double t0 = cli_now();
    if ((rc = qv_backup_restore(db, argv[optind + 1], &o, &info)) != QV_OK) {
        code = cli_qv_fail("restore", argv[optind + 1], rc);
    } else {
        print_info("restored", &info, cli_now() - t0);
        printf("restored %u collection(s), %" PRIu64 " points; %u index(es) loaded from the backup\n", info.collections,
               info.points, info.index_loaded);
    }
    if (qv_db_close(db) != QV_OK && code == EXIT_OK) code = cli_qv_fail("restore", "close", QV_EIO);
    return code;
}

int cmd_verify_backup(int argc, char **argv)
{
    static const char *usage = "usage: quiver verify-backup FILE [--sha256 HEX]\n";
    static const struct option opts[] = {{"sha256", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *sha = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's') sha = optarg;
        else if (c == 'h') {
            printf("%sCheck backup FILE whole (structure and SHA-256) without restoring it.\n", usage);
            return EXIT_OK;
        } else {
            fputs(usage, stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 1) { fputs(usage, stderr); return EXIT_USAGE; }
    qv_backup_info info;
    int rc = qv_backup_verify(argv[optind], sha, &info);
    if (rc != QV_OK) return cli_qv_fail("verify-backup", argv[optind], rc);
    printf("%s  %s\nok: %u collection(s), %" PRIu64 " points\n", info.sha256, argv[optind], info.collections,
           info.points);
    return EXIT_OK;
}
