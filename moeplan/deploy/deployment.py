"""What the user asks for (:class:`EstimateRequest`) and the one fully decided deployment it resolves to.

A :class:`Deployment` holds every choice an estimate rests on, each decided once by
:func:`moeplan.deploy.resolve.resolve`: the model, its weight format, the engine, the GPU and how many, the
layout over them, the KV and compute dtypes, the engine's efficiencies with any calibration applied, and the
checkpoint's real bytes.  :func:`moeplan.deploy.evaluate.evaluate` turns it into figures; nothing downstream
chooses a default again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moeplan.deploy.comm import Link
from moeplan.deploy.engines import Efficiency, Engine
from moeplan.errors import InputError
from moeplan.formats.schemes import Scheme
from moeplan.hardware.gpus import GpuSpec
from moeplan.model.spec import ArchSpec, ModelSpec
from moeplan.records import Value

DEFAULT_CONTEXT = 8192
MTP_ACCEPT = 0.85
"""Default acceptance of an MTP draft token: the DeepSeek-V3 technical report (section 5.4.3) measures 85-90% for
the second token its MTP module predicts."""


MTP_REUSE_DECAY = 0.74
"""Factor on a draft's acceptance for each pass beyond the MTP layers a model was trained with (a reused layer reads
its own hidden state, which it never saw in training).  TensorRT-LLM's DeepSeek-R1 min-latency blog ('Autoregressive
MTP Layers': 1.92, 2.58, 2.82, 2.99 and 3.01 tokens a step for 1 to 5 drafts from its one MTP layer) fits
``a_j = 0.92 x 0.74^(j - 1)`` within 1.5% at every depth; a constant 0.92 would predict 3.4-4.5 tokens at 3-5."""


def accepted_tokens(drafts: int, accept: float, trained: int | None = None, decay: float = MTP_REUSE_DECAY) -> float:
    """Tokens a speculative decode step yields: ``1 + sum_j prod_{i <= j} a_i`` over the ``drafts`` drafts, each
    accepted after the one before with ``a_i = accept`` for the ``trained`` depths the MTP layers learned (all of
    them when None) and ``accept x decay^(i - trained)`` beyond, where the last layer is reused (``decay``: the
    model's, :class:`~moeplan.model.spec.MtpAcceptance`, else :data:`MTP_REUSE_DECAY`).  DeepSeek-V3 (one MTP
    layer) at 0.85: one draft 1.85 tokens, three 2.63 (3.19 without the decay); GLM-4.6 at 0.90 and 0.15: three
    drafts 2.02 (SGLang measures 2.024)."""
    depth = drafts if trained is None else max(1, trained)
    tokens, p = 1.0, 1.0
    for j in range(1, drafts + 1):
        p *= min(1.0, accept * decay ** max(0, j - depth))
        tokens += p
    return tokens


def mtp_acceptance(spec: ModelSpec, asked: float | None) -> tuple[float, float, str]:
    """The MTP drafts' first-draft acceptance and reuse factor, and where they come from: ``--mtp-accept`` (``asked``,
    with the model's reuse factor), ``published`` (the model's :class:`~moeplan.model.spec.MtpAcceptance`) or
    ``default`` (DeepSeek-V3's, :data:`MTP_ACCEPT` and :data:`MTP_REUSE_DECAY`).  GLM-4.6: (0.9, 0.15, published)."""
    published = spec.mtp_acceptance
    decay = published.reuse_decay if published else MTP_REUSE_DECAY
    if asked is not None:
        return asked, decay, "--mtp-accept"
    return (published.rate, decay, "published") if published else (MTP_ACCEPT, decay, "default")


EPLB_REDUNDANT = 0.125
"""Redundant experts of EPLB-style balancing, per GPU, relative to its share: DeepSeek-V3 serves 256 experts with 32
redundant copies over 32 decode GPUs (DeepSeek-V3 technical report, section 3.4)."""
BATCH_OVERLAP_MIN_TOKENS = (32, 512)
"""Tokens each rank's step must carry to be split into two micro-batches (``--batch-overlap``): decode, and with a
prompt in it (vLLM's ``dbo_decode_token_threshold`` and ``dbo_prefill_token_threshold`` defaults; below them the
split costs more than it hides)."""
GPU_COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64)
"""The GPU counts tried for the fewest that fit: every count in a server of 8 (a count that no TP divides runs its
layers as pipeline stages: Mixtral-8x22B on 3 H200 as TP 1 x PP 3), then whole servers and halves of them."""
CONTEXT_SEARCH_LIMIT = 1 << 20
"""The longest context searched (and plotted) for a model that states no maximum, tokens."""


