"""Kernel paths: which GEMM kernels an engine runs for a weight format on a GPU, and what they reach.

The same engine runs very different kernels for different formats and GPU generations, and the fixed cost of a
step, the bandwidth reached and the compute peak all follow the kernels, not the engine alone:

* **native** low precision: the weights' own dtype on tensor cores that have it (fp8 on Hopper, Ada, MI300;
  fp4 on Blackwell) -- the peak of that dtype;
* **weight-only** (W4A16/W8A16): GPTQ/AWQ int4, MXFP4 or NVFP4 on a GPU without fp4 units, fp8 on Ampere --
  Marlin-style kernels that dequantize in the inner loop and multiply in bf16: bf16 peak, more fixed work per
  MoE layer (Marlin MoE's alignment, dequantization and scale handling) and a lower share of bandwidth;
* **bf16/fp16**: the checkpoint as stored;
* **llama.cpp** per backend (:data:`BACKENDS`): CUDA and ROCm multiply quantized blocks with int8 dot products
  against 8-bit activations (MMQ; int8 tensor cores where the GPU has them), Vulkan with fp16 cooperative
  matrices, Metal with fp16 simdgroup matrices, SYCL with XMX through oneMKL.

A path scales an engine's :class:`~moeplan.deploy.engines.Efficiency`: ``compute_max`` replaced, the fixed
costs and bandwidth multiplied, and ``m_half`` -- the tokens per expert at which a GEMM reaches half its
``eta_max`` (vLLM's Triton fused MoE uses 16-128-token tiles and saturates late; llama.cpp's MMQ picks its token
tile from 8 to 128 to fit the batch and saturates early).

The tensor peak a path needs may be missing from the catalogue (vendors publish some dtypes only): it is then
derived from a published one by the tensor-core rule that halving the bits doubles the rate
(:func:`tensor_peak`), and the deployment says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from moeplan.deploy.engines import FUSED_MOE_LAYER_S, Efficiency, Engine
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, weight_format
from moeplan.hardware.gpus import GpuSpec
from moeplan.records import Value

BITS = {"fp4": 4, "int8": 8, "fp8": 8, "bf16": 16, "fp16": 16}
"""Operand bits of the tensor dtypes (int8 and fp8 run at the same rate on every GPU that has both)."""


def tensor_peak(gpu: GpuSpec, dtype: str) -> tuple[float, str | None]:
    """Dense peak FLOP/s (or OP/s) of ``dtype`` on ``gpu``, and a note when it was derived.

    The catalogue's figure where it has one; else the nearest published tensor dtype scaled by 2 per halving of
    bits (``fp4`` 500 published on DGX Spark gives ``int8`` 250 and ``bf16`` 125); else bf16/fp16, then fp32.
    RTX 5090: int8 is not in the catalogue, its fp8 (the fp32-accumulate rate, 419) gives int8 419; NVIDIA's
    Blackwell GeForce sheet gives 838, but llama.cpp's Vulkan prefill on the card (benchmarks/prefill_measurements.yaml
    P12, P13, L12-L16) lands at the 419 figure's prediction, 2x below the 838 one, so the catalogue keeps it out.
    """
    own = gpu.dense_tflops(dtype)
    if own:
        return own * 1e12, None
    derived = derived_peak(gpu, dtype)
    if derived is not None:
        d, v, tflops = derived
        return tflops * 1e12, f"{dtype} peak of {gpu.id} derived from its {d} {v:g} TFLOP/s: {tflops:g}"
    for fallback in ("bf16", "fp16", "fp32"):
        tf = gpu.dense_tflops(fallback)
        if tf:
            return tf * 1e12, f"{gpu.id} publishes no {dtype} peak: its {fallback} {tf:g} TFLOP/s is used"
    return 1e12, f"{gpu.id} publishes no compute peak: 1 TFLOP/s assumed"


def derived_peak(gpu: GpuSpec, dtype: str) -> tuple[str, float, float] | None:
    """Where the catalogue has no ``dtype`` peak for ``gpu``: the nearest published tensor dtype, its TFLOP/s, and
    ``dtype``'s scaled by 2 per halving of bits (DGX Spark's fp4 500 gives bf16 125); else None."""
    if dtype not in BITS or gpu.dense_tflops(dtype):
        return None
    known = [(d, v) for d in BITS if (v := gpu.dense_tflops(d)) and d != dtype]
    if not known:
        return None
    d, v = min(known, key=lambda dv: abs(BITS[dv[0]] - BITS[dtype]))
    return d, v, v * BITS[d] / BITS[dtype]


@dataclass(frozen=True, repr=False, eq=False)
class KernelPath(Value):
    """The GEMM kernels of one (engine, weight format, GPU), and how they change the engine's factors."""

    name: str
    peak_dtype: str
    """The tensor dtype whose peak the GEMMs run at."""
    compute_max: float
    """``eta_max`` of a large GEMM on this path."""
    m_half: float
    """Tokens per expert (GEMM rows) at which the GEMM reaches half of ``eta_max``."""
    nk_half: float = 1024.0
    """Output and input width at which a GEMM reaches half its peak (tiles per wave; 0: no penalty)."""
    fixed_scale: float = 1.0
    """On the engine's per-kernel and per-MoE-layer fixed costs."""
    bw_scale: float = 1.0
    """On the engine's achieved share of bandwidth (dequantization in the inner loop reads less effectively)."""
    launch_scale: float = 1.0
    """On the per-kernel cost (Metal's command encoding costs more than CUDA graph replays)."""
    compute_spread: tuple[float, float] = (0.7, 1.3)
    """Factors on the compute efficiency at the band's low and high ends: how far measured kernels scatter (the
    checkpoint engines' prefill and TTFT runs scatter 0.7-1.3x around their path's figure, llama.cpp's about as
    much)."""
    expert_traffic: tuple[float, float] = (1.0, 0.0)
    """Bytes moved per stored byte of routed experts (:attr:`Efficiency.expert_traffic`)."""
    expert_grid: bool = True
    """The experts' GEMM tiles form one grid (:attr:`Efficiency.expert_grid`)."""
    moe_layer_s: float | None = None
    """The MoE layer's own fixed seconds in place of the engine's (fused MoE kernels, :data:`FUSED_MOE_LAYER_S`);
    None keeps the engine's."""
    source: str = ""

    def apply(self, eff: Efficiency) -> Efficiency:
        """``eff`` with this path's compute, fixed costs and bandwidth."""
        return replace(
            eff,
            bw=(eff.bw[0] * self.bw_scale, eff.bw[1] * self.bw_scale, min(1.0, eff.bw[2] * self.bw_scale)),
            compute_max=self.compute_max,
            kernel_s=eff.kernel_s * self.fixed_scale * self.launch_scale,
            moe_layer_s=(eff.moe_layer_s if self.moe_layer_s is None else self.moe_layer_s) * self.fixed_scale,
            m_half=self.m_half,
            nk_half=self.nk_half,
            compute_spread=self.compute_spread,
            expert_traffic=self.expert_traffic,
            expert_grid=self.expert_grid,
        )


