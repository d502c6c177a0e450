/* graft's test app: a tiny HTTP server.
 *   GET /         "graft-test app <version>"
 *   GET /version  the version (read from /version at start)
 *   GET /healthz  200 ok
 *   GET /readyz   200 ok, or 503 while the file /tmp/unready exists (tests flip readiness with it)
 * Listens on $PORT (default 8080). Exits at once on SIGTERM/SIGINT, as PID 1 too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char version[64] = "unknown";

static void stop(int sig) { (void)sig; _exit(0); }

static void reply(int fd, int code, const char *body) {
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "HTTP/1.0 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Service Unavailable", strlen(body), body);
  if (n > 0) (void)!write(fd, buf, (size_t)n);
}

static void serve(int fd) {
  char req[1024], body[128];
  ssize_t n = read(fd, req, sizeof req - 1);
  if (n <= 0) return;
  req[n] = 0;
  struct stat st;
  if (strncmp(req, "GET /version", 12) == 0) {
    snprintf(body, sizeof body, "%s\n", version);
    reply(fd, 200, body);
  } else if (strncmp(req, "GET /healthz", 12) == 0) {
    reply(fd, 200, "ok\n");
  } else if (strncmp(req, "GET /readyz", 11) == 0) {
    if (stat("/tmp/unready", &st) == 0) reply(fd, 503, "not ready\n");
    else reply(fd, 200, "ok\n");
  } else if (strncmp(req, "GET / ", 6) == 0) {
    snprintf(body, sizeof body, "graft-test app %s\n", version);
    reply(fd, 200, body);
  } else {
    reply(fd, 404, "not found\n");
  }
}

int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  signal(SIGPIPE, SIG_IGN);
  FILE *f = fopen("/version", "r");
  if (f) {
    if (fgets(version, sizeof version, f)) version[strcspn(version, "\r\n")] = 0;
    fclose(f);
  }
  const char *p = getenv("PORT");
  int port = p ? atoi(p) : 8080;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = INADDR_ANY};
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0) {
    perror("listen");
    return 1;
  }
  fprintf(stderr, "graft-test app %s listening on :%d\n", version, port);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    serve(c);
    close(c);
  }
}
