/*
 * cli/main.c -- `quiver`: the command-line tool over the public API.
 *
 *   quiver create DB COLL --dim N [--metric M] [--index hnsw|flat|ivf] ...
 *   quiver import DB COLL FILE          (.fvecs .bvecs .npy .jsonl)
 *   quiver search DB COLL (--vector JSON | --query-file F) [-k N] [--ef N] [--json]
 *   quiver get DB COLL ID | quiver delete DB COLL ID... | quiver info DB [COLL]
 *   quiver checkpoint DB COLL | quiver serve [quiverd options]
 *   quiver backup DB [COLL] FILE | quiver restore DB FILE [...] | quiver verify-backup FILE
 *
 * Exit codes: 0 ok, 1 runtime error, 2 usage error; errors are one line on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"create", cmd_create, "create a collection"},
    {"update", cmd_update, "change a collection's parameters or codes (index rebuilt)"},
    {"import", cmd_import, "import vectors from .fvecs, .bvecs, .npy or JSON Lines"},
    {"search", cmd_search, "search a collection"},
    {"search-text", cmd_search_text, "BM25 search of a payload field indexed as text"},
    {"get", cmd_get, "print one point"},
    {"delete", cmd_delete, "delete points by id"},
    {"info", cmd_info, "list collections, or describe one"},
    {"checkpoint", cmd_checkpoint, "write an index snapshot now"},
    {"backup", cmd_backup, "write a backup of a collection or of the whole database"},
    {"restore", cmd_restore, "restore collections from a backup file"},
    {"verify-backup", cmd_verify_backup, "check a backup file without restoring it"},
    {"serve", cmd_serve, "run the HTTP server (same as quiverd)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: quiver COMMAND [ARGS...]   (quiver COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nquiver %s\n", qv_version());
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) { printf("quiver %s\n", qv_version()); return EXIT_OK; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "quiver: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
