//! `/dev/cdx_ctrl`: the safe owner of the cdx character device.
//!
//! This is the only module of the workspace with `unsafe`: one `ioctl(2)` call site,
//! the private `CdxDevice::ioctl`, whose callers each state why their argument is valid for the
//! request. Methods whose argument holds only plain data or a buffer this crate sizes are
//! safe; the two whose argument points at `dpa_app` structures this crate does not model
//! (`SET_PARAMS`, `CONNADD`) are `unsafe fn` with the caller's obligations written down.
//!
//! The module allows one open file at a time: a second `open` fails with `EBUSY`, reported
//! as [`DeviceError::Busy`]. CMM itself never opens the device (it talks to cdx over FCI);
//! `dpa_app` does, once, at boot.
#![allow(unsafe_code, reason = "ioctl(2) on /dev/cdx_ctrl needs raw pointers")]

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::ioctl;
use crate::raw::{
    AddConnInfo, McEntryInfo, McGroupInfo, MuramData, QosConfigInfo, SetDpaParams, SetDpaParamsAsk,
};

/// Where udev creates the device node.
pub const DEVICE_PATH: &str = "/dev/cdx_ctrl";

/// Errors of the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Another process has the device open (the module allows one).
    #[error("{0} is open elsewhere (cdx allows one user)")]
    Busy(PathBuf),
    /// No device node (cdx.ko not loaded).
    #[error("{0} does not exist (is cdx.ko loaded?)")]
    NotFound(PathBuf),
    /// Any other open failure.
    #[error("open {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The module refused a request.
    #[error("{request}: {source}")]
    Ioctl {
        /// The request's name.
        request: &'static str,
        /// errno.
        source: io::Error,
    },
    /// A buffer larger than the argument's `u32` size field.
    #[error("buffer of {0} bytes exceeds the u32 size field")]
    BufferTooLarge(usize),
}

impl DeviceError {
    fn from_open(path: &Path, source: io::Error) -> DeviceError {
        match source.raw_os_error() {
            Some(libc::EBUSY) => DeviceError::Busy(path.to_path_buf()),
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => {
                DeviceError::NotFound(path.to_path_buf())
            }
            _ => DeviceError::Open { path: path.to_path_buf(), source },
        }
    }
}

/// The open device. Closing (drop) releases the module's single-open slot.
#[derive(Debug)]
pub struct CdxDevice {
    fd: OwnedFd,
}

impl CdxDevice {
    /// Opens [`DEVICE_PATH`] read-write, close-on-exec.
    ///
    /// # Errors
    /// [`DeviceError::Busy`], [`DeviceError::NotFound`] or [`DeviceError::Open`].
    pub fn open() -> Result<CdxDevice, DeviceError> {
        CdxDevice::open_path(Path::new(DEVICE_PATH))
    }

    /// Opens the device at `path` (a test double, or a node in another location).
    ///
    /// # Errors
    /// As [`CdxDevice::open`].
    pub fn open_path(path: &Path) -> Result<CdxDevice, DeviceError> {
        // std opens with O_CLOEXEC; the flag is spelled out because the contract needs it.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|error| DeviceError::from_open(path, error))?;
        Ok(CdxDevice { fd: file.into() })
    }

