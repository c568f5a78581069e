//! nftables in-process: `libnftables.so.1` (the library `nft` itself is
//! built on), loaded at run time. One transaction costs about as much as
//! the kernel work, instead of a process start plus a JSON parser start for
//! every `nft` run.
//!
//! The library is loaded with `dlopen`, so building virtnet needs no
//! development package and a host without it falls back to running `nft`.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::sync::Mutex;

/// `NFT_CTX_DEFAULT`.
const NFT_CTX_DEFAULT: u32 = 0;
/// `NFT_CTX_OUTPUT_JSON`: JSON output, and JSON input accepted.
const NFT_CTX_OUTPUT_JSON: c_uint = 1 << 4;

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type SetFlags = unsafe extern "C" fn(*mut c_void, c_uint);
type Buffer = unsafe extern "C" fn(*mut c_void) -> c_int;
type GetBuffer = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type RunCmd = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

struct Api {
    ctx_free: CtxFree,
    get_output: GetBuffer,
    get_error: GetBuffer,
    run: RunCmd,
}

struct Ctx(*mut c_void);

// SAFETY: the nft context is only ever used while holding the mutex around
// it, so it is never touched by two threads at once; libnftables has no
// thread-affine state.
unsafe impl Send for Ctx {}

/// A libnftables context, bound to the network namespace it was created in.
pub struct LibNft {
    api: Api,
    ctx: Mutex<Ctx>,
}

impl std::fmt::Debug for LibNft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LibNft")
    }
}

/// What one command run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// nft's return code (0 on success).
    pub rc: i32,
    /// Standard output (JSON for listings).
    pub stdout: String,
    /// Error messages.
    pub stderr: String,
}

fn symbol<T: Copy>(handle: *mut c_void, name: &str) -> Option<T> {
    let cname = CString::new(name).ok()?;
    // SAFETY: `handle` is a live dlopen handle and `cname` a NUL-terminated
    // string; dlsym only reads them.
    let p = unsafe { libc::dlsym(handle, cname.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: T is the function pointer type of this libnftables symbol
    // (signatures from libnftables.h); function and data pointers have the
    // same size on the platforms virtnet supports.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

impl LibNft {
    /// Loads libnftables and creates a context with JSON output; `None`
    /// when the library is not installed.
    pub fn load() -> Option<LibNft> {
        let lib = CString::new("libnftables.so.1").ok()?;
        // SAFETY: dlopen with a valid NUL-terminated name; the handle is
        // never closed, so the symbols stay valid for the process lifetime.
        let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return None;
        }
        let ctx_new: CtxNew = symbol(handle, "nft_ctx_new")?;
        let set_flags: SetFlags = symbol(handle, "nft_ctx_output_set_flags")?;
        let buffer_output: Buffer = symbol(handle, "nft_ctx_buffer_output")?;
        let buffer_error: Buffer = symbol(handle, "nft_ctx_buffer_error")?;
        let api = Api {
            ctx_free: symbol(handle, "nft_ctx_free")?,
            get_output: symbol(handle, "nft_ctx_get_output_buffer")?,
            get_error: symbol(handle, "nft_ctx_get_error_buffer")?,
            run: symbol(handle, "nft_run_cmd_from_buffer")?,
        };
        // SAFETY: nft_ctx_new takes flags by value and returns an owned
        // context or NULL.
        let ctx = unsafe { ctx_new(NFT_CTX_DEFAULT) };
        if ctx.is_null() {
            return None;
        }
        // SAFETY: `ctx` is the valid context just created; these calls
        // configure it and return status codes.
        let ok = unsafe {
            set_flags(ctx, NFT_CTX_OUTPUT_JSON);
            buffer_output(ctx) == 0 && buffer_error(ctx) == 0
        };
        if !ok {
            // SAFETY: `ctx` is valid and not used afterwards.
            unsafe { (api.ctx_free)(ctx) };
            return None;
        }
        Some(LibNft {
            api,
            ctx: Mutex::new(Ctx(ctx)),
        })
    }

    /// Runs one command buffer (JSON or nft syntax) as `nft -j -f -` would.
    pub fn run(&self, cmd: &str) -> RunOutput {
        let Ok(text) = CString::new(cmd) else {
            return RunOutput {
                rc: -1,
                stdout: String::new(),
                stderr: "command contains a NUL byte".to_string(),
            };
        };
        let guard = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = guard.0;
        let read = |p: *const c_char| -> String {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: libnftables returns a NUL-terminated buffer it
                // owns, valid until the next run on this context; it is
                // copied out while the lock is held.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        // SAFETY: `ctx` is valid and exclusively ours under the lock; `text`
        // outlives the call.
        let rc = unsafe { (self.api.run)(ctx, text.as_ptr()) };
        // SAFETY: as above; the getters reset and return the buffers.
        let stdout = read(unsafe { (self.api.get_output)(ctx) });
        // SAFETY: as above.
        let stderr = read(unsafe { (self.api.get_error)(ctx) });
        RunOutput { rc, stdout, stderr }
    }
}

impl Drop for LibNft {
    fn drop(&mut self) {
        let ctx = self.ctx.get_mut().unwrap_or_else(|p| p.into_inner()).0;
        // SAFETY: the context is valid and dropped exactly once.
        unsafe { (self.api.ctx_free)(ctx) };
    }
}
