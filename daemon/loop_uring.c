/* The io_uring engine: multishot accept and recv into a registered buffer
 * ring, one submit-and-wait per iteration, a ring restricted to the
 * opcodes the loop uses. Built only when meson found liburing. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop_backend.h"

#define URING_BGID 0
#define URING_NSEC 1000000000
#define URING_SPILLED UINT_MAX /* a chunk whose bytes are its own copy */
#define URING_NO_END 1         /* a park that saw no EOF or error */
/* How long a RECV the pool failed waits for a buffer to come back before
 * it tries again anyway. */
#define URING_STARVE_NS 1000000

/* One completion's worth of parked input: in pool buffer bid (one chunk
 * per buffer, preallocated), or spilled into data[]. */
struct uring_chunk {
	struct uring_chunk *next;
	unsigned bid;
	unsigned len;
	char data[];
};

/* An op's parked input, oldest first, then the end the kernel reported
 * after it (res 0 or -errno), if any. */
struct loop_park {
	struct loop_op *op;
	int fd;
	int end;
	struct uring_chunk *head, *tail;
	struct loop_park *prev, *next; /* on uring_state.parks, oldest first */
};

/* Every SQE opcode the engine issues; the ring allows no other. */
static const uint8_t uring_opcodes[] = {
	IORING_OP_ACCEPT,  IORING_OP_RECV,    IORING_OP_SEND,
	IORING_OP_RECVMSG, IORING_OP_SENDMSG, IORING_OP_READ,
	IORING_OP_ASYNC_CANCEL,
};

struct uring_state {
	struct loop *loop;
	struct loop_counters *counters;
	struct io_uring ring;
	bool started;
	struct io_uring_buf_ring *br;
	size_t br_size;
	char *bufs;
	size_t bufs_size;
	unsigned nbufs;
	unsigned buf_size;
	unsigned nrecycled; /* buffers added since the last ring advance */
	/* Input RECVs got after their cancel was asked for, kept for their
	 * next loop_recv() (see uring_hold()): chunks[bid] describes pool
	 * buffer bid while it is parked; npool_parked counts those. */
	struct uring_chunk *chunks;
	struct loop_park *parks, *parks_tail;
	unsigned npool_parked;
	size_t spilled; /* bytes of parked input copied out of the pool */
	/* Buffers loop_buf_keep() took out of the pool: kept[bid] is 1
	 * until loop_buf_release(); nkept counts them. While a callback
	 * runs with pool buffer lent_bid, lending is set, and lent_taken
	 * once that buffer was kept, so the engine does not recycle it. */
	uint8_t *kept;
	unsigned nkept;
	bool lending;
	bool lent_taken;
	unsigned lent_bid;
	/* Ops to (re)submit, to finish, or whose cancel found no SQE;
	 * flagged LOOP_OPF_REARM, linked by op->next, run after each CQE
	 * batch once the batch's buffers are back in the ring. */
	struct loop_op *later_head;
	struct loop_op *later_tail;
	/* RECVs the pool failed (-ENOBUFS), oldest first, flagged
	 * LOOP_OPF_STARVED and linked by op->next: re-armed as buffers
	 * return to the ring, one per buffer, not at once, or ops whose
	 * sockets have input would spin on -ENOBUFS while parked input
	 * holds the pool. */
	struct loop_op *starved, *starved_tail;
	int64_t starved_since;
};

static const char *uring_reason(int err)
{
	switch (err) {
	case 0:
		return "io_uring available";
	case -EPERM:
		return "Operation not permitted: blocked by seccomp or "
		       "kernel.io_uring_disabled";
	case -ENOSYS:
		return "Function not implemented: kernel without io_uring";
	case -ENOMEM:
		return "Cannot allocate memory: RLIMIT_MEMLOCK too small";
	case -EOPNOTSUPP:
		return "operation not supported: kernel lacks multishot recv "
		       "or buffer rings";
	default:
		return "io_uring setup failed";
	}
}

