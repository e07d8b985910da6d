/* loadgen: a single-threaded epoll WebSocket load generator (client side of RFC 6455).
 *
 * Modes (all bounded in time; the result is one JSON line on stdout):
 *   pingpong   N connections, one message of SIZE bytes in flight on each; every echo received
 *              sends the next. Reports msg/s and round-trip latency percentiles in µs.
 *   stream     N connections, WINDOW messages in flight on each (the backend echoes); reports
 *              delivered msg/s (messages that came back).
 *   handshake  CONNS concurrent slots, each looping: TCP connect, HTTP upgrade, close handshake,
 *              wait for the server to close. Reports completed handshakes/s and their latency.
 *   idle       opens N connections, prints "ready CONNECTED FAILED" on stderr when all attempts
 *              are settled, holds them for HOLD seconds, then closes them.
 *
 * Client frames are masked as RFC 6455 requires. Every data frame of a run has the same payload,
 * so it is masked once, with a random key chosen at start-up, and then sent from that template:
 * the server still unmasks every byte, the generator spends no CPU on it.
 * Text frames of ASCII by default (--binary for binary frames).
 * Failed connections are counted by cause: refused, HTTP status of a refused upgrade, bad
 * accept key, reset or EOF during the upgrade, timeout. Connections lost while measuring are
 * counted as dropped; close frames the server sends first are counted by close code.
 *
 *   loadgen --mode pingpong|stream|handshake|idle [--host 127.0.0.1] [--port P] [--path /]
 *           [--header 'apikey: K']... [--conns 64] [--size 1024] [--window 16]
 *           [--duration 3] [--warmup 0.5] [--hold 5] [--setup-timeout 30] [--binary]
 */
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
#define MAX_RESPONSE 8192
#define HIST_US 1000000 /* 1 µs buckets up to 1 s; slower samples land in the last bucket */
#define MAX_STATUS 8
#define MAX_HEADERS 16

enum { M_PINGPONG, M_STREAM, M_HANDSHAKE, M_IDLE };
enum { S_FREE, S_CONNECTING, S_UPGRADING, S_OPEN, S_CLOSING };

typedef struct {
    int fd, state, events, saw_close;
    char key[32];
    char *req; size_t req_len, req_off;     /* upgrade request until fully sent */
    char *resp; size_t resp_len;            /* upgrade response until complete */
    unsigned char fh[14]; int fh_len, fh_need, in_payload, opcode, fin;
    uint64_t remaining;
    unsigned char ctl[125]; int ctl_len;
    uint64_t out_frames; size_t out_off;    /* data frames still to send, offset in the first */
    unsigned char ctrl[131]; size_t ctrl_len, ctrl_off; /* one control frame to send */
    double t_sent, t_start;
} conn_t;

/* options */
static int mode = -1, port = 0, nconns = 64, window = 16, binary = 0;
static const char *host = "127.0.0.1", *path = "/";
static const char *headers[MAX_HEADERS];
static int nheaders = 0;
static size_t msg_size = 1024;
static double duration = 3, warmup = 0.5, hold = 5, setup_timeout = 30, conn_timeout = 5;

/* state */
static conn_t *conns;      /* indexed by fd */
static int max_fds, epfd;
static struct sockaddr_in addr;
static unsigned char scratch[READ_CHUNK];
static unsigned char *rep; static size_t rep_len, flen; /* K copies of the masked data frame */
static uint64_t rng;
static uint32_t *hist; static double lat_max, lat_sum;
static uint64_t samples;
static double mstart, mend;      /* measuring window */
static int measuring_done;
static uint64_t messages, handshakes, dropped, open_now, pending_setup;
static uint64_t attempted, connected, failed;
static uint64_t e_refused, e_connect, e_bad_accept, e_eof_upgrade, e_timeout, e_write;
static int status_code[MAX_STATUS]; static uint64_t status_count[MAX_STATUS]; static uint64_t status_other;
static int close_code[MAX_STATUS]; static uint64_t close_count[MAX_STATUS]; static uint64_t close_other;

static void count_code(int *codes, uint64_t *counts, uint64_t *other, int code) {
    for (int i = 0; i < MAX_STATUS; i++) {
        if (counts[i] && codes[i] == code) { counts[i]++; return; }
        if (!counts[i]) { codes[i] = code; counts[i] = 1; return; }
    }
    (*other)++;
}

