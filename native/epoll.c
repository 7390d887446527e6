/*
 * pulsekeeper's client transport on Linux: the listening socket and every client
 * connection of a server in one epoll set, registered with node's event loop by a
 * single uv_poll_t. Per connection this keeps one small slot (indexed by fd) and a
 * buffer only while output waits for the socket, which is what lets one process hold
 * tens of thousands of idle heartbeating sessions at a few hundred bytes each.
 *
 * It parses nothing the clients send: bytes read in one wakeup go to JavaScript in one
 * batch of records, where the frame decoder (with its length checks) takes them apart.
 *
 * Batch record: u8 kind, 3 bytes padding, u32 fd, u32 generation, u32 length, then
 * `length` bytes of payload (all little-endian, as JavaScript reads them):
 *   ACCEPTED  payload: u16 remote port, then the remote address as text
 *   DATA      payload: the bytes read
 *   DRAINED   no payload: every queued byte has been written
 *   CLOSED    no payload: the peer closed (after its last bytes were delivered and any
 *             answer written) or the connection failed; the slot is free
 * JavaScript names a connection by its handle, generation * 2^24 + fd, so a late call for
 * a connection that is gone never reaches a newer one on the same fd.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { REC_ACCEPTED = 1, REC_DATA = 2, REC_DRAINED = 3, REC_CLOSED = 4 };
enum { HEADER = 16, READ_CHUNK = 65536, READS_PER_EVENT = 4, EVENTS = 256, ACCEPTS_PER_WAKEUP = 512 };
/* A wakeup stops reading once its batch holds this much; level-triggered epoll reports the rest next time. */
#define BATCH_LIMIT (4u << 20)
#define FD_LIMIT (1u << 24)
/* Generations wrap below 2^29, so a handle stays an exact JavaScript number (< 2^53). */
#define GEN_MASK 0x1fffffffu
#define HANDLE_FD(h) ((int)((h) % FD_LIMIT))
#define HANDLE_GEN(h) ((uint32_t)((h) / FD_LIMIT))

/* F_EOF: the peer will send nothing more; the connection closes once its output is written. */
enum { F_OPEN = 1, F_PAUSED = 2, F_ENDING = 4, F_WANT_OUT = 8, F_EOF = 16 };

typedef struct {
  uint8_t *out; /* bytes the socket has not taken yet, or NULL */
  uint32_t out_len, out_cap;
  uint32_t gen;
  uint8_t flags;
} conn_t;

typedef struct server {
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int epfd, lfd, reserve_fd;
  uv_poll_t poll;
  conn_t *conns;
  uint32_t conns_cap;
  uint8_t *batch;
  size_t batch_len, batch_cap;
  /* Connections that reached end of input in this wakeup: closed after JavaScript has had their last bytes. */
  int64_t *eofs;
  uint32_t eofs_len, eofs_cap;
  /* Closed by JavaScript; freed once the poll handle is closed and the JavaScript object is gone. */
  int closed, poll_closed, finalized;
} server_t;

static int batch_reserve(server_t *s, size_t n) {
  if (s->batch_len + n <= s->batch_cap) return 0;
  size_t cap = s->batch_cap ? s->batch_cap : 2 * READ_CHUNK;
  while (cap < s->batch_len + n) cap *= 2;
  uint8_t *p = realloc(s->batch, cap);
  if (!p) return -1;
  s->batch = p;
  s->batch_cap = cap;
  return 0;
}

static void put_header(uint8_t *at, uint8_t kind, int fd, uint32_t gen, uint32_t len) {
  uint32_t v[3] = {(uint32_t)fd, gen, len};
  at[0] = kind;
  at[1] = at[2] = at[3] = 0;
  memcpy(at + 4, v, sizeof v);
}

static void record(server_t *s, uint8_t kind, int fd, const void *payload, uint32_t len) {
  if (batch_reserve(s, HEADER + len) != 0) return;
  put_header(s->batch + s->batch_len, kind, fd, s->conns[fd].gen, len);
  if (len) memcpy(s->batch + s->batch_len + HEADER, payload, len);
  s->batch_len += HEADER + len;
}

static void set_events(server_t *s, int fd) {
  conn_t *c = &s->conns[fd];
  struct epoll_event ev = {.events = 0, .data.fd = fd};
  if (!(c->flags & F_EOF) && (!(c->flags & F_PAUSED) || (c->flags & F_ENDING))) ev.events |= EPOLLIN | EPOLLRDHUP;
  if (c->flags & F_WANT_OUT) ev.events |= EPOLLOUT;
  epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
}

