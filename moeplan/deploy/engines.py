"""Serving engines, one record each: what an engine reserves and allocates on a GPU, how fast its kernels run (its
:class:`Efficiency`, from published measurements named in its ``source``), how it caches sliding-window layers,
how it spreads a model over GPUs, which weights and GPUs it runs, and how it is launched.  Adding an engine is
one entry in :data:`ENGINES` (and its tests).  Memory figures from real logs (docs/methodology.md has them all):

* CUDA context and kernels: ~0.5 GiB per GPU with lazy module loading (ml-engineering on A100: 0.47 GiB); NCCL
  and custom all-reduce buffers add 1-2 GiB when sharded (vLLM PR #10511: non-torch 1.79 GiB, 3.58 at TP=2).
* vLLM: ``gpu_memory_utilization`` x usable memory (0.92 since v0.21, CUDA graphs included: ~0.5 GiB dense, ~1.5
  MoE, PR #39559), less the profiling run's peak activation at ``max_num_batched_tokens``: the rest is KV cache,
  a sliding-window or chunked layer's last ``window + max_num_batched_tokens`` tokens only (:mod:`kv_cache`).
* SGLang: ``mem_fraction_static`` of usable memory for weights and KV (0.88 assumed; SGLang picks it from the GPU
  size), CUDA graphs ~1 GiB; hybrid-SWA models (gpt-oss) in a pool of 0.8 x the full-attention tokens.
* llama.cpp: no fractional reserve; one ubatch's compute buffer, growing with the context without flash attention
  (KQ ``n_ctx x n_ubatch x n_head x 4 B``); a ring of ``window + n_ubatch`` cells for sliding-window layers;
  layers split over GPUs.  transformers: eager PyTorch, the whole prompt's activations and allocator slack.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, kernel_needs
from moeplan.hardware.gpus import GpuSpec
from moeplan.records import Value

GIB = 1024**3
US = 1e-6
PYTHON_DISPATCH_S = 40 * US
"""Host time per kernel of an eager (no CUDA graph) prefill pass in the Python engines: PyTorch's per-op dispatch
(~10 us) times the two to four ops around each counted kernel.  SGLang's single-request TTFT at 610-token
prompts sits at this floor, not at the GPU roofline: ERNIE-4.5-21B on one MI300X 33 ms (28 layers of ~23
kernels), DeepSeek-R1 at TP8 on B200 126-153 ms (61 layers of ~35), while 8,192-token prompts stay GPU-bound
(benchmarks/prefill_measurements.yaml N- and Q-records)."""
TILE_ROWS = 16
"""Rows of one tensor-core tile (mma m16): fewer rows than this run a padded tile."""
LLAMA_CPP_UBATCH = 512
"""llama.cpp's default ``--ubatch-size``."""
FUSED_MOE_LAYER_S = 15 * US
"""Fixed seconds per MoE layer of a step whose routing, permutation and expert GEMMs run as fused kernels
(TensorRT-LLM's fused MoE; FlashInfer's TensorRT-LLM-gen and CUTLASS MoE runners that vLLM and SGLang call for
fp4 experts on Blackwell): no Triton alignment and sorting pass (docs/methodology.md)."""


