/* backend: a single-threaded epoll WebSocket echo server (server side of RFC 6455).
 *
 * Accepts any path, answers the upgrade, unmasks client frames and echoes every data frame
 * unmasked with its own opcode and FIN bit (so fragmented messages come back fragmented),
 * answers pings with pongs and close frames with close frames, then closes the TCP connection.
 * Output is buffered per connection; a connection whose unsent output passes 4 MiB stops being
 * read until it drains, so a slow client cannot grow memory without bound.
 *
 *   backend [--host 127.0.0.1] [--port 0] [--max-seconds 3600]
 *
 * Prints "listening on HOST:PORT" on stdout when ready; exits on SIGINT/SIGTERM or after
 * --max-seconds. Built by bench/run.py with gcc -O2. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ws_common.h"

#define READ_CHUNK (256 * 1024)
#define MAX_HEADER 8192
#define MAX_FRAME (64u * 1024 * 1024)
#define OUT_HIGH_WATER (4u * 1024 * 1024)

enum { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

typedef struct {
    unsigned char *p;
    size_t len, cap;
} buf_t;

typedef struct {
    int fd, state, events;
    buf_t in;            /* bytes of an incomplete header or frame */
    buf_t out;           /* unsent output */
    size_t out_off;
} conn_t;

static conn_t **conns;
static int max_fds;
static int epfd;
static unsigned char scratch[READ_CHUNK];
static buf_t obuf;       /* output built while processing one read */
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void buf_reserve(buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) { perror("realloc"); exit(1); }
    b->p = p;
    b->cap = cap;
}

static void buf_append(buf_t *b, const void *data, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_release(buf_t *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void set_events(conn_t *c, int events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = (uint32_t)events, .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void conn_close(conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    buf_release(&c->in);
    buf_release(&c->out);
    free(c);
}

static void unmask(unsigned char *p, size_t n, const unsigned char key[4]) {
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k64 = ((uint64_t)k32 << 32) | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] ^= key[i & 3];
}

static void emit_frame(unsigned char b0, const unsigned char *payload, size_t n) {
    unsigned char h[10];
    size_t hl;
    h[0] = b0;
    if (n < 126) { h[1] = (unsigned char)n; hl = 2; }
    else if (n < 65536) { h[1] = 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n; hl = 4; }
    else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    buf_reserve(&obuf, hl + n);
    memcpy(obuf.p + obuf.len, h, hl);
    if (n) memcpy(obuf.p + obuf.len + hl, payload, n);
    obuf.len += hl + n;
}

static int header_value(const char *hdr, size_t len, const char *name, const char **val, size_t *vlen) {
    size_t nl = strlen(name);
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *val = v;
            *vlen = (size_t)(ve - v);
            return 1;
        }
        p = eol + 2;
    }
    return 0;
}