/* Frees the slot; the next connection on this fd gets a new generation. */
static void release(server_t *s, int fd) {
  conn_t *c = &s->conns[fd];
  epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(c->out);
  c->out = NULL;
  c->out_len = c->out_cap = 0;
  c->flags = 0;
  c->gen = (c->gen + 1) & GEN_MASK;
}

static void closed_by_peer(server_t *s, int fd) {
  record(s, REC_CLOSED, fd, NULL, 0);
  release(s, fd);
}

static conn_t *lookup(server_t *s, int64_t handle) {
  if (handle < 0) return NULL;
  int fd = HANDLE_FD(handle);
  if ((uint32_t)fd >= s->conns_cap) return NULL;
  conn_t *c = &s->conns[fd];
  return (c->flags & F_OPEN) && c->gen == HANDLE_GEN(handle) ? c : NULL;
}

static void end_of_input(server_t *s, int fd) {
  conn_t *c = &s->conns[fd];
  if (s->eofs_len == s->eofs_cap) {
    uint32_t cap = s->eofs_cap ? 2 * s->eofs_cap : 64;
    int64_t *p = realloc(s->eofs, cap * sizeof *p);
    if (!p) {
      closed_by_peer(s, fd);
      return;
    }
    s->eofs = p;
    s->eofs_cap = cap;
  }
  c->flags |= F_EOF;
  set_events(s, fd);
  s->eofs[s->eofs_len++] = (int64_t)c->gen * FD_LIMIT + fd;
}

static void on_readable(server_t *s, int fd) {
  conn_t *c = &s->conns[fd];
  for (int i = 0; i < READS_PER_EVENT; i++) {
    if (batch_reserve(s, HEADER + READ_CHUNK) != 0) return;
    uint8_t *at = s->batch + s->batch_len;
    ssize_t n = read(fd, at + HEADER, READ_CHUNK);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n == 0) {
      end_of_input(s, fd);
      return;
    }
    if (n < 0) {
      closed_by_peer(s, fd);
      return;
    }
    /* After end(), what the peer still sends is dropped; its close ends the connection. */
    if (!(c->flags & F_ENDING)) {
      put_header(at, REC_DATA, fd, c->gen, (uint32_t)n);
      s->batch_len += HEADER + (size_t)n;
    }
    if (n < READ_CHUNK) return;
  }
}

/* Writes what it can; returns -1 if the connection failed (and was released). */
static int flush_out(server_t *s, int fd) {
  conn_t *c = &s->conns[fd];
  uint32_t off = 0;
  while (off < c->out_len) {
    ssize_t n = send(fd, c->out + off, c->out_len - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      closed_by_peer(s, fd);
      return -1;
    }
    off += (uint32_t)n;
  }
  if (off > 0) {
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
  }
  if (c->out_len > 0) return 0;
  free(c->out);
  c->out = NULL;
  c->out_cap = 0;
  c->flags &= ~F_WANT_OUT;
  record(s, REC_DRAINED, fd, NULL, 0);
  if (c->flags & F_EOF) {
    closed_by_peer(s, fd);
    return -1;
  }
  if (c->flags & F_ENDING) shutdown(fd, SHUT_WR);
  set_events(s, fd);
  return 0;
}

static int grow_conns(server_t *s, int fd) {
  if ((uint32_t)fd < s->conns_cap) return 0;
  if ((uint32_t)fd >= FD_LIMIT) return -1;
  uint32_t cap = s->conns_cap ? s->conns_cap : 1024;
  while (cap <= (uint32_t)fd) cap *= 2;
  conn_t *p = realloc(s->conns, cap * sizeof *p);
  if (!p) return -1;
  memset(p + s->conns_cap, 0, (cap - s->conns_cap) * sizeof *p);
  s->conns = p;
  s->conns_cap = cap;
  return 0;
}