static int uring_check_opcodes(struct io_uring *ring)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
	int err = 0;

	if (!probe)
		return -EOPNOTSUPP;
	/* Multishot recv has no opcode of its own; it came in 6.0 with
	 * IORING_OP_SEND_ZC, which the probe does show. */
	if (probe->last_op < IORING_OP_SEND_ZC)
		err = -EOPNOTSUPP;
	for (size_t i = 0; i < sizeof(uring_opcodes); i++) {
		if (!io_uring_opcode_supported(probe, uring_opcodes[i]))
			err = -EOPNOTSUPP;
	}
	io_uring_free_probe(probe);
	return err;
}

static void *uring_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static size_t uring_page_round(size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (size + page - 1) / page * page;
}

static int uring_init(struct loop *l, const struct loop_config *cfg,
		      void **state);
static void uring_destroy(void *state);

/* Builds the very ring a loop with default parameters would (setup
 * flags, buffer ring, restrictions), so a yes here means the workers'
 * rings will come up too. */
int loop_uring_probe(const char **why)
{
	struct loop_counters unused = { 0 };
	const struct loop_config cfg = {
		.entries = LOOP_DEFAULT_ENTRIES,
		.nbufs = LOOP_DEFAULT_NBUFS,
		.buf_size = LOOP_DEFAULT_BUF_SIZE,
		.counters = &unused,
	};
	void *state = NULL;
	int err = uring_init(NULL, &cfg, &state);

	if (err == 0)
		uring_destroy(state);
	if (why)
		*why = uring_reason(err);
	return err;
}

/* DEFER_TASKRUN runs completions only when this thread waits (no IPIs,
 * no task work in the middle of a callback) and needs SINGLE_ISSUER;
 * COOP_TASKRUN is the older, weaker form. R_DISABLED lets us register
 * restrictions before anything can be submitted. */
static int uring_ring_init(struct uring_state *us, unsigned entries)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	int err = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = {
			.flags = tries[i] | IORING_SETUP_R_DISABLED |
				 IORING_SETUP_CLAMP,
		};

		err = io_uring_queue_init_params(entries, &us->ring, &p);
		if (err != -EINVAL)
			return err;
	}
	return err;
}

static int uring_bufs_init(struct uring_state *us)
{
	struct io_uring_buf_reg reg = {
		.ring_entries = us->nbufs,
		.bgid = URING_BGID,
	};
	int mask = io_uring_buf_ring_mask(us->nbufs);
	int err;

	/* The kernel wants the ring page aligned; liburing 2.3 has no
	 * io_uring_setup_buf_ring() to do this for us. */
	us->br_size = uring_page_round(us->nbufs * sizeof(struct io_uring_buf));
	us->br = uring_map(us->br_size);
	us->bufs_size = (size_t)us->nbufs * us->buf_size;
	us->bufs = uring_map(us->bufs_size);
	us->chunks = calloc(us->nbufs, sizeof(*us->chunks));
	us->kept = calloc(us->nbufs, sizeof(*us->kept));
	if (!us->br || !us->bufs || !us->chunks || !us->kept)
		return -ENOMEM;
	reg.ring_addr = (uintptr_t)us->br;
	err = io_uring_register_buf_ring(&us->ring, &reg, 0);
	if (err)
		return err == -EINVAL ? -EOPNOTSUPP : err;
	io_uring_buf_ring_init(us->br);
	for (unsigned i = 0; i < us->nbufs; i++) {
		char *buf = us->bufs + (size_t)i * us->buf_size;

		io_uring_buf_ring_add(us->br, buf, us->buf_size,
				      (unsigned short)i, mask, (int)i);
	}
	io_uring_buf_ring_advance(us->br, (int)us->nbufs);
	return 0;
}

/* Debian's liburing 2.3 declares io_uring_register_restrictions() and
 * io_uring_enable_rings() but its symbol map does not export them. */
