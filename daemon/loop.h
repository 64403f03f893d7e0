/* The completion-shaped event loop shared by ringd and ringd-probe: submit
 * an operation, later get exactly one callback per completion. io_uring
 * works this way natively; the epoll engine performs the syscall when the
 * fd is ready and completes the op the same way. The loop knows no
 * connection, service or configuration. One loop per thread; nothing here
 * is thread-safe except loop_wake(). */
#ifndef RINGD_LOOP_H
#define RINGD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum loop_backend {
	LOOP_BACKEND_AUTO = 0, /* io_uring when usable, else epoll */
	LOOP_BACKEND_IO_URING,
	LOOP_BACKEND_EPOLL,
};

/* Completion flags. */
#define LOOP_F_MORE 0x1u   /* a multishot op stays armed: more will come */
#define LOOP_F_BUFFER 0x2u /* buf points into the loop's buffer pool */

struct loop;
struct loop_op;
struct loop_park;

/* res is what the syscall would return: bytes, a new fd, or -errno.
 * buf is set for RECV completions with res > 0 (LOOP_F_BUFFER) and is
 * valid only until the callback returns; the loop then recycles it. */
typedef void (*loop_cb)(struct loop_op *op, int res, unsigned flags,
			void *buf);

enum loop_opcode {
	LOOP_OP_NONE = 0,
	LOOP_OP_ACCEPT,  /* multishot: res = new fd (nonblocking, cloexec) */
	LOOP_OP_RECV,    /* multishot into pool buffers; res 0 = EOF */
	LOOP_OP_SEND,    /* one shot from op->buf/len; res may be short */
	LOOP_OP_RECVMSG, /* one shot into op->msg */
	LOOP_OP_SENDMSG, /* one shot from op->msg */
	LOOP_OP_READ,    /* one shot read(2) into op->buf/len (eventfd...) */
};

/* An operation, embedded in the caller's own struct (no allocation per
 * op; recover the owner with container_of). The caller zeroes it once
 * (a designated initializer does) and sets cb and data before
 * submitting; the rest belongs to the loop while the op is in flight,
 * and park for as long as it holds input (loop_cancel()). An op is in
 * flight from submit until the completion without LOOP_F_MORE; it must
 * not be freed or resubmitted before. */
struct loop_op {
	loop_cb cb;
	void *data;

	/* private to the loop; each opcode uses its own member of the
	 * union, so an op costs 56 bytes (two per stream connection) */
	uint8_t opcode;
	uint8_t flags;
	int fd;
	int res;         /* a result the engine holds back until loop_run() */
	uint32_t parked; /* RECV: bytes in park (at most the pool) */
	union {
		struct {         /* SEND, READ */
			void *buf;
			size_t len;
		};
		struct msghdr *msg;     /* RECVMSG, SENDMSG */
		struct loop_park *park; /* RECV, io_uring: input held for the
					   next RECV; kept across submits */
	};
	struct loop_op *next; /* engine queues */
};

/* Timers live in the loop's heap (no kernel object per timer). A timer is
 * embedded in the caller's struct like an op. */
struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);
struct loop_timer {
	loop_timer_cb cb;
	void *data;
	/* private */
	int64_t when; /* CLOCK_MONOTONIC ns */
	uint64_t seq; /* arming order: ties on when, and the pass limit */
	uint32_t idx; /* heap slot + 1; 0 when not armed */
};

struct loop_params {
	enum loop_backend backend;
	unsigned entries;  /* io_uring SQ size; 0 = default (512) */
	unsigned nbufs;    /* pool buffers for RECV; 0 = default; power of 2 */
	unsigned buf_size; /* bytes per buffer; 0 = default (16384) */
};

/* Engine availability, for engine choice and ringd -V. Returns 0 when
 * io_uring can create a ring and supports every opcode the loop needs,
 * else -errno (EPERM: blocked by seccomp or io_uring_disabled, ENOSYS:
 * kernel without io_uring or built with -Dio_uring=disabled, ENOMEM:
 * RLIMIT_MEMLOCK too small, EOPNOTSUPP: an opcode is missing) and, when
 * why is not NULL, a static description of the reason. */
int loop_uring_probe(const char **why);

/* Create a loop. AUTO picks io_uring when loop_uring_probe() succeeds,
 * else epoll (the caller logs the fallback once; loop_backend_name()
 * tells which engine runs). An explicit IO_URING that cannot start fails
 * with its -errno; it never silently becomes epoll. Returns 0 and sets
 * *out, or -errno. */