static void set_events(conn_t *c, int events) {
    if (c->events == events) return;
    struct epoll_event ev = {.events = (uint32_t)events, .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}

static void hist_add(double seconds) {
    double us = seconds * 1e6;
    size_t b = us < 0 ? 0 : (size_t)us;
    if (b >= HIST_US) b = HIST_US - 1;
    hist[b]++;
    samples++;
    lat_sum += us;
    if (us > lat_max) lat_max = us;
}

static double hist_pct(double p) {
    if (!samples) return 0;
    uint64_t target = (uint64_t)(p * (double)samples), seen = 0;
    if (target >= samples) target = samples - 1;
    for (size_t b = 0; b < HIST_US; b++) {
        seen += hist[b];
        if (seen > target) return (double)b;
    }
    return (double)HIST_US;
}

static void conn_free(conn_t *c) {
    if (c->state == S_OPEN || c->state == S_CLOSING) open_now--;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->req);
    free(c->resp);
    memset(c, 0, sizeof *c);
    c->state = S_FREE;
}

/* A connection that never got to OPEN: count it and free it. */
static void setup_failed(conn_t *c, uint64_t *counter) {
    (*counter)++;
    failed++;
    if (pending_setup) pending_setup--;
    conn_free(c);
}

/* The server answered the upgrade with another status (0: an unreadable response). */
static void upgrade_refused(conn_t *c, int status) {
    count_code(status_code, status_count, &status_other, status);
    failed++;
    if (pending_setup) pending_setup--;
    conn_free(c);
}

static void queue_frames(conn_t *c, uint64_t n, double now) {
    c->out_frames += n;
    c->t_sent = now;
}

static void queue_ctrl(conn_t *c, unsigned char opcode, const unsigned char *payload, size_t n) {
    if (c->ctrl_len > c->ctrl_off) return; /* one control frame at a time is enough here */
    unsigned char mask[4];
    uint64_t r = ws_rand(&rng);
    memcpy(mask, &r, 4);
    c->ctrl[0] = 0x80 | opcode;
    c->ctrl[1] = 0x80 | (unsigned char)n;
    memcpy(c->ctrl + 2, mask, 4);
    for (size_t i = 0; i < n; i++) c->ctrl[6 + i] = payload[i] ^ mask[i & 3];
    c->ctrl_len = 6 + n;
    c->ctrl_off = 0;
}

/* Sends what the socket takes; returns -1 if the connection failed (and was freed). */
static int pump_out(conn_t *c) {
    for (;;) {
        if (c->req && c->req_off < c->req_len) {
            ssize_t w = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
            if (w < 0) { if (errno == EAGAIN || errno == EINTR) break; goto fail; }
            c->req_off += (size_t)w;
            continue;
        }
        if (c->out_off == 0 && c->ctrl_len > c->ctrl_off) {
            ssize_t w = write(c->fd, c->ctrl + c->ctrl_off, c->ctrl_len - c->ctrl_off);
            if (w < 0) { if (errno == EAGAIN || errno == EINTR) break; goto fail; }
            c->ctrl_off += (size_t)w;
            continue;
        }
        if (c->out_frames == 0 || c->state != S_OPEN) break;
        size_t left = (size_t)c->out_frames * flen - c->out_off;
        size_t chunk = rep_len - c->out_off;
        if (chunk > left) chunk = left;
        ssize_t w = write(c->fd, rep + c->out_off, chunk);
        if (w < 0) { if (errno == EAGAIN || errno == EINTR) break; goto fail; }
        size_t tot = c->out_off + (size_t)w;
        c->out_frames -= tot / flen;
        c->out_off = tot % flen;
    }
    int want_out = (c->req && c->req_off < c->req_len) || c->ctrl_len > c->ctrl_off ||
                   (c->out_frames && c->state == S_OPEN);
    set_events(c, EPOLLIN | (want_out ? EPOLLOUT : 0));
    return 0;
fail:
    if (c->state == S_OPEN || c->state == S_CLOSING) { e_write++; dropped++; conn_free(c); }
    else setup_failed(c, &e_write);
    return -1;
}

static void on_message(conn_t *c, double now) {
    if (mode == M_PINGPONG || mode == M_STREAM) {
        if (now >= mstart && now < mend) {
            messages++;
            if (mode == M_PINGPONG) hist_add(now - c->t_sent);
        }
        if (!measuring_done) queue_frames(c, 1, now);
    }
}