@dataclass(frozen=True, repr=False, eq=False)
class Backend(Value):
    """One llama.cpp GPU backend: per GPU vendor, the tensor dtype its mat-mat kernels for quantized blocks
    multiply in and the share of that peak they reach (``eta_max``)."""

    name: str
    paths: dict[str, tuple[str, float]]
    """GPU vendor -> (peak dtype, eta_max)."""
    m_half: float
    launch_scale: float
    source: str

    @property
    def vendors(self) -> tuple[str, ...]:
        return tuple(self.paths)


# llama.cpp's mat-mat kernels for quantized blocks batch all experts of a layer in one launch (mul_mat_id) and
# pick their token tile (8-128) to fit the rows: no tile-size or wave penalty (``nk_half`` 0), saturating by
# ~16 tokens per expert.  eta_max per backend and vendor for k-quant and legacy types (MXFP4 and float experts
# scale it, :data:`TYPE_FACTOR`): the median share of the peak implied by llama-bench pp rows of those types
# across models and GPUs (benchmarks/prefill_measurements.yaml): CUDA 0.10 of the int8 peak (RTX 3090, DGX Spark),
# Vulkan on NVIDIA 0.11 (RTX 3090, 5090), Metal 0.6 of the M2 Ultra's ALU peak (no tensor cores through M4), ROCm
# 0.155 of the fp16 WMMA peak and Vulkan on AMD 0.092 (Strix Halo and RX 7900 XTX, builds of 2025-09 on).
BACKENDS: dict[str, Backend] = {
    "cuda": Backend(
        "cuda", {"nvidia": ("int8", 0.10)}, 16, 1.0,
        "ggml-cuda mmq.cuh: int8 mma (Turing+) on q8_1 activations; llama-bench pp on RTX 3090/4090, DGX Spark",
    ),
    "rocm": Backend(
        "rocm", {"amd": ("fp16", 0.155)}, 16, 1.0,
        "ggml-cuda via HIP: MMQ with dp4a / WMMA; llama-bench pp on Strix Halo and RX 7900 XTX (kyuz0 toolboxes, "
        "lhl/strix-halo-testing, llama.cpp PR #18537)",
    ),
    "vulkan": Backend(
        "vulkan", {"nvidia": ("int8", 0.11), "amd": ("fp16", 0.092), "intel": ("fp16", 0.10)}, 16, 1.0,
        "ggml-vulkan: integer-dot and cooperative-matrix mat-mat; llama-bench pp on RTX 3090/5090 and Strix Halo",
    ),
    "metal": Backend(
        "metal", {"apple": ("fp16", 0.6)}, 16, 2.5,
        "ggml-metal: simdgroup-matrix mat-mat on the ALUs; llama-bench pp on M2 Ultra (llama.cpp PR #15616)",
    ),
    "sycl": Backend(
        "sycl", {"intel": ("fp16", 0.04)}, 16, 1.0,
        "ggml-sycl: oneMKL/oneDNN GEMM on XMX after dequantization; MoE prefill on an Arc Pro B70 (llama.cpp PR "
        "'[SYCL] improve MoE prefill throughput', 688 tok/s unpatched, +70% patched): 3-5% of the XMX peak",
    ),
}  # fmt: skip
FLASH_ATTENTION_ETA = 0.45
"""Share of the bf16 tensor peak the checkpoint engines' attention kernels (FlashAttention, FlashInfer, Triton and
AITER attention) reach on the scores (``QK^T`` and ``PV``): 0.6 of a bf16 GEMM's 0.75, as before.  Their operands
are the bf16 queries, keys and values whatever format the weights are stored in, so fp8 or fp4 weights leave this
part of a prefill at the bf16 peak: Qwen3.5-397B on 4x RTX PRO 6000 prefills 131,072 tokens in AWQ int4 and in
NVFP4 in the same time (8.4 and 8.9 s, benchmarks/prefill_measurements.yaml R09/R14), where the fp4 peak, 4x the
bf16, had scored its 32 GFLOP a token of scores 4x faster.  llama.cpp's backends and Apple's GPUs keep their own
mat-mat figure for them."""


