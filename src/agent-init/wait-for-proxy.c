/*
 * wait-for-proxy: the first program of every agent container.
 *
 * The agent's container is started while the egress gateway's container is
 * still starting, so that the two start-ups overlap. The agent must still
 * never see its proxy refuse a connection: this program waits until the proxy
 * named in HTTPS_PROXY (or HTTP_PROXY) accepts a TCP connection, then execs
 * the agent's command in its own place, so the agent is the container's main
 * process (pid 1) and its exit status is the container's.
 *
 * When CLAUDE_BOTTLE_NETWATCH_SENTINEL names an address, the bottle has a
 * network watch (src/netwatch), which joins this container's network once it
 * runs. The command then also waits until the watch records: a connect to the
 * sentinel fails with ENETUNREACH only once the watch has put its answer in
 * place, after its capture of refused packets listens. Before that, the
 * connect goes unanswered or is refused another way.
 *
 * Static and libc-only on purpose: it is copied into whatever image the agent
 * runs, which may have no shell, no perl and no dynamic loader we know of.
 *
 * Exit status: the command's own once it runs; 125 when the proxy never
 * accepted, or the network watch never answered, within the deadline; 126/127 when the command cannot be run
 * (like a shell); 128+N when signal N arrived while waiting.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_SECONDS 120
#define RETRY_NANOSECONDS (10 * 1000 * 1000)
#define ATTEMPT_MILLISECONDS 200

/* As pid 1 the process ignores every signal it does not handle, so Ctrl-C or a
 * stop during the wait would otherwise do nothing. exec resets these. */
static void leave_on_signal(int sig) { _exit(128 + sig); }

/* "http://10.0.0.2:3128" or "http://10.0.0.2:3128/" -> address; 0 if it is not that shape. */
static int parse_proxy(const char *url, struct sockaddr_in *out) {
  const char *host = strstr(url, "://");
  host = host ? host + 3 : url;
  const char *colon = strchr(host, ':');
  if (!colon || colon == host || colon - host > 15) return 0;
  char ip[16];
  memcpy(ip, host, (size_t)(colon - host));
  ip[colon - host] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (end == colon + 1 || (*end != '\0' && *end != '/') || port < 1 || port > 65535) return 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((unsigned short)port);
  return inet_pton(AF_INET, ip, &out->sin_addr) == 1;
}

/* One connection attempt, given up after ATTEMPT_MILLISECONDS: a blocking connect to an
 * address whose owner is not up yet would sit in ARP resolution for seconds. */
static int accepts(const struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  int ok = connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0;
  if (!ok && errno == EINPROGRESS) {
    struct pollfd pending = {.fd = fd, .events = POLLOUT};
    int error = 0;
    socklen_t length = sizeof error;
    ok = poll(&pending, 1, ATTEMPT_MILLISECONDS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
  }
  close(fd);
  return ok;
}

/* One knock on the sentinel: 1 when the network watch answers it (ENETUNREACH). */
static int watch_answers(const struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  int error = 0;
  if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) != 0) {
    error = errno;
    if (error == EINPROGRESS) {
      struct pollfd pending = {.fd = fd, .events = POLLOUT};
      socklen_t length = sizeof error;
      error = 0;
      if (poll(&pending, 1, ATTEMPT_MILLISECONDS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = 0;
    }
  }
  close(fd);
  return error == ENETUNREACH;
}

static int wait_for_watch(const char *sentinel) {
  struct sockaddr_in addr;
  if (!parse_proxy(sentinel, &addr)) {
    fprintf(stderr, "claude-bottle: CLAUDE_BOTTLE_NETWATCH_SENTINEL is not IPV4:PORT (%s); the agent was not started\n", sentinel);
    return 0;
  }
  time_t deadline = time(NULL) + DEADLINE_SECONDS;
  const struct timespec pause = {0, RETRY_NANOSECONDS};
  while (!watch_answers(&addr)) {
    if (time(NULL) >= deadline) {
      fprintf(stderr, "claude-bottle: the network watch did not attach within %d s; the agent was not started\n", DEADLINE_SECONDS);
      return 0;
    }
    nanosleep(&pause, NULL);
  }
  return 1;
}

static int wait_for(const char *url) {
  struct sockaddr_in addr;
  if (!parse_proxy(url, &addr)) return 1; /* not an address this program can check: nothing to wait for */
  time_t deadline = time(NULL) + DEADLINE_SECONDS;
  const struct timespec pause = {0, RETRY_NANOSECONDS};
  while (!accepts(&addr)) {
    if (time(NULL) >= deadline) {
      fprintf(stderr, "claude-bottle: the egress proxy %s did not accept connections within %d s; the agent was not started\n", url, DEADLINE_SECONDS);
      return 0;
    }
    nanosleep(&pause, NULL);
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: wait-for-proxy COMMAND [ARG...]\n");
    return 127;
  }
  signal(SIGINT, leave_on_signal);
  signal(SIGTERM, leave_on_signal);
  signal(SIGHUP, leave_on_signal);
  const char *proxy = getenv("HTTPS_PROXY");
  if (!proxy || !*proxy) proxy = getenv("HTTP_PROXY");
  if (proxy && *proxy && !wait_for(proxy)) return 125;
  const char *sentinel = getenv("CLAUDE_BOTTLE_NETWATCH_SENTINEL");
  if (sentinel && *sentinel && !wait_for_watch(sentinel)) return 125;
  execvp(argv[1], argv + 1);
  int err = errno;
  fprintf(stderr, "claude-bottle: cannot run %s: %s\n", argv[1], strerror(err));
  return err == ENOENT ? 127 : 126;
}