@dataclass(frozen=True, repr=False, eq=False)
class Efficiency(Value):
    """How close an engine gets to the hardware's peaks, and its fixed costs per step."""

    bw: tuple[float, float, float]
    """Achieved share of peak memory bandwidth (low, expected, high)."""
    compute_max: float
    """``eta_max``: the best share of peak TFLOP/s a large GEMM reaches."""
    kernel_s: float
    """Fixed seconds per kernel of a step (launch and the small kernels' own latency), see ``Layer.kernels``."""
    moe_layer_s: float
    """Extra fixed seconds per MoE layer per step beyond its kernels (fused-MoE alignment and padding)."""
    source: str = ""
    calibrated: str | None = None
    """The calibration profile these factors come from, if any."""
    m_half: float = 128.0
    """GEMM rows (tokens per expert) at which a GEMM reaches half of ``compute_max`` (:class:`~.kernels.KernelPath`)."""
    nk_half: float = 1024.0
    """Output and input width at which a GEMM reaches half its peak (0: kernels with no such penalty)."""
    compute_spread: tuple[float, float] = (0.7, 1.3)
    """Factors on the compute efficiency at the band's low and high ends."""
    layer_s: float | None = None
    """Measured fixed seconds a decoder layer (``calibrate --full-step``), for kernels x kernel_s + moe_layer_s."""
    expert_traffic: tuple[float, float] = (1.0, 0.0)
    """Bytes moved per stored byte of routed experts: (of the experts a step uses, of every expert each step).
    (1, 0) for kernels that read the stored weights; bitsandbytes under vLLM dequantizes every expert to bf16 each
    forward pass, then reads the used ones in bf16: (4, 5) for 4-bit weights (see ``deploy.kernels``)."""
    expert_grid: bool = True
    """The routed experts' GEMM tiles form one grid (a fused MoE kernel launches all the step's experts at once),
    so the width penalty is that of all their outputs together; False where the kernels reach only what one
    expert's narrow GEMM would (:meth:`expert_gemm`, the fp8 paths of :mod:`moeplan.deploy.kernels`)."""

    def gemm(self, m: float, n: float, k: float) -> float:
        """Share of the tensor-core peak for an ``m x k`` by ``k x n`` GEMM:

            eta_max x m / (m + m_half x min(1, m / 16)) x n/(n + nk_half) x k/(k + nk_half)

        ``m`` rows saturate at ``m_half``; below one 16-row tensor-core tile the kernel runs a padded tile, so
        the share stays at its 16-row value (a constant cost per row, never a cliff).  A 70B dense GEMM
        (8,192 x 8,192) at 8k tokens under vLLM (m_half 128, nk_half 1024): 0.75 x 0.98 x 0.89 x 0.89 = 0.58;
        one token: 0.75 x 1/9 x 0.79 = 0.066."""
        nk = self.nk_half
        rows = m / (m + self.m_half * min(1.0, m / TILE_ROWS))
        return self.compute_max * rows * n / (n + nk) * k / (k + nk)

    def expert_gemm(self, m: float, width: float, k: float, experts: float) -> float:
        """:meth:`gemm` of the routed experts: ``m`` rows per expert, each expert's ``width`` outputs, ``experts``
        of them in the step on this GPU.  As one grid (:attr:`expert_grid`) the width is ``width x experts``.
        Gemma-4-26B-A4B's experts (2,816 -> 2 x 704) at 4,096 tokens on H200 in bf16 (256 rows on each of 128):
        0.75 x 0.67 x 1 x 0.73 = 37% as one grid, 21% expert by expert; vLLM's fused MoE kernel measures 33%
        (1.19 ms, vLLM PR #44818)."""
        return self.gemm(m, width * max(1.0, experts) if self.expert_grid else width, k)

    def calibrated_with(
        self, bw: float | None, compute_max: float | None, label: str, layer_s: float | None = None
    ) -> Efficiency:
        """These factors with measured ones: a +-10% band around the measured bandwidth efficiency; a measured
        per-layer overhead in place of the kernel-count estimate."""
        out = replace(self, layer_s=layer_s) if layer_s is not None else self
        if bw is not None:
            out = replace(out, bw=(bw * 0.9, bw, min(1.0, bw * 1.1)))
        if compute_max is not None:
            out = replace(out, compute_max=compute_max)
        return replace(out, calibrated=label)


