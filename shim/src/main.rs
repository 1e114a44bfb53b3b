//! The interpreter of tally's `reference-transaction` hook file.
//!
//! `tally init` writes that hook as `#!/path/tally-shim /path/tally` when this binary sits
//! beside tally (`scripts/install.sh` puts it there). Git runs the hook for every state of
//! every ref transaction. Two states carry no work for tally: `committed` and git 2.54's
//! `preparing` (see docs/push-flow.md). Starting tally only to read its input and exit
//! costs about 1 ms on the machines tally was measured on, once per push and once per other
//! ref transaction. Most of that is glibc's start-up (its cache detection runs `cpuid` some
//! seventy times, and each one traps on a virtual machine) and the page faults of
//! relocating a large position-independent binary. This program has no libc and no
//! relocations, and starts in about 0.15 ms.
//!
//! The kernel runs it as `tally-shim /path/tally <hook file> <args>`:
//! - for a `reference-transaction` hook file and the state `committed` or `preparing`, it
//!   reads its input to the end (so that git never writes into a closed pipe) and exits 0;
//! - for anything else it replaces itself with `/path/tally hook <hook file> <args>`, which is
//!   exactly the command the kernel runs for a hook file whose `#!` line names tally;
//! - if it cannot, it says why and exits 1, which refuses the transaction (fail closed).
//!
//! Why this crate has `unsafe` when the house style forbids it: with no libc, the only ways
//! to reach the kernel are the `syscall` instruction and the stack the kernel hands to
//! `_start`. Each `unsafe` block below is one of those, with its reason beside it; the rest
//! of the program is ordinary safe Rust over byte slices.

#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
compile_error!(
    "tally-shim is for x86_64 Linux; elsewhere `tally init` writes hooks that start tally itself"
);

use core::arch::{asm, naked_asm};
use core::ffi::c_char;
use core::mem::MaybeUninit;

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_EXECVE: usize = 59;
const SYS_EXIT_GROUP: usize = 231;
const EINTR: isize = 4;

/// The hook whose no-work states this program ends itself.
const HOOK: &[u8] = b"reference-transaction";

/// The process entry point: hands the initial stack pointer to [`main`].
///
/// The kernel starts the process here with `argc`, then `argv[0..argc]`, a null, then
/// `envp[..]` and a null, at the stack pointer (System V x86-64 ABI, "Process
/// Initialization"), which is 16-byte aligned.
#[unsafe(naked)]
#[unsafe(no_mangle)]
extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {main}",
        "ud2",
        main = sym main,
    )
}

/// Decides what the hook run needs, from the arguments the kernel passed.
///
/// # Safety
/// `sp` must be the process's initial stack pointer as the kernel laid it out (see
/// [`_start`]).
unsafe extern "C" fn main(sp: *mut usize) -> ! {
    // SAFETY: `sp` points at argc, followed by argc argument pointers, a null pointer, the
    // environment pointers and a null pointer; all of it is this process's writable stack.
    let (argc, argv, envp) = unsafe {
        let argc = *sp;
        let argv = sp.add(1).cast::<*const c_char>();
        (argc, argv, argv.add(argc + 1))
    };
    let arg = move |i: usize| -> &'static [u8] {
        assert!(i < argc, "argument index");
        // SAFETY: i < argc, so argv[i] is one of the kernel's NUL-terminated arguments,
        // which live, unchanged, for the whole process. (Counted here with volatile reads:
        // core's `CStr`, and the compiler for a plain loop, call libc's strlen.)
        unsafe {
            let start = (*argv.add(i)).cast::<u8>();
            let mut len = 0;
            while start.add(len).read_volatile() != 0 {
                len += 1;
            }
            core::slice::from_raw_parts(start, len)
        }
    };
    if argc < 3 {
        fail(&[
            b"tally-shim: this program is the interpreter of the hook files `tally init` writes ",
            b"(#!<path of tally-shim> <path of tally>); it is not run by hand\n",
        ]);
    }
    if argc == 4 && is_hook_file(arg(2)) && matches!(arg(3), b"committed" | b"preparing") {
        drain_stdin();
        exit(0);
    }
    // The command the kernel would run for `#!<tally> hook`: argv becomes
    // [tally, "hook", <hook file>, <args>...], the same length as [shim, tally, <hook file>,
    // <args>...], so it is rewritten in place and stays null-terminated.
    // SAFETY: argc >= 3, so argv[0] and argv[1] exist; the array is this process's stack.
    // "hook" is a NUL-terminated static string.
    unsafe {
        *argv = *argv.add(1);
        *argv.add(1) = c"hook".as_ptr();
    }
    // SAFETY: argv[0] is a NUL-terminated path; argv and envp are null-terminated arrays of
    // NUL-terminated strings. execve returns only if it failed.
    let error = unsafe { syscall3(SYS_EXECVE, *argv as usize, argv as usize, envp as usize) };
    let mut digits = [0u8; 20];
    fail(&[
        b"tally: the reference-transaction hook cannot start tally at ",
        arg(0),
        b" (",
        errno_name(-error),
        b", errno ",
        decimal(error.unsigned_abs(), &mut digits),
        b"); every ref transaction in this repository is refused until it can: reinstall tally ",
        b"(scripts/install.sh), then run `tally init` on the repository again\n",
    ]);
}

