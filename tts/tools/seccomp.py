"""A seccomp filter for the sandbox, as the classic BPF program bubblewrap loads with `--seccomp FD`.

It denies (EPERM) the calls that sandboxed code never needs and that reach past the namespaces, anchored on the
common container profile (Docker's default): the kernel keyring (add_key, keyctl, request_key: the keyring is not
namespaced, so a sandbox could read or plant keys in its caller's session), new namespaces (unshare, setns, clone
with namespace flags; clone3 answers ENOSYS so that libc falls back to clone, whose flags can be checked), mounts,
ptrace and other processes' memory, kernel modules and kexec, bpf, perf, userfaultfd, io_uring, memfd_create (memory
that no address-space limit counts), clocks, swap, reboot, accounting and quotas. Calls of another ABI on the same
machine (x32 on x86_64, or a foreign audit architecture) are denied too. Hand-built: no libseccomp binding needed.
"""
from __future__ import annotations

import errno
import functools
import platform
import struct

# syscall numbers by machine (from the kernel's syscall tables)
_X86_64 = {
    "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308, "mount": 165,
    "umount2": 166, "pivot_root": 155, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kcmp": 312, "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
    "kexec_file_load": 320, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "memfd_create": 319, "settimeofday": 164,
    "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159, "swapon": 167, "swapoff": 168, "reboot": 169,
    "sethostname": 170, "setdomainname": 171, "acct": 163, "quotactl": 179, "open_by_handle_at": 304,
    "name_to_handle_at": 303, "lookup_dcookie": 212, "fanotify_init": 300, "iopl": 172, "ioperm": 173,
    "vhangup": 153, "move_mount": 429, "open_tree": 428, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442,
}
_AARCH64 = {
    "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
    "pivot_root": 41, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294,
    "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "memfd_create": 279, "settimeofday": 170, "clock_settime": 112,
    "clock_adjtime": 266, "adjtimex": 171, "swapon": 224, "swapoff": 225, "reboot": 142, "sethostname": 161,
    "setdomainname": 162, "acct": 89, "quotactl": 60, "open_by_handle_at": 265, "name_to_handle_at": 264,
    "lookup_dcookie": 18, "fanotify_init": 262, "vhangup": 58, "move_mount": 429, "open_tree": 428,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}
# machine -> (audit architecture, syscall table, clone, clone3)
_MACHINES = {
    "x86_64": (0xC000003E, _X86_64, 56, 435),
    "aarch64": (0xC00000B7, _AARCH64, 220, 435),
}
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
_CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _ERRNO, _KILL = 0x7FFF0000, 0x00050000, 0x80000000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low 32 bits on a little-endian machine)


def blocked() -> list[str]:
    """The calls the filter denies on this machine (empty where it has no table: `tts doctor` says so)."""
    machine = _MACHINES.get(platform.machine())
    return sorted(machine[1]) + ["clone with namespace flags", "clone3"] if machine else []


def number(name: str) -> int:
    """A syscall's number on this machine (KeyError where the machine has no table here)."""
    return _MACHINES[platform.machine()][1][name]


@functools.lru_cache(maxsize=1)  # the same bytes for every sandboxed call of this process
def program() -> bytes | None:
    """The filter as `struct sock_filter[]` bytes, or None on a machine without a table here."""
    machine = _MACHINES.get(platform.machine())
    if machine is None:
        return None
    arch, table, clone_nr, clone3_nr = machine
    eperm, enosys = _ERRNO | errno.EPERM, _ERRNO | errno.ENOSYS
    denied = sorted(set(table.values()))
    ins: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, _ARCH),
        (_JEQ_K, 1, 0, arch),  # the expected ABI: go on; another: kill
        (_RET_K, 0, 0, _KILL),
        (_LD_W_ABS, 0, 0, _NR),
    ]
    if arch == 0xC000003E:  # x32 calls carry bit 30 on x86_64
        ins += [(_JGE_K, 0, 1, 0x40000000), (_RET_K, 0, 0, eperm)]
    for nr in denied:
        ins += [(_JEQ_K, 0, 1, nr), (_RET_K, 0, 0, eperm)]
    ins += [(_JEQ_K, 0, 1, clone3_nr), (_RET_K, 0, 0, enosys),
            (_JEQ_K, 0, 3, clone_nr),  # clone: deny namespace flags in its first argument
            (_LD_W_ABS, 0, 0, _ARG0),
            (_JSET_K, 0, 1, _CLONE_NAMESPACES),
            (_RET_K, 0, 0, eperm),
            (_RET_K, 0, 0, _ALLOW)]
    return b"".join(struct.pack("<HBBI", code, jt, jf, k) for code, jt, jf, k in ins)
