//! The `meshtrace` binary: parse arguments, run the command, exit with its code.
//!
//! Errors are printed by `cli::run` through the output sanitiser (`report::error`); a closed
//! standard output (`meshtrace … | head`) ends the command quietly with exit code 0, as ripgrep
//! does.

/// glibc's allocator gives memory back to the system (and faults it in again) whenever more
/// than its trim threshold is free at the top of the heap; settling rounds allocate and free a
/// few MiB each, so `explain` on a large log took ~100 000 page faults. Freeing one block mapped
/// on its own raises the mmap threshold to its size and the trim threshold to twice that
/// (glibc's dynamic threshold, mallopt(3)): 2 syscalls, no pages touched, and the rounds reuse
/// their memory. Other allocators ignore it.
fn settle_the_allocator() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(8 << 20)));
}

fn main() {
    settle_the_allocator();
    std::process::exit(meshtrace::cli::run());
}
