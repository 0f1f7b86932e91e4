/* bench/gate.py's load generator: closed-loop echo load over 2-byte framed TCP.

   loadgen HOST PORT CONNS SIZE WARMUP SECONDS

   Opens CONNS connections at once (non-blocking connects, TCP_NODELAY), sends one packet
   of SIZE random bytes (framed: 2-byte big-endian length, then the payload) on each as
   soon as it is connected, and from then on sends the next packet on a connection as soon
   as the echo of the previous one has fully arrived: one packet in flight per connection.
   Measuring starts WARMUP seconds after every connection has had its first echo and lasts
   SECONDS. Prints one JSON object: rate (echoes/s while measuring), total (echoes in
   all), p50, p90, p99 and max (round-trip latency while measuring, microseconds) and
   first_echo (seconds from the first connect until every connection had its first echo).

   Built by bench/gate.py with the system cc into bench/.build/ (not tracked). */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FIRST_ECHO_LIMIT 120.0 /* seconds: give up on a server that never answers them all */

struct conn {
    int fd;
    int connected;
    int echoed;       /* had its first echo */
    size_t pending;   /* bytes of the current echo still to come */
    double sent_at;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int compare(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void raise_fd_limit(int needed) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)needed) {
        limit.rlim_cur = limit.rlim_max < (rlim_t)needed ? limit.rlim_max : (rlim_t)needed;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT CONNS SIZE WARMUP SECONDS\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), conns = atoi(argv[3]), size = atoi(argv[4]);
    double warmup = atof(argv[5]), seconds = atof(argv[6]);
    if (conns < 1 || size < 0 || size > 0xFFFF) {
        fprintf(stderr, "bad CONNS or SIZE\n");
        return 2;
    }
    raise_fd_limit(conns + 64);
    size_t frame_size = (size_t)size + 2;
    unsigned char *frame = malloc(frame_size);
    frame[0] = (unsigned char)(size >> 8);
    frame[1] = (unsigned char)size;
    srand((unsigned)time(NULL));
    for (int i = 0; i < size; i++) frame[i + 2] = (unsigned char)rand();

    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) die("inet_pton");
    int epoll = epoll_create1(0);
    if (epoll < 0) die("epoll_create1");
    struct conn *all = calloc((size_t)conns, sizeof *all);
    double started = now();
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) die("socket");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS)
            die("connect");
        all[i].fd = fd;
        struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        if (epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
    }

    size_t capacity = 1 << 20, count = 0;
    float *latencies = malloc(capacity * sizeof *latencies);
    long total = 0;
    int echoed = 0;
    double first_echo = 0, measure_from = 0, end = 0;
    unsigned char buffer[65536];
    struct epoll_event events[1024];
    for (;;) {
        int ready = epoll_wait(epoll, events, 1024, 1000);
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        double t = now();
        if (!measure_from && t - started > FIRST_ECHO_LIMIT) {
            fprintf(stderr, "only %d of %d connections echoed within %gs\n", echoed, conns,
                    FIRST_ECHO_LIMIT);
            return 1;
        }
        if (measure_from && t >= end) break;
        for (int e = 0; e < ready; e++) {
            struct conn *c = &all[events[e].data.u32];
            if (!c->connected) {
                if (!(events[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
                int error = 0;
                socklen_t length = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length);
                if (error) {
                    errno = error;
                    die("connect");
                }
                c->connected = 1;
                struct epoll_event event = {.events = EPOLLIN, .data = events[e].data};
                epoll_ctl(epoll, EPOLL_CTL_MOD, c->fd, &event);
                t = now();
                goto send_next;
            }
            ssize_t got = read(c->fd, buffer, sizeof buffer);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (got <= 0) {
                fprintf(stderr, "the server closed a connection\n");
                return 1;
            }
            if ((size_t)got < c->pending) {
                c->pending -= (size_t)got;
                continue;
            }
            total++;
            t = now(); /* per echo: a batch of a thousand takes a while to go through */
            if (measure_from && t >= measure_from) {
                if (count == capacity) {
                    capacity *= 2;
                    latencies = realloc(latencies, capacity * sizeof *latencies);
                }
                latencies[count++] = (float)(t - c->sent_at);
            }
            if (!c->echoed) {
                c->echoed = 1;
                if (++echoed == conns) {
                    first_echo = t - started;
                    measure_from = t + warmup;
                    end = measure_from + seconds;
                }
            }
        send_next:
            c->pending = frame_size;
            c->sent_at = t;
            if (write(c->fd, frame, frame_size) != (ssize_t)frame_size) die("write");
        }
    }
    double elapsed = now() - measure_from;
    if (!count) {
        fprintf(stderr, "no echo while measuring\n");
        return 1;
    }
    qsort(latencies, count, sizeof *latencies, compare);
    printf("{\"rate\": %.1f, \"total\": %ld, \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
           "\"max\": %.1f, \"first_echo\": %.4f}\n",
           count / elapsed, total, latencies[count / 2] * 1e6,
           latencies[(size_t)(count * 0.9)] * 1e6, latencies[(size_t)(count * 0.99)] * 1e6,
           latencies[count - 1] * 1e6, first_echo);
    return 0;
}