def attention_peak(gpu: GpuSpec, path_dtype: str, path_eta: float, own_kernels: bool) -> tuple[float, float]:
    """FLOP/s peak and its share for the attention scores: the bf16 peak x :data:`FLASH_ATTENTION_ETA` on the
    checkpoint engines' kernels; ``own_kernels`` (llama.cpp, Apple): the GEMM path's dtype at 0.6 of its ``eta``.
    H100: 989 x 0.45 = 445 TFLOP/s whether the weights are bf16, fp8 or fp4."""
    if own_kernels:
        return tensor_peak(gpu, path_dtype)[0], path_eta * 0.6
    return tensor_peak(gpu, "bf16")[0], FLASH_ATTENTION_ETA


DECODE_ATTENTION_VECTOR = 0.3
"""llama.cpp's decode attention (batch <= 8: the FlashAttention "vec" kernels) runs on the vector units, not the
tensor cores, at about this share of the fp32 peak: DeepSeek-V3 in ik_llama.cpp on an RTX 5090 slows from 17.95 to
12.54 tok/s between 0 and 32K tokens of context (benchmarks/offload_measurements.yaml Q27-Q29), 24 ms more per
token for 544 GFLOP of absorbed-MLA scores: 22 TFLOP/s, 21% of the card's 104.8 fp32 TFLOP/s."""


def vector_peak(gpu: GpuSpec) -> float:
    """The fp32 vector peak, FLOP/s (the bf16 tensor peak / 4 where none is published)."""
    v = gpu.dense_tflops("fp32")
    return v * 1e12 if v else tensor_peak(gpu, "bf16")[0] / 4


LLAMA_CPP_SPREAD = (0.65, 1.3)
"""The implied eta_max of llama.cpp's mat-mat kernels scatters 0.63x-1.25x around each backend's figure over
builds, models and GPUs (the rows cited above): the prefill band spans it."""
BACKEND_DEFAULT = {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "sycl"}


def backend_for(gpu: GpuSpec | None, requested: str | None) -> Backend | None:
    """The llama.cpp backend ``--backend`` names (checked against the GPU's vendor), or the vendor's usual one."""
    if requested is None or requested.strip().lower() in ("", "auto"):
        if gpu is None:
            return None
        name = BACKEND_DEFAULT.get(gpu.vendor)
        return BACKENDS[name] if name else BACKENDS["vulkan"]
    key = requested.strip().lower()
    if key not in BACKENDS:
        raise InputError(f"unknown backend '{requested}'", f"one of: {', '.join(BACKENDS)} (or auto)")
    b = BACKENDS[key]
    if gpu is not None and gpu.vendor in BACKEND_DEFAULT and gpu.vendor not in b.vendors:
        usable = ", ".join(n for n, x in BACKENDS.items() if gpu.vendor in x.vendors)
        raise InputError(f"llama.cpp's {b.name} backend does not run on {gpu.name} ({gpu.vendor})",
                         f"for {gpu.vendor} GPUs: {usable or 'none'}")  # fmt: skip
    return b