static void on_close_frame(conn_t *c) {
    if (c->state == S_OPEN) { /* the server closed first */
        int code = c->ctl_len >= 2 ? (c->ctl[0] << 8 | c->ctl[1]) : 1005;
        count_code(close_code, close_count, &close_other, code);
        queue_ctrl(c, 0x8, c->ctl, c->ctl_len >= 2 ? 2 : 0);
        c->state = S_CLOSING;
    }
    c->saw_close = 1;
}

/* Parses server frames and acts on each complete one. */
static void feed(conn_t *c, const unsigned char *p, size_t len, double now) {
    while (len) {
        if (!c->in_payload) {
            if (c->fh_len < 2) { c->fh[c->fh_len++] = *p++; len--; if (c->fh_len < 2) continue; }
            if (c->fh_len == 2) {
                int l7 = c->fh[1] & 0x7f;
                c->fh_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->fh[1] & 0x80) ? 4 : 0);
            }
            while (len && c->fh_len < c->fh_need) { c->fh[c->fh_len++] = *p++; len--; }
            if (c->fh_len < c->fh_need) break;
            int l7 = c->fh[1] & 0x7f;
            uint64_t n = (uint64_t)l7;
            if (l7 == 126) n = (uint64_t)c->fh[2] << 8 | c->fh[3];
            else if (l7 == 127) { n = 0; for (int i = 0; i < 8; i++) n = n << 8 | c->fh[2 + i]; }
            c->remaining = n;
            c->opcode = c->fh[0] & 0x0f;
            c->fin = (c->fh[0] & 0x80) != 0;
            c->in_payload = 1;
            c->ctl_len = 0;
        }
        size_t take = c->remaining < len ? (size_t)c->remaining : len;
        if (c->opcode >= 8) {
            for (size_t i = 0; i < take && c->ctl_len < 125; i++) c->ctl[c->ctl_len++] = p[i];
        }
        p += take; len -= take; c->remaining -= take;
        if (c->remaining) break;
        c->in_payload = 0; c->fh_len = 0;
        switch (c->opcode) {
        case 0x0: case 0x1: case 0x2: if (c->fin) on_message(c, now); break;
        case 0x8: on_close_frame(c); break;
        case 0x9: queue_ctrl(c, 0xA, c->ctl, (size_t)c->ctl_len); break;
        default: break;
        }
    }
}

static int parse_status(const char *r) {
    const char *sp = strchr(r, ' ');
    return sp ? atoi(sp + 1) : 0;
}

static int check_accept(conn_t *c, const char *resp, size_t hlen) {
    char want[29];
    ws_accept_key(c->key, strlen(c->key), want);
    const char *p = resp, *end = resp + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) break;
        if (eol - p > 21 && strncasecmp(p, "Sec-WebSocket-Accept:", 21) == 0) {
            const char *v = p + 21;
            while (*v == ' ') v++;
            return (size_t)(eol - v) >= 28 && memcmp(v, want, 28) == 0;
        }
        p = eol + 2;
    }
    return 0;
}

static void on_open(conn_t *c, double now) {
    c->state = S_OPEN;
    open_now++;
    connected++;
    if (pending_setup) pending_setup--;
    if (mode == M_HANDSHAKE) {
        static const unsigned char normal[2] = {0x03, 0xE8};
        queue_ctrl(c, 0x8, normal, 2);
        c->state = S_CLOSING;
    }
    (void)now;
}