static void accept_some(server_t *s) {
  for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    int fd = accept4(s->lfd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
        /* Out of descriptors: take the connection with the reserved one and close it, so the
           listening socket does not stay readable and spin the loop. */
        close(s->reserve_fd);
        int shed = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (shed >= 0) close(shed);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
    if (grow_conns(s, fd) != 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->conns[fd].flags = F_OPEN;
    char text[INET6_ADDRSTRLEN + 2];
    uint8_t payload[2 + sizeof text];
    uint16_t port = 0;
    text[0] = 0;
    if (addr.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&addr;
      inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
      inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    size_t n = strlen(text);
    memcpy(payload, &port, 2);
    memcpy(payload + 2, text, n);
    record(s, REC_ACCEPTED, fd, payload, (uint32_t)(2 + n));
  }
}

static void deliver(server_t *s) {
  if (s->batch_len == 0 || s->closed) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, buf, result;
  void *data;
  napi_get_reference_value(env, s->callback, &cb);
  napi_get_global(env, &recv);
  if (napi_create_buffer_copy(env, s->batch_len, s->batch, &data, &buf) == napi_ok) {
    s->batch_len = 0;
    /* A batch buffer that grew for one busy wakeup is given back. */
    if (s->batch_cap > 4 * READ_CHUNK) {
      free(s->batch);
      s->batch = NULL;
      s->batch_cap = 0;
    }
    if (napi_make_callback(env, s->async, recv, cb, 1, &buf, &result) != napi_ok) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  server_t *s = handle->data;
  struct epoll_event evs[EVENTS];
  int n = epoll_wait(s->epfd, evs, EVENTS, 0);
  for (int i = 0; i < n && s->batch_len < BATCH_LIMIT; i++) {
    int fd = evs[i].data.fd;
    uint32_t e = evs[i].events;
    if (fd == s->lfd) {
      accept_some(s);
      continue;
    }
    if ((uint32_t)fd >= s->conns_cap || !(s->conns[fd].flags & F_OPEN)) continue;
    if ((e & EPOLLOUT) && flush_out(s, fd) != 0) continue;
    if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !(s->conns[fd].flags & F_EOF)) on_readable(s, fd);
  }
  deliver(s);
  if (s->eofs_len == 0 || s->closed) return;
  /* JavaScript has had the last bytes of these and may have answered them: each closes now,
     or once that answer is written (as node's sockets do when half-open is not allowed). */
  for (uint32_t i = 0; i < s->eofs_len; i++) {
    conn_t *c = lookup(s, s->eofs[i]);
    if (c && c->out_len == 0) closed_by_peer(s, HANDLE_FD(s->eofs[i]));
  }
  s->eofs_len = 0;
  deliver(s);
}

static void free_server(server_t *s) {
  free(s->conns);
  free(s->batch);
  free(s->eofs);
  free(s);
}

static void on_poll_closed(uv_handle_t *handle) {
  server_t *s = handle->data;
  s->poll_closed = 1;
  if (s->finalized) free_server(s);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  server_t *s = data;
  s->finalized = 1;
  if (s->poll_closed) free_server(s);
}

/* Closes the listening socket and every connection, without records: the server is going away. */
static void shut(server_t *s) {
  if (s->closed) return;
  s->closed = 1;
  for (uint32_t fd = 0; fd < s->conns_cap; fd++) {
    if (s->conns[fd].flags & F_OPEN) release(s, (int)fd);
  }
  uv_poll_stop(&s->poll);
  close(s->lfd);
  close(s->epfd);
  if (s->reserve_fd >= 0) close(s->reserve_fd);
  napi_delete_reference(s->env, s->callback);
  napi_async_destroy(s->env, s->async);
}

static void env_cleanup(void *arg) {
  server_t *s = arg;
  if (s->closed) return;
  shut(s);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* ---- JavaScript functions ---------------------------------------------------- */

#define CHECK(call)                                        \
  do {                                                     \
    if ((call) != napi_ok) {                               \
      napi_throw_error(env, NULL, "invalid arguments");    \
      return NULL;                                         \
    }                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  const char *name = err == EADDRINUSE ? "EADDRINUSE" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EACCES ? "EACCES" : err == EMFILE ? "EMFILE" : "ERR_EPOLL_TRANSPORT";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, text, &error);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static server_t *server_arg(napi_env env, napi_value v) {
  server_t *s = NULL;
  if (napi_get_value_external(env, v, (void **)&s) != napi_ok || !s) return NULL;
  return s->closed ? NULL : s;
}

/* listen(address: string (numeric), port, backlog, onBatch(batch: Buffer)) -> [server, port] */
static napi_value js_listen(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_len;
  int32_t port, backlog;
  CHECK(napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len));
  CHECK(napi_get_value_int32(env, argv[1], &port));
  CHECK(napi_get_value_int32(env, argv[2], &backlog));
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  socklen_t addr_len;
  int family;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    family = a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    addr_len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    family = a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    addr_len = sizeof *a6;
  } else {
    napi_throw_error(env, NULL, "listen: the address must be a numeric IPv4 or IPv6 address");
    return NULL;
  }
  int lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&addr, addr_len) != 0 || listen(lfd, backlog) != 0) {
    int err = errno;
    close(lfd);
    return throw_errno(env, "listen", err);
  }
  getsockname(lfd, (struct sockaddr *)&addr, &addr_len);
  int bound = ntohs(family == AF_INET ? a4->sin_port : a6->sin6_port);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
    int err = errno;
    close(lfd);
    if (epfd >= 0) close(epfd);
    return throw_errno(env, "epoll", err);
  }
  server_t *s = calloc(1, sizeof *s);
  uv_loop_t *loop;
  if (!s || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, epfd) != 0) {
    free(s);
    close(lfd);
    close(epfd);
    napi_throw_error(env, NULL, "listen: cannot register with the event loop");
    return NULL;
  }
  s->env = env;
  s->epfd = epfd;
  s->lfd = lfd;
  s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  s->poll.data = s;
  napi_value name;
  napi_create_string_utf8(env, "pulsekeeper:epoll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->async);
  napi_create_reference(env, argv[3], 1, &s->callback);
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  napi_add_env_cleanup_hook(env, env_cleanup, s);
  napi_value out, ext, port_v;
  napi_create_external(env, s, on_finalize, NULL, &ext);
  napi_create_int32(env, bound, &port_v);
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, ext);
  napi_set_element(env, out, 1, port_v);
  return out;
}

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