TYPE_FACTOR = {"k-quant": 1.0, "mxfp4": 1.4, "float": 0.35}
"""llama.cpp's mat-mat efficiency by the routed experts' type, relative to its k-quant and legacy kernels, where a
backend has no figure of its own (:data:`BACKEND_TYPE_FACTOR`): MXFP4 unpacks with one shared exponent per 32
weights (no sub-block scales) and runs 1.2-2x faster on every backend measured (median over CUDA, ROCm and Vulkan
rows); float weights (F16, BF16) have no MMQ path in ``mul_mat_id`` and fall back to generic mat-mat kernels."""
BACKEND_TYPE_FACTOR = {
    ("cuda", "nvidia", "mxfp4"): 1.17,
    ("rocm", "amd", "float"): 0.47,
    ("vulkan", "amd", "mxfp4"): 2.1,
    ("vulkan", "amd", "bf16"): 0.19,
    ("vulkan", "nvidia", "mxfp4"): 1.35,
}
"""The same factor per backend and GPU vendor wherever at least three scored llama-bench rows of the type exist
(benchmarks/prefill_measurements.yaml): the median of ``TYPE_FACTOR x measured / predicted`` over them.  CUDA
MXFP4 1.17 (P01, P02, P04, P07, L01, L06), Vulkan MXFP4 on NVIDIA 1.35 (P12, P15, L12, L15) and on AMD 2.1 (P09,
L02, L89, L97, L121, L125: AMD's Vulkan drivers run the MXFP4 shaders at twice their k-quant rate), ROCm float
0.47 (L32, L68, L106: hipBLAS per expert).  BF16 under Vulkan on AMD 0.19 (L33, L73, L107): ggml-vulkan multiplies
bf16 on cooperative matrices only where the driver exposes ``VK_KHR_shader_bfloat16`` (llama.cpp PR #12554), which
AMD's drivers report absent (``bf16: 0`` in ggml_vulkan's device line: Radeon 8060S and RX 7900 XT under RADV,
geerlingguy/ai-benchmarks issues #21 and #23), so BF16 weights take the scalar path that promotes them to fp32; F16
weights keep the cooperative matrices (:data:`TYPE_FACTOR`).  Strix Halo: 5.3x slower than its k-quants under
Vulkan, 2.1x under ROCm."""


def type_factor(backend: str, vendor: str, kind: str, bf16: bool = False, moe: bool = True) -> float:
    """llama.cpp's mat-mat factor for ``kind`` weights on ``backend`` and a ``vendor`` GPU (``bf16``: float weights
    stored as BF16): the backend's own figure where it has one, else the cross-backend :data:`TYPE_FACTOR`.  A dense
    model's float weights (``moe`` False) take plain ``mul_mat``, not ``mul_mat_id``'s fallback: 1, save a backend's
    scalar BF16 path.  Vulkan on AMD: MXFP4 2.1, BF16 0.19, F16 0.35 (dense 1)."""
    if bf16 and (own := BACKEND_TYPE_FACTOR.get((backend, vendor, "bf16"))) is not None:
        return own
    if kind == "float" and not moe:
        return 1.0
    return BACKEND_TYPE_FACTOR.get((backend, vendor, kind), TYPE_FACTOR[kind])


BLAS_BACKENDS = {"cuda": "cuBLAS", "rocm": "hipBLAS"}
"""llama.cpp backends that hand float matrix products to the vendor's BLAS once a batch has more than a few rows."""
_LLAMA_CPP_BLAS = KernelPath(
    "llama.cpp (BLAS fp16 GEMM, float weights)", "fp16", 0.75, 16, nk_half=0.0, compute_spread=LLAMA_CPP_SPREAD,
    source="ggml-cuda's mul_mat sends F16/BF16/F32 weights at batches past 16 rows to cuBLAS (hipBLAS under ROCm; "
    "llama.cpp PRs #15131, #24216), which picks its tiles to the shape: a dense model's float GEMMs run at the bf16 "
    "cuBLAS path's share (0.75) from a few dozen rows on, not at the mul_mat_id fallback that float experts take "
    "(TYPE_FACTOR). Check: LLaMA-7B F16 on an RTX 4090, pp512 11,048 tok/s (llama.cpp PR #4766), 1.2x this "
    "figure's 8,900 and inside its band",
)  # fmt: skip


def expert_gguf_type(scheme: Scheme) -> str:
    """The routed experts' type name, upper case: their own override, else the file's label or format."""
    own = scheme.overrides.get("routed_experts")
    return (own or scheme.gguf or expert_format(scheme)).upper()


def expert_type_class(scheme: Scheme) -> str:
    """``float``, ``mxfp4`` or ``k-quant``: the class of the routed experts' GGUF type."""
    fmt = expert_gguf_type(scheme)
    if fmt in ("MXFP4", "MXFP4_MOE"):
        return "mxfp4"
    if fmt in ("F16", "BF16", "F32", "FP16", "FP32"):
        return "float"
    return "k-quant"


def expert_format(scheme: Scheme) -> str:
    """The format the routed experts are stored in (they dominate the bytes and FLOPs of an MoE step)."""
    if "routed_experts" in scheme.overrides:
        return scheme.overrides["routed_experts"]
    return scheme.base if "routed_experts" in scheme.quantized else scheme.rest


