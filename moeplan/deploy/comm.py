"""Communication of one step: collectives per interconnect, group size and message size.

Each collective costs a latency and a transfer (the alpha-beta model of NCCL's own performance notes):

    all-reduce (ring)   t = alpha_ar(n) + 2 (n-1)/n x bytes / bus
    all-to-all          t = alpha_a2a(n) + (n-1)/n x bytes / bus
    pipeline hand-off   t = alpha_p2p + bytes / bus

with ``alpha(n) = alpha_2 x (1 + 0.25 log2(n/2))`` (a ring or tree grows its hops with the group; NCCL's
small-message all-reduce on 8 NVLink GPUs takes ~1.5x its 2-GPU time) and ``bus`` the one-way bandwidth per
GPU.  Per interconnect (:data:`LINKS`):

* NVLink/NVSwitch: bus = half the NVLink figure (it is quoted both ways); alpha 10 us -- vLLM's one-shot
  custom all-reduce answers small messages in 5-10 us and NCCL in 10-20 us; all-to-all (DeepEP low-latency
  dispatch or combine inside a node) ~25 us.
* PCIe (no NVLink): bus = 80% of the PCIe figure's one direction; alpha 25 us: NCCL through the host bridge.
* xGMI (MI300-class Infinity Fabric, fully connected: 7 links of 64 GB/s per direction to the peers): bus 300 GB/s
  per GPU, what RCCL's all-reduce reaches of the 448; alpha 15 us.
* InfiniBand/RoCE between nodes (one 400 Gb/s NIC per GPU): bus 40 GB/s; alpha 60 us for an all-reduce that
  crosses nodes (tens to 100+ us measured), 80 us for an all-to-all (DeepEP low-latency across nodes: 80-160
  us per dispatch at 128 tokens on H800 clusters).

A step of a TP group with ``ep`` experts spread over it (EP inside TP, as vLLM and SGLang run it) charges each
layer one all-reduce after attention and, after the MLP, an all-reduce for a dense layer or a dispatch and a
combine for an MoE layer -- never both.  The band scales every alpha like the other fixed costs (1.5x / 0.6x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moeplan.deploy.engines import US
from moeplan.hardware.gpus import GpuSpec
from moeplan.records import Value

GPUS_PER_NODE = 8
"""GPUs one NVLink domain joins where the GPU names no other (an HGX/DGX server)."""


def nvlink_domain(gpu: GpuSpec) -> int:
    """GPUs that reach one another over NVLink (or xGMI): the GPU's own domain (72 in a GB200/GB300 NVL72 rack,
    whose NVSwitch trays join every GPU at the full NVLink rate), else a server of 8."""
    return gpu.nvlink_domain or GPUS_PER_NODE


@dataclass(frozen=True, repr=False, eq=False)
class Link(Value):
    """One interconnect: one-way bus bandwidth per GPU and the latency of small collectives on 2 GPUs."""

    name: str
    bus_bytes_s: float
    alpha_s: float
    """All-reduce of a small message between 2 GPUs."""
    a2a_alpha_s: float
    """All-to-all (expert dispatch or combine) of a small message between 2 GPUs."""
    p2p_alpha_s: float
    """One send/receive (a pipeline hand-off)."""

    def alpha(self, n: int, base: float) -> float:
        """Latency of a collective over ``n`` GPUs: ``base x (1 + 0.25 log2(n/2))``; 8 NVLink GPUs: 15 us."""
        return base * (1 + 0.25 * math.log2(max(n, 2) / 2))

    def all_reduce_s(self, n: int, nbytes: float) -> float:
        """Ring all-reduce of ``nbytes`` over ``n`` GPUs; 8 H100s, 7,168 x 2 B: 15 us + 0.03 us."""
        if n <= 1:
            return 0.0
        return self.alpha(n, self.alpha_s) + 2 * (n - 1) / n * nbytes / self.bus_bytes_s

    def all_gather_s(self, n: int, nbytes: float) -> float:
        """All-gather (or reduce-scatter) of ``nbytes`` in all over ``n`` GPUs: ``alpha + (n-1)/n x bytes / bus``,
        half a ring all-reduce's transfer; 8 H100s, 64 tokens x 7,168 x 2 B: 15 us + 1.8 us."""
        if n <= 1:
            return 0.0
        return self.alpha(n, self.alpha_s) + (n - 1) / n * nbytes / self.bus_bytes_s

    def all_to_all_s(self, n: int, nbytes: float) -> float:
        """All-to-all of ``nbytes`` per GPU over ``n`` GPUs (each sends ``(n-1)/n`` of it)."""
        if n <= 1:
            return 0.0
        return self.alpha(n, self.a2a_alpha_s) + (n - 1) / n * nbytes / self.bus_bytes_s

    def scaled(self, factor: float) -> Link:
        """This link with every latency times ``factor`` (the band's ends)."""
        a = self.alpha_s * factor, self.a2a_alpha_s * factor, self.p2p_alpha_s * factor
        return Link(self.name, self.bus_bytes_s, *a)

    def send_s(self, nbytes: float) -> float:
        """One pipeline hand-off of ``nbytes``."""
        return self.p2p_alpha_s + nbytes / self.bus_bytes_s