/* write(server, handle, data) -> bytes still queued, or -1 if the connection is gone */
static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_t *s = server_arg(env, argv[0]);
  int64_t handle;
  void *data;
  size_t len;
  CHECK(napi_get_value_int64(env, argv[1], &handle));
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  conn_t *c = s ? lookup(s, handle) : NULL;
  if (!c || (c->flags & F_ENDING)) return number(env, -1);
  int fd = HANDLE_FD(handle);
  size_t off = 0;
  if (c->out_len == 0) {
    while (off < len) {
      ssize_t n = send(fd, (uint8_t *)data + off, len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        /* Reported like a close by the peer, from the next wakeup's batch. */
        shutdown(fd, SHUT_RDWR);
        return number(env, -1);
      }
      off += (size_t)n;
    }
  }
  size_t rest = len - off;
  if (rest > 0) {
    if ((uint64_t)c->out_len + rest > UINT32_MAX) {
      shutdown(fd, SHUT_RDWR);
      return number(env, -1);
    }
    if (c->out_len + rest > c->out_cap) {
      uint32_t cap = c->out_cap ? c->out_cap : 4096;
      while (cap < c->out_len + rest) cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
      uint8_t *p = realloc(c->out, cap);
      if (!p) {
        shutdown(fd, SHUT_RDWR);
        return number(env, -1);
      }
      c->out = p;
      c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, (uint8_t *)data + off, rest);
    c->out_len += (uint32_t)rest;
    if (!(c->flags & F_WANT_OUT)) {
      c->flags |= F_WANT_OUT;
      set_events(s, fd);
    }
  }
  return number(env, c->out_len);
}

/* end(server, handle): closes once queued output is written and the peer has closed its side. */
static napi_value js_end(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_t *s = server_arg(env, argv[0]);
  int64_t handle;
  CHECK(napi_get_value_int64(env, argv[1], &handle));
  conn_t *c = s ? lookup(s, handle) : NULL;
  if (!c || (c->flags & F_ENDING)) return NULL;
  int fd = HANDLE_FD(handle);
  c->flags |= F_ENDING;
  if (c->out_len == 0) shutdown(fd, SHUT_WR);
  set_events(s, fd);
  return NULL;
}

/* destroy(server, handle): closes now; no record follows. */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_t *s = server_arg(env, argv[0]);
  int64_t handle;
  CHECK(napi_get_value_int64(env, argv[1], &handle));
  if (s && lookup(s, handle)) release(s, HANDLE_FD(handle));
  return NULL;
}

static napi_value set_paused(napi_env env, napi_callback_info info, int paused) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_t *s = server_arg(env, argv[0]);
  int64_t handle;
  CHECK(napi_get_value_int64(env, argv[1], &handle));
  conn_t *c = s ? lookup(s, handle) : NULL;
  if (!c || !!(c->flags & F_PAUSED) == paused) return NULL;
  c->flags = paused ? c->flags | F_PAUSED : c->flags & ~F_PAUSED;
  set_events(s, HANDLE_FD(handle));
  return NULL;
}

/* pause(server, handle) / resume(server, handle): stop and start reading the connection. */
static napi_value js_pause(napi_env env, napi_callback_info info) {
  return set_paused(env, info, 1);
}

static napi_value js_resume(napi_env env, napi_callback_info info) {
  return set_paused(env, info, 0);
}

/* close(server): stops listening and closes every connection, without records. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  server_t *s = server_arg(env, argv[0]);
  if (!s) return NULL;
  napi_remove_env_cleanup_hook(env, env_cleanup, s);
  shut(s);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listen", NULL, js_listen, NULL, NULL, NULL, napi_default, NULL},
      {"write", NULL, js_write, NULL, NULL, NULL, napi_default, NULL},
      {"end", NULL, js_end, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, js_destroy, NULL, NULL, NULL, napi_default, NULL},
      {"pause", NULL, js_pause, NULL, NULL, NULL, napi_default, NULL},
      {"resume", NULL, js_resume, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
