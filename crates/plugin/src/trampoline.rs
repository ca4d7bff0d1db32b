//! `extern "C"` entry points generic over a [`Resource`]: decode arguments, call the trait, encode the
//! result. Every body runs under `catch_unwind`, so a panic becomes `KEELSON_PANIC` plus its message
//! and never unwinds across the ABI. Not the table layout (table.rs).

use crate::{Error, Host, Params, Resource};
use keelson_abi::{KeelsonHost, KEELSON_ERROR, KEELSON_INVALID, KEELSON_OK, KEELSON_PANIC};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Outcome of an entry point body before it is turned into a status: the status and its message.
struct Failure {
    status: i32,
    message: String,
}

impl Failure {
    fn error(message: impl Into<String>) -> Failure {
        Failure {
            status: KEELSON_ERROR,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            status: KEELSON_INVALID,
            message: message.into(),
        }
    }

    /// An error from a call on an open resource, with the status its kind stands for.
    fn of_call(e: Error) -> Failure {
        Failure {
            status: e.call_status(),
            message: e.message().to_string(),
        }
    }

    /// An error from `open` or `validate` (a generic one means rejected parameters).
    fn of_params(e: Error) -> Failure {
        Failure {
            status: e.params_status(),
            message: e.message().to_string(),
        }
    }
}

/// Runs `body`, converting errors and panics into a status and a message in `err`.
fn guarded(err: *mut c_char, cap: usize, body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => KEELSON_OK,
        Ok(Err(Failure { status, message })) => {
            write_message(err, cap, &message);
            status
        }
        Err(payload) => {
            write_message(
                err,
                cap,
                &format!("panic: {}", panic_message(payload.as_ref())),
            );
            KEELSON_PANIC
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Copies `msg` into the host's buffer, truncated at a char boundary and NUL-terminated.
fn write_message(err: *mut c_char, cap: usize, msg: &str) {
    if err.is_null() || cap == 0 {
        return;
    }
    let mut len = msg.len().min(cap - 1);
    while !msg.is_char_boundary(len) {
        len -= 1;
    }
    // SAFETY: the host guarantees `err` points to `cap` writable bytes; we write `len + 1 <= cap`.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err.cast::<u8>(), len);
        *err.add(len) = 0;
    }
}

/// Reads the params JSON; null means no parameters.
fn read_params(params_json: *const c_char) -> Result<Params, Failure> {
    if params_json.is_null() {
        return Ok(Params::default());
    }
    // SAFETY: the host passes a NUL-terminated string valid for the duration of the call.
    let text = unsafe { CStr::from_ptr(params_json) };
    let text = text
        .to_str()
        .map_err(|_| Failure::invalid("parameters are not UTF-8"))?;
    Params::parse(text).map_err(Failure::invalid)
}

/// Reads the params JSON and checks it against `T`'s declared schema, declared defaults filled in:
/// what `validate` and `open` see, whether or not the host checked first.
fn checked_params<T: Resource>(params_json: *const c_char) -> Result<Params, Failure> {
    read_params(params_json)?
        .checked(&crate::schema::<T>())
        .map_err(Failure::invalid)
}

pub(crate) unsafe extern "C" fn open<T: Resource>(
    params_json: *const c_char,
    host: *const KeelsonHost,
    out_handle: *mut *mut c_void,
    err: *mut c_char,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let params = checked_params::<T>(params_json)?;
        // SAFETY: the host passes a valid KeelsonHost that outlives the resource.
        let host = unsafe { Host::from_raw(host) };
        let resource = T::open(&params, host).map_err(Failure::of_params)?;
        if out_handle.is_null() {
            return Err(Failure::error("host passed a null out_handle"));
        }
        // SAFETY: checked non-null; the host owns the slot.
        unsafe { *out_handle = Box::into_raw(Box::new(resource)).cast::<c_void>() };
        Ok(())
    })
}

pub(crate) unsafe extern "C" fn validate<T: Resource>(
    params_json: *const c_char,
    err: *mut c_char,
    err_cap: usize,
) -> i32 {
    guarded(err, err_cap, || {
        let params = checked_params::<T>(params_json)?;
        T::validate(&params).map_err(Failure::of_params)
    })
}

/// Runs one `&mut self` method on the resource behind `handle`.
fn call<T: Resource>(
    handle: *mut c_void,
    err: *mut c_char,
    err_cap: usize,
    method: fn(&mut T) -> Result<(), Error>,
) -> i32 {
    guarded(err, err_cap, || {
        if handle.is_null() {
            return Err(Failure::error("null resource handle"));
        }
        // SAFETY: `handle` came from `open::<T>` (Box<T>::into_raw) and the host never overlaps
        // calls on one resource, so this is the only live reference.
        let resource = unsafe { &mut *handle.cast::<T>() };
        method(resource).map_err(Failure::of_call)
    })
}

pub(crate) unsafe extern "C" fn online<T: Resource>(
    h: *mut c_void,
    e: *mut c_char,
    n: usize,
) -> i32 {
    call::<T>(h, e, n, T::online)
}

pub(crate) unsafe extern "C" fn offline<T: Resource>(
    h: *mut c_void,
    e: *mut c_char,
    n: usize,
) -> i32 {
    call::<T>(h, e, n, T::offline)
}

