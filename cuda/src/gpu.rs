//! Thin device layer over cudarc: one context and stream, NVRTC-built kernel
//! modules, a cuBLAS handle, device buffers and event timing.
//!
//! A device buffer ([`DBuf`]) knows its name, element type and length; what is handed to a
//! kernel, to cuBLAS, to a copy, a fill or a download is a [`Span`] of one (a buffer from
//! some element on: rotation sets and batched strides), and every one of those calls checks
//! first (`crate::launch`) that each span is of the element type and holds every element the
//! call touches, refusing with [`CudaError::Invalid`] instead of launching. bf16 data is
//! `u16` bits.
//!
//! Everything runs on one stream: kernels, cuBLAS (bound to it), copies, fills and the
//! stream-ordered frees of dropped buffers, so a buffer is freed only after the work queued
//! before its drop.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use cudarc::cublas::{result as bres, sys as bsys};
use cudarc::driver::sys as dsys;
use cudarc::driver::{
    result as dres, CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream,
    DevicePtr, DeviceRepr, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions, Ptx};

use crate::kernels::{DYN_SMEM_TABLE, FAMILIES};
use crate::launch::{check_copy, check_cublas_gemm, check_elems, DType, KArg, Launch, Span};
use crate::CudaError;

fn drv(e: dres::DriverError) -> CudaError {
    CudaError::Driver(e.to_string())
}
fn blas_err(e: bres::CublasError) -> CudaError {
    CudaError::Cublas(e.to_string())
}

/// A device allocation of `len` elements of `dtype`, named for error messages (freed on drop,
/// stream-ordered).
pub(crate) struct DBuf {
    _slice: CudaSlice<u8>,
    name: &'static str,
    dtype: DType,
    len: usize,
    ptr: u64,
}

impl DBuf {
    /// The whole buffer.
    pub fn span(&self) -> Span<'_> {
        // SAFETY: `ptr` is the start of `_slice`, an allocation of at least
        // `len · dtype.size()` bytes (`Gpu::alloc`), which lives as long as `self`, and the
        // span borrows `self`.
        unsafe { Span::new(self.name, self.dtype, self.len, self.ptr) }
    }
    /// The buffer from element `offset` on (empty past its end).
    pub fn at(&self, offset: usize) -> Span<'_> {
        self.span().at(offset)
    }
}

/// Element types a buffer can be downloaded as.
pub(crate) trait Elem: DeviceRepr + Default + Clone {
    const DTYPE: DType;
}
impl Elem for u16 {
    const DTYPE: DType = DType::Bf16;
}
impl Elem for f32 {
    const DTYPE: DType = DType::F32;
}
impl Elem for u32 {
    const DTYPE: DType = DType::U32;
}
impl Elem for u64 {
    const DTYPE: DType = DType::U64;
}

/// Timing summary of back-to-back launches (seconds).
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub launches: usize,
    /// Device-only time per launch from CUDA-graph replay (NaN if not measured).
    pub graph_median: f64,
    /// Launches captured per graph for `graph_median` (0 if not measured).
    pub graph_launches: usize,
    /// Why the graph replay could not be measured, if it was tried and failed.
    pub graph_error: Option<String>,
}

/// Per-kernel resource usage read back from the loaded module.
#[derive(Clone, Debug)]
pub(crate) struct KernelInfo {
    pub name: String,
    pub regs: i32,
    pub local_bytes: i32,
    pub static_smem: i32,
}

pub(crate) struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    blas: bsys::cublasHandle_t,
    funcs: HashMap<&'static str, CudaFunction>,
    _modules: Vec<Arc<CudaModule>>,
    /// (family, error text) for kernel families that failed to build/load.
    pub module_errors: Vec<(String, String)>,
    pub kernel_info: Vec<KernelInfo>,
    pub sm_count: i32,
    pub l2_bytes: i32,
}

impl Drop for Gpu {
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
        // SAFETY: `self.blas` was created by `create_handle` in `new` and is destroyed only
        // here, once (the field is private and never copied out); the stream it is bound to
        // was just synchronised, so no cuBLAS work using it is pending, and that stream (a
        // field) is still alive.
        unsafe {
            let _ = bres::destroy_handle(self.blas);
        }
    }
}