@dataclass(frozen=True, repr=False, eq=False)
class Engine(Value):
    """One serving engine: its memory profile, speed factors, KV semantics, layout, what it runs, its command."""

    name: str
    reserve_fraction: float
    """Share of usable memory the engine leaves unused (1 - gpu_memory_utilization / mem_fraction_static)."""
    context_bytes: float
    """CUDA context, kernels, library workspaces on every GPU."""
    sharded_extra_bytes: float
    """NCCL and all-reduce buffers added when the model spans GPUs."""
    graph_bytes_dense: float
    graph_bytes_moe: float
    batched_tokens: int
    """Tokens in the largest forward pass the engine plans for (vLLM max_num_batched_tokens, llama.cpp ubatch)."""
    activations: Literal["planned", "ubatch", "eager"]
    """How working buffers are sized: for the planned batched tokens, one ubatch's compute buffer, or the prompt."""
    speed: Efficiency
    kv_default: str
    """The KV cache format ``--kv-dtype auto`` means."""
    state_default: Literal["fp32", "model"] = "model"
    """``--state-dtype auto``: ``fp32`` for both states (llama.cpp's recurrent cells), or ``model``: the convolution
    state in the model's dtype, the recurrent one in the checkpoint's ``mamba_ssm_dtype`` else the model's (vLLM)."""
    window_cache: Literal["full", "ring", "paged", "pool"] = "full"
    """Sliding-window and chunked layers: cached for the full context (``full``); a ring of window + ubatch cells
    (``ring``, llama.cpp); window - 1 + max_num_batched_tokens tokens in blocks (``paged``, vLLM's hybrid KV
    cache manager); or a pool of 0.8 x the full layers' tokens for sliding layers (``pool``, SGLang)."""
    sparse_cache: Literal["elements", "fp8_indexer"] = "elements"
    """DeepSeek Sparse Attention's caches: every element in the KV format, or vLLM's and SGLang's layout (the
    indexer keys in fp8 with an fp32 scale per 128, an fp8 latent as ``fp8_ds_mla``); see
    :meth:`moeplan.model.layers.SparseLatentAttention.cache_bytes_per_token`."""
    split: Literal["tensor", "layers"] = "tensor"
    """How the engine spreads a model over GPUs by default: tensor parallel up to a node, or by layers."""
    runs: Literal["checkpoint", "gguf", "both"] = "checkpoint"
    """Weights it loads as stored: the checkpoint's formats (safetensors), GGUF files, or both (KTransformers'
    kt-kernel: the checkpoint's own experts, or GGUF files through its LLAMAFILE backend)."""
    unified_memory: bool = False
    """Runs on Apple silicon and unified-memory SoCs."""
    vendors: tuple[str, ...] | None = None
    """GPU vendors it runs on (None: any that is not unified memory)."""
    slack_fraction: float = 0.0
    """Allocator fragmentation on top of the live tensors (eager PyTorch)."""
    missing_architectures: frozenset[str] = frozenset()
    """Model families (``architecture``) the engine has no implementation of."""
    offload_prefill: Literal["ubatch", "layerwise"] = "ubatch"
    """With experts in RAM, how prefill reaches them: streamed to the GPU once per ubatch (llama.cpp), or layer
    by layer once per prefill pass (chunk) while the previous layer computes (KTransformers' layer-wise prefill)."""
    experts_in_ram: Literal["choose", "all"] = "choose"
    """With offload: the experts of any first N layers in RAM (llama.cpp ``--n-cpu-moe``), or all (KTransformers)."""
    pcie_share: float = 0.8
    """Share of the PCIe link's one-way rate its expert streams reach (llama.cpp's copies of pinned buffers: 0.8)."""
    cpu_kernel_scale: float = 1.0
    """Speed of its CPU expert kernels relative to llama.cpp's (on the RAM efficiency and the CPU compute)."""
    op_offload_per_expert: bool = False
    """Ubatch engines stream a RAM-weight matmul to the GPU from 32 tokens (``GGML_OP_OFFLOAD_MIN_BATCH``); True:
    MoE matmuls from ``32 x E / k`` tokens (ik_llama.cpp PR #520; DeepSeek-V3's 256 experts at top-8: 1,024)."""
    n_cpu_moe_from_last: bool = False
    """``--n-cpu-moe N``: the last N MoE layers' experts in RAM (ik_llama.cpp PR #2262), not layers 0..N-1."""
    run_time_repack: bool = False
    """Repacks RAM weights at load for its CPU kernels (ik_llama.cpp ``-rtr``: rows interleaved as ``_R4`` types),
    which then never stream to the GPU (:data:`~moeplan.deploy.offload.CPU_REPACK_GAIN`)."""
    numa_local: bool = False
    """Experts read NUMA-locally on every socket (kt-kernel splits each over the sockets' thread pools)."""
    prefill_dispatch_s: float = 0.0
    """Host time per kernel of a prefill pass, which runs outside CUDA graphs (Python engines: PyTorch dispatch and
    the model code around each kernel); a prefill chunk takes at least kernels x this."""
    llama_cpp_kernels: bool = False
    """Its GPU GEMMs are llama.cpp's per-backend kernels (else the checkpoint engines' kernel paths)."""
    collective_scale: float = 1.0
    """On the latency of its collectives: TensorRT-LLM fuses the all-reduce with the next norm (one-shot over
    NVLink, MNNVL on GB200) and dispatches experts with its own low-latency all-to-all."""
    runs_dp_attention: bool = False
    """Runs attention data-parallel beside expert-parallel MoE layers (SGLang ``--enable-dp-attention``, vLLM
    ``--data-parallel-size``, TensorRT-LLM ``enable_attention_dp``, ATOM)."""
    runs_mtp: bool = False
    """Decodes speculatively with a model's MTP layers (SGLang's EAGLE path, vLLM's and TensorRT-LLM's MTP)."""
    pipelines_stages: bool = False
    """Keeps a micro-batch in flight on every pipeline stage (vLLM's virtual engines, SGLang's and TensorRT-LLM's
    micro-batches): a round of ``pp`` of them is one pass of ``B/pp``; else the batch crosses the stages in turn."""
    recv_interval_flag: str = ""
    """Takes new requests every N decode steps (SGLang ``--scheduler-recv-interval``; empty: every step)."""
    max_running_flag: str = ""
    """Caps the requests an instance runs at once (vLLM ``--max-num-seqs``, SGLang ``--max-running-requests``,
    TensorRT-LLM ``--max_batch_size``, llama.cpp ``--parallel``; empty: none known)."""
    divides_chunk: bool = False
    """Divides its batched tokens over its DP-attention workers (SGLang: ``chunked_prefill_size // dp_size``)."""
    ep_uneven: bool = False
    """Spreads experts over EP ranks that do not divide them (vLLM); SGLang and TensorRT-LLM need experts % ep == 0."""
    ep_int4_experts: bool = True
    """Runs expert parallelism with AWQ/GPTQ int4 experts (SGLang does not: sgl-project/sglang#6029)."""
    eplb_int4_experts: bool = True
    """Balances AWQ/GPTQ int4 experts with EPLB (vLLM does not: "EPLB is only supported for FP8 quantization")."""
    weight_only: bool = True
    """Runs fp8 and NVFP4 weights without their units (Marlin); TensorRT-LLM needs SM89 fp8, SM100 fp4 units."""
    batch_overlap_flag: str = ""
    """Two micro-batches a step (SGLang ``--enable-two-batch-overlap``, vLLM ``--enable-dbo``; empty: none known)."""
    dense_dp: str | None = None
    """Under DP attention the dense MLP runs whole on each rank, no gather: ``""`` always (vLLM's DP ranks), the flag
    that asks for it (SGLang ``--moe-dense-tp-size 1``), None where it stays sliced with the tokens gathered to it."""
    max_running_per_rank: bool = False
    """The cap counts per data-parallel rank, not per instance: vLLM and ATOM run an engine core (and scheduler) a
    data-parallel rank, TensorRT-LLM's ``max_batch_size`` is each attention-DP rank's (InferenceX launches DeepSeek-R1
    decode on 8 GPUs at 512 for 4,096 clients); SGLang divides ``--max-running-requests`` over its DP workers."""
    one_host: bool = False
    """Runs an instance on one host's GPUs only (ATOM: no multi-node option; its config's master address is local)."""
    max_running_default: int | None = None
    """The cap an engine starts with when none is set (per rank where it counts per rank): vLLM 1,024 on GPUs of
    70 GiB or more other than the A100 (``EngineArgs.get_batch_defaults``), ATOM 512 (its ``arg_utils``),
    TensorRT-LLM 2,048 (``BuildConfig.max_batch_size``), llama-server 4 slots (``-np`` auto, llama.cpp PR #16736);
    None: sized from the KV pool (SGLang) or not modelled."""
    state_pool: tuple[float, int, int] | None = None
    """How the engine splits the memory left after weights between recurrent states (linear-attention and SSM
    layers) and the KV cache: ``(r, slots, spec_slots)`` gives the state pool ``r / (1 + r)`` of it and the KV cache
    the rest, and a running request holds ``slots`` states (its own and the prefix cache's; ``spec_slots`` under
    speculative decoding) plus one per draft token of a step.  SGLang: ``mamba_full_memory_ratio`` 0.9; with its
    radix cache a request counts 3 slots (``MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO``, the default
    ``no_buffer`` strategy) and 5 under speculative decoding, which needs MambaRadixCacheV2's two ping-pong slots
    (its Qwen3-Next docs; ``--max-mamba-cache-size 40`` with speculation gives ``max_running_requests`` 8);
    ``max_mamba_cache_size = budget / (per_req x (1 + D / ratio))``, running requests at most ``1 / ratio`` of it.
    None: states take what the running batch needs (vLLM, TensorRT-LLM, llama.cpp)."""
    small_gpu_defaults: tuple[int, int] | None = None
    """(batched tokens, cap on running requests) on GPUs of under 70 GiB or an A100, where the engine starts
    smaller: vLLM's OpenAI server 2,048 and 256 (``get_batch_defaults``: its larger figures slowed the A100)."""
    launch: str = ""
    """The serve command: ``{model}`` the checkpoint, ``{context}`` the context length, ``{options}`` more flags."""
    source: str = ""

    def states_held(self, draft_tokens: int) -> int:
        """Recurrent states a running request holds under :attr:`state_pool` with ``draft_tokens`` MTP drafts a
        step: its slots (``spec_slots`` under speculation) and one per token the step verifies (drafts + 1) --
        SGLang with 3 drafts: 5 + 4 = 9; 1 without a pool."""
        if self.state_pool is None:
            return 1
        verify = draft_tokens + 1 if draft_tokens else 0
        return (self.state_pool[2] if verify else self.state_pool[1]) + verify

    def small_gpu(self, gpu: GpuSpec | None) -> bool:
        """Whether ``gpu`` gets the engine's smaller defaults (:attr:`small_gpu_defaults`): under 70 GiB, or an A100."""
        return (self.small_gpu_defaults is not None and gpu is not None
                and (gpu.memory_gib < 70 or "a100" in gpu.id))  # fmt: skip

    def default_batched_tokens(self, gpu: GpuSpec | None) -> int:
        """Tokens in the largest forward pass the engine plans on ``gpu`` when none is set."""
        return self.small_gpu_defaults[0] if self.small_gpu_defaults and self.small_gpu(gpu) else self.batched_tokens

    def default_max_running(self, gpu: GpuSpec | None) -> int | None:
        """The engine's own cap on running requests on ``gpu`` (per rank where it counts per rank), when none is
        set; None where it has none moeplan knows."""
        if self.small_gpu_defaults and self.small_gpu(gpu):
            return self.small_gpu_defaults[1]
        return self.max_running_default

    def command(self, model: str, context: int, options: str = "") -> str:
        """The launch command line: ``vllm serve ORG/NAME --max-model-len 8192``."""
        return self.launch.format(model=model, context=context, options=options)

    def runs_on(self, gpu: GpuSpec) -> bool:
        """Whether the engine runs on ``gpu`` at all."""
        if gpu.unified_memory and not self.unified_memory:
            return False
        return self.can_run(gpu)

    def can_run(self, gpu: GpuSpec) -> bool:
        """Whether the engine runs on ``gpu`` at all when asked for by name: Apple GPUs only for engines built for
        them (llama.cpp, MLX); other unified-memory SoCs (DGX Spark, Strix Halo) by vendor, as discrete GPUs
        (``--engine auto`` still prefers llama.cpp there, :meth:`runs_on`); a custom GPU for any engine."""
        if gpu.vendor == "apple":
            return self.unified_memory
        known = gpu.vendor in ("nvidia", "amd", "intel", "google")
        return self.vendors is None or gpu.vendor in self.vendors or not known

    def serves(self, scheme: Scheme, gpu: GpuSpec) -> bool:
        """Whether the engine runs ``scheme`` as stored on ``gpu``: its file kind, and kernels for its formats."""
        if not self.can_run(gpu) or (self.runs != "both" and (self.runs == "gguf") != scheme.is_gguf):
            return False
        needs = kernel_needs(scheme)
        units = [{"nvfp4": "fp4", "fp8": "fp8"}.get(n, "bf16") for n in needs]  # no weight-only: their own units
        if not self.weight_only and gpu.kind != "custom" and not all(gpu.dense_tflops(u) for u in units):
            return False
        return scheme.is_gguf or all(gpu.has_kernels(need) for need in needs)