    /// `CDX_CTRL_DPA_SET_PARAMS`: hands the FMan configuration to cdx (what `dpa_app` does).
    ///
    /// # Safety
    /// `params.fman_info` must point to `params.num_fmans` valid `cdx_fman_info` structures
    /// and `params.ipr_info` to one valid `cdx_ipr_info`, laid out as the loaded module
    /// expects, including every pointer they contain, and all of it must stay valid and
    /// unaliased for the duration of the call (the module may write through them).
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`] with the module's errno.
    pub unsafe fn set_dpa_params(&self, params: &mut SetDpaParams) -> Result<(), DeviceError> {
        // SAFETY: the request's size is `size_of::<SetDpaParams>()` and `params` is an
        // exclusive borrow of one, valid for the call; the pointees are the caller's
        // obligation, stated in this function's contract.
        unsafe { self.ioctl("CDX_CTRL_DPA_SET_PARAMS", ioctl::CDX_CTRL_DPA_SET_PARAMS, params) }
    }

    /// `CDX_CTRL_DPA_SET_PARAMS` in the ASK port's layout (same request number).
    ///
    /// # Safety
    /// As [`CdxDevice::set_dpa_params`], with the ASK port's `cdx_fman_info` layout.
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`] with the module's errno.
    pub unsafe fn set_dpa_params_ask(
        &self,
        params: &mut SetDpaParamsAsk,
    ) -> Result<(), DeviceError> {
        // SAFETY: the request's size is `size_of::<SetDpaParams>()`, which a const assertion in
        // `raw` pins equal to `size_of::<SetDpaParamsAsk>()`, and `params` is an exclusive
        // borrow of one, valid for the call; the pointees are the caller's obligation.
        unsafe { self.ioctl("CDX_CTRL_DPA_SET_PARAMS", ioctl::CDX_CTRL_DPA_SET_PARAMS, params) }
    }

    /// `CDX_CTRL_DPA_CONNADD`: adds test connections (dpa_app test code).
    ///
    /// # Safety
    /// `info.conn_info` must point to `info.num_conn` valid `test_conn_info` structures as
    /// the loaded module expects them (including the interface-name strings they point
    /// to), valid and unaliased for the duration of the call.
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`] with the module's errno.
    pub unsafe fn connadd(&self, info: &mut AddConnInfo) -> Result<(), DeviceError> {
        // SAFETY: size and type match the request; the pointees are the caller's obligation.
        unsafe { self.ioctl("CDX_CTRL_DPA_CONNADD", ioctl::CDX_CTRL_DPA_CONNADD, info) }
    }

    /// `CDX_CTRL_DPA_GET_MURAM_DATA`: reads FMan MURAM into `buf` (the module supports it
    /// only when built with `DPAA_DEBUG_ENABLE`; otherwise `EINVAL`).
    ///
    /// # Errors
    /// [`DeviceError::BufferTooLarge`] above `u32::MAX` bytes; [`DeviceError::Ioctl`].
    pub fn get_muram_data(&self, buf: &mut [u8]) -> Result<(), DeviceError> {
        let size = u32::try_from(buf.len()).map_err(|_| DeviceError::BufferTooLarge(buf.len()))?;
        let mut data = MuramData { buff: buf.as_mut_ptr(), size };
        // SAFETY: `data` is a `MuramData` as the request declares; `data.buff` points to
        // `data.size` writable bytes of `buf`, which is exclusively borrowed for the call.
        unsafe {
            self.ioctl("CDX_CTRL_DPA_GET_MURAM_DATA", ioctl::CDX_CTRL_DPA_GET_MURAM_DATA, &mut data)
        }
    }

    /// `CDX_CTRL_DPA_QOS_CONFIG_ADD`.
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`].
    pub fn qos_config_add(&self, info: &mut QosConfigInfo) -> Result<(), DeviceError> {
        // SAFETY: plain data of exactly the request's type and size, exclusively borrowed.
        unsafe {
            self.ioctl("CDX_CTRL_DPA_QOS_CONFIG_ADD", ioctl::CDX_CTRL_DPA_QOS_CONFIG_ADD, info)
        }
    }

    /// `CDX_CTRL_DPA_ADD_MCAST_GROUP`.
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`].
    pub fn add_mcast_group(&self, info: &mut McGroupInfo) -> Result<(), DeviceError> {
        // SAFETY: plain data of exactly the request's type and size, exclusively borrowed.
        unsafe {
            self.ioctl("CDX_CTRL_DPA_ADD_MCAST_GROUP", ioctl::CDX_CTRL_DPA_ADD_MCAST_GROUP, info)
        }
    }

    /// `CDX_CTRL_DPA_ADD_MCAST_MEMBER` (declared with the group struct).
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`].
    pub fn add_mcast_member(&self, info: &mut McGroupInfo) -> Result<(), DeviceError> {
        // SAFETY: plain data of exactly the request's type and size, exclusively borrowed.
        unsafe {
            self.ioctl("CDX_CTRL_DPA_ADD_MCAST_MEMBER", ioctl::CDX_CTRL_DPA_ADD_MCAST_MEMBER, info)
        }
    }

    /// `CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY`.
    ///
    /// # Errors
    /// [`DeviceError::Ioctl`].
    pub fn add_mcast_table_entry(&self, info: &mut McEntryInfo) -> Result<(), DeviceError> {
        // SAFETY: plain data of exactly the request's type and size, exclusively borrowed.
        unsafe {
            self.ioctl(
                "CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY",
                ioctl::CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY,
                info,
            )
        }
    }

    /// The one `ioctl(2)` call site.
    ///
    /// # Safety
    /// `request` must be a request whose argument type is `T` (its size bits equal
    /// `size_of::<T>()`), and every pointer inside `arg` must be valid for what the module
    /// does with it during the call.
    unsafe fn ioctl<T>(
        &self,
        name: &'static str,
        request: u32,
        arg: &mut T,
    ) -> Result<(), DeviceError> {
        debug_assert_eq!((request >> 16) as usize & 0x3fff, size_of::<T>(), "{name}");
        let arg: *mut T = arg;
        // SAFETY: `self.fd` is an open descriptor owned by `self` for the whole call; `arg`
        // comes from an exclusive reference, so it is valid, aligned and unaliased for the
        // call; the caller guarantees `request` matches `T` and the pointers inside it. The
        // `as` cast reproduces C's conversion of the request to the libc type (`c_ulong` on
        // glibc, `c_int` on musl).
        let rc = unsafe { libc::ioctl(self.fd.as_raw_fd(), request as libc::Ioctl, arg) };
        if rc < 0 {
            return Err(DeviceError::Ioctl { request: name, source: io::Error::last_os_error() });
        }
        Ok(())
    }
}

