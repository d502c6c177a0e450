/* graft's test app: a tiny HTTP server.
 *   GET /         "graft-test app <version>"
 *   GET /version  the version (read from /version at start)
 *   GET /healthz  200 ok
 *   GET /readyz   200 ok, or 503 while the file /tmp/unready exists (tests flip readiness with it)
 * Listens on $PORT (default 8080). Exits at once on SIGTERM/SIGINT, as PID 1 too.
 *
 * Hot upgrade (SidecarSet upgradeType HotUpgrade): with $HANDOVER set to a unix socket path on a
 * volume both twins mount, a starting server first asks the server listening there for its TCP
 * listener (passed with SCM_RIGHTS) and serves on it; the old server stops accepting at once, so
 * no connection is refused or reset during the switch. Without an answer it binds $PORT itself. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

/* The listener the server at `path` hands over, or -1. */
static int receive_listener(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  if (u < 0 || connect(u, (struct sockaddr *)&a, sizeof a) != 0) {
    if (u >= 0) close(u);
    return -1;
  }
  char byte, ctl[CMSG_SPACE(sizeof(int))];
  struct iovec io = {.iov_base = &byte, .iov_len = 1};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  int fd = -1;
  if (recvmsg(u, &m, 0) == 1) {
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  }
  close(u);
  return fd;
}

static void send_listener(int conn, int fd) {
  char byte = 'L', ctl[CMSG_SPACE(sizeof(int))];
  memset(ctl, 0, sizeof ctl);
  struct iovec io = {.iov_base = &byte, .iov_len = 1};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  (void)!sendmsg(conn, &m, 0);
}

static int listen_unix(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  unlink(path);
  int u = socket(AF_UNIX, SOCK_STREAM, 0);
  if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) != 0 || listen(u, 4) != 0) {
    perror("handover socket");
    if (u >= 0) close(u);
    return -1;
  }
  return u;
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
  const char *handover = getenv("HANDOVER");
  int s = handover ? receive_listener(handover) : -1;
  if (s >= 0) {
    fprintf(stderr, "graft-test app %s took over the listener on :%d\n", version, port);
  } else {
    s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = INADDR_ANY};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 64) != 0) {
      perror("listen");
      return 1;
    }
    fprintf(stderr, "graft-test app %s listening on :%d\n", version, port);
  }
  int h = handover ? listen_unix(handover) : -1;
  for (;;) {
    struct pollfd fds[2] = {{.fd = s, .events = POLLIN}, {.fd = h, .events = POLLIN}};
    if (poll(fds, 2, -1) < 0) continue;
    if (s >= 0 && (fds[0].revents & POLLIN)) {
      int c = accept(s, NULL, NULL);
      if (c >= 0) {
        serve(c);
        close(c);
      }
    }
    if (h >= 0 && (fds[1].revents & POLLIN)) {
      int c = accept(h, NULL, NULL);
      if (c < 0) continue;
      if (s >= 0) {
        send_listener(c, s);
        close(s);
        s = -1;
        fprintf(stderr, "graft-test app %s handed its listener over\n", version);
      }
      close(c);
    }
  }
}