# Checkpoint engines' paths.  compute_max 0.75 for bf16 and Marlin weight-only, 0.6 for native fp8 and Triton's
# MXFP4; m_half the largest token tile the MoE kernel takes: 128 for Triton's fused MoE and the native paths, 64 for
# Marlin's (fused_marlin_moe picks block_size_m from 8, 16, 32, 48, 64 to fit the tokens per expert); a fused MoE's
# experts form one grid (Efficiency.expert_gemm) except on the fp8 paths
# (_FP8_EXPERT_TILES).  Weight-only: Marlin MoE reaches ~80% of the bandwidth the bf16 kernels reach at batch 1 and
# adds its own alignment/permute kernels per layer (vLLM fused_marlin_moe: moe_align_block_size, two Marlin GEMMs,
# the activation, a sum) -- 1.6x the fixed cost per MoE step; measured vLLM gpt-oss MXFP4 on A100 and AWQ DeepSeek
# on H100 both run ~1.7x slower than the bf16-path prediction.
_FP8_EXPERT_TILES = (
    "; the fp8 MoE GEMMs reach what one expert's narrow GEMM would, not one grid's share: vLLM's Triton fp8 fused "
    "MoE at Qwen3-30B-A3B's shape, 4,096 tokens on H100, 1.65 ms = 9.5% of the fp8 peak (vLLM PR #24700); "
    "DeepGEMM's block-fp8 grouped GEMMs in tensor-parallel prefill 30-50% of their projection (FlashInfer #3712)"
)
_NATIVE_SOURCE = (
    "CUTLASS/DeepGEMM fp8 grouped GEMM with per-token activation quantization: SGLang's fp8 prefill of "
    "Qwen3.5-35B-A3B runs 1.3x its bf16 on H200, not 2x (benchmarks/prefill_measurements.yaml Q53/Q54)"
)
_NATIVE = KernelPath("native", "fp8", 0.6, 128, expert_grid=False, source=_NATIVE_SOURCE + _FP8_EXPERT_TILES)
_FUSED_FP4_SOURCE = (
    "SGLang's server_args on SM100: GPT-OSS MXFP4 -> moe_runner_backend flashinfer_mxfp4, DeepSeek-V3/Qwen3-Next "
    "modelopt_fp4 -> flashinfer_trtllm, other NVFP4 -> flashinfer_cutlass (SM120: CUTLASS or Marlin); vLLM runs "
    "fp4 MoE through FlashInfer's TensorRT-LLM-gen or CUTLASS kernels: the fused MoE's fixed cost, as TensorRT-LLM's"
)
_WEIGHT_ONLY = KernelPath(
    "weight-only (Marlin W4A16/W8A16)", "bf16", 0.75, 64, fixed_scale=1.6, bw_scale=0.8,
    source="vLLM fused_marlin_moe / gptq_marlin: dequantize in the GEMM, bf16 tensor cores; once compute-bound "
    "the bf16 GEMM's share (0.75): Marlin's int4 dequantization hides under the tensor-core work, its speedup over "
    "FP16 falling towards 1.5x at batch 128 on an A10 as the problem turns compute-bound (Frantar et al., "
    "arXiv:2408.11743), and AWQ int4 Qwen3.5-397B prefills as fast as NVFP4 on 4x RTX PRO 6000 under vLLM 0.17 "
    "(benchmarks/prefill_measurements.yaml R05/R10: 0.495 and 0.492 s for 8,192 tokens)",
)  # fmt: skip
_BF16 = KernelPath("bf16", "bf16", 0.75, 128, source="cuBLAS / Triton fused MoE, bf16")
_TRITON_MXFP4 = KernelPath(
    "weight-only MXFP4 (Triton matmul_ogs)", "bf16", 0.6, 128,
    source="vLLM's gpt-oss recipe: Hopper (and MI300 through AITER/Triton) run MXFP4 experts with Triton's "
    "matmul_ogs, Ampere with Marlin; InferenceX gpt-oss-120b on H100 and MI300X (vLLM 0.17): 3.7-4.3 ms per step at "
    "TP8, no Marlin-sized fixed cost (benchmarks/multi_gpu_measurements.yaml M06, N95, N96)",
)  # fmt: skip
_AMD_BLOCK_FP8 = KernelPath(
    "fp8 128x128 blocks on AMD Instinct (AITER block-scale MoE)", "fp8", 0.6, 128, fixed_scale=2.2,
    source="SGLang 0.5.7 on 8x MI300X: DeepSeek-R1/V3.1, Qwen3-Coder-480B and MiniMax-M2 in fp8 blocks decode "
    "1.3-2.6x slower than the native-fp8 path predicts, while bf16 models on the same machines land within 10% "
    "(benchmarks/multi_gpu_measurements.yaml N28-N89): more fixed work per layer (e4m3fn->fnuz scales, block-scale "
    "MoE and GEMM kernels)" + _FP8_EXPERT_TILES, expert_grid=False,
)  # fmt: skip
_BNB_DEQUANT = KernelPath(
    "bitsandbytes 4-bit (dequantized to bf16 each pass)", "bf16", 0.75, 128, expert_traffic=(4.0, 5.0),
    source="vLLM's BitsAndBytesMoEMethod dequantizes every expert's w13 and w2 to the activation dtype on each "
    "forward pass (_apply_4bit_dequnt over all experts of the layer), then runs fused_experts on the bf16 copies: "
    "per stored byte of 4-bit experts, 1 read + 4 written for all of them and 4 read for those used",
)  # fmt: skip
_APPLE = KernelPath(
    "Metal (simdgroup matrix on the ALUs)", "fp16", 0.6, 16, nk_half=0.0,
    source="Apple GPUs through M4 have no tensor cores: GEMMs run on the ALUs at their fp16 rate, no tile padding "
    "(Metal backend's figure, benchmarks/prefill_measurements.yaml P10/P11)",
)  # fmt: skip