static int uring_register(struct uring_state *us, unsigned opcode,
			  const void *arg, unsigned nr)
{
	if (syscall(__NR_io_uring_register, us->ring.ring_fd, opcode, arg,
		    nr) < 0)
		return -errno;
	return 0;
}

/* seccomp cannot see what a ring does, so the ring itself refuses every
 * opcode and SQE flag we do not use. The only register ops left are the
 * ring fd ones uring_start() and io_uring_queue_exit() need. Kernels
 * without restrictions (before 5.10) cannot run this engine anyway. */
static int uring_restrict(struct uring_state *us)
{
	struct io_uring_restriction res[sizeof(uring_opcodes) + 3] = { 0 };
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(uring_opcodes); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = uring_opcodes[i];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = IOSQE_BUFFER_SELECT;
	res[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[n++].register_op = IORING_REGISTER_RING_FDS;
	res[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[n++].register_op = IORING_UNREGISTER_RING_FDS;
	return uring_register(us, IORING_REGISTER_RESTRICTIONS, res, n);
}

/* Enabling at the first io_uring_enter(), not in loop_new(), makes the
 * thread that runs the loop the ring's single issuer and the owner of
 * its registered fd, wherever loop_new() was called. */
static int uring_start(struct uring_state *us)
{
	int err;

	if (us->started)
		return 0;
	err = uring_register(us, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (err)
		return err;
	us->started = true;
	/* Saves an fget/fput per io_uring_enter(); without a free slot in
	 * this thread's table the plain fd works as well. */
	io_uring_register_ring_fd(&us->ring);
	return 0;
}

static struct io_uring_sqe *uring_sqe(struct uring_state *us)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&us->ring);

	if (sqe || uring_start(us) < 0)
		return sqe;
	/* SQ full: hand the queued SQEs to the kernel and retry once; if
	 * that fails the caller parks the op on the later list. */
	loop_count(us->counters, LOOP_STAT_SQ_FULL);
	io_uring_submit(&us->ring);
	return io_uring_get_sqe(&us->ring);
}

/* Appends op to the list from *head to *tail, linked by op->next. */
static void uring_append(struct loop_op **head, struct loop_op **tail,
			 struct loop_op *op)
{
	op->next = NULL;
	if (*tail)
		(*tail)->next = op;
	else
		*head = op;
	*tail = op;
}

static void uring_later(struct uring_state *us, struct loop_op *op)
{
	op->flags |= LOOP_OPF_REARM;
	uring_append(&us->later_head, &us->later_tail, op);
}

/* Only an op whose cancel SQE is parked can complete while listed. */
static void uring_later_remove(struct uring_state *us, struct loop_op *op)
{
	struct loop_op *prev = NULL;

	op->flags &= ~LOOP_OPF_REARM;
	for (struct loop_op *o = us->later_head; o; prev = o, o = o->next) {
		if (o != op)
			continue;
		if (prev)
			prev->next = op->next;
		else
			us->later_head = op->next;
		if (us->later_tail == op)
			us->later_tail = prev;
		return;
	}
}

static void uring_prep(struct io_uring_sqe *sqe, struct loop_op *op)
{
	switch (op->opcode) {
	case LOOP_OP_ACCEPT:
		io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
					       SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case LOOP_OP_RECV:
		io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = URING_BGID;
		break;
	case LOOP_OP_SEND:
		io_uring_prep_send(sqe, op->fd, op->buf, op->len,
				   MSG_NOSIGNAL |
				   (op->flags & LOOP_OPF_MORE ? MSG_MORE : 0));
		break;
	case LOOP_OP_RECVMSG:
		io_uring_prep_recvmsg(sqe, op->fd, op->msg, 0);
		break;
	case LOOP_OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, op->fd, op->msg, MSG_NOSIGNAL);
		break;
	case LOOP_OP_READ:
		/* -1: the file position, which pipes and eventfds ignore. */
		io_uring_prep_read(sqe, op->fd, op->buf, (unsigned)op->len,
				   (uint64_t)-1);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
}

static void uring_arm(struct uring_state *us, struct loop_op *op)
{
	struct io_uring_sqe *sqe = uring_sqe(us);

	if (!sqe) {
		uring_later(us, op);
		return;
	}
	uring_prep(sqe, op);
	op->flags |= LOOP_OPF_ARMED;
}

/* A RECV with parked input takes it before anything new: the later
 * list delivers it, as submitting never calls back. */
static void uring_submit(void *state, struct loop_op *op)
{
	struct uring_state *us = state;

	if (op->opcode == LOOP_OP_RECV && op->park)
		uring_later(us, op);
	else
		uring_arm(us, op);
}

static void uring_cancel_sqe(struct uring_state *us, struct loop_op *op)
{
	struct io_uring_sqe *sqe = uring_sqe(us);

	if (!sqe) {
		uring_later(us, op);
		return;
	}
	io_uring_prep_cancel64(sqe, (uintptr_t)op, 0);
	/* The cancel's own CQE carries no op: uring_complete() skips it.
	 * A cancel that finds nothing (the op just ended) is harmless. */
	io_uring_sqe_set_data(sqe, NULL);
}

static void uring_starve(struct uring_state *us, struct loop_op *op)
{
	if (!us->starved)
		us->starved_since = loop_now(us->loop);
	op->flags |= LOOP_OPF_STARVED;
	uring_append(&us->starved, &us->starved_tail, op);
}

/* Up to n starved RECVs (only that one, if given) go to the later list,
 * to be re-armed or, if cancelled meanwhile, finished. */
static void uring_unstarve(struct uring_state *us, struct loop_op *only,
			   unsigned n)
{
	struct loop_op **link = &us->starved;
	struct loop_op *prev = NULL;

	while (*link && n) {
		struct loop_op *op = *link;

		if (only && op != only) {
			prev = op;
			link = &op->next;
			continue;
		}
		*link = op->next;
		if (us->starved_tail == op)
			us->starved_tail = prev;
		op->flags &= ~LOOP_OPF_STARVED;
		uring_later(us, op);
		n--;
	}
	us->starved_since = loop_now(us->loop);
}

static void uring_cancel(void *state, struct loop_op *op)
{
	struct uring_state *us = state;

	op->flags |= LOOP_OPF_CANCEL;
	if (op->flags & LOOP_OPF_STARVED)
		uring_unstarve(us, op, 1);
	/* An op waiting on the later list ends there with -ECANCELED. */
	if (op->flags & LOOP_OPF_ARMED)
		uring_cancel_sqe(us, op);
}

static bool uring_has_payload(const struct loop_op *op, int res)
{
	return op->opcode == LOOP_OP_ACCEPT ? res >= 0 : res > 0;
}

/* A multishot op the kernel ended for its own reasons: the pool ran dry
 * (-ENOBUFS), the CQ overflowed (a result without F_MORE), or one
 * incoming connection failed. The caller never learns of it, so the
 * counter is the only trace. */
static bool uring_rearm_wanted(struct uring_state *us,
			       const struct loop_op *op, int res)
{
	enum loop_stat why;

	if (!loop_op_multishot(op))
		return false;
	if (uring_has_payload(op, res))
		why = LOOP_STAT_REARM_OVERFLOW;
	else if (op->opcode == LOOP_OP_RECV && res == -ENOBUFS)
		why = LOOP_STAT_REARM_NOBUFS;
	else if (op->opcode == LOOP_OP_ACCEPT && loop_accept_transient(res))
		why = LOOP_STAT_REARM_ACCEPT;
	else
		return false;
	loop_count(us->counters, why);
	return true;
}

static void uring_recycle(struct uring_state *us, unsigned bid)
{
	io_uring_buf_ring_add(us->br, us->bufs + (size_t)bid * us->buf_size,
			      us->buf_size, (unsigned short)bid,
			      io_uring_buf_ring_mask(us->nbufs),
			      (int)us->nrecycled++);
}

static char *uring_buf(struct uring_state *us, unsigned bid)
{
	return us->bufs + (size_t)bid * us->buf_size;
}

/* Runs a RECV callback that is lent pool buffer bid and returns whether
 * the callback kept it (loop_buf_keep()), in which case the buffer is
 * loop_buf_release()'s to recycle. Submitting never calls back, so
 * lends never nest. */
static bool uring_lend(struct uring_state *us, struct loop_op *op, int res,
		       unsigned flags, unsigned bid)
{
	us->lending = true;
	us->lent_taken = false;
	us->lent_bid = bid;
	op->cb(op, res, flags, uring_buf(us, bid));
	us->lending = false;
	return us->lent_taken;
}

static int uring_keep(void *state, const void *buf)
{
	struct uring_state *us = state;
	const char *p = buf;

	if (p < us->bufs || p >= us->bufs + us->bufs_size)
		return -EOPNOTSUPP;
	if (!us->lending || us->lent_taken || p != uring_buf(us, us->lent_bid))
		return -EINVAL;
	if (us->nkept >= us->nbufs / 4) {
		loop_count(us->counters, LOOP_STAT_KEEPS_REFUSED);
		return -ENOBUFS;
	}
	us->lent_taken = true;
	us->kept[us->lent_bid] = 1;
	us->nkept++;
	loop_count(us->counters, LOOP_STAT_KEEPS);
	return (int)us->buf_size;
}

/* The ring takes it back at the next uring_bufs_return(): after this
 * CQE batch, or at the top of the next uring_poll(). */
static void uring_release(void *state, const void *buf)
{
	struct uring_state *us = state;
	size_t off = (size_t)((const char *)buf - us->bufs);
	unsigned bid = (unsigned)(off / us->buf_size);

	if ((const char *)buf < us->bufs || off >= us->bufs_size ||
	    off % us->buf_size || !us->kept[bid])
		abort(); /* not a buffer loop_buf_keep() kept */
	us->kept[bid] = 0;
	us->nkept--;
	uring_recycle(us, bid);
}

static void uring_bufs_return(struct uring_state *us)
{
	if (us->nrecycled) {
		io_uring_buf_ring_advance(us->br, (int)us->nrecycled);
		uring_unstarve(us, NULL, us->nrecycled);
		us->nrecycled = 0;
	}
}

static void uring_chunk_free(struct uring_state *us, struct uring_chunk *ch)
{
	if (ch->bid == URING_SPILLED) {
		us->spilled -= ch->len;
		free(ch);
		return;
	}
	us->npool_parked--;
	uring_recycle(us, ch->bid);
}

/* With forget_op false the op is not touched: loop_free() may run after
 * its owner freed it. */
static void uring_park_free(struct uring_state *us, struct loop_park *p,
			    bool forget_op)
{
	struct uring_chunk *ch, *next;

	for (ch = p->head; ch; ch = next) {
		next = ch->next;
		uring_chunk_free(us, ch);
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		us->parks = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		us->parks_tail = p->prev;
	if (forget_op) {
		p->op->park = NULL;
		p->op->parked = 0;
	}
	free(p);
}

static struct loop_park *uring_park_get(struct uring_state *us,
					struct loop_op *op)
{
	struct loop_park *p = op->park;

	if (p)
		return p;
	p = malloc(sizeof(*p));
	if (!p)
		return NULL;
	*p = (struct loop_park){ .op = op, .fd = op->fd, .end = URING_NO_END,
				 .prev = us->parks_tail };
	if (us->parks_tail)
		us->parks_tail->next = p;
	else
		us->parks = p;
	us->parks_tail = p;
	op->park = p;
	return p;
}

/* A RECV completion after its cancel was asked for. Its input goes to
 * the op's park, not to the callback: an owner that stopped reading
 * (over a memory budget, say) gets nothing more until it asks again,
 * and the pool, which it was going to use anyway, holds the bytes. An
 * EOF or error behind parked input is parked after it. Returns what
 * the owner sees of this completion: -ECANCELED when something was
 * parked (the final result, if the op ends here), else res unchanged;
 * *held says whether buffer bid stays out of the ring. */
static int uring_hold(struct uring_state *us, struct loop_op *op, int res,
		      bool buffered, unsigned bid, bool *held)
{
	struct loop_park *p = op->park;
	struct uring_chunk *ch;

	*held = false;
	if (res > 0 && buffered) {
		p = uring_park_get(us, op);
		/* Without memory for the park, late beats lost. */
		if (!p)
			return res;
		ch = &us->chunks[bid];
		*ch = (struct uring_chunk){ .bid = bid, .len = (unsigned)res };
		if (p->tail)
			p->tail->next = ch;
		else
			p->head = ch;
		p->tail = ch;
		op->parked += (uint32_t)res;
		us->npool_parked++;
		*held = true;
		return -ECANCELED;
	}
	if (p && res != -ECANCELED && res != -ENOBUFS &&
	    p->end == URING_NO_END) {
		p->end = res;
		return -ECANCELED;
	}
	return res;
}

/* The pool ran dry under a RECV that was not cancelled while parked
 * input holds part of it: copy the oldest parked buffers out, an eighth
 * of the pool at a time, so that a few connections that stopped reading
 * cannot stall everyone else. The copies stay within a quarter of the
 * pool: that is enough for the buffers to go round, every byte of it is
 * memory beyond the budget (a whole pool of copies cost 2.5 MiB of RSS
 * in test_max_buffered_bounds_rss), and no cap stops peers that never
 * read from parking whatever the cap leaves: their idle timeout does. */
static void uring_spill(struct uring_state *us)
{
	size_t cap = (size_t)us->nbufs * us->buf_size / 4;
	unsigned want = us->nbufs / 8 ? us->nbufs / 8 : 1;

	for (struct loop_park *p = us->parks; p && want; p = p->next) {
		for (struct uring_chunk **link = &p->head; *link && want;
		     link = &(*link)->next) {
			struct uring_chunk *ch = *link;
			struct uring_chunk *copy;

			if (ch->bid == URING_SPILLED)
				continue;
			if (us->spilled + ch->len > cap)
				return;
			copy = malloc(sizeof(*copy) + ch->len);
			if (!copy)
				return;
			copy->next = ch->next;
			copy->bid = URING_SPILLED;
			copy->len = ch->len;
			memcpy(copy->data, uring_buf(us, ch->bid), ch->len);
			*link = copy;
			if (p->tail == ch)
				p->tail = copy;
			us->spilled += ch->len;
			loop_count(us->counters, LOOP_STAT_SPILLS);
			uring_chunk_free(us, ch);
			want--;
		}
	}
}

/* Hands a resubmitted RECV its parked input, oldest first, one MORE
 * completion per chunk, then the end it saw, or else arms it for new
 * input. A cancel from one of the callbacks stops it there with
 * -ECANCELED; the rest stays parked. */
static void uring_deliver_parked(struct uring_state *us, struct loop_op *op)
{
	struct loop_park *p = op->park;
	struct uring_chunk *ch;
	int end;

	while ((ch = p->head) && !(op->flags & LOOP_OPF_CANCEL)) {
		p->head = ch->next;
		if (!p->head)
			p->tail = NULL;
		op->parked -= (uint32_t)ch->len;
		if (ch->bid == URING_SPILLED) {
			op->cb(op, (int)ch->len, LOOP_F_MORE | LOOP_F_BUFFER,
			       ch->data);
			uring_chunk_free(us, ch);
		} else if (uring_lend(us, op, (int)ch->len,
				      LOOP_F_MORE | LOOP_F_BUFFER, ch->bid)) {
			us->npool_parked--; /* kept: no longer parked */
		} else {
			uring_chunk_free(us, ch);
		}
	}
	end = p->end;
	if (!p->head && (end == URING_NO_END || !(op->flags & LOOP_OPF_CANCEL)))
		uring_park_free(us, p, true);
	if (op->flags & LOOP_OPF_CANCEL)
		end = -ECANCELED;
	if (end == URING_NO_END) {
		uring_bufs_return(us);
		uring_arm(us, op);
		return;
	}
	op->flags = 0;
	op->cb(op, end, 0, NULL);
}

static void uring_forget(void *state, int fd)
{
	struct uring_state *us = state;
	struct loop_park *p, *next;

	for (p = us->parks; p; p = next) {
		next = p->next;
		if (p->fd == fd)
			uring_park_free(us, p, true);
	}
}

/* A multishot op still delivering after its cancel was asked for: its
 * CQEs were already queued, or the cancel missed it (a multishot recv the
 * kernel runs from task work is not found, and the cancel ends in
 * -ENOENT). Ask again. What it can still take is bounded by the pool:
 * its parked buffers stay out of the ring, and once the pool runs dry the
 * kernel ends it with -ENOBUFS, which a cancelled op is not re-armed
 * from. */
static void uring_late(struct uring_state *us, struct loop_op *op)
{
	loop_count(us->counters, LOOP_STAT_LATE);
	/* On the later list already: its cancel is parked there. */
	if (!(op->flags & LOOP_OPF_REARM))
		uring_cancel_sqe(us, op);
}

static void uring_complete(struct uring_state *us, struct io_uring_cqe *cqe)
{
	struct loop_op *op = io_uring_cqe_get_data(cqe);
	bool buffered = cqe->flags & IORING_CQE_F_BUFFER;
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	bool more = cqe->flags & IORING_CQE_F_MORE;
	bool held = false;
	bool taken = false;
	int res = cqe->res;

	if (op && (op->flags & LOOP_OPF_CANCEL)) {
		if (op->opcode == LOOP_OP_RECV)
			res = uring_hold(us, op, res, buffered, bid, &held);
		if (more)
			uring_late(us, op);
	}
	if (op && !more) {
		/* Before the callback, which may free op. */
		op->flags &= ~LOOP_OPF_ARMED;
		if (op->flags & LOOP_OPF_REARM)
			uring_later_remove(us, op);
		if (res == -ENOBUFS && us->npool_parked &&
		    op->opcode == LOOP_OP_RECV &&
		    !(op->flags & LOOP_OPF_CANCEL))
			uring_spill(us);
		if (uring_rearm_wanted(us, op, res)) {
			if (res == -ENOBUFS && !(op->flags & LOOP_OPF_CANCEL))
				uring_starve(us, op);
			else
				uring_later(us, op);
			more = true;
			if (!uring_has_payload(op, res))
				op = NULL;
		} else {
			op->flags = 0;
		}
	}
	if (op && !(held && more)) {
		unsigned f = more ? LOOP_F_MORE : 0;

		if (buffered && res > 0)
			taken = uring_lend(us, op, res, f | LOOP_F_BUFFER, bid);
		else
			op->cb(op, res, f, NULL);
	}
	if (buffered && !held && !taken)
		uring_recycle(us, bid);
}

/* Runs a detached list so ops that fail to get an SQE again wait for
 * the next iteration instead of spinning here. */
static void uring_run_later(struct uring_state *us)
{
	struct loop_op *op = us->later_head;

	us->later_head = us->later_tail = NULL;
	while (op) {
		struct loop_op *next = op->next;

		op->next = NULL;
		op->flags &= ~LOOP_OPF_REARM;
		if (op->flags & LOOP_OPF_ARMED) {
			uring_cancel_sqe(us, op);
		} else if (op->flags & LOOP_OPF_CANCEL) {
			op->flags = 0;
			op->cb(op, -ECANCELED, 0, NULL);
		} else if (op->opcode == LOOP_OP_RECV && op->park) {
			uring_deliver_parked(us, op);
		} else {
			uring_arm(us, op);
		}
		op = next;
	}
	uring_bufs_return(us);
}

static void uring_dispatch(struct uring_state *us)
{
	struct io_uring_cqe *cqe;
	unsigned head;
	unsigned seen = 0;

	io_uring_for_each_cqe(&us->ring, head, cqe)
	{
		uring_complete(us, cqe);
		seen++;
	}
	/* Buffers go back before the re-arms below can need them. */
	uring_bufs_return(us);
	io_uring_cq_advance(&us->ring, seen);
	uring_run_later(us);
}

static int uring_poll(void *state, int64_t timeout_ns)
{
	struct uring_state *us = state;
	struct __kernel_timespec ts;
	struct __kernel_timespec *tsp = NULL;
	struct io_uring_cqe *cqe;
	int err = uring_start(us);

	if (err)
		return err;
	/* Buffers loop_close() freed from parks go back now. A starved
	 * RECV also tries again after a while without them, in case its
	 * buffers came back before it was listed. */
	uring_bufs_return(us);
	if (us->starved && (timeout_ns < 0 || timeout_ns > URING_STARVE_NS))
		timeout_ns = URING_STARVE_NS;
	if (us->later_head)
		timeout_ns = 0;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / URING_NSEC;
		ts.tv_nsec = timeout_ns % URING_NSEC;
		tsp = &ts;
	}
	/* The kernel has EXT_ARG (5.11+, implied by multishot recv), so
	 * the timeout travels with the wait and needs no timeout SQE. */
	loop_count(us->counters, LOOP_STAT_WAITS);
	err = io_uring_submit_and_wait_timeout(&us->ring, &cqe, 1, tsp, NULL);
	/* ETIME: a timer is due. EINTR: a signal. EAGAIN, EBUSY: the
	 * kernel wants us to reap first, which we do now. */
	if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN &&
	    err != -EBUSY)
		return err;
	loop_update_now(us->loop);
	uring_dispatch(us);
	if (us->starved &&
	    loop_now(us->loop) - us->starved_since >= URING_STARVE_NS)
		uring_unstarve(us, NULL, UINT_MAX);
	return 0;
}