_VLLM = Engine(
    "vllm",
    reserve_fraction=1 - 0.92,
    context_bytes=0.5 * GIB,
    sharded_extra_bytes=1.5 * GIB,
    graph_bytes_dense=0.5 * GIB,
    graph_bytes_moe=1.5 * GIB,
    batched_tokens=8192,
    activations="planned",
    speed=Efficiency(
        (0.60, 0.78, 0.90),
        0.75,
        2 * US,
        55 * US,
        "Qwen speed benchmark (Qwen3-30B-A3B, SGLang, H20: 137 tok/s bf16, 156 fp8); Baseten (Mixtral int8, "
        "TensorRT-LLM, A100: 81 tok/s); vLLM PRs #44818, #40542 (fused MoE at 4,096 tokens: 33% of H200's, 52% of "
        "A100's bf16 peak)",
    ),
    kv_default="bf16",
    window_cache="paged",
    sparse_cache="fp8_indexer",
    prefill_dispatch_s=PYTHON_DISPATCH_S,
    runs_dp_attention=True,
    runs_mtp=True,
    pipelines_stages=True,
    dense_dp="",
    ep_uneven=True,
    eplb_int4_experts=False,
    batch_overlap_flag="--enable-dbo",
    max_running_flag="--max-num-seqs",
    max_running_per_rank=True,
    max_running_default=1024,
    small_gpu_defaults=(2048, 256),
    launch="vllm serve {model}{options} --max-model-len {context}",
    # Hybrid KV cache manager (vllm/v1/kv_cache_interface.py SlidingWindowSpec): default for sliding windows
    # since v0.10, for chunked local attention since PR #29627; --disable-hybrid-kv-cache-manager caches every
    # layer in full.
    source="vLLM cache.py gpu_memory_utilization=0.92 (v0.21+); PRs #10511, #39559; windows cached by window "
    "(hybrid KV cache manager)",
)