/* Consumes what it can of data[0..len); returns the bytes consumed, or -1 to drop the connection. */
static long process(conn_t *c, unsigned char *data, size_t len) {
    size_t pos = 0;
    if (c->state == ST_HANDSHAKE) {
        unsigned char *end = memmem(data, len, "\r\n\r\n", 4);
        if (!end) return len > MAX_HEADER ? -1 : 0;
        size_t hlen = (size_t)(end - data) + 4;
        const char *key;
        size_t klen;
        if (!header_value((const char *)data, hlen, "Sec-WebSocket-Key", &key, &klen) || klen == 0) {
            static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            buf_append(&obuf, bad, sizeof bad - 1);
            c->state = ST_CLOSING;
            return (long)len;
        }
        char accept[29], resp[256];
        ws_accept_key(key, klen, accept);
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
        buf_append(&obuf, resp, (size_t)n);
        c->state = ST_OPEN;
        pos = hlen;
    }
    while (c->state == ST_OPEN && len - pos >= 2) {
        unsigned char *f = data + pos;
        size_t avail = len - pos, hl = 2;
        uint64_t n = f[1] & 0x7f;
        if (n == 126) {
            if (avail < 4) break;
            n = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (n == 127) {
            if (avail < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | f[2 + i];
            hl = 10;
        }
        if (n > MAX_FRAME) return -1;
        int masked = (f[1] & 0x80) != 0;
        if (masked) hl += 4;
        if (avail < hl + n) break;
        unsigned char *payload = f + hl;
        if (masked) unmask(payload, (size_t)n, f + hl - 4);
        unsigned char opcode = f[0] & 0x0f;
        switch (opcode) {
        case 0x0: case 0x1: case 0x2:
            emit_frame(f[0], payload, (size_t)n);
            break;
        case 0x8:
            emit_frame(0x88, payload, n >= 2 ? 2 : 0);
            c->state = ST_CLOSING;
            break;
        case 0x9:
            emit_frame(0x8A, payload, (size_t)n);
            break;
        default:
            break;
        }
        pos += hl + (size_t)n;
    }
    if (c->state == ST_CLOSING) return (long)len;
    return (long)pos;
}

/* Writes pending output; returns 0, or -1 if the connection was closed. */
static int flush(conn_t *c) {
    while (c->out.len > c->out_off) {
        ssize_t w = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
        if (c->out.cap > 65536) buf_release(&c->out);
        if (c->state == ST_CLOSING) { conn_close(c); return -1; }
        set_events(c, EPOLLIN);
    } else {
        set_events(c, c->out.len - c->out_off > OUT_HIGH_WATER ? EPOLLOUT : EPOLLIN | EPOLLOUT);
    }
    return 0;
}

static void on_readable(conn_t *c) {
    ssize_t r = read(c->fd, scratch, sizeof scratch);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { conn_close(c); return; }
    if (r < 0) return;
    unsigned char *data = scratch;
    size_t len = (size_t)r;
    if (c->in.len) {
        buf_append(&c->in, scratch, len);
        data = c->in.p;
        len = c->in.len;
    }
    obuf.len = 0;
    long used = process(c, data, len);
    if (used < 0) { conn_close(c); return; }
    size_t rest = len - (size_t)used;
    if (data == c->in.p) {
        memmove(c->in.p, c->in.p + used, rest);
        c->in.len = rest;
        if (rest == 0 && c->in.cap > 65536) buf_release(&c->in);
    } else if (rest) {
        buf_append(&c->in, data + used, rest);
    }
    if (obuf.len) {
        if (c->out.len == 0) {
            /* Fast path: write straight from obuf, keep only what the socket refused. */
            ssize_t w;
            do w = write(c->fd, obuf.p, obuf.len); while (w < 0 && errno == EINTR);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { conn_close(c); return; }
            size_t sent = w < 0 ? 0 : (size_t)w;
            if (sent < obuf.len) buf_append(&c->out, obuf.p + sent, obuf.len - sent);
        } else {
            buf_append(&c->out, obuf.p, obuf.len);
        }
    }
    if (c->out.len || c->state == ST_CLOSING) flush(c);
}

static void on_accept(int lfd) {
    for (int i = 0; i < 1024; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                perror("accept4");
            return;
        }
        if (fd >= max_fds) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->fd = fd;
        c->events = EPOLLIN;
        conns[fd] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    double max_seconds = 3600;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc) host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc) max_seconds = atof(argv[++i]);
        else { fprintf(stderr, "usage: %s [--host H] [--port P] [--max-seconds S]\n", argv[0]); return 2; }
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fds = (int)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur);
    conns = calloc((size_t)max_fds, sizeof *conns);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); return 2; }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("listening on %s:%d\n", host, ntohs(sa.sin_port));
    fflush(stdout);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[512];
    double deadline = ws_now() + max_seconds;
    while (!stop && ws_now() < deadline) {
        int n = epoll_wait(epfd, evs, 512, 200);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) { on_accept(lfd); continue; }
            conn_t *c = conns[fd];
            if (!c) continue;
            uint32_t e = evs[i].events;
            if (e & EPOLLOUT) { if (flush(c) < 0) continue; }
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
    }
    return 0;
}