pub(crate) unsafe extern "C" fn looks_alive<T: Resource>(
    h: *mut c_void,
    e: *mut c_char,
    n: usize,
) -> i32 {
    call::<T>(h, e, n, T::looks_alive)
}

pub(crate) unsafe extern "C" fn is_alive<T: Resource>(
    h: *mut c_void,
    e: *mut c_char,
    n: usize,
) -> i32 {
    call::<T>(h, e, n, T::is_alive)
}

pub(crate) unsafe extern "C" fn terminate<T: Resource>(
    h: *mut c_void,
    e: *mut c_char,
    n: usize,
) -> i32 {
    call::<T>(h, e, n, T::terminate)
}

pub(crate) unsafe extern "C" fn close<T: Resource>(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `handle` came from `open::<T>` and close is the last call on it.
        let resource = unsafe { Box::from_raw(handle.cast::<T>()) };
        resource.close();
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Boom;
    impl Resource for Boom {
        const TYPE_NAME: &'static CStr = c"boom";
        fn open(_: &Params, _: Host) -> Result<Self, Error> {
            Ok(Boom)
        }
        fn online(&mut self) -> Result<(), Error> {
            panic!("online exploded")
        }
        fn offline(&mut self) -> Result<(), Error> {
            Err("cannot".into())
        }
        fn looks_alive(&mut self) -> Result<(), Error> {
            Err(Error::not_running("stopped"))
        }
        fn is_alive(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn terminate(&mut self) -> Result<(), Error> {
            Err(Error::misconfigured("no such port"))
        }
    }

    #[test]
    fn panics_and_errors_become_statuses_with_messages() {
        let mut handle: *mut c_void = std::ptr::null_mut();
        let mut buf = [0 as c_char; 64];
        // SAFETY: valid pointers to local buffers; a null host is allowed.
        unsafe {
            assert_eq!(
                open::<Boom>(
                    c"{}".as_ptr(),
                    std::ptr::null(),
                    &mut handle,
                    buf.as_mut_ptr(),
                    64
                ),
                KEELSON_OK
            );
            assert_eq!(online::<Boom>(handle, buf.as_mut_ptr(), 64), KEELSON_PANIC);
            let msg = CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
            assert_eq!(msg, "panic: online exploded");
            assert_eq!(offline::<Boom>(handle, buf.as_mut_ptr(), 4), KEELSON_ERROR);
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "can");
            assert_eq!(
                looks_alive::<Boom>(handle, buf.as_mut_ptr(), 64),
                keelson_abi::KEELSON_NOT_RUNNING
            );
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "stopped");
            assert_eq!(is_alive::<Boom>(handle, buf.as_mut_ptr(), 64), KEELSON_OK);
            assert_eq!(
                terminate::<Boom>(handle, buf.as_mut_ptr(), 64),
                keelson_abi::KEELSON_MISCONFIGURED
            );
            assert_eq!(
                open::<Boom>(
                    c"[".as_ptr(),
                    std::ptr::null(),
                    &mut handle,
                    buf.as_mut_ptr(),
                    64
                ),
                KEELSON_INVALID
            );
            close::<Boom>(handle);
        }
    }

    struct Port(u64);
    impl Resource for Port {
        const TYPE_NAME: &'static CStr = c"port";
        const PARAMS: Option<&'static [crate::Param]> = Some(&[crate::Param::integer("port")
            .min(1)
            .max(65535)
            .default("80")]);
        fn validate(params: &Params) -> Result<(), Error> {
            Ok(params.u64_or("port", 0).map(|_| ())?)
        }
        fn open(params: &Params, _: Host) -> Result<Self, Error> {
            Ok(Port(params.u64_or("port", 0)?))
        }
        fn online(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn offline(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn looks_alive(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn is_alive(&mut self) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn the_sdk_refuses_undeclared_or_bad_params_before_the_plugin_sees_them() {
        let mut buf = [0 as c_char; 128];
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid pointers to local buffers; a null host is allowed.
        unsafe {
            for (json, want) in [
                (
                    c"{\"port\":\"0\"}",
                    "parameter 'port'=\"0\": expected an integer in 1..=65535",
                ),
                (
                    c"{\"colour\":\"red\"}",
                    "unknown parameter 'colour' (known: port)",
                ),
            ] {
                assert_eq!(
                    validate::<Port>(json.as_ptr(), buf.as_mut_ptr(), 128),
                    KEELSON_INVALID
                );
                assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), want);
                let status = open::<Port>(
                    json.as_ptr(),
                    std::ptr::null(),
                    &mut handle,
                    buf.as_mut_ptr(),
                    128,
                );
                assert_eq!(status, KEELSON_INVALID);
                assert!(handle.is_null(), "no resource for refused parameters");
            }
            let status = open::<Port>(
                c"{}".as_ptr(),
                std::ptr::null(),
                &mut handle,
                buf.as_mut_ptr(),
                128,
            );
            assert_eq!(status, KEELSON_OK);
            assert_eq!(
                (*handle.cast::<Port>()).0,
                80,
                "the declared default is given"
            );
            close::<Port>(handle);
        }
    }
}