static void on_readable(conn_t *c, double now) {
    ssize_t r = read(c->fd, scratch, sizeof scratch);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (c->state == S_UPGRADING) {
        if (r <= 0) { setup_failed(c, &e_eof_upgrade); return; }
        size_t old = c->resp_len;
        if (old + (size_t)r > MAX_RESPONSE) { upgrade_refused(c, 0); return; }
        if (!c->resp) c->resp = malloc(MAX_RESPONSE + 1);
        memcpy(c->resp + old, scratch, (size_t)r);
        c->resp_len += (size_t)r;
        c->resp[c->resp_len] = '\0';
        char *end = memmem(c->resp, c->resp_len, "\r\n\r\n", 4);
        if (!end) return;
        size_t hlen = (size_t)(end - c->resp) + 4;
        int status = parse_status(c->resp);
        if (status != 101) { upgrade_refused(c, status); return; }
        if (!check_accept(c, c->resp, hlen)) { setup_failed(c, &e_bad_accept); return; }
        size_t extra = c->resp_len - hlen;
        unsigned char leftover[MAX_RESPONSE];
        memcpy(leftover, c->resp + hlen, extra);
        free(c->resp); c->resp = NULL; c->resp_len = 0;
        free(c->req); c->req = NULL;
        on_open(c, now);
        if (extra) feed(c, leftover, extra, now);
        pump_out(c);
        return;
    }
    if (r <= 0) { /* EOF or reset after the upgrade */
        if (c->state == S_CLOSING && c->saw_close) {
            if (mode == M_HANDSHAKE && now >= mstart && now < mend) {
                handshakes++;
                hist_add(now - c->t_start);
            }
        } else if (!measuring_done) {
            dropped++;
        }
        conn_free(c);
        return;
    }
    feed(c, scratch, (size_t)r, now);
    pump_out(c);
}

static void start_conn(double now) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    attempted++;
    pending_setup++;
    if (fd < 0 || fd >= max_fds) {
        if (fd >= 0) close(fd);
        e_connect++; failed++; pending_setup--;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = &conns[fd];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->state = S_CONNECTING;
    c->t_start = now;
    unsigned char raw[16];
    uint64_t a = ws_rand(&rng), b = ws_rand(&rng);
    memcpy(raw, &a, 8); memcpy(raw + 8, &b, 8);
    ws_base64(raw, 16, c->key);
    char extra[2048]; size_t el = 0;
    for (int i = 0; i < nheaders; i++)
        el += (size_t)snprintf(extra + el, sizeof extra - el, "%s\r\n", headers[i]);
    extra[el] = '\0';
    c->req = malloc(4096);
    int n = snprintf(c->req, 4096,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     path, host, port, c->key, extra);
    c->req_len = (size_t)n;
    struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
    c->events = EPOLLOUT;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        setup_failed(c, errno == ECONNREFUSED ? &e_refused : &e_connect);
    }
}

static void on_connected(conn_t *c) {
    int err = 0; socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) { setup_failed(c, err == ECONNREFUSED ? &e_refused : &e_connect); return; }
    c->state = S_UPGRADING;
    pump_out(c);
}