int loop_new(struct loop **out, const struct loop_params *p);
void loop_free(struct loop *l);
const char *loop_backend_name(const struct loop *l); /* "io_uring"|"epoll" */

/* Submitting never calls back synchronously: completions arrive from
 * loop_run(), even when the epoll engine could finish at once. */
void loop_accept(struct loop *l, struct loop_op *op, int fd);
void loop_recv(struct loop *l, struct loop_op *op, int fd);
void loop_send(struct loop *l, struct loop_op *op, int fd, const void *buf,
	       size_t len);
/* A send with MSG_MORE: the kernel holds a segment shorter than the MSS
 * for what follows, so the FIN of a shutdown() or close() made when it
 * completes leaves in the same packet as the data (one packet where
 * TCP_NODELAY would send two). Only for a connection's last bytes: data
 * sent this way waits until something else is sent or the socket shuts. */
void loop_send_more(struct loop *l, struct loop_op *op, int fd,
		    const void *buf, size_t len);
void loop_recvmsg(struct loop *l, struct loop_op *op, int fd,
		  struct msghdr *msg);
void loop_sendmsg(struct loop *l, struct loop_op *op, int fd,
		  struct msghdr *msg);
void loop_read(struct loop *l, struct loop_op *op, int fd, void *buf,
	       size_t len);

/* Ask an in-flight op to finish. Its final completion (no LOOP_F_MORE)
 * still arrives, with -ECANCELED, or with its real result if it raced
 * the cancel. Cancelling an op not in flight does nothing.
 *
 * A RECV delivers nothing after its cancel was asked for, not even
 * from inside the callback that asked: input the kernel still hands
 * over (io_uring completes a multishot recv in batches, and a cancel
 * takes effect only later) stays with the loop, parked, and is not lost.
 * The loop owns parked input; the op's next loop_recv() on the same fd
 * delivers it first, in order, one MORE completion per buffer, then an
 * EOF or error the kernel reported after it (as the final completion),
 * and only then reads anew. A cancel from one of those callbacks stops
 * the delivery there (final -ECANCELED); the rest waits again. The op's
 * final completion after a cancel is -ECANCELED whenever input or an
 * end stays parked, so nothing arrives out of order. The op must stay
 * valid until loop_close() of its fd, which drops what is still parked
 * (as loop_free() does).
 *
 * Parked input sits in the RECV buffer pool, which the owner was going
 * to use anyway, so what a cancelled RECV can still take costs no
 * memory beyond the pool. When the pool runs dry under a RECV that was
 * not cancelled while parked input holds part of it, the loop copies the
 * oldest parked input out, up to a quarter of the pool in copies
 * (loop_stats.spills), so a few owners that stopped reading cannot stall
 * the others. Past that, RECVs wait for parked input to be taken or
 * dropped: memory stays within the pool and a quarter whatever the
 * peers do. */
void loop_cancel(struct loop *l, struct loop_op *op);

/* Bytes parked for op's next loop_recv() (see loop_cancel()): input the
 * kernel no longer reports as unread. On the loop's thread; always 0 on
 * epoll. */
size_t loop_recv_parked(const struct loop_op *op);

/* Keeping a RECV buffer past its callback, so its owner can send from
 * it instead of copying the bytes out (echo's reply, say), and give it
 * back once the send is done.
 *
 * loop_buf_keep(): only from inside the callback of a RECV completion
 * that lent buf (LOOP_F_BUFFER), with buf as the callback got it. When
 * it returns a positive number the buffer is kept: buf[0, res) stays
 * valid and unchanged until loop_buf_release(), and the number is the
 * pool memory it takes (the buffer's whole size) for the owner's
 * accounting. Otherwise nothing changed and the buffer is the loop's
 * again when the callback returns (copy what you need), with
 * -EOPNOTSUPP where the buffer is not the pool's to lend (epoll: the
 * loop's one read buffer; io_uring: parked input that had to be copied
 * out of the pool), -ENOBUFS when a quarter of the pool is kept already
 * (so kept buffers alone never starve receives: three quarters of the
 * pool stay the kernel's, less what parked input holds, which
 * loop_cancel() bounds on its own), -EINVAL when buf is not the buffer of the completion in progress or
 * is kept already. */
int loop_buf_keep(struct loop *l, const void *buf);