@dataclass(frozen=True, repr=False, eq=False)
class Traffic(Value):
    """The load: prompt and output tokens per request, and concurrency or a request rate."""

    isl: int
    osl: int
    concurrency: int | None = None
    rate: float | None = None
    """Requests per second (open loop)."""
    prefix_hit: float = 0.0
    """Share of prompt tokens found in the prefix cache (not prefilled again)."""
    arrivals: str = "poisson"
    """``poisson``: requests arrive independently (real traffic, varied lengths); ``waves``: a closed loop of
    fixed-length requests, as load generators run them (``--ignore-eos``, fixed ISL/OSL): all clients finish
    together and send their next prompts at once, so each wave starts with a burst of ``C`` prefills."""
    isl_range: tuple[int, int] | None = None
    """Where prompt lengths vary: the shortest and longest, drawn uniformly between them (``--isl 512-1536``),
    ``isl`` being their mean; None: every prompt is ``isl`` tokens."""
    osl_range: tuple[int, int] | None = None
    """The same for the output lengths, ``osl`` their mean."""

    @classmethod
    def of_lengths(
        cls,
        isl: tuple[int, int],
        osl: tuple[int, int],
        concurrency: int | None = None,
        rate: float | None = None,
        prefix_hit: float = 0.0,
    ) -> Traffic:
        """The load of lengths given as ``(shortest, longest)`` each (equal: a fixed length), at their means:
        ``(819, 1024)`` prompts average 922 tokens (InferenceX's 1K runs at a range ratio of 0.8)."""

        def mean(r: tuple[int, int]) -> int:
            return round((r[0] + r[1]) / 2)

        isl_range, osl_range = (isl if isl[0] != isl[1] else None), (osl if osl[0] != osl[1] else None)
        return cls(mean(isl), mean(osl), concurrency, rate, prefix_hit, isl_range=isl_range, osl_range=osl_range)

    @property
    def longest(self) -> int:
        """Tokens of the longest request, its longest prompt and output (what ``--max-model-len`` must allow)."""
        return (self.isl_range or (self.isl, self.isl))[1] + (self.osl_range or (self.osl, self.osl))[1]

    @property
    def prompt_cv2(self) -> float:
        """The prompt lengths' squared coefficient of variation, ``Var(I) / E[I]^2``: for ``n`` lengths drawn
        uniformly from ``a`` to ``b``, ``(n^2 - 1) / 12 / E[I]^2`` with ``n = b - a + 1`` (0 for a fixed length).
        Prefill time is near linear in the prompt, so a queue of prompts sees this variation in its service times:
        InferenceX's 819-1,024 prompts, 0.0042; 1-2,048 (a wide spread), 0.33."""
        if self.isl_range is None:
            return 0.0
        n = self.isl_range[1] - self.isl_range[0] + 1
        return (n * n - 1) / 12 / (sum(self.isl_range) / 2) ** 2

    def lengths_text(self) -> str:
        """The lengths as the outputs print them: ``1,024 in / 1,024 out``, a range with its mean where they vary
        (``819-1,024 in (mean 922) / 1,024 out``)."""

        def one(mean: int, r: tuple[int, int] | None, word: str) -> str:
            return f"{mean:,} {word}" if r is None else f"{r[0]:,}-{r[1]:,} {word} (mean {mean:,})"

        return f"{one(self.isl, self.isl_range, 'in')} / {one(self.osl, self.osl_range, 'out')}"

    def check(self) -> None:
        """Refuse a load that means nothing, naming the option."""
        if self.isl < 1 or self.osl < 1:
            raise InputError("--isl and --osl must be at least 1 token")
        if (self.concurrency is None) == (self.rate is None):
            raise InputError("give the load as --concurrency C or --rate R (requests per second), one of them")
        if self.concurrency is not None and self.concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, not {self.concurrency}")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise InputError(f"--rate must be a positive number of requests per second, not {self.rate}")
        if not 0 <= self.prefix_hit < 1:
            raise InputError(f"--prefix-hit must be at least 0 and below 1, not {self.prefix_hit}")
        if self.arrivals not in ("poisson", "waves"):
            raise InputError(f"--arrivals must be poisson or waves, not '{self.arrivals}'")
        if self.arrivals == "waves" and self.concurrency is None:
            raise InputError("--arrivals waves needs --concurrency (a closed loop of fixed-length requests)")
        for flag, mean, r in (("--isl", self.isl, self.isl_range), ("--osl", self.osl, self.osl_range)):
            if r is not None and not 1 <= r[0] <= mean <= r[1]:
                raise InputError(f"{flag} {r[0]}-{r[1]} must run from at least 1 token up, around its mean {mean}")

    def check_context(self, model: str, limit: int | None) -> None:
        """Refuse requests longer than the model's trained context (the serving engines refuse such a
        ``--max-model-len``)."""
        if limit and self.longest > limit:
            which = ", the longest" if self.isl_range or self.osl_range else ""
            raise InputError(
                f"{self.longest:,} tokens per request (--isl + --osl{which}) exceed {model}'s trained context of "
                f"{limit:,}",
                "the serving engines refuse a --max-model-len beyond it; shorten the request",
            )

    @property
    def mean_context(self) -> int:
        return self.isl + self.osl // 2


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class EstimateRequest(Value):
    """What the user asked for; every option of ``moeplan estimate``."""

    model: str
    gpu: str | None = None
    gpu_memory_gib: float | None = None
    gpu_bandwidth_gb_s: float | None = None
    gpu_tflops: float | None = None
    num_gpus: int | None = None
    tp: int | None = None
    ep: int | None = None
    pp: int | None = None
    quant: str | None = None
    kv_dtype: str = "auto"
    """KV cache format; ``auto``: the engine's default (bf16, or f16 under llama.cpp)."""
    state_dtype: str = "auto"
    """Recurrent-state format of linear-attention and SSM layers; ``auto``: the engine's rule (llama.cpp fp32;
    vLLM the checkpoint's declared ``mamba_ssm_dtype``, else the model dtype)."""
    context: int = DEFAULT_CONTEXT
    batch: int = 1
    engine: str = "auto"
    """A serving engine, or ``auto``: llama.cpp for GGUF formats and Apple/SoC machines, vLLM otherwise."""
    backend: str = "auto"
    """llama.cpp's GPU backend (cuda, rocm, vulkan, metal, sycl), or ``auto``: the GPU vendor's usual one."""
    flash_attention: bool = True
    mtp: bool = False
    mtp_accept: float | None = None
    """Acceptance rate of each MTP draft token (``--mtp``); None: :data:`MTP_ACCEPT`."""
    mtp_drafts: int | None = None
    """Draft tokens per step with ``--mtp`` (SGLang ``--speculative-num-steps``, vLLM ``num_speculative_tokens``);
    None: one per MTP layer the model has.  Drafts beyond its layers reuse the last one, as the engines do."""
    prompt: int | None = None
    """Prompt tokens for prefill and time to first token; default: the context less 512 output tokens."""
    routing_skew: float = 0.0
    price_usd_per_hour: float | None = None
    energy_usd_per_kwh: float | None = None
    gpu_file: str | None = None
    calibration: str | None = None
    use_calibration: bool = True
    """False: the engine's published factors even where a stored profile exists (the accuracy harness)."""
    ubatch: int | None = None
    """Tokens per forward pass the engine plans (llama.cpp ``-ub``); None: the engine's default."""
    eplb: bool = False
    """With ``--ep``: redundant experts balance the load across the EP ranks (more expert memory per GPU)."""
    dp_attention: bool = False
    """Attention data-parallel over the TP group, experts spread over it (:attr:`Layout.dp_attention`)."""
    recv_interval: int = 1
    """Decode steps between the scheduler's polls for new requests (SGLang ``--scheduler-recv-interval``)."""
    batch_overlap: bool = False
    """Two micro-batches a step, the expert all-to-all of one under the other's compute (``--batch-overlap``)."""
    kt_prefill_threshold: int | None = None
    """KTransformers' ``--kt-gpu-prefill-token-threshold``: prefill passes of at least this many tokens run layer by
    layer on the GPU, smaller ones with their experts on the CPU; None:
    :data:`~moeplan.deploy.offload.LAYERWISE_MIN_TOKENS`."""
    cpu_repack: bool | None = None
    """ik_llama.cpp's ``-rtr`` (RAM weights repacked at load: faster CPU kernels, never streamed to the GPU): True,
    False, or None for wherever the CPU computes prefill (:attr:`~moeplan.deploy.engines.Engine.run_time_repack`)."""
    max_running: int | None = None
    """Requests one instance runs at once, all its ranks together (the engine's ``--max-num-seqs``,
    ``--max-running-requests``, ``max_batch_size``); None: as many as its KV cache holds."""
    speed_table: bool = True
    traffic: Traffic | None = None
    """A serving load: the estimate then carries its steady state (:mod:`moeplan.deploy.serving`)."""

    def prompt_tokens(self) -> int:
        """The single request's prompt: ``--prompt``, else under a load its prompts (``--isl``, within the
        context), else the context less 512 tokens of output (a 1,024-token context or less: half of it)."""
        if self.prompt is not None:
            return self.prompt
        if self.traffic is not None:
            return max(1, min(self.traffic.isl, self.context))
        return max(1, self.context - 512) if self.context > 1024 else max(1, self.context // 2)


@dataclass(frozen=True, repr=False, eq=False)
class Layout(Value):
    """Tensor, expert and pipeline parallel sizes; GPUs = tp x pp (EP lives inside the TP group)."""

    tp: int = 1
    ep: int = 1
    pp: int = 1
    eplb: bool = False
    """Expert-parallel load balancing: redundant copies of the busiest experts (:data:`EPLB_REDUNDANT` more expert
    memory per GPU) even out the load across the EP ranks."""
    dp_attention: bool = False
    """Attention data-parallel over the ``tp`` ranks (SGLang ``--enable-dp-attention``, vLLM
    ``--data-parallel-size`` with expert parallelism, TensorRT-LLM ``enable_attention_dp``): each rank keeps whole
    attention weights and the KV cache of its own requests; the MoE layers run over all the ranks (EP = TP by
    default, or experts sliced by TP with a smaller EP) on the tokens gathered from them."""

    @property
    def num_gpus(self) -> int:
        return self.tp * self.pp

    @property
    def attention_ranks(self) -> int:
        """Ranks the running sequences are spread over for attention (1 under TP: every rank sees every one)."""
        return self.tp if self.dp_attention else 1


def dp_launch_chunk(engine: Engine, gpu: GpuSpec | None, ranks: int) -> int | None:
    """The batched tokens (``--ubatch``) a data-parallel-attention instance of ``ranks`` should launch with, or None
    where the engine's default already fills each rank: an engine that divides its chunk over its workers
    (SGLang: 8,192 over 32 ranks leaves 256 tokens a rank a pass) at ``ranks x`` its default, as LMSYS's wide-EP runs
    set it (16,384 a rank)."""
    return engine.default_batched_tokens(gpu) * ranks if engine.divides_chunk and ranks > 1 else None


def check_layout(arch: ArchSpec, layout: Layout) -> None:
    """Reject layouts no engine can run, with the reason."""
    att = arch.attention
    if min(layout.tp, layout.ep, layout.pp) < 1:
        raise InputError("--tp, --ep and --pp must be at least 1")
    if layout.dp_attention:
        if arch.moe is None:
            raise InputError(
                "--dp-attention spreads requests over ranks that share the experts: it needs an MoE model",
                "a dense model runs data-parallel as separate replicas, one deployment per GPU group",
            )
        if layout.pp > 1:  # first: with --pp the TP group may be short only because the stages took the GPUs
            raise InputError("--dp-attention spreads requests over all the GPUs: drop --pp (the engines run it alone)")
        if layout.tp < 2:
            raise InputError("--dp-attention needs at least 2 GPUs in the TP group (--num-gpus 2 or more)")
    tp = 1 if layout.dp_attention else layout.tp  # under DP attention the heads are not split
    if att.num_heads % tp:
        raise InputError(f"--tp {tp} does not divide the {att.num_heads} attention heads")
    n_kv = att.num_kv_heads
    if att.mla is None and n_kv % tp and tp % n_kv:
        raise InputError(f"--tp {tp} and the {n_kv} KV heads must divide one another")
    ssm = arch.ssm
    if ssm is not None and "M" in att.layer_pattern and ssm.num_heads is not None and ssm.num_heads % tp:
        raise InputError(f"--tp {tp} does not divide the {ssm.num_heads} state-space heads")
    la = arch.linear_attention
    if la is not None and "L" in att.layer_pattern and la.num_key_heads % tp:
        raise InputError(f"--tp {tp} does not divide the {la.num_key_heads} linear-attention key heads")
    if layout.pp > arch.num_layers:
        raise InputError(f"--pp {layout.pp} exceeds the {arch.num_layers} layers")
    if layout.eplb and layout.ep <= 1:
        raise InputError("--eplb balances experts across expert-parallel ranks: give --ep too")
    if layout.ep > 1:
        if arch.moe is None:
            raise InputError("--ep needs an MoE model")
        if layout.ep > arch.moe.num_experts:  # said first: the TP below was chosen to match the --ep asked for
            raise InputError(f"--ep {layout.ep} exceeds the {arch.moe.num_experts} experts")
        if layout.tp % layout.ep:
            raise InputError(f"--ep {layout.ep} must divide --tp {layout.tp} (experts are spread over the TP ranks)")


def default_layout(arch: ArchSpec, num_gpus: int, engine: Engine, max_tp: int = 8) -> Layout:
    """The layout an engine uses for ``num_gpus``: by layers (llama.cpp), or the widest TP that divides the
    model's heads up to a node of 8, with pipeline stages across nodes."""
    if num_gpus < 1:
        raise InputError("the number of GPUs must be at least 1")
    if engine.split == "layers":
        return Layout(1, 1, num_gpus)
    tp = 1
    for cand in range(min(num_gpus, max_tp), 0, -1):
        if num_gpus % cand == 0:
            try:
                check_layout(arch, Layout(cand, 1, min(num_gpus // cand, arch.num_layers)))
            except InputError:
                continue
            tp = cand
            break
    if num_gpus // tp > arch.num_layers:
        raise InputError(
            f"{num_gpus:,} GPUs would need {num_gpus // tp:,} pipeline stages of TP {tp}, more than the model's "
            f"{arch.num_layers} layers",
            f"use at most {tp * arch.num_layers:,} GPUs, or give --tp/--ep/--pp yourself",
        )
    return Layout(tp, 1, num_gpus // tp)


@dataclass(frozen=True, repr=False, eq=False)
class Price(Value):
    """The price of one GPU-hour the cost rests on, and where it comes from."""

    usd_per_hour: float | None
    source: str | None
    energy_usd_per_kwh: float | None = None


@dataclass(frozen=True, kw_only=True, repr=False, eq=False)
class Deployment(Value):
    """One deployment, every choice decided (see the module docstring)."""

    request: EstimateRequest
    """What was asked, as given (the renderings quote it)."""
    spec: ModelSpec
    scheme: Scheme
    engine: Engine
    gpu: GpuSpec | None
    layout: Layout
    min_gpus: int | None = None
    """The fewest GPUs of this kind that hold it (None: none of :data:`GPU_COUNTS`, or not searched)."""
    kv_dtype: str
    state_dtype: str = "fp32"
    """Recurrent state of linear-attention and SSM layers."""
    conv_state_dtype: str = "fp32"
    """Their convolution state."""
    compute_dtype: str = "bf16"
    """The tensor dtype whose peak the GEMMs run at (the kernel path's)."""
    float_gemm_scale: float = 1.0
    """How many times longer a GEMM on weights kept in bf16 takes than one on the kernel path
    (:func:`~moeplan.deploy.kernels.float_gemm_scale`)."""
    kernel_path: str = "bf16"
    """The GEMM kernels the engine runs for these weights on this GPU (:mod:`moeplan.deploy.kernels`)."""
    backend: str | None = None
    """llama.cpp's GPU backend (None for other engines)."""
    efficiency: Efficiency
    link: Link | None = None
    """The GPU-to-GPU link ``calibrate --collectives`` measured on this box (None: the interconnect's figures)."""
    context: int
    batch: int
    prompt: int
    batched_tokens: int
    """Tokens in the largest forward pass the engine plans (vLLM max_num_batched_tokens, llama.cpp ubatch)."""
    recv_interval: int = 1
    """Decode steps between the scheduler's polls for new requests (SGLang ``--scheduler-recv-interval``): a
    request arriving while the engine decodes waits ``(N - 1) / 2`` steps more on average before its prefill."""
    batch_overlap: bool = False
    """Each step runs as two micro-batches, one's expert all-to-all (or gather) under the other's compute (SGLang's
    two-batch overlap, vLLM's dual-batch overlap): :meth:`~moeplan.deploy.speed.SpeedModel.exposed_comm_s`."""
    kt_prefill_threshold: int | None = None
    """Prefill passes of at least this many tokens run layer by layer on the GPU in KTransformers (None: 400)."""
    cpu_repack: bool | None = None
    """ik_llama.cpp's ``-rtr``: True, False, or None for where the CPU computes prefill (``--rtr``)."""
    max_running: int | None = None
    """The engine's cap on requests running at once in one instance (None: the KV cache's room alone); under a
    load, requests beyond it wait for a running one to finish."""
    flash_attention: bool = True
    mtp_layers: int = 0
    draft_tokens: int = 0
    """Tokens the MTP modules draft per step (speculative decoding with ``--mtp``; 0: plain decode)."""
    accept_rate: float = 0.0
    """Acceptance rate of each draft token."""
    reuse_decay: float = MTP_REUSE_DECAY
    """Factor on the acceptance per pass of a reused MTP layer (the model's published figure, else DeepSeek-R1's)."""
    routing_skew: float = 0.0
    weights_scale: tuple[tuple[str, float], ...] = ()
    """Per tensor class, a real checkpoint's bytes over the scheme's prediction (empty: the prediction)."""
    extra_weight_bytes: int = 0
    """Checkpoint tensors outside the language model that engines load (a vision tower)."""
    price: Price = Price(None, None)
    num_nodes: int = 1
    notes: tuple[str, ...] = ()
    """What resolving decided that the user should know (a format converted, a context past the model's)."""
    calibration_note: str = ""

    @property
    def cap_per_rank(self) -> int | None:
        """The figure the engine's launch flag takes for ``max_running``: the instance's cap, or where the engine
        counts per data-parallel rank (vLLM, TensorRT-LLM) its share of each rank rounded up, ``ceil(N / ranks)``;
        None without a cap."""
        if not self.max_running:
            return None
        ranks = self.layout.attention_ranks if self.engine.max_running_per_rank else 1
        return math.ceil(self.max_running / ranks)

    @property
    def rank_tokens(self) -> int:
        """Prompt tokens one attention rank's pass carries: ``batched_tokens`` under TP and where each attention-DP
        rank schedules its own (vLLM's engine core per rank, TensorRT-LLM's ``max_num_tokens`` per rank); SGLang
        divides its ``--chunked-prefill-size`` over its DP workers, ``batched_tokens / ranks`` (8,192 over 32 ranks:
        256 tokens a rank, unless the launch line scales it)."""
        tokens = max(1, self.batched_tokens or 8192)
        if self.layout.dp_attention and self.engine.divides_chunk:
            return max(1, tokens // self.layout.attention_ranks)
        return tokens

    @property
    def pass_tokens(self) -> int:
        """Prompt tokens one forward pass of the instance carries, every rank's together: ``ranks x``
        :attr:`rank_tokens` where each rank schedules its own (InferenceX's TensorRT-LLM prefill of DeepSeek-R1 on
        4 GB200 with ``max_num_tokens`` 16,384 and attention DP carries 65,536 tokens a pass), SGLang's
        ``--chunked-prefill-size`` whole, ``batched_tokens`` where one scheduler fills the pass (ATOM)."""
        if self.layout.dp_attention and not self.engine.max_running_per_rank and not self.engine.divides_chunk:
            return self.rank_tokens
        return self.rank_tokens * self.layout.attention_ranks

    @property
    def running_cap(self) -> int | None:
        """Requests the instance runs at once under the engine's cap as launched: ``N``, or ``ranks x ceil(N /
        ranks)`` where the engine counts per rank (``--max-running 100`` on 8 ranks: 13 each, 104); without
        ``--max-running`` the engine's own default (vLLM 1,024 a rank on an H100, 256 on smaller GPUs and the A100;
        ATOM 512; TensorRT-LLM 2,048 a rank), None where it has none moeplan knows (SGLang sizes it from the KV
        pool)."""
        per_rank = self.cap_per_rank or self.engine.default_max_running(self.gpu)
        if per_rank is None:
            return None
        return per_rank * (self.layout.attention_ranks if self.engine.max_running_per_rank else 1)

    @property
    def usable_bytes(self) -> float:
        """Memory one GPU may use (0 without a GPU: nothing is checked against it)."""
        return self.gpu.usable_memory_bytes if self.gpu is not None else 0.0