BITSANDBYTES_4BIT = frozenset({"nf4", "fp4", "fp4-dq", "nf4-dq"})
"""bitsandbytes' 4-bit formats (``--quant nf4``, ``fp4``: bitsandbytes FP4, not NVFP4 or MXFP4)."""


SGLANG_TRTLLM_MOE = frozenset({"deepseek_v3", "kimi_k2", "qwen3_moe", "qwen3_vl_moe"})
"""Model families whose fp8 (and, for Qwen3-MoE, bf16) experts SGLang runs on SM100 through FlashInfer's
TensorRT-LLM-gen fused MoE when no all-to-all backend is set (``server_args``: ``moe_runner_backend =
"flashinfer_trtllm"`` for DeepseekV3ForCausalLM with fp8 or modelopt quantization, and for Qwen3MoeForCausalLM and
Qwen3VLMoe with fp8, modelopt_fp4 or none); other families keep Triton's fused_moe (MiniMax-M2 on B200: 55 us a
layer fits, benchmarks/multi_gpu_measurements.yaml N55-N60)."""
_SGLANG_SM100_SOURCE = (
    "SGLang's server_args on SM100 (B200, B300, GB200, GB300): DeepSeek-V3/Kimi-K2 and Qwen3-MoE experts run through "
    "FlashInfer's TensorRT-LLM-gen fused MoE (moe_runner_backend flashinfer_trtllm), not Triton's fused_moe: the "
    "fused MoE's fixed cost, as TensorRT-LLM's"
)


def sm100(gpu: GpuSpec | None) -> bool:
    """An NVIDIA datacenter Blackwell (SM100/SM103: B200, B300, GB200, GB300): fp4 tensor cores on a datacenter
    part (the workstation and consumer Blackwells are SM120, whose MoE kernels differ)."""
    return gpu is not None and gpu.vendor == "nvidia" and gpu.kind == "datacenter" and bool(gpu.dense_tflops("fp4"))


def kernel_path(
    engine: Engine,
    scheme: Scheme,
    gpu: GpuSpec | None,
    backend: Backend | None,
    architecture: str = "",
    moe: bool = True,
) -> KernelPath:
    """The GEMM path ``engine`` takes for ``scheme``'s routed experts (the bulk of an MoE step) on ``gpu``
    (``architecture``: the model family, where an engine picks its MoE kernels by it; ``moe``: whether the model
    routes to experts at all -- a dense model's GEMMs are plain ``mul_mat``, not ``mul_mat_id``)."""
    path = _kernel_path(engine, scheme, gpu, backend, moe)
    sglang_fused = engine.name == "sglang" and sm100(gpu) and architecture in SGLANG_TRTLLM_MOE
    formats = path.peak_dtype == "fp8" or (path.peak_dtype == "bf16" and architecture in ("qwen3_moe", "qwen3_vl_moe"))
    if sglang_fused and formats and path.moe_layer_s is None:
        path = replace(path, moe_layer_s=FUSED_MOE_LAYER_S, source=path.source + "; " + _SGLANG_SM100_SOURCE)
    return path