impl AsFd for CdxDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_node_is_not_found() {
        let error = CdxDevice::open_path(Path::new("/nonexistent/cdx_ctrl")).unwrap_err();
        assert!(
            matches!(error, DeviceError::NotFound(ref p) if p == Path::new("/nonexistent/cdx_ctrl"))
        );
    }

    #[test]
    fn ebusy_is_busy() {
        let error = DeviceError::from_open(
            Path::new(DEVICE_PATH),
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert!(matches!(error, DeviceError::Busy(_)));
        assert_eq!(error.to_string(), "/dev/cdx_ctrl is open elsewhere (cdx allows one user)");
    }

    /// Every safe method reaches ioctl(2) with its request: /dev/null answers ENOTTY to
    /// each, which proves the call is made and the error is mapped with the request's name.
    #[test]
    fn safe_methods_issue_their_request_and_map_errno() {
        let device = CdxDevice::open_path(Path::new("/dev/null")).unwrap();
        let check = |result: Result<(), DeviceError>, expected: &str| match result {
            Err(DeviceError::Ioctl { request, source }) => {
                assert_eq!(request, expected);
                assert_eq!(source.raw_os_error(), Some(libc::ENOTTY));
            }
            other => panic!("{expected}: {other:?}"),
        };
        let mut buf = [0u8; 64];
        check(device.get_muram_data(&mut buf), "CDX_CTRL_DPA_GET_MURAM_DATA");
        check(device.qos_config_add(&mut QosConfigInfo::default()), "CDX_CTRL_DPA_QOS_CONFIG_ADD");
        check(device.add_mcast_group(&mut McGroupInfo::default()), "CDX_CTRL_DPA_ADD_MCAST_GROUP");
        check(
            device.add_mcast_member(&mut McGroupInfo::default()),
            "CDX_CTRL_DPA_ADD_MCAST_MEMBER",
        );
        check(
            device.add_mcast_table_entry(&mut McEntryInfo::default()),
            "CDX_CTRL_DPA_ADD_MCAST_TABLE_ENTRY",
        );
        let mut params = SetDpaParams {
            num_fmans: 0,
            fman_info: std::ptr::null_mut(),
            ipr_info: std::ptr::null_mut(),
        };
        // SAFETY: /dev/null does not implement the request, so no pointer is followed.
        check(unsafe { device.set_dpa_params(&mut params) }, "CDX_CTRL_DPA_SET_PARAMS");
        let mut ask = SetDpaParamsAsk {
            fman_info: std::ptr::null_mut(),
            ipr_info: std::ptr::null_mut(),
            num_fmans: 0,
        };
        // SAFETY: as above.
        check(unsafe { device.set_dpa_params_ask(&mut ask) }, "CDX_CTRL_DPA_SET_PARAMS");
        let mut conns = AddConnInfo { num_conn: 0, conn_info: std::ptr::null_mut() };
        // SAFETY: as above.
        check(unsafe { device.connadd(&mut conns) }, "CDX_CTRL_DPA_CONNADD");
    }
}