ENGINES: dict[str, Engine] = {
    "vllm": _VLLM,
    "sglang": Engine(
        "sglang",
        reserve_fraction=1 - 0.88,
        context_bytes=0.5 * GIB,
        sharded_extra_bytes=1.5 * GIB,
        graph_bytes_dense=1.0 * GIB,
        graph_bytes_moe=1.0 * GIB,
        batched_tokens=8192,
        activations="planned",
        speed=Efficiency(
            (0.60, 0.78, 0.90), 0.75, 2 * US, 55 * US, "as vllm: Qwen speed benchmark (SGLang 0.4.6, H20)"
        ),
        kv_default="bf16",
        window_cache="pool",
        sparse_cache="fp8_indexer",
        prefill_dispatch_s=PYTHON_DISPATCH_S,
        # SchedulerRecvSkipper (managers/scheduler_recv_skipper.py): a decode step adds 1 to a counter, a prefill
        # 1000; the scheduler polls the tokenizer for new requests when the counter reaches the interval.
        recv_interval_flag="--scheduler-recv-interval",
        max_running_flag="--max-running-requests",
        runs_dp_attention=True,
        runs_mtp=True,
        pipelines_stages=True,
        dense_dp=" --moe-dense-tp-size 1",
        divides_chunk=True,
        ep_int4_experts=False,
        batch_overlap_flag="--enable-two-batch-overlap",
        state_pool=(0.9, 3, 5),  # model_runner_kv_cache_mixin: _handle_max_mamba_cache, _calculate_mamba_ratio
        launch="python -m sglang.launch_server --model-path {model}{options} --context-length {context}",
        # Hybrid SWA pool: server_args.py swa_full_tokens_ratio 0.8; PR #22389 (cell size F*nf + r*S*ns).
        source="SGLang mem_fraction_static (chosen by GPU size; 0.88 assumed), chunked_prefill_size 8192; SWA pool "
        "0.8 x full tokens",
    ),
    "llama.cpp": Engine(
        "llama.cpp",
        reserve_fraction=0.0,
        context_bytes=0.5 * GIB,
        sharded_extra_bytes=0.3 * GIB,
        graph_bytes_dense=0.0,
        graph_bytes_moe=0.0,
        batched_tokens=LLAMA_CPP_UBATCH,
        activations="ubatch",
        speed=Efficiency(
            (0.55, 0.72, 0.88),
            0.55,
            3 * US,
            0.0,
            "llama-bench: gpt-oss-120b MXFP4 on DGX Spark 59 tok/s (NVIDIA forum, 2025-12); Mixtral Q4_K_M/Q8_0 on "
            "M2 Max 34.7/22.9 tok/s (llama.cpp PR #4406)",
        ),
        kv_default="fp16",
        state_default="fp32",
        window_cache="ring",
        llama_cpp_kernels=True,
        split="layers",
        runs="gguf",
        unified_memory=True,
        vendors=("nvidia", "amd", "apple"),
        # src/llama-arch.cpp @ 00395eb2 has no LongCat-Flash and no Step3 (only Step-3.5's step35)
        missing_architectures=frozenset({"longcat_flash", "step3_vl", "step3_text"}),
        max_running_flag="--parallel",
        max_running_default=4,  # llama-server's -np auto: 4 slots over one unified KV cache (PR #16736)
        launch="llama-server -m {model} -ngl 99 -c {context} -fa on{options}",
        source="llama.cpp compute buffer logs (logdetective PR #106), n_ubatch 512 by default (--ubatch)",
    ),
    "transformers": Engine(
        "transformers",
        reserve_fraction=0.0,
        context_bytes=0.5 * GIB,
        sharded_extra_bytes=1.0 * GIB,
        graph_bytes_dense=0.0,
        graph_bytes_moe=0.0,
        batched_tokens=0,
        activations="eager",
        speed=Efficiency(
            (0.30, 0.45, 0.60),
            0.55,
            10 * US,
            400 * US,
            "eager PyTorch: a Python loop over experts and no CUDA graphs (ml-engineering inference notes)",
        ),
        kv_default="bf16",
        slack_fraction=0.05,
        prefill_dispatch_s=PYTHON_DISPATCH_S,
        launch="transformers serve {model}{options}",
        source="PyTorch caching allocator; ml-engineering debug/pytorch.md",
    ),
    "tensorrt-llm": Engine(
        "tensorrt-llm",
        reserve_fraction=1 - 0.92,
        context_bytes=0.5 * GIB,
        sharded_extra_bytes=1.5 * GIB,
        graph_bytes_dense=0.5 * GIB,
        graph_bytes_moe=1.0 * GIB,
        batched_tokens=8192,
        activations="planned",
        speed=Efficiency(
            (0.65, 0.80, 0.92),
            0.8,
            2 * US,
            FUSED_MOE_LAYER_S,
            "TensorRT-LLM blogs (DeepSeek-R1 min-latency on B200: CUDA graphs with programmatic dependent launch, "
            "fused routing and MoE kernels); per kernel as the other CUDA-graph engines: DeepSeek-R1 at batch 1 "
            "and TP8 takes 9.0 ms a step in the blog without MTP (NVFP4, 8x B200) and 5.5-7.7 ms in InferenceX's "
            "TensorRT-LLM runs on B200, B300, GB200 and GB300 (benchmarks/multi_gpu_measurements.yaml M22, "
            "benchmarks/disaggregated_measurements.yaml); see docs/methodology.md",
        ),
        kv_default="bf16",
        vendors=("nvidia",),
        collective_scale=0.4,
        prefill_dispatch_s=PYTHON_DISPATCH_S,
        runs_dp_attention=True,
        runs_mtp=True,
        pipelines_stages=True,
        max_running_flag="--max_batch_size",
        max_running_per_rank=True,
        max_running_default=2048,
        weight_only=False,
        launch="trtllm-serve {model}{options} --max_seq_len {context}",
        source="TensorRT-LLM KvCacheConfig.free_gpu_memory_fraction 0.9 of the memory left after weights; "
        "max_num_tokens 8192",
    ),
    "atom": replace(  # ATOM serves as vLLM does, with AMD's own AITER kernels; it caches every layer in full
        _VLLM,
        name="atom",
        batched_tokens=16384,
        speed=replace(
            _VLLM.speed,
            source="as vLLM: ATOM serves like vLLM (continuous batching, CUDA-graph-style decode) with AMD's own "
            "AITER kernels, block-scaled fp8 included (ROCm/ATOM recipes on MI300X and MI355X)",
        ),
        window_cache="full",
        sparse_cache="elements",
        max_running_flag="--max-num-seqs",  # atom/model_engine/arg_utils.py (512 by default)
        max_running_per_rank=True,  # engine_core_mgr.py: an EngineCore, and its Scheduler, a DP rank
        one_host=True,
        dense_dp=None,
        batch_overlap_flag="",
        pipelines_stages=False,  # not confirmed for ATOM: its stages taken in turn
        max_running_default=512,
        small_gpu_defaults=None,
        vendors=("amd",),
        launch="python -m atom.entrypoints.openai_server --model {model}{options} --max-model-len {context}",
        source="ROCm/ATOM recipes (DeepSeek-R1, Qwen3-235B, Kimi-K2-Thinking on MI300X and MI355X)",
    ),
    "ktransformers": Engine(
        "ktransformers",
        reserve_fraction=0.0,
        context_bytes=0.5 * GIB,
        sharded_extra_bytes=0.5 * GIB,
        graph_bytes_dense=0.0,
        graph_bytes_moe=0.5 * GIB,
        batched_tokens=16384,
        activations="planned",
        speed=Efficiency(
            (0.55, 0.72, 0.88), 0.55, 3 * US, 0.0, "as llama.cpp on the GPU side (Marlin attention and shared experts)"
        ),
        kv_default="bf16",
        split="layers",
        runs="both",
        vendors=("nvidia",),
        offload_prefill="layerwise",
        experts_in_ram="all",
        pcie_share=0.53,
        cpu_kernel_scale=1.25,
        numa_local=True,
        prefill_dispatch_s=PYTHON_DISPATCH_S,
        launch="python -m sglang.launch_server --model-path {model} --trust-remote-code{options} "
        "--context-length {context}",
        source="kvcache-ai/ktransformers docs (kt-kernel: one thread pool per NUMA node, AMX_MOE_TP per node; "
        "AMX/AVX-512 expert kernels; kt-kernel/README.md: launched through SGLang with --kt-method, --kt-weight-path, "
        "--kt-cpuinfer, --kt-threadpool-count, --kt-num-gpu-experts; its launches: --chunked-prefill-size 16384, "
        "layer-wise prefill for the native FP8/BF16/RAWINT4 methods above "
        "--kt-gpu-prefill-token-threshold; read as the stream that bounds each layer-wise pass, its published "
        "prefill tables (benchmarks/offload_measurements.yaml Q07-Q09, Q13, Q20, Q21) imply 14-45 GB/s, 0.43-0.70 of "
        "PCIe 4.0/5.0 x16: their median, 0.53)",
    ),
    "mlx": Engine(
        "mlx",
        reserve_fraction=0.0,
        context_bytes=0.2 * GIB,
        sharded_extra_bytes=0.0,
        graph_bytes_dense=0.0,
        graph_bytes_moe=0.0,
        batched_tokens=2048,
        activations="planned",
        speed=Efficiency(
            (0.60, 0.75, 0.88),
            0.6,
            3 * US,
            10 * US,
            "mlx-lm 0.28 on M4 Max, Qwen3-30B-A3B at 4, 6 and 8 bits (ml-explore/mlx-lm; 113/94/83 tok/s): the "
            "step grows 3.9 ms for 1.6 GB more weights (75% of 546 GB/s) and keeps ~3.5 ms fixed over 48 layers "
            "(21 Metal dispatches of ~3 us and ~10 us of routing per layer)",
        ),
        kv_default="fp16",
        unified_memory=True,
        vendors=("apple",),
        launch="mlx_lm.server --model {model}{options}",
        source="mlx-lm generate.py prefill_step_size 2048; Metal wired limit = recommendedMaxWorkingSetSize",
    ),
}
ENGINES["ik_llama.cpp"] = replace(
    ENGINES["llama.cpp"],
    name="ik_llama.cpp",
    op_offload_per_expert=True,
    n_cpu_moe_from_last=True,
    run_time_repack=True,
    unified_memory=False,
    vendors=("nvidia",),
    max_running_default=None,
    launch="llama-server -m {model} -ngl 99 -c {context} -fa on{options}",
    source="ikawrakow/ik_llama.cpp, the llama.cpp fork for CPU and hybrid CPU+GPU runs (CUDA and CPU back ends): "
    "its GPU kernels and memory as llama.cpp's; MoE matmuls on RAM experts go to the GPU only from 32 x E/k tokens "
    "(PR #520); -rtr repacks RAM weights at load into interleaved rows for faster CPU kernels, and those are never "
    "offloaded to the GPU (its README and PR #405); fused MoE is on by default (-fmoe gone, PR #863), -fa takes a "
    "value (PR #944), and --n-cpu-moe N counts MoE layers from the last (PR #2262)",
)
_ALIASES = {
    "llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "ollama": "llama.cpp", "hf": "transformers",
    "ik": "ik_llama.cpp", "ik-llama.cpp": "ik_llama.cpp", "ik_llama": "ik_llama.cpp", "ik-llama": "ik_llama.cpp",
    "trtllm": "tensorrt-llm", "trt-llm": "tensorrt-llm", "tensorrt_llm": "tensorrt-llm", "kt": "ktransformers",
    "mlx-lm": "mlx", "mlx_lm": "mlx",
}  # fmt: skip
AUTO_ORDER = ("vllm", "llama.cpp")
"""``--engine auto`` takes the first of these that runs the model's weights on the GPU."""


