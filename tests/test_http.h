/*
 * tests/test_http.h -- a live quiverd for tests, plus the HTTP client (http_client.h).
 *
 * The client asserts nothing (no check calls), so it is safe from any thread: races are
 * driven by several client threads, and the test's main thread judges what they saw.
 */
#ifndef QV_TESTS_TEST_HTTP_H
#define QV_TESTS_TEST_HTTP_H

#include <sys/types.h>

#include "tests/http_client.h"

typedef struct {
    pid_t pid;
    int port;                      /* native API */
    int qport;                     /* Qdrant API (0 when not started with it) */
} test_server;

/** Start build_dir()/quiverd on dir (127.0.0.1, ephemeral ports, 2 worker threads), with
 *  the Qdrant listener when qdrant is set and extra arguments (NULL-terminated, may be
 *  NULL); wait for its ready lines. Asserts on failure (main thread only). */
void test_server_start(test_server *s, const char *dir, int qdrant, const char *const *extra);
/** Send sig and reap; the exit status (128 + signal when killed by one). */
int  test_server_signal(test_server *s, int sig);
/** test_server_signal(s, SIGTERM). */
int  test_server_stop(test_server *s);
/** SIGKILL and reap every server still running (a checked fixture's teardown). */
void test_server_kill_all(void);

#endif
