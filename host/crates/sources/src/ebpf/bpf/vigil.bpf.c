// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Vigil's kernel programs: every outbound connect(2) on an IPv4 or IPv6 TCP
 * or UDP socket, with its result, and every successful exec, handed to
 * userspace through one ring buffer (each record starts with its kind).
 *
 * Raw tracepoints (sys_enter / sys_exit) rather than syscall tracepoints:
 * they attach through bpf(2) alone, so no tracefs mount is needed on the
 * node. Kernel structures are read with CO-RE (the minimal definitions
 * below carry only the fields used; libbpf relocates them against the
 * running kernel's BTF), so one object runs on every kernel with BTF.
 *
 * Attribution stays cheap here: the thread's cgroup v2 id and network
 * namespace inode travel with each event; userspace maps them to a
 * container. Every event lost on the way is counted in `counters`.
 *
 * The licence is GPL-compatible because bpf_probe_read_* are GPL-only helpers.
 */

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef __TARGET_ARCH_x86
#error "only x86_64 syscall registers are described below"
#endif

#define NR_CONNECT 42
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

/* ---- the kernel's types, only the fields read (CO-RE relocated) ---- */

struct pt_regs___vigil {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct net *net_ns;
} __attribute__((preserve_access_index));

struct file {
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

/* In the kernel these sit in an anonymous struct; CO-RE finds them by name. */
struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

/*
 * Indexed by a variable below, so its size must be the kernel's (CO-RE
 * relocates field offsets, not the stride of a variable index): `ns` is
 * declared for that alone.
 */
struct upid {
	int nr;
	void *ns;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	struct pid *thread_pid;
	struct task_struct *real_parent;
	struct nsproxy *nsproxy;
	struct files_struct *files;
	struct mm_struct *mm;
	char comm[16];
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

struct in6_addr___vigil {
	__u8 bytes[16];
};

/* In the kernel these sit in anonymous unions; CO-RE finds them by name. */
struct sock_common {
	__be32 skc_rcv_saddr;
	__u16 skc_num;
	struct in6_addr___vigil skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

/* ---- what userspace reads (layout mirrored in ebpf/wire.rs) ---- */

/* A connect(2) between its entry and its exit. */
struct pending {
	__u64 sock; /* struct sock *, read again at exit for the local end */
	__u16 family;
	__u16 protocol;
	__u16 port; /* network order, as the caller gave it */
	__u16 _pad;
	__u8 addr[16];
};

#define EVENT_CONNECT 1

/* One connect(2), 96 bytes. */
struct connect_event {
	__u32 kind; /* EVENT_CONNECT */
	__u32 tgid;
	__u32 tid;
	__u32 netns;
	__u64 cgroup_id;
	__u64 time_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
	__s32 ret;
	__u16 family;
	__u16 protocol;
	__u16 remote_port; /* host order */
	__u16 local_port;  /* host order */
	__u8 remote[16];
	__u8 local[16];
	char comm[16];
};

#define EVENT_EXEC 2
#define EXEC_PATH_MAX 256
#define EXEC_ARGS_MAX 256
#define EXEC_ARGS_TRUNCATED 1

/* One successful exec, 568 bytes. */
struct exec_event {
	__u32 kind; /* EVENT_EXEC */
	__u32 tgid;
	__u32 ppid; /* the real parent's tgid */
	__u32 uid;  /* real uid, in the initial user namespace */
	__u64 cgroup_id;
	__u64 time_ns;
	__u16 args_len; /* bytes of `args` read */
	__u16 flags;    /* EXEC_ARGS_TRUNCATED */
	__u32 ns_pid;   /* the pid in its own PID namespace (1: a container's init) */
	char parent_comm[16];
	char filename[EXEC_PATH_MAX]; /* NUL-terminated, cut */
	char args[EXEC_ARGS_MAX];     /* argv as laid out: NUL-separated */
};

/* Indexes of `counters` (mirrored in ebpf/wire.rs). */
enum counter {
	C_SUBMITTED = 0,  /* events written to the ring */
	C_RING_FULL = 1,  /* events lost: the ring had no room */
	C_PENDING_FULL = 2, /* connects not followed: `pending` full */
	C_READ_FAILED = 3,  /* connects whose address or socket could not be read,
			       execs whose path or arguments could not be */
	C_COUNTERS = 4,
};

/* Capacity set by userspace before load (sources.ebpf.ring_buffer_bytes). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Connects in flight, one per thread; bounded (sources.ebpf.max_pending). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

/* The sock behind file descriptor `fd` of the current task, or 0. */
static __always_inline struct sock *sock_of_fd(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	struct socket *socket = BPF_CORE_READ(file, private_data);
	if (!socket)
		return 0;
	return BPF_CORE_READ(socket, sk);
}

SEC("raw_tp/sys_enter")
int vigil_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] != NR_CONNECT)
		return 0;
	struct pt_regs___vigil *regs = (struct pt_regs___vigil *)ctx->args[0];
	int fd = (int)BPF_CORE_READ(regs, di);
	const void *uaddr = (const void *)BPF_CORE_READ(regs, si);
	__u32 len = (__u32)BPF_CORE_READ(regs, dx);

	struct pending p = {};
	if (bpf_probe_read_user(&p.family, sizeof(p.family), uaddr))
		return 0; /* a bad pointer: the kernel refuses the call too */
	if (p.family == AF_INET) {
		if (len < 8)
			return 0;
		/* sockaddr_in: family, port, 4-byte address */
		if (bpf_probe_read_user(&p.port, 2, uaddr + 2) ||
		    bpf_probe_read_user(p.addr, 4, uaddr + 4)) {
			count(C_READ_FAILED);
			return 0;
		}
	} else if (p.family == AF_INET6) {
		if (len < 24)
			return 0;
		/* sockaddr_in6: family, port, flowinfo, 16-byte address */
		if (bpf_probe_read_user(&p.port, 2, uaddr + 2) ||
		    bpf_probe_read_user(p.addr, 16, uaddr + 8)) {
			count(C_READ_FAILED);
			return 0;
		}
	} else {
		return 0; /* unix sockets, AF_UNSPEC (a UDP disconnect) … */
	}
	struct sock *sk = sock_of_fd(fd);
	if (!sk) {
		count(C_READ_FAILED);
		return 0;
	}
	p.protocol = BPF_CORE_READ(sk, sk_protocol);
	if (p.protocol != IPPROTO_TCP && p.protocol != IPPROTO_UDP)
		return 0; /* SCTP, ICMP echo sockets: not in the event model */
	p.sock = (__u64)sk;
	__u64 id = bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&pending, &id, &p, BPF_ANY))
		count(C_PENDING_FULL);
	return 0;
}