def engine(name: str) -> Engine:
    """The engine ``--engine`` names; an unknown name is an InputError listing the known ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ENGINES:
        raise InputError(f"unknown engine '{name}'", f"one of: {', '.join(ENGINES)}")
    return ENGINES[key]


def engines_with(feature: str) -> str:
    """The engines with ``feature`` (an :class:`Engine` flag such as ``runs_dp_attention``), for a hint."""
    return ", ".join(e.name for e in ENGINES.values() if getattr(e, feature))


def serving_engines_with(feature: str) -> str:
    """:func:`engines_with` among the engines ``serve`` plans (those that run checkpoints, not GGUF files)."""
    return ", ".join(e.name for e in ENGINES.values() if getattr(e, feature) and e.runs == "checkpoint")


def auto_engine(scheme: Scheme, gpu: GpuSpec | None, architecture: str = "") -> Engine:
    """``--engine auto``: the first of :data:`AUTO_ORDER` that runs the weights' kind (checkpoint formats, or GGUF,
    which llama.cpp makes from any checkpoint) on ``gpu``, else llama.cpp; for a family (``architecture``) it lacks,
    vLLM or MLX where either runs when asked by name (LongCat-Flash on an M3 Ultra: MLX; on a DGX Spark: vLLM)."""
    mlx, gguf = ENGINES["mlx"], scheme.is_gguf
    if (gpu is None or mlx.runs_on(gpu)) and scheme.base.startswith("mlx"):
        return mlx  # MLX's own formats (mlx-4bit, mlx-8bit) run on MLX

    def fit(e: Engine, asked: bool) -> bool:  # on the GPU (as auto would, or asked by name), and the weights' kind
        return (gpu is None or (e.can_run(gpu) if asked else e.runs_on(gpu))) and not (gguf and e.runs == "checkpoint")

    first = next((e for e in map(ENGINES.__getitem__, AUTO_ORDER) if fit(e, False)), ENGINES["llama.cpp"])
    if architecture not in first.missing_architectures or gguf:
        return first
    named = (e for e in (ENGINES["vllm"], mlx) if fit(e, True) and architecture not in e.missing_architectures)
    return next(named, first)