/// Checks that the CUDA driver, NVRTC and cuBLAS libraries can be loaded.
pub(crate) fn check_libraries() -> Result<(), CudaError> {
    let mut missing = Vec::new();
    // SAFETY: these only try to dlopen the libraries (cudarc's dynamic loading) and report
    // whether that worked; no function of them is called.
    unsafe {
        if !dsys::is_culib_present() {
            missing.push("libcuda (CUDA driver)");
        }
        if !cudarc::nvrtc::sys::is_culib_present() {
            missing.push("libnvrtc (NVRTC)");
        }
        if !bsys::is_culib_present() {
            missing.push("libcublas (cuBLAS)");
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CudaError::NoGpu(format!(
            "cannot load {}: no NVIDIA GPU/CUDA installation on this machine \
             (the crosscheck suite needs a GPU machine with CUDA 13 libraries on the loader path)",
            missing.join(", ")
        )))
    }
}

/// The name the driver gives GPU `ordinal` (e.g. `NVIDIA H200`), before any kernel is built.
pub fn device_name(ordinal: usize) -> Result<String, CudaError> {
    check_libraries()?;
    let ctx = CudaContext::new(ordinal)
        .map_err(|e| CudaError::NoGpu(format!("no CUDA device {ordinal}: {e}")))?;
    ctx.name().map_err(|e| {
        CudaError::NoGpu(format!(
            "cannot read the name of CUDA device {ordinal}: {e}"
        ))
    })
}

impl Gpu {
    /// Creates the context on `ordinal`, builds all kernel families, creates the
    /// cuBLAS handle. Libraries must have been checked with [`check_libraries`].
    pub fn new(ordinal: usize, log: &mut dyn FnMut(&str)) -> Result<Gpu, CudaError> {
        let ctx = CudaContext::new(ordinal).map_err(|e| {
            CudaError::NoGpu(format!(
                "cannot create a CUDA context on device {ordinal}: {e}"
            ))
        })?;
        // Single stream, so no per-launch event bookkeeping in cudarc. A
        // created (non-blocking) stream rather than the legacy default stream,
        // because CUDA-graph capture is not possible on the legacy stream.
        // SAFETY: cudarc's event tracking orders a buffer's uses across streams; this context
        // has one stream of work (`stream` below): every allocation, kernel, cuBLAS call
        // (bound to it), copy, memset and stream-ordered free is queued on it, and host reads
        // synchronise it first (`download`), so no use needs ordering across streams. It is
        // set before any buffer of this context exists.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx
            .new_stream()
            .map_err(|e| CudaError::Driver(format!("cannot create a stream: {e}")))?;
        let sm_count = ctx
            .attribute(dsys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(drv)?;
        let l2_bytes = ctx
            .attribute(dsys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)
            .map_err(drv)?;

        let blas = bres::create_handle().map_err(blas_err)?;
        // SAFETY: `blas` was just created; `stream` is a live stream of this context, kept in
        // the `Gpu` with the handle, and Drop destroys the handle before the stream goes.
        unsafe { bres::set_stream(blas, stream.cu_stream() as bsys::cudaStream_t) }
            .map_err(blas_err)?;

        // Compile all families concurrently (NVRTC is thread-safe).
        let t0 = std::time::Instant::now();
        let compiled = compile_all();
        log(&format!(
            "NVRTC: built {} kernel families in {:.1} s",
            FAMILIES.len(),
            t0.elapsed().as_secs_f64()
        ));

        let mut funcs = HashMap::new();
        let mut modules = Vec::new();
        let mut module_errors = Vec::new();
        let mut kernel_info = Vec::new();
        for ((fam, ptx), family) in compiled.into_iter().zip(FAMILIES) {
            let names = family.kernels;
            let ptx = match ptx {
                Ok(p) => p,
                Err(e) => {
                    log(&format!(
                        "ERROR: NVRTC failed for kernel family '{fam}':\n{e}"
                    ));
                    module_errors.push((fam.to_string(), e));
                    continue;
                }
            };
            let module = match ctx.load_module(ptx) {
                Ok(m) => m,
                Err(e) => {
                    log(&format!("ERROR: loading module '{fam}' failed: {e}"));
                    module_errors.push((fam.to_string(), format!("module load: {e}")));
                    continue;
                }
            };
            for &name in names {
                match module.load_function(name) {
                    Ok(f) => {
                        use dsys::CUfunction_attribute as A;
                        let info = KernelInfo {
                            name: name.to_string(),
                            regs: f.get_attribute(A::CU_FUNC_ATTRIBUTE_NUM_REGS).unwrap_or(-1),
                            local_bytes: f
                                .get_attribute(A::CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES)
                                .unwrap_or(-1),
                            static_smem: f
                                .get_attribute(A::CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES)
                                .unwrap_or(-1),
                        };
                        log(&format!(
                            "  kernel {:<24} regs {:>3}  local(spill/stack) {:>4} B  static smem {:>6} B",
                            info.name, info.regs, info.local_bytes, info.static_smem
                        ));
                        kernel_info.push(info);
                        funcs.insert(name, f);
                    }
                    Err(e) => {
                        module_errors.push((fam.to_string(), format!("function {name}: {e}")));
                    }
                }
            }
            modules.push(module);
        }
        // Opt the kernels into their (> 48 KB) dynamic shared memory.
        for &(name, bytes) in DYN_SMEM_TABLE {
            if let Some(f) = funcs.get(name) {
                if let Err(e) = f.set_attribute(
                    dsys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    bytes as i32,
                ) {
                    module_errors
                        .push((name.into(), format!("set max dynamic smem {bytes} B: {e}")));
                    funcs.remove(name);
                }
            }
        }
        Ok(Gpu {
            ctx,
            stream,
            blas,
            funcs,
            _modules: modules,
            module_errors,
            kernel_info,
            sm_count,
            l2_bytes,
        })
    }

    pub fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_else(|_| "unknown".into())
    }

