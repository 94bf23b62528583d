// A paced UDP syslog storm for test/faults/syslog-storm.test.ts: RATE datagrams/s for SECONDS to
// 127.0.0.1:PORT, in sendmmsg(2) batches so the sender costs a few per cent of a core and the
// achieved rate does not depend on a JavaScript event loop on a loaded machine. Bounded: at most
// RATE x SECONDS datagrams, and it stops after SECONDS whatever it achieved.
// Mix: 90 % syslog unrelated to alarms, 10 % OVOC alarms of other devices that are not
// "Connection Lost". Prints {"started":<epoch ms>} then one JSON result line.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define NMSG 1000
#define BATCH 256

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int port = atoi(argv[1]);
  long rate = atol(argv[2]);
  double seconds = atof(argv[3]);
  static char text[NMSG][320];
  static int len[NMSG];
  for (int i = 0; i < NMSG; i++) {
    if (i % 10 == 9)
      len[i] = snprintf(text[i], sizeof text[i], "<132>Nov 23 10:00:00 ovoc OVOC: New Alarm - Board Temperature Alarm, Severity: major, Source: Board#1, Description: Temperature too high, IP Address: 198.51.100.%d, Alarm ID: %d", 1 + (i % 200), i);
    else
      len[i] = snprintf(text[i], sizeof text[i], "<134>Nov 23 10:00:00 web-%d nginx[%d]: 203.0.113.%d - - GET /static/app-%d.js HTTP/1.1 200 5123 storm", i % 97, 1000 + (i % 5000), i % 250, i);
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  int sndbuf = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (connect(s, (struct sockaddr *)&to, sizeof to) != 0) return 1;
  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  struct timeval tv;
  gettimeofday(&tv, NULL);
  printf("{\"started\":%lld}\n", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
  fflush(stdout);
  long total = (long)(rate * seconds), pos = 0, sent = 0, skipped = 0, errors = 0;
  double t0 = now_s(), end = t0 + seconds, last = t0;
  struct timespec tick = {0, 1000000};
  for (;;) {
    double t = now_s();
    if (t >= end || pos >= total) break;
    long due = (long)((t - t0) * rate);
    if (due > total) due = total;
    // Each batch re-checks the clock: on a loaded machine a datagram can cost far more than planned.
    while (pos < due && now_s() < end) {
      int n = due - pos > BATCH ? BATCH : (int)(due - pos);
      for (int k = 0; k < n; k++) {
        int m = (pos + k) % NMSG;
        iov[k].iov_base = text[m];
        iov[k].iov_len = len[m];
        memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
      }
      // Never blocks: a datagram the socket cannot take now (the receiver is behind and holds the
      // send buffer) is skipped and counted, so the time bound holds and the rate is honest.
      int r = sendmmsg(s, msgs, n, MSG_DONTWAIT);
      if (r <= 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) skipped += due - pos;
        else errors++;
        pos = due;
        break;
      }
      pos += r;
      sent += r;
    }
    last = now_s();
    nanosleep(&tick, NULL);
  }
  double elapsed = (last > t0 ? last : now_s()) - t0;
  printf("{\"sent\":%ld,\"skipped\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"rate\":%ld}\n", sent, skipped, errors, elapsed, (long)(sent / elapsed));
  return 0;
}