SEC("raw_tp/sys_exit")
int vigil_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs___vigil *regs = (struct pt_regs___vigil *)ctx->args[0];
	if (BPF_CORE_READ(regs, orig_ax) != NR_CONNECT)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &id);
	if (!p)
		return 0;
	struct connect_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(C_RING_FULL);
		bpf_map_delete_elem(&pending, &id);
		return 0;
	}
	e->kind = EVENT_CONNECT;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->time_ns = bpf_ktime_get_ns();
	e->ret = (__s32)ctx->args[1];
	e->family = p->family;
	e->protocol = p->protocol;
	e->remote_port = __builtin_bswap16(p->port);
	__builtin_memcpy(e->remote, p->addr, 16);
	__builtin_memset(e->local, 0, 16);
	struct sock *sk = (struct sock *)p->sock;
	e->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (p->family == AF_INET) {
		__be32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(e->local, &local, 4);
	} else {
		bpf_core_read(e->local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_map_delete_elem(&pending, &id);
	bpf_ringbuf_submit(e, 0);
	count(C_SUBMITTED);
	return 0;
}

/*
 * sched_process_exec fires once the new program is loaded, in its own
 * context: `current` is the process with its new mm, whose argument block
 * (arg_start..arg_end) the kernel has just written, so reading it cannot
 * fault. Failed execs never get here. args: task, old pid, linux_binprm.
 */
SEC("raw_tp/sched_process_exec")
int vigil_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(C_RING_FULL);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	e->kind = EVENT_EXEC;
	e->tgid = id >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->time_ns = bpf_ktime_get_ns();
	e->flags = 0;
	/* After exec the thread is the group leader: its pid is the tgid. */
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	e->ns_pid = 0;
	if (level < 32)
		bpf_core_read(&e->ns_pid, sizeof(e->ns_pid), &pid->numbers[level].nr);
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);
	if (bpf_core_read_str(e->parent_comm, sizeof(e->parent_comm), &parent->comm) < 0)
		e->parent_comm[0] = 0;
	const char *filename = BPF_CORE_READ(bprm, filename);
	int failed = 0;
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename) < 0) {
		e->filename[0] = 0;
		failed = 1;
	}
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > EXEC_ARGS_MAX) {
		len = EXEC_ARGS_MAX;
		e->flags |= EXEC_ARGS_TRUNCATED;
	}
	/* Bounded again in a way the verifier can follow. */
	len &= (EXEC_ARGS_MAX << 1) - 1;
	if (len > EXEC_ARGS_MAX)
		len = EXEC_ARGS_MAX;
	if (len && bpf_probe_read_user(e->args, len, (const void *)start)) {
		len = 0;
		failed = 1;
	}
	e->args_len = (__u16)len;
	if (failed)
		count(C_READ_FAILED);
	bpf_ringbuf_submit(e, 0);
	count(C_SUBMITTED);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
