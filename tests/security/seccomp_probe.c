/* Calls each syscall the sandbox's seccomp filter is meant to deny, raw through syscall(2), with arguments
 * that change nothing even when a call gets through (bad fds, NULL pointers, no-op flags), and prints one
 * line per call: "<probe> <errno>", 0 when the call succeeded, "skip" when this architecture has no such
 * call. The test decides what each answer means. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/net.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#define NETLINK_ROUTE 0
#define NETLINK_KOBJECT_UEVENT 15

static void report(const char *probe, long rc, int error) {
    if (rc < 0)
        printf("%s %d\n", probe, error);
    else
        printf("%s 0\n", probe);
    fflush(stdout);
}

#define PROBE(probe, ...)                              \
    do {                                               \
        errno = 0;                                     \
        long rc_ = syscall(__VA_ARGS__);               \
        report(probe, rc_, errno);                     \
    } while (0)

#define SKIP(probe) printf("%s skip\n", probe)

static void probe_clone(const char *probe, unsigned long flags) {
    errno = 0;
    long rc = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (rc == 0)
        _exit(0);
    int error = errno;
    if (rc > 0)
        waitpid((pid_t)rc, NULL, 0);
    report(probe, rc, error);
}

static void probe_personality(const char *probe, unsigned long persona) {
    errno = 0;
    long rc = syscall(SYS_personality, persona);
    int error = errno;
    syscall(SYS_personality, 0UL);
    report(probe, rc, error);
}

static int probe_target;

static void probe_tracing(void) {
    int buffer = 0;
    struct iovec local = {&buffer, sizeof buffer}, remote = {&probe_target, sizeof probe_target};
    PROBE("ptrace(PEEKDATA,parent)", SYS_ptrace, 2 /* PTRACE_PEEKDATA */, getppid(), 0, 0);
    PROBE("process_vm_readv(self)", SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
    PROBE("process_vm_writev(nothing)", SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0);
    PROBE("pidfd_getfd", SYS_pidfd_getfd, -1, 0, 0);
    PROBE("kcmp", SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0);
    PROBE("process_madvise", SYS_process_madvise, -1, NULL, 0, 0, 0);
}

#if defined(__x86_64__)
/* The i386 ABI, reachable from a 64-bit process with int 0x80: the filter must cover it too. */
static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return (int)ret;
}