def measured_collective_link(world: int, ar_alpha_s: float, bus_gb_s: float, a2a_alpha_s: float, name: str) -> Link:
    """A link from ``calibrate --collectives``: the latencies measured over ``world`` ranks brought back to 2
    GPUs by :meth:`Link.alpha`'s group-size rule (8 ranks measuring 15 us: 10 us at 2), the fitted bus bandwidth."""
    grow = 1 + 0.25 * math.log2(max(world, 2) / 2)
    return Link(name, bus_gb_s * 1e9, ar_alpha_s / grow, a2a_alpha_s / grow, ar_alpha_s / grow / 2)


def link_for(gpu: GpuSpec, across_nodes: bool) -> Link:
    """The interconnect between two GPUs of a deployment on ``gpu``: InfiniBand/RoCE across nodes, else NVLink,
    xGMI (AMD Instinct) or PCIe."""
    if across_nodes:
        return Link("InfiniBand/RoCE (400 Gb/s per GPU)", 40e9, 60 * US, 80 * US, 15 * US)
    if gpu.nvlink_gb_s:
        return Link(f"NVLink ({gpu.nvlink_gb_s:g} GB/s)", gpu.nvlink_gb_s / 2 * 1e9, 10 * US, 25 * US, 8 * US)
    if gpu.vendor == "amd" and gpu.kind == "datacenter":
        return Link("xGMI (Infinity Fabric)", 300e9, 15 * US, 30 * US, 10 * US)
    pcie = (gpu.pcie_gb_s or 32.0) / 2 * 0.8 * 1e9
    return Link("PCIe", pcie, 25 * US, 40 * US, 15 * US)


KV_HANDOFF_BYTES_S = (3.9e9, 7.0e9, 15e9)
"""Rate at which one rank's share of a prompt's KV cache reaches its decode instance, as the engines' transfer paths
move it (the band's low, expected and high ends): a request's cache is scattered pages, one RDMA write per run of
pages per layer, so the engine's descriptor handling, not the wire, sets the rate.  DeepSeek-V3 with 10,240-token
prompts in SGLang's PD: 3.8-3.9 GB/s a rank once every layer goes in one batch (80+ ms a rank; 0.6-1.1 GB/s layer by
layer, sglang PR #9149); 10-15 GB/s with Mooncake's batch transfer over 3 prefill and 9 decode nodes (650 ms down
to 60 ms, sglang PR #7236).  Expected: 7 GB/s, between the two."""


def kv_handoff_s(nbytes: float, link: Link, scenario_index: int = 1) -> float:
    """One prompt's KV cache from its prefill rank to its decode rank: ``alpha_p2p + bytes / min(bus,
    KV_HANDOFF_BYTES_S)``, the ranks of an instance in parallel.  DeepSeek-V3's 7,373-token prompt with an fp8 cache
    (61 layers x 576 B a token, the whole latent on each rank that holds it): 259 MB / 7 GB/s = 37 ms."""
    return link.p2p_alpha_s + nbytes / min(link.bus_bytes_s, KV_HANDOFF_BYTES_S[scenario_index])


DISPATCH_BYTES = 1.0
"""Bytes per hidden element an expert dispatch sends: fp8 (DeepEP's dispatch quantizes the activations)."""
COMBINE_BYTES = 2.0
"""Bytes per hidden element the combine returns: bf16."""


def expert_all_to_all_s(
    gpu: GpuSpec,
    n: int,
    domain: int,
    tokens: float,
    hidden: int,
    top_k: float,
    alpha_scale: float = 1.0,
    per_node: bool = False,
) -> float:
    """One MoE layer's dispatch and combine over ``n`` data-parallel ranks that span nodes of ``domain`` GPUs.

        local = tokens / n,  d = n x (1 - (1 - 1/n)^k)   (distinct ranks a token's k experts sit on)
        bytes = local x d x h x (1 B dispatch, 2 B combine), (n - domain) / n of it over InfiniBand, the rest NVLink
        t = sum over dispatch and combine of  alpha_a2a(n) + max(bytes_ib / bus_ib, bytes_nvlink / bus_nvlink)

    DeepSeek-V3 decode on 32 H100s (4 nodes), 128 sequences a rank: d = 7.2 ranks, 6.6 MB dispatched a rank of
    which 4.9 MB leave the node (0.12 ms at 40 GB/s) and 13.2 MB combined (0.25 ms), with 2 x 160 us of latency:
    0.69 ms a layer, where gathering all 4,096 tokens to every rank and scattering them back takes 2 x 1.5 ms.

    ``per_node`` (a prefill pass: DeepEP's normal kernels, as SGLang, vLLM and DeepSeek's own serving dispatch large
    batches): a token crosses InfiniBand once for each other node its experts sit on, ``(N - 1)(1 - (1 - 1/N)^k)``
    of ``N = n / domain`` nodes, and NVLink fans it out to the ranks inside each node (every copy, ``d`` of them,
    rides NVLink somewhere).  The low-latency kernels of decode write to each rank over RDMA.  The same 32 H100s
    prefilling 16,384 tokens a rank: 2.7 copies over InfiniBand instead of 5.4."""
    if n <= 1 or top_k <= 0:
        return 0.0
    ib, nv = link_for(gpu, True).scaled(alpha_scale), link_for(gpu, False).scaled(alpha_scale)
    local = tokens / n
    distinct = n * (1 - (1 - 1 / n) ** top_k)
    off = max(0.0, (n - domain) / n)
    nodes = n / domain
    over_ib = (nodes - 1) * (1 - (1 - 1 / nodes) ** top_k) if per_node and nodes > 1 else distinct * off
    over_nv = distinct if per_node else distinct * (1 - off)
    t = 0.0
    for per_element in (DISPATCH_BYTES, COMBINE_BYTES):
        row = local * hidden * per_element
        t += ib.alpha(n, ib.a2a_alpha_s) + max(over_ib * row / ib.bus_bytes_s, over_nv * row / nv.bus_bytes_s)
    return t