def _kernel_path(
    engine: Engine, scheme: Scheme, gpu: GpuSpec | None, backend: Backend | None, moe: bool = True
) -> KernelPath:
    """The GEMM path by engine, format and GPU alone."""
    if engine.llama_cpp_kernels:
        b = backend or BACKENDS["cuda"]
        vendor = gpu.vendor if gpu is not None and gpu.vendor in b.paths else next(iter(b.paths))
        peak, eta = b.paths[vendor]
        kind = expert_type_class(scheme)
        bf16 = kind == "float" and expert_gguf_type(scheme) == "BF16"
        if kind == "float" and not moe and b.name in BLAS_BACKENDS:
            name = f"llama.cpp {b.name} ({BLAS_BACKENDS[b.name]} fp16 GEMM, float weights)"
            return replace(_LLAMA_CPP_BLAS, name=name, launch_scale=b.launch_scale)
        if kind == "float":
            peak = "fp16"  # float weights: the backend's float GEMM (cuBLAS, rocBLAS, coopmat)
        factor = type_factor(b.name, vendor, kind, bf16, moe)
        return KernelPath(
            f"llama.cpp {b.name} ({peak} mat-mat, {kind} experts)", peak, eta * factor, b.m_half,
            nk_half=0.0, launch_scale=b.launch_scale, compute_spread=LLAMA_CPP_SPREAD, source=b.source,
        )  # fmt: skip
    if gpu is not None and gpu.vendor == "apple":
        return _APPLE
    fmt = weight_format(expert_format(scheme))
    matmul = fmt.matmul if fmt is not None else "bf16"
    kernels = fmt.kernels if fmt is not None else "any"

    def has(dtype: str) -> bool:
        return gpu is not None and bool(gpu.dense_tflops(dtype))

    amd = gpu is not None and gpu.vendor == "amd"
    if matmul == "fp8" or kernels == "fp8":
        weight_only = replace(_WEIGHT_ONLY, name="fp8 weight-only (Marlin W8A16)")
        path = replace(_NATIVE, name="native fp8") if has("fp8") else weight_only
        if has("fp8") and amd and fmt is not None and fmt.tile and engine.name != "atom":
            path = _AMD_BLOCK_FP8
    elif kernels in ("packed4", "mxfp4", "nvfp4"):
        fp4 = fmt is not None and fmt.name in ("mxfp4", "nvfp4")
        if fp4 and has("fp4"):
            # fp4 GEMMs reach a smaller share of their 4x peak (vLLM MXFP4 prefill on DGX Spark: 10-13%); on NVIDIA
            # the engines run fp4 experts through FlashInfer's fused MoE (no Triton fused_moe path for fp4)
            path = replace(_NATIVE, name=f"native {fmt.name if fmt else 'fp4'}", peak_dtype="fp4", compute_max=0.4,
                           expert_grid=True, source=_NATIVE_SOURCE)  # fmt: skip
            if gpu is not None and gpu.vendor == "nvidia":  # AMD's AITER MoE keeps its sorting pass
                path = replace(path, moe_layer_s=FUSED_MOE_LAYER_S, source=_FUSED_FP4_SOURCE)
        elif fmt is not None and fmt.name == "mxfp4" and has("fp8"):
            path = _TRITON_MXFP4  # Hopper, Ada, MI300: weight-only MXFP4 through Triton's matmul_ogs, not Marlin
        elif amd:  # ROCm has no Marlin: vLLM's AWQ/GPTQ run Triton and ExLlama kernels, costed at Marlin's figures
            path = replace(_WEIGHT_ONLY, name="weight-only W4A16 (ROCm Triton/ExLlama kernels, at Marlin's figures)")
        elif gpu is not None and not gpu.nvidia_ampere_on:  # Turing: Marlin needs capability 8.0; AWQ's own kernels
            path = replace(_WEIGHT_ONLY, name="weight-only W4A16 (AWQ/GPTQ kernels before Ampere, at Marlin's figures)")
        else:
            path = _WEIGHT_ONLY
    elif fmt is not None and fmt.name in BITSANDBYTES_4BIT and not engine.llama_cpp_kernels:
        path = _BNB_DEQUANT
    elif fmt is not None and fmt.name == "int8" and has("int8"):
        int8 = replace(_NATIVE, peak_dtype="int8", expert_grid=True, source=_NATIVE_SOURCE)
        path = _WEIGHT_ONLY if engine.name != "tensorrt-llm" else int8
    else:
        path = _BF16
    return path


def float_gemm_scale(path: KernelPath, gpu: GpuSpec | None) -> float:
    """How many times longer a GEMM on weights kept in bf16 (an output head, attention projections a checkpoint
    leaves unquantized) takes than one on ``path``, the kernels of the quantized weights:
    ``max(1, peak(path dtype) x eta_max(path) / (peak(bf16) x eta_max(bf16)))``.  B200, native NVFP4 (9,000
    TFLOP/s x 0.4) against bf16 (2,250 x 0.75): 2.13; H100, native fp8 (1,979 x 0.6) against bf16 (989 x 0.75):
    1.6; weight-only paths (W4A16) already run at the bf16 peak: 1."""
    if gpu is None or path.peak_dtype in ("bf16", "fp16", "fp32"):
        return 1.0
    fast = tensor_peak(gpu, path.peak_dtype)[0] * path.compute_max
    return max(1.0, fast / (tensor_peak(gpu, "bf16")[0] * _BF16.compute_max))


