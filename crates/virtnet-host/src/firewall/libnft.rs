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
    ctx_new: CtxNew,
    ctx_free: CtxFree,
    set_flags: SetFlags,
    buffer_output: Buffer,
    buffer_error: Buffer,
    get_output: GetBuffer,
    get_error: GetBuffer,
    run: RunCmd,
}

/// libnftables, loaded. Each command runs in a fresh context, freed right
/// after: a context keeps a cache of the ruleset it has seen, which would
/// otherwise stay in memory for the daemon's lifetime. Commands run one at
/// a time.
pub struct LibNft {
    api: Api,
    lock: Mutex<()>,
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
        let api = Api {
            ctx_new: symbol(handle, "nft_ctx_new")?,
            ctx_free: symbol(handle, "nft_ctx_free")?,
            set_flags: symbol(handle, "nft_ctx_output_set_flags")?,
            buffer_output: symbol(handle, "nft_ctx_buffer_output")?,
            buffer_error: symbol(handle, "nft_ctx_buffer_error")?,
            get_output: symbol(handle, "nft_ctx_get_output_buffer")?,
            get_error: symbol(handle, "nft_ctx_get_error_buffer")?,
            run: symbol(handle, "nft_run_cmd_from_buffer")?,
        };
        let nft = LibNft {
            api,
            lock: Mutex::new(()),
        };
        // A context must be creatable here (the network namespace is bound
        // when a context is made).
        let ctx = nft.new_ctx()?;
        // SAFETY: `ctx` is valid and not used afterwards.
        unsafe { (nft.api.ctx_free)(ctx) };
        Some(nft)
    }

    /// A context with JSON output and buffered output and errors.
    fn new_ctx(&self) -> Option<*mut c_void> {
        // SAFETY: nft_ctx_new takes flags by value and returns an owned
        // context or NULL.
        let ctx = unsafe { (self.api.ctx_new)(NFT_CTX_DEFAULT) };
        if ctx.is_null() {
            return None;
        }
        // SAFETY: `ctx` is the valid context just created; these calls
        // configure it and return status codes.
        let ok = unsafe {
            (self.api.set_flags)(ctx, NFT_CTX_OUTPUT_JSON);
            (self.api.buffer_output)(ctx) == 0 && (self.api.buffer_error)(ctx) == 0
        };
        if !ok {
            // SAFETY: `ctx` is valid and not used afterwards.
            unsafe { (self.api.ctx_free)(ctx) };
            return None;
        }
        Some(ctx)
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
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ctx) = self.new_ctx() else {
            return RunOutput {
                rc: -1,
                stdout: String::new(),
                stderr: "cannot create an nftables context".to_string(),
            };
        };
        let read = |p: *const c_char| -> String {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: libnftables returns a NUL-terminated buffer it
                // owns, valid until the context is freed; it is copied out
                // before that.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        // SAFETY: `ctx` is valid and used by this thread only; `text`
        // outlives the call.
        let rc = unsafe { (self.api.run)(ctx, text.as_ptr()) };
        // SAFETY: as above; the getters return the buffers.
        let stdout = read(unsafe { (self.api.get_output)(ctx) });
        // SAFETY: as above.
        let stderr = read(unsafe { (self.api.get_error)(ctx) });
        // SAFETY: `ctx` is valid and not used afterwards.
        unsafe { (self.api.ctx_free)(ctx) };
        RunOutput { rc, stdout, stderr }
    }
}