static void uring_destroy(void *state)
{
	struct uring_state *us = state;

	/* Before the buffer ring goes: freeing a park recycles buffers. */
	while (us->parks)
		uring_park_free(us, us->parks, false);
	io_uring_queue_exit(&us->ring);
	if (us->br)
		munmap(us->br, us->br_size);
	if (us->bufs)
		munmap(us->bufs, us->bufs_size);
	free(us->chunks);
	free(us->kept);
	free(us);
}

static int uring_init(struct loop *l, const struct loop_config *cfg,
		      void **state)
{
	struct uring_state *us = calloc(1, sizeof(*us));
	int err;

	if (!us)
		return -ENOMEM;
	us->loop = l;
	us->counters = cfg->counters;
	us->nbufs = cfg->nbufs;
	us->buf_size = cfg->buf_size;
	err = uring_ring_init(us, cfg->entries);
	if (err) {
		free(us);
		return err;
	}
	err = uring_check_opcodes(&us->ring);
	if (!err)
		err = uring_bufs_init(us);
	if (!err)
		err = uring_restrict(us);
	if (err) {
		uring_destroy(us);
		return err;
	}
	*state = us;
	return 0;
}

const struct loop_engine loop_uring_engine = {
	.name = "io_uring",
	.init = uring_init,
	.destroy = uring_destroy,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.forget = uring_forget,
	.poll = uring_poll,
	.keep = uring_keep,
	.release = uring_release,
};