def sm90(gpu: GpuSpec | None) -> bool:
    """An NVIDIA Hopper (SM90: H100, H200, H20, H800): fp8 tensor cores and HBM, no fp4 (Ada has fp8 on GDDR)."""
    return (
        gpu is not None and gpu.vendor == "nvidia" and bool(gpu.dense_tflops("fp8"))
        and not gpu.dense_tflops("fp4") and (gpu.memory_type or "").startswith("HBM")
    )  # fmt: skip


@dataclass(frozen=True, repr=False, eq=False)
class ScanKernel(Value):
    """The chunked linear-attention prefill of one layer (Gated DeltaNet, Kimi Delta Attention) on one GPU:

        t = T x (step_s + h x bytes x (d_k d_v / 128^2) / bandwidth)

    for ``T`` tokens of one sequence and ``h`` value heads on the GPU.  ``step_s`` is the chunk recurrence's
    sequential part (the state passes from chunk to chunk whatever the heads); the per-head part streams each
    chunk's states, ``w``, ``u`` and outputs through memory, so it follows the bandwidth, not the tensor peak
    (FLA reaches 8-13% of the bf16 peak on H100, H200 and the SM120 cards, 4-5% on B200 and GB200).  Qwen3.5-35B-A3B
    (32 value heads) prefilling 8,192 tokens on one H100 through FLA: 8,192 x (17 ns + 32 x 5,600 B / 3.35 TB/s)
    = 0.58 ms a layer, 0.55 measured."""

    name: str
    step_s: float
    bytes_per_head: float
    source: str

    def token_s(self, heads: float, key_dim: int, value_dim: int, gpu: GpuSpec) -> float:
        """Seconds per token of one layer with ``heads`` value heads of ``key_dim x value_dim`` states."""
        per_head = self.bytes_per_head * key_dim * value_dim / 128**2 / (gpu.bandwidth_gb_s * 1e9)
        return self.step_s + heads * per_head


_SCAN_TABLES = (
    "flashinfer PRs #3001 (B200), #3788 (H100 80GB HBM3) and #3659 (RTX PRO 6000 Blackwell, SM120): per-layer GDN "
    "prefill times of FLA's Triton chunk_gated_delta_rule and of FlashInfer's kernel for Qwen3.5's shapes (d 128, "
    "2-64 value heads, one sequence of 2,048-65,536 tokens); QwenLM/FlashQLA's benchmark tables (H200, GB200, "
    "RTX 5090, CUDA-graph timed) agree within 20%"
)
FLA_SCAN = ScanKernel("FLA (Triton)", 17e-9, 5_600.0, _SCAN_TABLES)
"""flash-linear-attention's Triton chain, which vLLM and SGLang vendor: H100 8 -> 64 heads at 65,536 tokens 2.0 ->
8.6 ms a layer (fit 1.99 -> 8.1); RTX PRO 6000 64 heads 13.8 ms (fit 14.2)."""
FLA_SCAN_SM100 = ScanKernel("FLA (Triton) on SM100", 24e-9, 12_000.0, _SCAN_TABLES)
"""The same Triton kernels on B200/GB200 reach half Hopper's bandwidth share (Triton's warp-level MMAs, not the
SM100 tensor memory): B200 32 and 64 heads at 8,192 tokens 0.60 and 1.02 ms (fit 0.59, 0.98)."""
FLASHINFER_SCAN_SM90 = ScanKernel("FlashInfer GDN (SM90)", 1e-9, 2_400.0, _SCAN_TABLES)
"""FlashInfer's Hopper GDN prefill, vLLM's and SGLang's default there: H100 16 and 64 heads at 65,536 tokens 0.78
and 3.0 ms (fit 0.75, 3.0)."""
FLASHINFER_SCAN_SM100 = ScanKernel("FlashInfer GDN (SM100)", 40e-9, 200.0, _SCAN_TABLES)
"""FlashInfer's CuTe-DSL Blackwell GDN prefill (vLLM PR #40717, SGLang PRs #22921/#23273 made it the default on
SM100 in April 2026): bound by the chunk recurrence, 0.33-0.34 ms at 8,192 tokens for 8 to 64 heads."""


def scan_kernel(engine: Engine, gpu: GpuSpec) -> ScanKernel | None:
    """The chunked linear-attention prefill kernels ``engine`` runs on ``gpu``: FlashInfer's under vLLM, SGLang
    (and KTransformers, which prefills through SGLang) on Hopper and datacenter Blackwell, FLA's Triton chain
    elsewhere; None where the engine has its own (llama.cpp's ggml ops, Apple's), left to the FLOP count."""
    if engine.llama_cpp_kernels or gpu.vendor == "apple":
        return None
    flashinfer = engine.name in ("vllm", "sglang", "ktransformers")
    if sm100(gpu):
        return FLASHINFER_SCAN_SM100 if flashinfer else FLA_SCAN_SM100
    if sm90(gpu) and flashinfer:
        return FLASHINFER_SCAN_SM90
    return FLA_SCAN