/* A kernel without IA32 emulation kills int 0x80 callers: try it in a child first (whatever the answer). */
static int i386_abi_available(void) {
    pid_t child = fork();
    if (child == 0) {
        int80(20 /* getpid */, 0, 0, 0);
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void probe_i386(void) {
    if (!i386_abi_available()) {
        SKIP("i386:getpid");
        SKIP("i386:socket(AF_VSOCK)");
        SKIP("i386:socketcall(SOCKET,AF_VSOCK)");
        SKIP("i386:keyctl");
        return;
    }
    long rc = int80(20 /* getpid */, 0, 0, 0);
    report("i386:getpid", rc, (int)-rc);
    rc = int80(359 /* socket */, AF_VSOCK, SOCK_STREAM, 0);
    report("i386:socket(AF_VSOCK)", rc, (int)-rc);
    int *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    args[0] = AF_VSOCK, args[1] = SOCK_STREAM, args[2] = 0;
    rc = int80(102 /* socketcall */, SYS_SOCKET, (long)args, 0);
    report("i386:socketcall(SOCKET,AF_VSOCK)", rc, (int)-rc);
    rc = int80(288 /* keyctl */, -1, 0, 0);
    report("i386:keyctl", rc, (int)-rc);
}

/* The x32 ABI: the native entry with bit 30 set in the call number. */
static void probe_x32(void) {
    PROBE("x32:getpid", 0x40000000L | SYS_getpid);
}
#else
static void probe_x32(void) {
    SKIP("x32:getpid");
}

static void probe_i386(void) {
    SKIP("i386:getpid");
    SKIP("i386:socket(AF_VSOCK)");
    SKIP("i386:socketcall(SOCKET,AF_VSOCK)");
    SKIP("i386:keyctl");
}
#endif

static void probe_sockets(void) {
    PROBE("socket(AF_VSOCK)", SYS_socket, AF_VSOCK, SOCK_STREAM, 0);
    PROBE("socket(AF_PACKET)", SYS_socket, AF_PACKET, SOCK_RAW, 0);
    PROBE("socket(AF_ALG)", SYS_socket, AF_ALG, SOCK_SEQPACKET, 0);
    PROBE("socket(AF_NETLINK,KOBJECT_UEVENT)", SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT);
    PROBE("socket(AF_UNSPEC)", SYS_socket, AF_UNSPEC, SOCK_STREAM, 0);
    PROBE("socket(AF_UNIX|1<<32)", SYS_socket, AF_UNIX | (1UL << 32), SOCK_STREAM, 0);
    int pair[2];
    PROBE("socketpair(AF_VSOCK)", SYS_socketpair, AF_VSOCK, SOCK_STREAM, 0, pair);
    PROBE("socket(AF_UNIX)", SYS_socket, AF_UNIX, SOCK_STREAM, 0);
    PROBE("socket(AF_INET)", SYS_socket, AF_INET, SOCK_STREAM, 0);
    PROBE("socket(AF_INET6)", SYS_socket, AF_INET6, SOCK_DGRAM, 0);
    PROBE("socket(AF_NETLINK,ROUTE)", SYS_socket, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
    PROBE("socketpair(AF_UNIX)", SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, pair);
}

static void probe_kernel(void) {
    PROBE("io_uring_setup", SYS_io_uring_setup, 0, NULL);
    PROBE("io_uring_enter", SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0);
    PROBE("io_uring_register", SYS_io_uring_register, -1, 0, NULL, 0);
    PROBE("bpf", SYS_bpf, -1, NULL, 0);
    PROBE("perf_event_open", SYS_perf_event_open, NULL, 0, -1, -1, 0);
    PROBE("userfaultfd", SYS_userfaultfd, 0);
    PROBE("lookup_dcookie", SYS_lookup_dcookie, 0, NULL, 0);
    PROBE("fanotify_init", SYS_fanotify_init, 0, 0);
    PROBE("keyctl", SYS_keyctl, -1, 0, 0, 0, 0);
    PROBE("add_key", SYS_add_key, NULL, NULL, NULL, 0, 0);
    PROBE("request_key", SYS_request_key, NULL, NULL, NULL, 0);
    PROBE("kexec_load", SYS_kexec_load, 0, 0, NULL, 0);
#ifdef SYS_kexec_file_load
    PROBE("kexec_file_load", SYS_kexec_file_load, -1, -1, 0, NULL, 0);
#else
    SKIP("kexec_file_load");
#endif
    PROBE("init_module", SYS_init_module, NULL, 0, NULL);
    PROBE("finit_module", SYS_finit_module, -1, NULL, 0);
    PROBE("delete_module", SYS_delete_module, NULL, 0);
}

static void probe_mounts(void) {
    PROBE("mount", SYS_mount, NULL, NULL, NULL, 0, NULL);
    PROBE("umount2", SYS_umount2, NULL, 0);
    PROBE("pivot_root", SYS_pivot_root, NULL, NULL);
    PROBE("chroot", SYS_chroot, NULL);
    PROBE("fsopen", SYS_fsopen, NULL, 0);
    PROBE("fsconfig", SYS_fsconfig, -1, 0, NULL, NULL, 0);
    PROBE("fsmount", SYS_fsmount, -1, 0, 0);
    PROBE("fspick", SYS_fspick, -1, NULL, 0);
    PROBE("move_mount", SYS_move_mount, -1, NULL, -1, NULL, 0);
    PROBE("open_tree", SYS_open_tree, -1, NULL, 0);
    PROBE("mount_setattr", SYS_mount_setattr, -1, NULL, 0, NULL, 0);
    PROBE("open_by_handle_at", SYS_open_by_handle_at, -1, NULL, 0);
    PROBE("name_to_handle_at", SYS_name_to_handle_at, -1, NULL, NULL, NULL, 0);
    PROBE("quotactl", SYS_quotactl, 0, NULL, 0, NULL);
    PROBE("quotactl_fd", SYS_quotactl_fd, -1, 0, 0, NULL);
    PROBE("swapon", SYS_swapon, NULL, 0);
    PROBE("swapoff", SYS_swapoff, NULL);
}

static void probe_namespaces(void) {
    PROBE("unshare(0)", SYS_unshare, 0);
    PROBE("setns", SYS_setns, -1, 0);
    probe_clone("clone(CLONE_NEWUSER)", CLONE_NEWUSER);
    probe_clone("clone(CLONE_NEWNS)", CLONE_NEWNS);
    probe_clone("clone(CLONE_NEWPID)", CLONE_NEWPID);
    probe_clone("clone(CLONE_NEWNET)", CLONE_NEWNET);
    probe_clone("clone(CLONE_NEWIPC)", CLONE_NEWIPC);
    probe_clone("clone(CLONE_NEWUTS)", CLONE_NEWUTS);
    probe_clone("clone(CLONE_NEWCGROUP)", CLONE_NEWCGROUP);
    PROBE("clone3", SYS_clone3, NULL, 0);
    probe_clone("clone(fork)", 0);
    PROBE("sethostname", SYS_sethostname, NULL, 0);
    PROBE("setdomainname", SYS_setdomainname, NULL, 0);
}

static void probe_system(void) {
    PROBE("reboot", SYS_reboot, 0, 0, 0, NULL);
    PROBE("acct", SYS_acct, NULL);
    PROBE("vhangup", SYS_vhangup);
    PROBE("syslog", SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
#ifdef SYS_iopl
    PROBE("iopl", SYS_iopl, 0);
    PROBE("ioperm", SYS_ioperm, 0, 0, 0);
#else
    SKIP("iopl");
    SKIP("ioperm");
#endif
    PROBE("clock_settime", SYS_clock_settime, 0, NULL);
    PROBE("settimeofday", SYS_settimeofday, NULL, NULL);
    PROBE("adjtimex", SYS_adjtimex, NULL);
    PROBE("clock_adjtime", SYS_clock_adjtime, 0, NULL);
    PROBE("get_mempolicy", SYS_get_mempolicy, NULL, NULL, 0, NULL, 0);
    PROBE("set_mempolicy", SYS_set_mempolicy, 0, NULL, 0);
    PROBE("mbind", SYS_mbind, NULL, 0, 0, NULL, 0, 0);
    PROBE("migrate_pages", SYS_migrate_pages, 0, 0, NULL, NULL);
    PROBE("move_pages", SYS_move_pages, 0, 0, NULL, NULL, NULL, 0);
#ifdef SYS_nfsservctl
    PROBE("nfsservctl", SYS_nfsservctl, 0, NULL, NULL);
#else
    SKIP("nfsservctl");
#endif
#ifdef SYS_uselib
    PROBE("uselib", SYS_uselib, NULL);
    PROBE("ustat", SYS_ustat, 0, NULL);
    PROBE("sysfs", SYS_sysfs, 0, NULL);
#else
    SKIP("uselib");
    SKIP("ustat");
    SKIP("sysfs");
#endif
}

static void probe_watches(void) {
#ifdef SYS_inotify_init
    PROBE("inotify_init", SYS_inotify_init);
#else
    SKIP("inotify_init");
#endif
    PROBE("inotify_init1", SYS_inotify_init1, 0);
    PROBE("inotify_add_watch", SYS_inotify_add_watch, -1, "/", 1);
}

static void probe_aio(void) {
    unsigned long context = 0;
    PROBE("io_setup", SYS_io_setup, 0, &context);  /* 0 events: EINVAL, nothing allocated, when let through */
    PROBE("io_submit", SYS_io_submit, 0, 0, NULL);
    PROBE("io_getevents", SYS_io_getevents, 0, 0, 0, NULL, NULL);
    PROBE("io_destroy", SYS_io_destroy, 0);
}

static void probe_personalities(void) {
    probe_personality("personality(READ_IMPLIES_EXEC)", 0x0400000);
    probe_personality("personality(ADDR_NO_RANDOMIZE)", 0x0040000);
    probe_personality("personality(PER_BSD)", 0x6);
    probe_personality("personality(PER_LINUX|1<<32)", 1UL << 32);
    probe_personality("personality(PER_LINUX)", 0x0);
    probe_personality("personality(PER_LINUX32)", 0x8);
    probe_personality("personality(UNAME26)", 0x20000);
    probe_personality("personality(query)", 0xffffffffUL);
}

int main(void) {
    probe_kernel();
    probe_mounts();
    probe_namespaces();
    probe_tracing();
    probe_system();
    probe_watches();
    probe_aio();
    probe_personalities();
    probe_sockets();
    probe_i386();
    probe_x32();
    return 0;
}