def step_comm_s(
    gpu: GpuSpec,
    *,
    tp: int,
    ep: int,
    pp: int,
    num_nodes: int,
    tokens: float,
    hidden: int,
    top_k: float,
    layers: int,
    moe_layers: int,
    alpha_scale: float = 1.0,
    measured: Link | None = None,
    dp_attention: bool = False,
    prefill: bool = False,
    dense_dp: bool = False,
) -> float:
    """Seconds of communication in one forward pass of ``tokens`` tokens (activations in 2-byte dtypes).

    TP (with EP inside it): per layer one all-reduce of ``tokens x h x 2`` bytes after attention, and one after
    the MLP.  EP inside a node's TP group changes which experts a GPU holds, not the collectives: every rank has
    every token after the attention all-reduce, runs its own experts, and the MLP's all-reduce combines them
    (vLLM's ``FusedMoEParallelConfig.use_all2all_kernels`` needs data parallelism; SGLang's default
    ``--moe-a2a-backend none``; TensorRT-LLM with attention TP).  A wide EP group across nodes dispatches and
    combines ``tokens x k x h x 2`` bytes with all-to-all in place of that all-reduce.  Pipeline: ``pp - 1``
    hand-offs.  TP groups span nodes when ``tp`` exceeds a node's 8 GPUs; pipeline stages do when the deployment
    has several nodes.  A ``measured`` link (this box's calibration) replaces the interconnect's figures inside a
    node.  DeepSeek-V3 at TP 8 on H100 (NVLink, 15 us per all-reduce at 8 ranks), one token:
    61 x 2 x 15 us = 1.83 ms a step, with or without EP 8.

    Attention data-parallel (``dp_attention``): each rank attends to its own sequences, then every layer gathers
    the step's ``tokens`` to the ranks that hold the experts (or the dense MLP's TP slices) and scatters the
    results back -- an all-gather and a reduce-scatter of ``tokens x h x 2`` bytes, each ``alpha + (n-1)/n x bytes
    / bus`` (SGLang's DP-attention gather and scatter, vLLM's default all-gather/reduce-scatter all-to-all): the
    same latencies as TP's two all-reduces and half their bytes.  ``dense_dp``: the dense layers' MLP runs whole
    on each rank (:attr:`~moeplan.deploy.engines.Engine.dense_dp`), so only the MoE layers gather or dispatch.
    ``prefill``: a prefill pass, whose expert dispatch across nodes crosses InfiniBand once per node
    (:func:`expert_all_to_all_s`)."""
    gpus = tp * pp
    domain = nvlink_domain(gpu)
    nodes = max(num_nodes, math.ceil(gpus / domain))
    act = tokens * hidden * 2
    t = 0.0
    if tp > 1:
        inside = measured if measured is not None and tp <= domain else None
        scaled = (inside or link_for(gpu, tp > domain)).scaled(alpha_scale)
        if dp_attention:  # gather to the experts, scatter back; across nodes, an expert all-to-all (DeepEP)
            a2a_layers = moe_layers if ep > 1 and tp > domain else 0
            gathered = (moe_layers if dense_dp else layers) - a2a_layers  # a data-parallel dense MLP gathers nothing
            t += gathered * 2 * scaled.all_gather_s(tp, act)
            if a2a_layers:
                a2a = expert_all_to_all_s(gpu, tp, domain, tokens, hidden, top_k, alpha_scale, per_node=prefill)
                t += a2a_layers * a2a
        else:
            ar = scaled.all_reduce_s(tp, act)
            t += layers * ar  # after attention
            a2a_layers = moe_layers if ep > 1 and tp > domain else 0  # wide EP: dispatch and combine instead
            t += (layers - a2a_layers) * ar  # after the MLP
            t += a2a_layers * 2 * scaled.all_to_all_s(ep, act * top_k)
    if pp > 1:
        t += (pp - 1) * link_for(gpu, nodes > 1).scaled(alpha_scale).send_s(act)
    return t