/// Whether `path` is a `reference-transaction` hook file: named so, or inside a
/// `reference-transaction.d/` directory (the layout of Gitea and GitLab).
fn is_hook_file(path: &[u8]) -> bool {
    let mut parts = path.rsplit(|b| *b == b'/');
    let name = parts.next().unwrap_or_default();
    let dir = parts.next().unwrap_or_default();
    name == HOOK || dir.strip_suffix(b".d") == Some(HOOK)
}

/// Reads standard input to its end, so that git never writes into a closed pipe.
fn drain_stdin() {
    let mut buf = MaybeUninit::<[u8; 4096]>::uninit();
    loop {
        // SAFETY: the kernel writes at most 4096 bytes into `buf`, which is never read.
        let n = unsafe { syscall3(SYS_READ, 0, buf.as_mut_ptr() as usize, 4096) };
        if n == -EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
    }
}

/// Writes `parts` to standard error and exits 1.
fn fail(parts: &[&[u8]]) -> ! {
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            // SAFETY: the kernel reads at most rest.len() bytes from rest.
            let n = unsafe { syscall3(SYS_WRITE, 2, rest.as_ptr() as usize, rest.len()) };
            if n == -EINTR {
                continue;
            }
            if n <= 0 {
                exit(1);
            }
            rest = rest.get(n.unsigned_abs()..).unwrap_or_default();
        }
    }
    exit(1)
}

/// The name of the errors `execve` reports for a missing or unusable tally.
fn errno_name(errno: isize) -> &'static [u8] {
    match errno {
        2 => b"no such file",
        7 => b"argument list too long",
        8 => b"not an executable",
        12 => b"out of memory",
        13 => b"permission denied",
        20 => b"a path component is not a directory",
        26 => b"the file is being written",
        36 => b"path too long",
        40 => b"too many symbolic links",
        _ => b"error",
    }
}

/// Formats `n` in decimal into `buf`.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Ends the process with `code`.
fn exit(code: usize) -> ! {
    // SAFETY: exit_group takes no memory and does not return.
    unsafe {
        asm!("syscall", in("rax") SYS_EXIT_GROUP, in("rdi") code, options(noreturn, nostack));
    }
}

/// Makes the system call `n` with three arguments; returns the kernel's result (a negative
/// errno on failure).
///
/// # Safety
/// The arguments must be valid for the call `n`: any pointer among them must point at memory
/// the kernel may read or write as that call does.
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the Linux x86-64 system call convention: number in rax, arguments in rdi, rsi,
    // rdx; the kernel clobbers rcx and r11 and returns in rax. The caller vouches for the
    // arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail(&[b"tally-shim: internal error\n"])
}
