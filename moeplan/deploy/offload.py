"""Expert offload: routed experts of some layers in system RAM, everything else on the GPUs (llama.cpp, or
KTransformers with every routed expert in RAM).

Placement follows llama.cpp's ``--n-cpu-moe N``: the routed experts (``ffn_*_exps``) of layers ``0..N-1``
stay in RAM; attention, shared experts, dense layers, routers, norms, the output head and the KV cache of
every layer go to the GPUs (``-ngl 99``); the token embedding stays in RAM, as llama.cpp keeps it.

    VRAM per GPU = (GPU weights + KV cache + compute buffer) / GPUs + CUDA context
    RAM          = token embedding + CPU experts       (usable RAM = installed - max(4 GiB, 8%))

Decode, one step of ``B`` tokens (llama.cpp runs the GPU and CPU parts in turn):

    t = t_gpu + t_cpu,   t_gpu = GPU bytes read / (BW_gpu x eta_gpu) + kernels x 3 us
    t_cpu = max(CPU expert bytes read / (BW_ram x eta_ram), CPU expert FLOPs / (CPU peak x eta_cpu))
            + CPU layers x (hand-off to the CPU and back, 40 us)

with the distinct-expert count of :func:`moeplan.deploy.speed.distinct_experts` deciding the expert bytes read on
each side.  Without a GPU the CPU does all of it, with a thread barrier per kernel (15 us).

RAM: llama.cpp keeps one copy of the experts, so a second socket adds no bandwidth (half the reads cross the socket
link); KTransformers' kt-kernel splits each expert over one thread pool per socket, read locally: one socket's
bandwidth plus 40% per extra socket (:func:`ram_bytes_per_s`). eta_ram = 0.40 / 0.52 / 0.66 (low / expected / high)
of the theoretical bandwidth: the median over the 45 scored offload decode runs of
benchmarks/offload_measurements.yaml (desktop dual-channel to 12-channel servers) lies at about half; KTransformers'
kernels reach 1.25x llama.cpp's.
CPU compute: the fp32 FMA peak times the int8 factor of the CPU's best ISA (:data:`INT8_PER_FP32`).

Prefill of a ``P``-token prompt runs in ``ceil(P / ub)`` ubatches (``--ubatch``, 512 by default): the CPU experts
of each are either computed on the CPU or streamed over PCIe to the GPU (llama.cpp does the latter for batches of
32 and more; the faster counts); KTransformers streams each layer's experts once per prefill pass (chunk).
``auto`` evaluates every N that fits and keeps the fastest decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from moeplan.deploy.deployment import Deployment, Layout
from moeplan.deploy.engines import GIB
from moeplan.deploy.kernels import DECODE_ATTENTION_VECTOR, expert_format, vector_peak
from moeplan.deploy.kv_cache import kv_bytes_per_token, kv_cache_bytes, state_bytes_per_sequence
from moeplan.deploy.memory import MemoryModel
from moeplan.deploy.speed import SCENARIOS, VEC_BATCH, distinct_experts, peak_flops
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme, quantized_tensors, weight_format
from moeplan.hardware.gpus import GpuSpec
from moeplan.hardware.hosts import CpuSpec
from moeplan.model.flops import flops_per_token
from moeplan.model.layers import layers
from moeplan.model.spec import ArchSpec
from moeplan.records import Value

US = 1e-6
PCIE_GB_S = {"gen3": 16.0, "gen4": 32.0, "gen5": 64.0}  # one direction, x16 (PCI-SIG: 8/16/32 GT/s per lane)
RAM_EFF = (0.40, 0.52, 0.66)
INT8_PER_FP32 = {"amx_int8": 1.5, "avx512_vnni": 1.5}
"""int8 dot-product rate over the fp32 FMA rate by ISA: AVX-512 VNNI (vpdpbusd) 4x the MACs per instruction,
AMX tiles 16x; reached at well under half in llama.cpp's and KTransformers' kernels (AMX no faster than VNNI in
KTransformers' Sapphire Rapids prefill runs, benchmarks/offload_measurements.yaml Q12/Q20).
Without either (AVX2, NEON) the int8 dot products run at about the fp32 rate."""
CPU_KERNEL_EFF = 1.0
"""Share of that int8 rate llama.cpp's CPU mat-vec kernels reach at decode, relative to the factor above."""
CPU_GEMM_SPREAD = (0.5, 1.6)
"""CPU prefill scatters more than GPU kernels do (0.3-2x around the figure below over five hosts from Haswell to
Zen 5): the band's low and high ends."""
CPU_GEMM_MAX, CPU_GEMM_M_HALF = 0.8, 10.0
"""Prefill on the CPU: mat-mat kernels reach ``0.8 x m/(m + 10)`` of the int8 rate at ``m`` tokens per expert.  The
rise with ``m`` follows ik_llama.cpp's Kimi-K2 Q2_K on an EPYC 9965 (pp 108 tok/s at ubatch 512 and 238 at 4,096 --
m 10.7 and 85), the level DeepSeek-R1 on two Xeon E5-2690 v3, AVX2 (pp512 10.3 tok/s: 66% of the fp32 peak at m
16), a repacked run (:data:`CPU_REPACK_GAIN`).  Hosts scatter widely around it: the 192-core EPYC itself runs
1.8-2.5x below its as-stored level, a 32-core Threadripper 7975WX 1.7-1.9x above (benchmarks/offload_measurements.yaml
Q43/Q44, Q26/Q30)."""
HANDOFF_S = 40 * US
OP_OFFLOAD_MIN_BATCH = 32
"""llama.cpp's CUDA back end offloads an op on RAM weights to the GPU from this batch (``GGML_OP_OFFLOAD_MIN_BATCH``);
ik_llama.cpp scales it by ``E / k`` for MoE matmuls (:meth:`OffloadModel.offload_min_tokens`)."""
CPU_REPACK_GAIN = 1.49
"""The CPU prefill curve (:data:`CPU_GEMM_MAX`) is the level of ik_llama.cpp's kernels on repacked weights (``-rtr``
or ``_R4`` files), the runs it was set on and that scatter around it (Haswell, Skylake and Zen 4 hosts,
benchmarks/offload_measurements.yaml Q26, Q30, Q39, Q41: 0.56-1.9x, 1.08 their geometric mean).  Its kernels on
weights as stored reach 1/1.49 of it: Kimi-K2 on an EPYC 9965 prefills 107.6 tok/s as stored and 160.7 with ``-rtr``
(ik_llama.cpp PR #612, Q43).  llama.cpp's own CPU kernels keep the curve: it repacks some types itself at load
(its CPU "repack" buffers), and no scored run measures it apart."""
REPACKED = ", repacked (-rtr)"
"""The prefill path's suffix where ik_llama.cpp's run-time repack computes the RAM experts on the CPU."""
LLAMA_CPP_BATCH = 2048
"""llama.cpp's default logical batch (``-b``); ``-ub`` above it needs ``-b`` raised too."""
STREAM_SPREAD = (0.6, 1.0, 1.3)
"""Factors on the expert-streaming rate at the band's low, expected and high ends: measured streams scatter
0.6-1.3x around each engine's share (driver, pinned memory, the PCIe switch of the slot)."""
LAYERWISE_MIN_TOKENS = 400
"""KTransformers streams experts layer by layer in a prefill pass of at least ``--kt-gpu-prefill-token-threshold``
tokens (400 in most of its kt-kernel launch examples; 2,048 for Qwen3-Coder-Next, 4,096 for DeepSeek-V4-Flash);
smaller passes run hybrid, their experts on the CPU.  SGLang's KT MoE wrapper decides per forward pass: ``num_tokens
>= gpu_prefill_token_threshold`` takes the full-GPU path.  ``--kt-prefill-threshold`` sets it."""


WIDER_UBATCH = 2048
"""The ubatch a prefill hint weighs against llama.cpp's default 512 (where its compute buffer still fits)."""


def layerwise_threshold(requested: int | None) -> int:
    """Tokens a prefill pass needs to stream the experts layer by layer (the user's, else
    :data:`LAYERWISE_MIN_TOKENS`)."""
    return requested or LAYERWISE_MIN_TOKENS


KT_NATIVE_METHODS = frozenset({"FP8", "BF16", "RAWINT4"})
"""kt-kernel's methods whose CPU weights are the checkpoint's own, shared with the GPU: only these prefill layer by
layer on the GPU (its README: the threshold applies to the native FP8 and INT4 backends).  GGUF files run through
``LLAMAFILE`` and converted weights through ``AMXINT4``/``AMXINT8``: their prefill keeps the experts on the CPU."""


def kt_method(scheme: Scheme) -> str:
    """kt-kernel's ``--kt-method`` for the routed experts' format: GGUF files ``LLAMAFILE``, fp8 ``FP8``, bf16 and
    fp16 ``BF16``, compressed-tensors int4 (Kimi-K2-Thinking's) ``RAWINT4``, other 8-bit formats ``AMXINT8`` and
    the rest ``AMXINT4`` (both converted with kt-kernel's ``convert_cpu_weights.py``)."""
    if scheme.is_gguf:
        return "LLAMAFILE"
    name = expert_format(scheme)
    fmt = weight_format(name)
    if name.startswith("fp8") or (fmt is not None and fmt.matmul == "fp8"):
        return "FP8"
    if name in ("bf16", "fp16", "fp32"):
        return "BF16"
    if name.startswith("int4-g"):
        return "RAWINT4"
    return "AMXINT8" if fmt is not None and fmt.bits >= 8 else "AMXINT4"


def kt_native(scheme: Scheme) -> bool:
    """Whether kt-kernel reads ``scheme``'s experts as stored and shares them with the GPU (:data:`KT_NATIVE_METHODS`):
    only then does it prefill layer by layer."""
    return kt_method(scheme) in KT_NATIVE_METHODS


def prefill_passes(prompt: int, batched_tokens: int) -> list[tuple[int, int]]:
    """A chunked prefill's passes as (tokens, count): full chunks of ``batched_tokens`` and the rest in a last one;
    40,000 tokens at 16,384: [(16384, 2), (7232, 1)]."""
    chunk = max(1, min(batched_tokens, prompt))
    full, rest = divmod(prompt, chunk)
    return [(chunk, full)] + ([(rest, 1)] if rest else [])


CPU_KERNEL_S = 15 * US  # a kernel on many CPU threads ends in a barrier: tens of microseconds, not a GPU launch
CONTEXTS = (4096, 8192, 16384, 32768, 65536, 131072, 262144)


def cpu_ops_per_s(cpu: CpuSpec) -> float:
    """The CPU's rate for quantized expert GEMMs, op/s: ``fp32 GFLOP/s x int8 factor of its best ISA``; a
    96-core EPYC 9654 (AVX-512 VNNI): 11,980 x 1.5 = 17,970 GOP/s."""
    factor = max((INT8_PER_FP32.get(isa, 1.0) for isa in cpu.isa), default=1.0)
    return cpu.fp32_gflops * 1e9 * factor * CPU_KERNEL_EFF


def ram_bytes_per_s(cpu: CpuSpec, numa_local: bool) -> float:
    """RAM bandwidth one inference process reaches across sockets, bytes/s.

    Engines that read the experts NUMA-locally (kt-kernel splits each over one thread pool per socket; the old
    KTransformers NUMA mode copied them) read locally on every socket: one socket's bandwidth plus 40% per extra
    socket (KTransformers' DeepSeek-R1 on one and two Xeon 6454S: 8.73 and 12.21 tok/s). llama.cpp keeps one
    copy; half its reads cross the socket link, so a second socket adds nothing: one socket's bandwidth
    (:attr:`CpuSpec.effective_bandwidth_gb_s` is the NUMA-local case).
    """
    if numa_local or cpu.sockets == 1:
        return cpu.effective_bandwidth_gb_s * 1e9
    return cpu.dimm_equivalent_gb_s / cpu.sockets * 1e9


def usable_ram_bytes(ram_gib: float) -> float:
    """RAM a model may use: installed less what the OS and runtime keep (max 4 GiB, 8%)."""
    return (ram_gib - max(4.0, 0.08 * ram_gib)) * GIB


@dataclass(frozen=True, repr=False, eq=False)
class Host(Value):
    """The machine: its GPUs (none: the CPU runs everything), RAM and CPU."""

    gpu: GpuSpec | None
    num_gpus: int
    ram_gib: float
    cpu: CpuSpec
    pcie: str = "gen4"


@dataclass(frozen=True)
class PassSeconds:
    """Seconds of one prefill pass's parts: the GPU's own layers and weights, the RAM experts computed on the CPU,
    the same experts computed on the GPU, and their stream over PCIe."""

    gpu_s: float
    cpu_s: float
    on_gpu_s: float
    stream_s: float


@dataclass(frozen=True)
class PrefillRoute:
    """Where a prefill's RAM experts are multiplied: ``gpu`` (none in RAM), ``cpu`` (``repacked``: ik_llama.cpp's
    ``-rtr`` rows), ``pcie`` (each ubatch streams the experts it routes to), ``layerwise`` (KTransformers streams
    each layer once a pass; ``cpu_tail``: its last pass of that many tokens under the threshold runs on the CPU).
    ``str()`` is the text the outputs print."""

    where: Literal["gpu", "cpu", "pcie", "layerwise"]
    repacked: bool = False
    chunk: int = 0
    cpu_tail: int = 0

    def __str__(self) -> str:
        if self.where == "cpu":
            return "computed on the CPU" + (REPACKED if self.repacked else "")
        if self.where == "pcie":
            return "streamed to the GPU over PCIe"
        if self.where == "layerwise" and self.cpu_tail:
            return (f"streamed to the GPU layer by layer in its {self.chunk:,}-token passes, computed on the CPU "
                    f"in the last {self.cpu_tail:,} tokens")  # fmt: skip
        if self.where == "layerwise":
            return "streamed to the GPU layer by layer, once per prefill pass"
        return self.where


@dataclass
class Placement:
    """One choice of N and what it costs."""

    cpu_layers: int
    """``--n-cpu-moe``: the experts of layers 0..N-1 are in RAM (ik_llama.cpp: as many MoE layers from the last)."""
    cpu_moe_layers: list[int]
    vram_bytes_per_gpu: float
    vram_capacity_bytes: float
    ram_bytes: float
    ram_capacity_bytes: float
    gpu_weights_bytes: float
    cpu_expert_bytes: float
    kv_bytes: float
    decode_s: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """(low, expected, high) seconds per step."""
    decode_parts_s: dict[str, float] = field(default_factory=dict)
    prefill_s: float = 0.0
    prefill_path: PrefillRoute = field(default_factory=lambda: PrefillRoute("gpu"))

    @property
    def fits_vram(self) -> bool:
        return self.vram_bytes_per_gpu <= self.vram_capacity_bytes

    @property
    def fits_ram(self) -> bool:
        return self.ram_bytes <= self.ram_capacity_bytes

    @property
    def fits(self) -> bool:
        return self.fits_vram and self.fits_ram


class OffloadModel:
    """Bytes by layer and side for one deployment (llama.cpp, its format and KV dtype) on a host; placements
    evaluated for any N."""

    def __init__(self, d: Deployment, host: Host) -> None:
        spec = d.spec
        if spec.arch.moe is None:
            raise InputError(f"{spec.id} is dense: there are no experts to offload", "use `moeplan estimate`")
        self.d, self.spec, self.arch, self.host = d, spec, spec.arch, host
        arch = self.arch
        self.expert_bytes = [0.0] * arch.num_layers
        self.embedding_bytes = 0.0
        factors = dict(d.weights_scale)  # a real checkpoint's bytes, where it is served as stored
        self.other_bytes = float(d.extra_weight_bytes)  # everything on the GPU but the experts (a vision tower too)
        self.other_by_kind: dict[str, float] = {"other": self.other_bytes} if self.other_bytes else {}
        for t, _, raw in quantized_tensors(arch, d.scheme):
            nbytes = raw * factors.get(t.kind, 1.0)
            if t.kind == "routed_experts" and t.layer is not None:
                self.expert_bytes[t.layer] += nbytes
            elif t.kind == "embedding":
                self.embedding_bytes += nbytes
            else:
                self.other_bytes += nbytes
                self.other_by_kind[t.kind] = self.other_by_kind.get(t.kind, 0.0) + nbytes
        self.engine = d.engine
        self._memory = MemoryModel(replace(d, layout=Layout()))
        self._buffer_cache: dict[tuple[int, int], float] = {}
        self.cpu_only = host.gpu is None or host.num_gpus == 0
        self.gpu_bw = host.gpu.bandwidth_gb_s * 1e9 if host.gpu else 1.0
        self.gpu_peak = peak_flops(host.gpu, d.compute_dtype) if host.gpu else 1.0
        self.gpu_vector = vector_peak(host.gpu) if host.gpu else 1.0
        self.kernels = sum(layer.kernels for layer in layers(arch)) + 3
        self.ram_bw = ram_bytes_per_s(host.cpu, self.engine.numa_local)
        self.cpu_ops = cpu_ops_per_s(host.cpu)
        moe = arch.moe
        assert moe is not None
        self.moe = moe
        per_expert_flops = 2 * (3 if moe.gated else 2) * arch.hidden_size * moe.expert_intermediate_size
        self.expert_flops_per_token = per_expert_flops * moe.expected_picks  # per MoE layer

    # -- memory ---------------------------------------------------------------------------------------

    def _buffers(self, context: int, batch: int) -> float:
        """llama.cpp's compute buffer and CUDA context on one GPU (cached per context and batch)."""
        key = (context, batch)
        if key not in self._buffer_cache:
            self._buffer_cache[key] = self._memory.activation_bytes(context, batch) + self.engine.context_bytes
        return self._buffer_cache[key]

    def placement(self, n_cpu: int, context: int, batch: int) -> Placement:
        arch, host = self.arch, self.host
        if not 0 <= n_cpu <= arch.num_layers:
            raise InputError(f"--offload-experts {n_cpu} is outside 0..{arch.num_layers} (the model's layers)")
        if self.cpu_only:
            n_cpu = arch.num_layers
        cpu_layers = [i for i in range(n_cpu) if arch.is_moe_layer(i)]
        if self.engine.n_cpu_moe_from_last and cpu_layers:  # ik_llama.cpp's --n-cpu-moe counts from the last layer
            moe_layers = [i for i in range(arch.num_layers) if arch.is_moe_layer(i)]
            cpu_layers = moe_layers[len(moe_layers) - len(cpu_layers) :]
        cpu_experts = sum(self.expert_bytes[i] for i in cpu_layers)
        gpu_weights = self.other_bytes + sum(self.expert_bytes) - cpu_experts
        kv = kv_cache_bytes(arch, context, batch, self.d.kv_dtype, self.engine, ubatch=self.d.batched_tokens)
        kv += (
            state_bytes_per_sequence(arch, self.d.state_dtype, self.d.conv_state_dtype) * batch
        )  # recurrent state sits beside the KV
        if self.cpu_only:  # everything in RAM: the non-expert weights and the KV cache too
            return Placement(
                cpu_layers=n_cpu, cpu_moe_layers=cpu_layers, vram_bytes_per_gpu=0.0, vram_capacity_bytes=0.0,
                ram_bytes=self.embedding_bytes + self.other_bytes + cpu_experts + kv,
                ram_capacity_bytes=usable_ram_bytes(host.ram_gib), gpu_weights_bytes=0.0,
                cpu_expert_bytes=cpu_experts, kv_bytes=kv,
            )  # fmt: skip
        assert host.gpu is not None
        g = host.num_gpus
        vram = (gpu_weights + kv) / g + self._buffers(context, batch)
        return Placement(
            cpu_layers=n_cpu,
            cpu_moe_layers=cpu_layers,
            vram_bytes_per_gpu=vram,
            vram_capacity_bytes=host.gpu.usable_memory_bytes,
            ram_bytes=self.embedding_bytes + cpu_experts,
            ram_capacity_bytes=usable_ram_bytes(host.ram_gib),
            gpu_weights_bytes=gpu_weights,
            cpu_expert_bytes=cpu_experts,
            kv_bytes=kv,
        )

    # -- speed ----------------------------------------------------------------------------------------

    def decode_seconds(
        self, p: Placement, context: int, batch: int, scenario: int = 1
    ) -> tuple[float, dict[str, float]]:
        arch, moe = self.arch, self.moe
        eff = self.d.efficiency
        used = distinct_experts(moe.num_experts, moe.expected_picks, batch) / moe.num_experts
        gpu_expert_bytes = sum(self.expert_bytes) - p.cpu_expert_bytes
        per_token = kv_bytes_per_token(arch, self.d.kv_dtype, self.engine)
        kv_read = per_token * batch * _attended_share(arch, context)
        gpu_bytes = self.other_bytes + gpu_expert_bytes * used + kv_read
        fixed = next(s for s in SCENARIOS.values() if s.index == scenario).fixed_scale
        flops = flops_per_token(arch, context).total * batch
        cpu_flops = float(self.expert_flops_per_token * batch * len(p.cpu_moe_layers))
        cpu_bytes = p.cpu_expert_bytes * used
        if self.cpu_only:  # the CPU reads everything, computes everything, and syncs its threads per kernel
            cpu_bytes += gpu_bytes
            cpu_flops = flops
            t_gpu = self.kernels * CPU_KERNEL_S * fixed
        else:
            t_gpu = gpu_bytes / (self.gpu_bw * eff.bw[scenario]) + self.kernels * eff.kernel_s * fixed
            attention = flops_per_token(arch, context).by_kind.get("attention_scores", 0.0) * batch
            t_gpu = max(t_gpu, (flops - attention - cpu_flops) / (self.gpu_peak * 0.5))
            if batch <= VEC_BATCH and self.engine.llama_cpp_kernels:  # llama.cpp's "vec" attention kernels
                t_gpu += attention / (self.gpu_vector * DECODE_ATTENTION_VECTOR)
        t_mem = cpu_bytes / (self.ram_bw * min(0.9, RAM_EFF[scenario] * self.engine.cpu_kernel_scale))
        t_comp = cpu_flops / self.cpu_ops
        handoffs = 0 if self.cpu_only else len(p.cpu_moe_layers)
        t_cpu = max(t_mem, t_comp) + handoffs * HANDOFF_S * fixed
        return t_gpu + t_cpu, {"gpu": t_gpu, "cpu": t_cpu, "cpu_memory": t_mem, "cpu_compute": t_comp}

    def prefill_seconds(
        self, p: Placement, prompt: int, scenario: int = 1, layerwise: bool | None = None
    ) -> tuple[float, PrefillRoute]:
        """Seconds to prefill ``prompt`` tokens, and where the CPU experts ran.

        In ``n = ceil(P / ub)`` ubatches (``--ubatch``): the GPU part of each, plus its CPU experts either
        computed on the CPU or streamed over PCIe to the GPU and computed there (only the experts the ubatch routes
        to: :meth:`_streamed_share`).  llama.cpp streams every ubatch of 32 tokens or more unless
        ``--no-op-offload`` keeps them all on the CPU, ik_llama.cpp those of :meth:`offload_min_tokens` or more unless
        ``-rtr`` does; the faster of the two counts, or the one the user fixed.  Engines with layer-wise prefill
        (KTransformers) stream each layer's experts once per pass of ``ub`` tokens (the chunked prefill size: the GPU
        holds one layer's experts at a time) while the previous layer computes: ``n x max(stream, GPU compute)``,
        where a pass has at least the threshold's tokens (:func:`layerwise_threshold`); ``layerwise`` overrides it.
        MiniMax-M2 FP8 on an RTX 5090 over PCIe 5.0, 32,768 tokens in two passes of 16,384: 2 x 224 GB at 0.53 x 64
        GB/s = 13.2 s (12.9 s measured, benchmarks/offload_measurements.yaml Q09).  A larger ubatch streams less and
        never slows prefill.
        """
        # n = ceil(P / ub) passes timed at their mean size; whether they stream is judged by the ubatch itself
        # (-ub): a prompt's last, shorter ubatch goes the way of the others (llama.cpp would compute one under the
        # threshold on the CPU: a few tokens of an odd -ub; moeplan keeps a larger ubatch never slower)
        ub = max(1, min(self.d.batched_tokens, prompt))
        n_ub = math.ceil(prompt / ub)
        even = prompt / n_ub
        repackable = self.engine.run_time_repack and ik_repacks(self.arch, self.d.scheme, self.host.cpu)
        repacked = repackable and self.d.cpu_repack is not False
        # the CPU prefill curve is repacked kernels' level; ik_llama.cpp's on weights as stored reach 1/1.49
        slower = CPU_REPACK_GAIN if self.engine.run_time_repack and not repacked else 1.0
        on_cpu = PrefillRoute("cpu", repacked=repacked)
        if self.cpu_only:
            return self._pass_s(p, prompt, even, scenario).cpu_s * n_ub * slower, on_cpu
        if self.engine.offload_prefill == "layerwise":  # KTransformers: by the pass's tokens, not by speed
            native = kt_native(self.d.scheme)  # GGUF and AMX weights never leave the CPU
            return self._layerwise_prefill_s(p, prompt, scenario, layerwise if native else False)
        s = self._pass_s(p, prompt, even, scenario)
        if not p.cpu_moe_layers:
            return s.gpu_s * n_ub, PrefillRoute("gpu")
        # On the CPU throughout: llama.cpp with --no-op-offload, ik_llama.cpp with -rtr (repacked weights never
        # stream) or under its threshold.  Else every ubatch streams.
        all_cpu = (s.gpu_s + s.cpu_s * slower) * n_ub
        if ub >= self.offload_min_tokens() and not (repackable and self.d.cpu_repack is True):
            streamed = (s.gpu_s + s.stream_s + s.on_gpu_s) * n_ub
            if streamed < all_cpu or (self.engine.run_time_repack and not repacked):  # --no-rtr: ik streams
                return streamed, PrefillRoute("pcie")
        return all_cpu, on_cpu

    def offload_min_tokens(self) -> int:
        """Tokens a ubatch needs before the engine streams RAM experts to the GPU for its matmuls: llama.cpp 32
        (``GGML_OP_OFFLOAD_MIN_BATCH``), ik_llama.cpp ``32 x E / k`` (1,024 for DeepSeek-V3's 256 experts at
        top-8); fewer run on the CPU."""
        if not self.engine.op_offload_per_expert or (self.d.backend or "cuda") != "cuda":
            return OP_OFFLOAD_MIN_BATCH  # ik_llama.cpp's other back ends keep the flat 32
        return math.ceil(OP_OFFLOAD_MIN_BATCH * self.moe.num_experts / self.moe.expected_picks)

    def _layerwise_prefill_s(
        self, p: Placement, prompt: int, scenario: int, layerwise: bool | None
    ) -> tuple[float, PrefillRoute]:
        """KTransformers' chunked prefill: full passes of ``chunk`` tokens and the rest in a last one, each streaming
        the RAM experts layer by layer when it has at least the threshold's tokens (``layerwise`` forces either way),
        else running hybrid with them on the CPU.  40,000 tokens at 16,384 a pass under a threshold of 16,384: two
        passes stream, the last 7,232 tokens run on the CPU."""
        passes = prefill_passes(prompt, self.d.batched_tokens)
        if not p.cpu_moe_layers:
            return sum(self._pass_s(p, prompt, t, scenario).gpu_s * n for t, n in passes), PrefillRoute("gpu")
        threshold = layerwise_threshold(self.d.kt_prefill_threshold)
        total, streamed = 0.0, []
        for tokens, count in passes:
            s = self._pass_s(p, prompt, tokens, scenario)
            streams = layerwise if layerwise is not None else tokens >= threshold
            total += (max(s.stream_s, s.on_gpu_s + s.gpu_s) if streams else s.gpu_s + s.cpu_s) * count
            streamed.append(streams)
        if all(streamed):
            return total, PrefillRoute("layerwise")
        if any(streamed):
            (chunk, _), (rest, _) = passes
            return total, PrefillRoute("layerwise", chunk=chunk, cpu_tail=rest)
        return total, PrefillRoute("cpu")

    def _pass_s(self, p: Placement, prompt: int, ub: float, scenario: int) -> PassSeconds:
        """One prefill pass of ``ub`` tokens of a ``prompt``-token prompt: the GPU's own part, the RAM experts
        computed on the CPU, computed on the GPU, and streamed over PCIe."""
        arch = self.arch
        eff = self.d.efficiency
        compute_scale = (eff.compute_spread[0], 1.0, eff.compute_spread[1])[scenario]
        per_token = flops_per_token(arch, prompt, "prefill").total
        cpu_per_token = self.expert_flops_per_token * len(p.cpu_moe_layers)
        moe = self.moe
        m = ub * moe.expected_picks / distinct_experts(moe.num_experts, moe.expected_picks, max(1, round(ub)))
        cpu_spread = (CPU_GEMM_SPREAD[0], 1.0, CPU_GEMM_SPREAD[1])[scenario]
        cpu_rate = self.cpu_ops * CPU_GEMM_MAX * m / (m + CPU_GEMM_M_HALF) * cpu_spread
        if self.cpu_only:
            return PassSeconds(0.0, per_token * ub / cpu_rate, 0.0, 0.0)
        eta = eff.gemm(ub, 4 * arch.hidden_size, arch.hidden_size) * compute_scale
        t_gpu = max((per_token - cpu_per_token) * ub / (self.gpu_peak * eta),
                    p.gpu_weights_bytes / (self.gpu_bw * eff.bw[scenario]))  # fmt: skip
        used = ub * moe.expected_picks / m
        eta_exp = eff.expert_gemm(m, 2 * moe.expert_intermediate_size, arch.hidden_size, used) * compute_scale
        on_gpu = cpu_per_token * ub / (self.gpu_peak * eta_exp)
        link = PCIE_GB_S.get(self.host.pcie, 32.0) * 1e9
        pcie = link * min(0.95, self.engine.pcie_share * STREAM_SPREAD[scenario])
        streamed = p.cpu_expert_bytes * self._streamed_share(used)
        return PassSeconds(t_gpu, cpu_per_token * ub / cpu_rate, on_gpu, streamed / pcie)

    def _streamed_share(self, used: float) -> float:
        """Share of the RAM experts' bytes one pass streams to the GPU when ``used`` distinct experts of a layer
        are routed to: llama.cpp's scheduler copies only the experts the ubatch uses (``used / E``; llama.cpp PR
        #15346, in ik_llama.cpp PR #698); KTransformers' layer-wise prefill streams whole layers (1).  DeepSeek-V3
        (256 experts, top-8) at a 32-token ubatch: 1 - (1 - 8/256)^32 = 64% of the bytes; at 512 tokens all."""
        if self.engine.offload_prefill != "ubatch":
            return 1.0
        return min(1.0, used / self.moe.num_experts)

    def evaluate(self, n_cpu: int, context: int, batch: int, prompt: int) -> Placement:
        p = self.placement(n_cpu, context, batch)
        steps = [self.decode_seconds(p, context, batch, s) for s in (0, 1, 2)]
        p.decode_s = (steps[0][0], steps[1][0], steps[2][0])
        p.decode_parts_s = steps[1][1]
        p.prefill_s, p.prefill_path = self.prefill_seconds(p, prompt)
        return p

    def _wider_ubatch_hint(self, p: Placement, prompt: int, context: int, batch: int) -> str | None:
        """Where ``--ubatch`` is the default and the best placement at :data:`WIDER_UBATCH` tokens (more experts in RAM
        for its buffer) prefills this prompt 1.25x faster: say so, with its decode speed (gpt-oss-120b, RTX 4090)."""
        if (
            self.d.request.ubatch is not None
            or self.d.batched_tokens >= WIDER_UBATCH
            or prompt <= self.d.batched_tokens
        ):
            return None
        wide = OffloadModel(replace(self.d, batched_tokens=WIDER_UBATCH), self.host)
        w = wide.best(context or self.d.context, batch, prompt)[0]
        if not w.fits or w.prefill_s >= 0.8 * p.prefill_s:
            return None
        wide_s, now_s = f"{1 / w.decode_s[1]:,.1f}", f"{1 / p.decode_s[1]:,.1f}"
        decode = f"decoding at {wide_s} tok/s" + (f" instead of {now_s}" if wide_s != now_s else ", as now")
        return (
            f"with --ubatch {WIDER_UBATCH:,} (the experts of {len(w.cpu_moe_layers)} MoE layers in RAM) this "
            f"{prompt:,}-token prompt prefills in {w.prefill_s:,.1f} s ({w.prefill_path}) instead of "
            f"{p.prefill_s:,.1f} s, {decode}"
        )

    def prefill_hint(self, p: Placement, prompt: int, context: int = 0, batch: int = 1) -> str | None:
        """What the prefill setting the user moves would change for this evaluated placement, said where the other
        side prefills at least 1.25x faster: KTransformers' threshold either way, ik_llama.cpp's fixed ``--rtr`` or
        ``--no-rtr`` against moeplan's choice; or that ``-rtr`` cannot repack these experts."""
        if not p.cpu_moe_layers or self.cpu_only:
            return None
        if self.engine.offload_prefill == "layerwise":
            passes = prefill_passes(prompt, self.d.batched_tokens)
            if p.prefill_path.where == "layerwise":  # past its threshold: would the CPU have been faster?
                hybrid_s = self.prefill_seconds(p, prompt, layerwise=False)[0]
                if hybrid_s < 0.8 * p.prefill_s:
                    above = passes[0][0] + 1  # over the largest pass: every pass runs hybrid
                    return (f"layer-wise prefill streams {p.cpu_expert_bytes / 1e9:,.0f} GB of experts a pass: "
                            f"{p.prefill_s:,.1f} s here; with --kt-prefill-threshold {above} this {prompt:,}-token "
                            f"prompt would run with its experts on the CPU in {hybrid_s:,.1f} s")  # fmt: skip
            elif kt_native(self.d.scheme):  # under its threshold: would streaming have been faster?
                streamed_s = self.prefill_seconds(p, prompt, layerwise=True)[0]
                if streamed_s < 0.8 * p.prefill_s:
                    smallest = passes[-1][0]  # every pass streams from its size down
                    return (f"layer-wise prefill would stream the experts in {streamed_s:,.1f} s against "
                            f"{p.prefill_s:,.1f} s on the CPU here: with --kt-prefill-threshold {smallest} this "
                            f"{prompt:,}-token prompt streams")  # fmt: skip
            return None
        wider = self._wider_ubatch_hint(p, prompt, context, batch)
        rtr = self._rtr_hint(p, prompt) if self.engine.run_time_repack else None
        return "; ".join(h for h in (rtr, wider) if h) or None

    def _rtr_hint(self, p: Placement, prompt: int) -> str | None:
        """ik_llama.cpp: that ``-rtr`` cannot repack these experts, or what the ``--rtr`` fixed by the user costs."""
        if not ik_repacks(self.arch, self.d.scheme, self.host.cpu):
            return f"ik_llama.cpp's -rtr has no interleaved rows for {self.d.scheme.name} experts: they stay as stored"
        if self.d.cpu_repack is not None:  # the user fixed -rtr: costly?
            free = OffloadModel(replace(self.d, cpu_repack=None), self.host)
            free_s, free_path = free.prefill_seconds(p, prompt)
            if free_s < 0.8 * p.prefill_s:
                flag = "--rtr" if self.d.cpu_repack else "--no-rtr"
                return (f"with {flag} this {prompt:,}-token prompt prefills in {p.prefill_s:,.1f} s; without it "
                        f"({free_path}) in {free_s:,.1f} s")  # fmt: skip
        return None

    def best(self, context: int, batch: int, prompt: int) -> tuple[Placement, list[Placement]]:
        """The fastest placement that fits (or, when none does, the one closest to fitting), and all tried.

        Only placements that fit are timed; the chosen one gets its band and prefill.
        """
        choices = range(self.arch.num_layers + 1) if self.engine.experts_in_ram == "choose" else [self.arch.num_layers]
        tried = [self.placement(n, context, batch) for n in choices]
        fitting = [p for p in tried if p.fits]
        if fitting:
            for p in fitting:
                p.decode_s = (0.0, self.decode_seconds(p, context, batch)[0], 0.0)
            choice = min(fitting, key=lambda p: p.decode_s[1])
        elif not tried[-1].fits_vram:
            # Even all experts in RAM overflow the GPU: that placement says by how much.
            choice = tried[-1]
        else:
            # The placement with the fewest experts in RAM that fits the GPU says how much RAM is missing.
            choice = min((p for p in tried if p.fits_vram), key=lambda p: p.ram_bytes)
        return self.evaluate(choice.cpu_layers, context, batch, prompt), tried


def _attended_share(arch: ArchSpec, context: int) -> float:
    """Cached tokens the attention reads per step, averaged over the layers (windows cap sliding layers)."""
    return float(sum(layer.mixer.attended(context, "decode") for layer in layers(arch)) / arch.num_layers)


IK_REPACKED_TYPES = frozenset({
    "IQ2_K", "IQ3_K", "IQ4_K", "IQ5_K", "IQ4_XS", "IQ4_KS", "IQ5_KS", "IQ4_NL", "IQ2_BN", "IQ2_XXS", "IQ2_XS",
    "IQ2_S", "IQ3_XXS", "IQ3_S", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q5_0", "Q6_0", "Q8_0", "MXFP4",
})  # fmt: skip
"""GGUF types ik_llama.cpp's ``-rtr`` repacks into interleaved rows (its ``iqk_repack_tensor`` map; BF16 and F16
as well on CPUs with AVX512-BF16).  IQ1_S and IQ1_M, among others, stay as stored."""


def ik_repacks(arch: ArchSpec, scheme: Scheme, cpu: CpuSpec) -> bool:
    """Whether ``-rtr`` repacks most of ``scheme``'s routed-expert bytes (:data:`IK_REPACKED_TYPES`), by the types
    the tensors are stored in: DeepSeek-V3 ``Q4_K_M`` (Q4_K and Q6_K) yes, ``IQ1_S`` (98% IQ1_S) no, gpt-oss's
    ``IQ1_S`` (IQ4_NL, which its 2,880-wide rows fall back to) yes; BF16 only with AVX512-BF16."""
    floats = {"BF16", "F16", "FP16"} if "avx512_bf16" in cpu.isa else set()
    total = repacked = 0
    for t, fmt, size in quantized_tensors(arch, scheme):
        if t.kind == "routed_experts":
            total += size
            repacked += size if fmt.upper() in IK_REPACKED_TYPES or fmt.upper() in floats else 0
    return total > 0 and 2 * repacked >= total