static void handle(struct epoll_event *e, double now) {
    conn_t *c = &conns[e->data.fd];
    if (c->state == S_FREE) return;
    if (c->state == S_CONNECTING) {
        if (e->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        return;
    }
    if (e->events & EPOLLOUT) { if (pump_out(c) < 0) return; }
    if (e->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c, now);
}

/* Frees connections stuck in setup or closing longer than their limit. */
static void reap(double now, double limit, int closing_too) {
    for (int fd = 0; fd < max_fds; fd++) {
        conn_t *c = &conns[fd];
        if (c->state == S_CONNECTING || c->state == S_UPGRADING) {
            if (now - c->t_start > limit) setup_failed(c, &e_timeout);
        } else if (closing_too && c->state == S_CLOSING && now - c->t_start > limit) {
            e_timeout++;
            conn_free(c);
        }
    }
}

static void loop_once(int timeout_ms) {
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    double now = ws_now();
    for (int i = 0; i < n; i++) handle(&evs[i], now);
}

static int open_all(int n, int concurrency, double deadline) {
    int started = 0;
    double last_reap = ws_now();
    while (ws_now() < deadline) {
        double now = ws_now();
        while (started < n && pending_setup < (uint64_t)concurrency) { start_conn(now); started++; }
        if (started == n && pending_setup == 0) return 1;
        loop_once(10);
        if (now - last_reap > 0.5) { reap(ws_now(), conn_timeout, 0); last_reap = now; }
    }
    reap(ws_now(), 0, 0);
    return 0;
}

static void close_all(double limit_s) {
    double now = ws_now();
    for (int fd = 0; fd < max_fds; fd++) {
        conn_t *c = &conns[fd];
        if (c->state == S_OPEN) {
            static const unsigned char normal[2] = {0x03, 0xE8};
            c->out_frames = 0;
            queue_ctrl(c, 0x8, normal, 2);
            c->state = S_CLOSING;
            c->t_start = now;
            pump_out(c);
        } else if (c->state != S_FREE && c->state != S_CLOSING) {
            conn_free(c);
        }
    }
    double deadline = now + limit_s;
    while (open_now && ws_now() < deadline) loop_once(10);
    for (int fd = 0; fd < max_fds; fd++) if (conns[fd].state != S_FREE) conn_free(&conns[fd]);
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void print_codes(const char *name, int *codes, uint64_t *counts, uint64_t other) {
    printf(",\"%s\":{", name);
    int first = 1;
    for (int i = 0; i < MAX_STATUS && counts[i]; i++) {
        printf("%s\"%d\":%llu", first ? "" : ",", codes[i], (unsigned long long)counts[i]);
        first = 0;
    }
    if (other) printf("%s\"other\":%llu", first ? "" : ",", (unsigned long long)other);
    printf("}");
}

static void usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s --mode pingpong|stream|handshake|idle [--host H] [--port P] [--path /p]\n"
            "          [--header 'Name: value']... [--conns N] [--size BYTES] [--window W]\n"
            "          [--duration S] [--warmup S] [--hold S] [--setup-timeout S] [--binary]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--binary")) { binary = 1; continue; }
        if (!v) usage(argv[0]);
        i++;
        if (!strcmp(a, "--mode")) {
            mode = !strcmp(v, "pingpong") ? M_PINGPONG : !strcmp(v, "stream") ? M_STREAM
                 : !strcmp(v, "handshake") ? M_HANDSHAKE : !strcmp(v, "idle") ? M_IDLE : -1;
        } else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "--header")) { if (nheaders < MAX_HEADERS) headers[nheaders++] = v; }
        else if (!strcmp(a, "--conns")) nconns = atoi(v);
        else if (!strcmp(a, "--size")) msg_size = (size_t)atol(v);
        else if (!strcmp(a, "--window")) window = atoi(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--hold")) hold = atof(v);
        else if (!strcmp(a, "--setup-timeout")) setup_timeout = atof(v);
        else usage(argv[0]);
    }
    if (mode < 0 || port <= 0 || nconns <= 0 || window <= 0 || duration <= 0 ||
        msg_size > (64u << 20))
        usage(argv[0]);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); return 2; }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fds = (int)(rl.rlim_cur > 1000000 ? 1000000 : rl.rlim_cur);
    if (nconns > max_fds - 16) {
        fprintf(stderr, "--conns %d exceeds the open-file limit %d\n", nconns, max_fds);
        return 2;
    }
    conns = calloc((size_t)max_fds, sizeof *conns);
    hist = calloc(HIST_US, sizeof *hist);
    signal(SIGPIPE, SIG_IGN);
    rng = (uint64_t)(ws_now() * 1e9) ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    epfd = epoll_create1(EPOLL_CLOEXEC);

    /* the data frame template, masked once */
    size_t hl = msg_size < 126 ? 2 : msg_size < 65536 ? 4 : 10;
    flen = hl + 4 + msg_size;
    size_t copies = (size_t)(mode == M_STREAM ? window : 1);
    if (copies * flen > (1u << 20)) copies = (1u << 20) / flen ? (1u << 20) / flen : 1;
    rep_len = copies * flen;
    rep = malloc(rep_len);
    unsigned char *f = rep;
    f[0] = 0x80 | (binary ? 0x2 : 0x1);
    if (hl == 2) f[1] = 0x80 | (unsigned char)msg_size;
    else if (hl == 4) { f[1] = 0x80 | 126; f[2] = (unsigned char)(msg_size >> 8); f[3] = (unsigned char)msg_size; }
    else { f[1] = 0x80 | 127; for (int i = 0; i < 8; i++) f[2 + i] = (unsigned char)((uint64_t)msg_size >> (56 - 8 * i)); }
    uint64_t mk = ws_rand(&rng);
    memcpy(f + hl, &mk, 4);
    for (size_t i = 0; i < msg_size; i++) f[hl + 4 + i] = (unsigned char)('a' + i % 26) ^ f[hl + (i & 3)];
    for (size_t k = 1; k < copies; k++) memcpy(rep + k * flen, rep, flen);

    double t_begin = ws_now(), setup_s = 0, measured = duration, cpu0 = 0, cpu1 = 0;
    int all_open = 1;
    if (mode == M_HANDSHAKE) {
        double t0 = ws_now();
        mstart = t0 + warmup;
        mend = mstart + duration;
        double last_reap = t0;
        int cpu_started = 0;
        while (ws_now() < mend) {
            double now = ws_now();
            if (!cpu_started && now >= mstart) { cpu0 = cpu_seconds(); cpu_started = 1; }
            for (int k = 0; k < nconns && pending_setup + open_now < (uint64_t)nconns; k++)
                start_conn(now);
            loop_once(5);
            if (now - last_reap > 0.5) { reap(ws_now(), conn_timeout, 1); last_reap = now; }
        }
        cpu1 = cpu_seconds();
        measuring_done = 1;
        close_all(1.0);
    } else {
        all_open = open_all(nconns, 256, t_begin + setup_timeout);
        setup_s = ws_now() - t_begin;
        if (mode == M_IDLE) {
            fprintf(stderr, "ready %llu %llu\n", (unsigned long long)connected, (unsigned long long)failed);
            fflush(stderr);
            double until = ws_now() + hold;
            while (ws_now() < until) loop_once(50);
            measured = hold;
            measuring_done = 1;
        } else {
            double t0 = ws_now();
            mstart = t0 + warmup;
            mend = mstart + duration;
            for (int fd = 0; fd < max_fds; fd++) {
                conn_t *c = &conns[fd];
                if (c->state == S_OPEN) {
                    queue_frames(c, mode == M_STREAM ? (uint64_t)window : 1, t0);
                    pump_out(c);
                }
            }
            while (ws_now() < mstart) loop_once(5);
            cpu0 = cpu_seconds();
            while (ws_now() < mend) loop_once(5);
            cpu1 = cpu_seconds();
            measuring_done = 1;
        }
        close_all(2.0);
    }

    static const char *names[] = {"pingpong", "stream", "handshake", "idle"};
    printf("{\"mode\":\"%s\",\"host\":\"%s\",\"port\":%d,\"path\":\"%s\",\"conns\":%d",
           names[mode], host, port, path, nconns);
    if (mode == M_PINGPONG || mode == M_STREAM) printf(",\"size\":%zu,\"text\":%s", msg_size, binary ? "false" : "true");
    if (mode == M_STREAM) printf(",\"window\":%d", window);
    printf(",\"duration\":%.3f,\"attempted\":%llu,\"connected\":%llu,\"failed\":%llu,\"all_open\":%s",
           measured, (unsigned long long)attempted, (unsigned long long)connected,
           (unsigned long long)failed, all_open ? "true" : "false");
    printf(",\"errors\":{\"refused\":%llu,\"connect\":%llu,\"bad_accept\":%llu,\"eof_during_upgrade\":%llu,"
           "\"timeout\":%llu,\"write\":%llu}",
           (unsigned long long)e_refused, (unsigned long long)e_connect, (unsigned long long)e_bad_accept,
           (unsigned long long)e_eof_upgrade, (unsigned long long)e_timeout, (unsigned long long)e_write);
    print_codes("http_status", status_code, status_count, status_other);
    print_codes("server_close_codes", close_code, close_count, close_other);
    printf(",\"dropped\":%llu", (unsigned long long)dropped);
    if (mode == M_IDLE) printf(",\"setup_s\":%.3f", setup_s);
    if (mode == M_PINGPONG || mode == M_STREAM) {
        printf(",\"messages\":%llu,\"msg_per_s\":%.1f,\"payload_mbyte_per_s\":%.2f",
               (unsigned long long)messages, (double)messages / duration,
               (double)messages * (double)msg_size / duration / 1e6);
    }
    if (mode == M_HANDSHAKE)
        printf(",\"handshakes\":%llu,\"handshakes_per_s\":%.1f", (unsigned long long)handshakes,
               (double)handshakes / duration);
    if (mode == M_PINGPONG || mode == M_HANDSHAKE)
        printf(",\"lat_us\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f,\"mean\":%.1f}",
               hist_pct(0.5), hist_pct(0.9), hist_pct(0.99), hist_pct(0.999), lat_max,
               samples ? lat_sum / (double)samples : 0.0);
    if (mode != M_IDLE) printf(",\"loadgen_cpu_pct\":%.1f", 100.0 * (cpu1 - cpu0) / duration);
    printf("}\n");
    return 0;
}