    pub fn compute_capability(&self) -> (i32, i32) {
        self.ctx.compute_capability().unwrap_or((0, 0))
    }

    pub fn total_mem(&self) -> usize {
        self.ctx.total_mem().unwrap_or(0)
    }

    /// CUDA version supported by the driver, e.g. "13.0".
    pub fn driver_cuda_version(&self) -> String {
        let mut v = 0i32;
        // SAFETY: writes one i32 through a pointer to a live local.
        let r = unsafe { dsys::cuDriverGetVersion(&mut v) };
        if r == dsys::CUresult::CUDA_SUCCESS {
            format!("{}.{}", v / 1000, (v % 1000) / 10)
        } else {
            "unknown".into()
        }
    }

    pub fn nvrtc_version(&self) -> String {
        let (mut a, mut b) = (0i32, 0i32);
        // SAFETY: writes two i32 through pointers to live locals.
        let r = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut a, &mut b) };
        if r == cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
            format!("{a}.{b}")
        } else {
            "unknown".into()
        }
    }

    pub fn cublas_version(&self) -> String {
        let mut v = 0i32;
        // SAFETY: `self.blas` is a live handle (destroyed only in Drop); writes one i32
        // through a pointer to a live local.
        let r = unsafe { bsys::cublasGetVersion_v2(self.blas, &mut v) };
        if r == bsys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            format!("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100)
        } else {
            "unknown".into()
        }
    }

    pub fn sync(&self) -> Result<(), CudaError> {
        self.stream.synchronize().map_err(drv)
    }

    /// A buffer of `len` elements of `dtype`, named `name` in error messages; its contents
    /// are undefined until written.
    pub fn alloc(&self, name: &'static str, dtype: DType, len: usize) -> Result<DBuf, CudaError> {
        let bytes = len.checked_mul(dtype.size()).ok_or_else(|| {
            CudaError::Invalid(format!(
                "buffer {name}: {len} {} elements overflow",
                dtype.name()
            ))
        })?;
        // SAFETY: cudarc marks this unsafe because the memory is uninitialised. It is only
        // ever read back as u16, f32, u32 or u64 (`Elem`), for which every bit pattern is a
        // value, and only within `len` (Span checks); the suite writes what it checks (fill,
        // poison, a kernel, a copy) before reading it.
        let slice = unsafe { self.stream.alloc::<u8>(bytes.max(256)) }.map_err(drv)?;
        let ptr = {
            let (p, _sync) = slice.device_ptr(&self.stream);
            p
        };
        Ok(DBuf {
            _slice: slice,
            name,
            dtype,
            len,
            ptr,
        })
    }

    /// Launches one of our kernels after [`Launch::plan`] checked it: buffers, shapes, grid.
    pub fn launch(&self, l: &Launch) -> Result<(), CudaError> {
        let planned = l.plan(self.sm_count.max(1) as usize)?;
        let name = planned.kernel;
        let f = self.funcs.get(name).ok_or_else(|| {
            CudaError::Kernel(format!(
                "kernel '{name}' is not available (its module failed to build/load)"
            ))
        })?;
        let mut b = self.stream.launch_builder(f);
        for a in &planned.args {
            match a {
                KArg::P(v) | KArg::U(v) => {
                    b.arg(v);
                }
                KArg::I(v) => {
                    b.arg(v);
                }
                KArg::L(v) => {
                    b.arg(v);
                }
                KArg::F(v) => {
                    b.arg(v);
                }
            }
        }
        let cfg = LaunchConfig {
            grid_dim: planned.grid,
            block_dim: (planned.block, 1, 1),
            shared_mem_bytes: planned.smem,
        };
        // SAFETY: `plan` built the argument list in the order and widths of the kernel's
        // signature in kernels/*.cu (a unit test compares them with the sources); each pointer
        // is a Span of a live DBuf (the Launch borrows it) of the element type the kernel
        // takes, holding every element the kernel touches at this grid (checked by `plan`);
        // the dynamic shared memory is the kernel's own (DYN_SMEM_TABLE, checked against the
        // kernels' templates), opted into in `new`. The kernel runs on `self.stream`, before
        // any later free of those buffers (stream-ordered, same stream).
        unsafe { b.launch(cfg) }.map_err(drv)?;
        Ok(())
    }

    /// Fills `n` bf16 values at the start of `p` with uniform(-scale, scale).
    pub fn fill_rand_bf16(
        &self,
        p: Span,
        n: usize,
        seed: u64,
        scale: f32,
    ) -> Result<(), CudaError> {
        self.launch(&Launch::FillRand { p, n, seed, scale })
    }

    /// Sets the first `n` elements of `s` to all-one bits (NaN for bf16 and f32) or zero.
    fn memset(&self, s: Span, n: usize, ones: bool) -> Result<(), CudaError> {
        check_elems(if ones { "poison" } else { "zero" }, &s, s.dtype(), n)?;
        let stream = self.stream.cu_stream();
        let word = if ones { u32::MAX } else { 0 };
        // SAFETY: `s` is a Span of a live DBuf holding at least `n` elements of its type
        // (checked above), so the `n · size` bytes written lie inside the allocation; the
        // address is aligned to the element size (allocations are 256-byte aligned, spans
        // start at whole elements), as cuMemsetD16/D32 need. Queued on the one stream, before
        // any later free.
        let r = unsafe {
            match s.dtype() {
                DType::Bf16 => dsys::cuMemsetD16Async(s.ptr(), word as u16, n, stream),
                DType::F32 | DType::U32 => dsys::cuMemsetD32Async(s.ptr(), word, n, stream),
                DType::U64 => dsys::cuMemsetD32Async(s.ptr(), word, 2 * n, stream),
            }
        };
        r.result().map_err(drv)
    }

    /// Fills the first `n` elements of `s` with all-one bits (a bf16 or f32 NaN).
    pub fn poison(&self, s: Span, n: usize) -> Result<(), CudaError> {
        self.memset(s, n, true)
    }

    /// Number of non-finite values among the first `n` elements of `s` (bf16 or f32).
    pub fn count_nonfinite(&self, s: Span, n: usize) -> Result<u64, CudaError> {
        let counter = self.alloc("counter", DType::U64, 1)?;
        self.memset(counter.span(), 1, false)?;
        self.launch(&Launch::CountNonfinite {
            p: s,
            n,
            count: counter.span(),
        })?;
        let v: Vec<u64> = self.download(counter.span(), 1)?;
        Ok(v[0])
    }

    /// Copies the first `count` elements of `s` to the host (after the stream's work).
    pub fn download<T: Elem>(&self, s: Span, count: usize) -> Result<Vec<T>, CudaError> {
        check_elems("download", &s, T::DTYPE, count)?;
        self.sync()?;
        let mut v = vec![T::default(); count];
        // SAFETY: `v` holds `count` elements of `T`, whose size is that of `s`'s element type
        // (checked above through T::DTYPE), and `s` holds at least `count` of them inside a
        // live DBuf (the Span borrows it); the stream is synchronised, so the writes queued
        // before have landed and no free of the buffer is pending.
        unsafe { dres::memcpy_dtoh_sync(&mut v, s.ptr()) }.map_err(drv)?;
        Ok(v)
    }

    /// Device-to-device copy of `bytes` bytes, stream-ordered.
    pub fn copy_dtod(&self, dst: Span, src: Span, bytes: usize) -> Result<(), CudaError> {
        check_copy(&dst, &src, bytes)?;
        // SAFETY: both spans hold at least `bytes` bytes inside live DBufs (checked above; the
        // Spans borrow them); the copy is queued on the one stream, after the writes queued
        // before it and before any later free.
        unsafe { dres::memcpy_dtod_async(dst.ptr(), src.ptr(), bytes, self.stream.cu_stream()) }
            .map_err(drv)
    }

    /// Row-major `C[m,n] = A[m,k] · B[k,n]`, bf16 in/out, fp32 compute
    /// (column-major cuBLAS view: `Cᵀ = Bᵀ · Aᵀ`).
    pub fn cublas_gemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: Span,
        b: Span,
        c: Span,
    ) -> Result<(), CudaError> {
        self.cublas_gemm_batched(1, m, n, k, a, b, c)
    }

    /// `batch` independent row-major GEMMs at strides `m·k`, `k·n`, `m·n`.
    #[allow(clippy::too_many_arguments)]
    pub fn cublas_gemm_batched(
        &self,
        batch: usize,
        m: usize,
        n: usize,
        k: usize,
        a: Span,
        b: Span,
        c: Span,
    ) -> Result<(), CudaError> {
        // Sizes within cuBLAS's `int`, and every buffer bf16 and large enough.
        check_cublas_gemm(batch, m, n, k, &a, &b, &c)?;
        let (a, b, c) = (a.ptr(), b.ptr(), c.ptr());
        let alpha = 1.0f32;
        let beta = 0.0f32;
        let op = bsys::cublasOperation_t::CUBLAS_OP_N;
        let ty = bsys::cudaDataType::CUDA_R_16BF;
        // SAFETY: `self.blas` is the live handle bound to `self.stream`; `alpha` and `beta` are
        // host f32 scalars (the handle's default host pointer mode) that outlive the call;
        // a, b and c point into live DBufs holding at least batch·m·k, batch·k·n and
        // batch·m·n bf16 elements (check_cublas_gemm), which is everything the column-major
        // n×m×k GEMMs with leading dimensions n, k, n and strides k·n, m·k, m·n read and
        // write; m, n, k and batch fit in i32 (checked), and the strides, bounded by the
        // buffers' lengths, fit in i64. Queued on the one stream, before any later free.
        unsafe {
            if batch == 1 {
                bres::gemm_ex(
                    self.blas,
                    op,
                    op,
                    n as i32,
                    m as i32,
                    k as i32,
                    &alpha as *const f32 as *const c_void,
                    b as *const c_void,
                    ty,
                    n as i32,
                    a as *const c_void,
                    ty,
                    k as i32,
                    &beta as *const f32 as *const c_void,
                    c as *mut c_void,
                    ty,
                    n as i32,
                    bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            } else {
                bres::gemm_strided_batched_ex(
                    self.blas,
                    op,
                    op,
                    n as i32,
                    m as i32,
                    k as i32,
                    &alpha as *const f32 as *const c_void,
                    b as *const c_void,
                    ty,
                    n as i32,
                    (k * n) as i64,
                    a as *const c_void,
                    ty,
                    k as i32,
                    (m * k) as i64,
                    &beta as *const f32 as *const c_void,
                    c as *mut c_void,
                    ty,
                    n as i32,
                    (m * n) as i64,
                    batch as i32,
                    bsys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    bsys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }
        }
        .map_err(blas_err)
    }

    fn event(&self) -> Result<CudaEvent, CudaError> {
        self.ctx
            .new_event(Some(dsys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(drv)
    }

    /// Warm-up, then times back-to-back launches of `f(i)` (i = launch index,
    /// used to rotate input sets) with one event between consecutive launches;
    /// the launch count is chosen so the timed loop lasts about `target_s`
    /// (clamped to `[min_launches, max_launches]`).
    pub fn time_launches(
        &self,
        warmup: usize,
        min_launches: usize,
        max_launches: usize,
        target_s: f64,
        f: &mut dyn FnMut(usize) -> Result<(), CudaError>,
    ) -> Result<Timing, CudaError> {
        for i in 0..warmup.max(1) {
            f(i)?;
        }
        self.sync()?;
        // Estimate the per-launch time from a short probe.
        let probe = 5usize;
        let (e0, e1) = (self.event()?, self.event()?);
        e0.record(&self.stream).map_err(drv)?;
        for i in 0..probe {
            f(i)?;
        }
        e1.record(&self.stream).map_err(drv)?;
        e1.synchronize().map_err(drv)?;
        let est = (e0.elapsed_ms(&e1).map_err(drv)? as f64 * 1e-3 / probe as f64).max(1e-7);
        // Extra warm-up for very short kernels (clocks, caches, launch path).
        if est < 50e-6 {
            for i in 0..50 {
                f(i)?;
            }
        }
        let n = ((target_s / est).ceil() as usize)
            .clamp(min_launches.max(1), max_launches.max(min_launches).max(1));
        let events: Vec<CudaEvent> = (0..=n).map(|_| self.event()).collect::<Result<_, _>>()?;
        events[0].record(&self.stream).map_err(drv)?;
        for i in 0..n {
            f(i)?;
            events[i + 1].record(&self.stream).map_err(drv)?;
        }
        events[n].synchronize().map_err(drv)?;
        self.sync()?;
        let mut t: Vec<f64> = (0..n)
            .map(|i| {
                events[i]
                    .elapsed_ms(&events[i + 1])
                    .map(|ms| ms as f64 * 1e-3)
            })
            .collect::<Result<_, _>>()
            .map_err(drv)?;
        t.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Ok(Timing {
            median: median_sorted(&t),
            min: t[0],
            max: t[n - 1],
            launches: n,
            graph_median: f64::NAN,
            graph_launches: 0,
            graph_error: None,
        })
    }

    /// Device-only time per launch: captures `per_graph` launches of `f` into
    /// one CUDA graph, replays it `replays` times with an event between
    /// replays, and returns the median over replays of (replay time /
    /// `per_graph`). This removes the host's per-launch cost, which dominates
    /// the back-to-back timing of kernels shorter than ~10 µs.
    pub fn graph_time(
        &self,
        per_graph: usize,
        replays: usize,
        f: &mut dyn FnMut(usize) -> Result<(), CudaError>,
    ) -> Result<f64, CudaError> {
        let (per_graph, replays) = (per_graph.max(1), replays.max(1));
        self.sync()?;
        self.stream
            .begin_capture(dsys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED)
            .map_err(drv)?;
        let mut err = None;
        for i in 0..per_graph {
            if let Err(e) = f(i) {
                err = Some(e);
                break;
            }
        }
        // Always end the capture, also after an error.
        let graph = self.stream.end_capture(dsys::CUgraphInstantiate_flags(0));
        if let Some(e) = err {
            return Err(e);
        }
        let graph = graph
            .map_err(drv)?
            .ok_or_else(|| CudaError::Driver("stream capture produced no graph".into()))?;
        graph.upload().map_err(drv)?;
        graph.launch().map_err(drv)?; // warm-up replay
        self.sync()?;
        let events: Vec<CudaEvent> = (0..=replays)
            .map(|_| self.event())
            .collect::<Result<_, _>>()?;
        events[0].record(&self.stream).map_err(drv)?;
        for r in 0..replays {
            graph.launch().map_err(drv)?;
            events[r + 1].record(&self.stream).map_err(drv)?;
        }
        events[replays].synchronize().map_err(drv)?;
        self.sync()?;
        let mut t: Vec<f64> = (0..replays)
            .map(|r| {
                events[r]
                    .elapsed_ms(&events[r + 1])
                    .map(|ms| ms as f64 * 1e-3 / per_graph as f64)
            })
            .collect::<Result<_, _>>()
            .map_err(drv)?;
        t.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Ok(median_sorted(&t))
    }
}

/// NVRTC-compiles one kernel family for sm_90.
fn compile_family(fam: &str, srcs: &[&str]) -> Result<Ptx, String> {
    let opts = CompileOptions {
        arch: Some("sm_90"),
        options: vec!["--std=c++17".into()],
        name: Some(format!("{fam}.cu")),
        ..Default::default()
    };
    compile_ptx_with_opts(srcs.concat(), opts).map_err(compile_error_text)
}

/// Compiles every family (in parallel); needs only libnvrtc, no GPU.
fn compile_all() -> Vec<(&'static str, Result<Ptx, String>)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = FAMILIES
            .iter()
            .map(|f| s.spawn(move || (f.name, compile_family(f.name, f.sources))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or(("?", Err("NVRTC thread panicked".to_string())))
            })
            .collect()
    })
}

fn median_sorted(t: &[f64]) -> f64 {
    let n = t.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    }
}