/* Gives back a buffer loop_buf_keep() kept, exactly once, on the
 * loop's thread: from any callback (the very one that kept it too), a
 * timer, or outside loop_run(), also after loop_close() of the fd it
 * came from. The pool reuses it at once. Every kept buffer must be
 * released before loop_free(), which frees the pool regardless. */
void loop_buf_release(struct loop *l, const void *buf);

/* Buffers kept and not yet released. */
unsigned loop_bufs_kept(const struct loop *l);

/* Close fd once no op on it is in flight (the caller's duty to ensure);
 * the engine forgets its state for that fd number first, parked input
 * of ops on it included. */
void loop_close(struct loop *l, int fd);
/* The same without the close: for an fd this loop stops watching while
 * others keep using it (a listening socket another loop takes over).
 * epoll waits on listeners exclusively, so until the registration goes
 * this loop would take wakeups the other loops then never see. */
void loop_forget(struct loop *l, int fd);

/* Multishot RECV and ACCEPT: the loop re-arms them itself when the kernel
 * ends them for its own reasons (empty buffer pool: -ENOBUFS, CQ
 * overflow), so a caller sees a final completion only for EOF (RECV res
 * 0), a real error, or a cancel. */

/* Timers, on CLOCK_MONOTONIC nanoseconds. A timer fires once, from
 * loop_run(), no earlier than when; timers due at the same time fire in
 * the order they were set. One pass over the heap fires only timers set
 * before the pass began: a timer set (or re-set) from a callback, even
 * for a time already past, waits for the next iteration, so the loop
 * reaches I/O in between and a timer re-arming itself for "now" cannot
 * starve it. */
int64_t loop_now(const struct loop *l); /* cached per iteration */
void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t when);
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->idx != 0;
}

/* What the loop did on its own, which no completion shows: for a
 * /metrics scrape, and for tests that must see a path taken. Every field
 * counts from loop_new() and only grows; a field an engine never takes
 * stays 0 there. */
struct loop_stats {
	/* io_uring: a multishot RECV re-armed after the buffer pool ran
	 * dry (-ENOBUFS). */
	uint64_t rearm_nobufs;
	/* io_uring: a multishot RECV or ACCEPT re-armed after the kernel
	 * ended it with a result, e.g. because the CQ was full. */
	uint64_t rearm_overflow;
	/* Both: a multishot ACCEPT kept armed after an error that concerns
	 * one connection only (ECONNABORTED and the like). */
	uint64_t rearm_accept;
	/* io_uring: an op found the SQ full, so the engine submitted
	 * before the end of the iteration (too small an SQ). */
	uint64_t sq_full;
	/* epoll: ACCEPT, RECV, RECVMSG or READ syscalls that found nothing
	 * to do (EAGAIN): the price of cached readiness. */
	uint64_t eagain_reads;
	/* epoll: SEND or SENDMSG syscalls that found the socket full. */
	uint64_t eagain_writes;
	/* Both: engine waits, one epoll_wait() or io_uring_enter() to wait
	 * per loop iteration. */
	uint64_t waits;
	/* io_uring: completions of a multishot op after its cancel was
	 * asked for; a RECV's input in them is parked (loop_cancel()). */
	uint64_t late_after_cancel;
	/* io_uring: parked buffers copied out of the pool because a RECV
	 * that was not cancelled found it empty (see loop_cancel()). */
	uint64_t spills;
	/* io_uring: RECV buffers kept past their callback
	 * (loop_buf_keep()). */
	uint64_t keeps;
	/* io_uring: loop_buf_keep() refused because a quarter of the pool
	 * was kept already. */
	uint64_t keeps_refused;
};

/* Copies l's counters into *out. Only l's thread writes them, each
 * with a relaxed atomic store, so any thread may call this while the
 * loop runs (not after loop_free()): each field is a value its counter
 * had a moment ago, read with a relaxed atomic load and never torn, but
 * the fields are not one snapshot taken at a single instant. */
void loop_stats(const struct loop *l, struct loop_stats *out);

/* Run until loop_stop(). Returns 0, or -errno on an engine failure. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* From any thread: make the loop's thread call wake_cb soon, once per
 * burst of wakes, from inside loop_run(). */
typedef void (*loop_wake_cb)(struct loop *l, void *arg);
void loop_set_wake(struct loop *l, loop_wake_cb cb, void *arg);
void loop_wake(struct loop *l);

#endif
