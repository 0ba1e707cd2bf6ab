/*
 * tests/http_client.h -- a tiny blocking HTTP/1.1 client (tests/http_client.c) for the test
 * suites and the fuzzer. It asserts nothing, so it is safe from any thread and outside check.
 */
#ifndef QV_TESTS_HTTP_CLIENT_H
#define QV_TESTS_HTTP_CLIENT_H

/** One request with "Connection: close" (body may be NULL; headers: extra header lines,
 *  each ending in \r\n, or NULL). Returns the status, 0 when no HTTP answer came within
 *  timeout_ms; *out (may be NULL) receives the malloc'd body, "" without one. */
int  test_http(int port, const char *method, const char *path, const char *headers, const char *body,
               int timeout_ms, char **out);

#endif