fn compile_error_text(e: CompileError) -> String {
    match e {
        CompileError::CompileError {
            nvrtc,
            options,
            log,
        } => {
            format!("{nvrtc:?} (options {options:?})\n{}", log.to_string_lossy())
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles every kernel family with NVRTC when libnvrtc can be loaded
    /// (no GPU needed; e.g. `LD_LIBRARY_PATH` pointing at the lib folder of the
    /// `nvidia-cuda-nvrtc` wheel), and checks the PTX: the kernels are there,
    /// the tensor-core / async-copy instructions are used, and no kernel keeps
    /// an array in local memory. Skips with a message otherwise. With
    /// `CASCADE_CUDA_DUMP_PTX=dir` the PTX is written there (for `ptxas -v`).
    #[test]
    fn nvrtc_compiles_all_kernel_families() {
        // SAFETY: only tries to dlopen libnvrtc and reports whether that worked.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("skipped: libnvrtc is not loadable on this machine");
            return;
        }
        for ((fam, ptx), family) in compile_all().into_iter().zip(FAMILIES) {
            let names = family.kernels;
            let ptx = ptx.unwrap_or_else(|e| panic!("NVRTC failed for {fam}:\n{e}"));
            let text = ptx.to_src();
            if let Ok(dir) = std::env::var("CASCADE_CUDA_DUMP_PTX") {
                let _ = std::fs::create_dir_all(&dir);
                std::fs::write(std::path::Path::new(&dir).join(format!("{fam}.ptx")), &text)
                    .unwrap();
            }
            for name in names {
                assert!(
                    text.contains(&format!(".entry {name}(")),
                    "{fam}: no entry {name}"
                );
            }
            assert!(
                !text.contains(".local"),
                "{fam}: PTX uses local memory (stack array)"
            );
            if matches!(fam, "gemm" | "attn_unfused" | "fa2") {
                for instr in [
                    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32",
                    "ldmatrix.sync.aligned",
                    "cp.async.cg.shared.global",
                ] {
                    assert!(text.contains(instr), "{fam}: no {instr}");
                }
            }
        }
    }

    #[test]
    fn median() {
        assert_eq!(median_sorted(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median_sorted(&[1.0, 2.0, 3.0, 10.0]), 2.5);
        assert!(median_sorted(&[]).is_nan());
    }
}
