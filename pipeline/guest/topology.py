"""Guest topologies: sockets, cores, threads, NUMA nodes, memory and distances.

Loaded from configs/topologies.yaml; `--cpus`, `--numa` and `--memory` derive a
variant. The same object produces QEMU's -smp/-numa arguments and the facts the
guest must show after boot, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from pipeline.config import Fields, Layout, load_named, pick
from pipeline.model.errors import ConfigError

SIZE_RE = re.compile(r"^(\d+)\s*([MG])i?B?$", re.I)


@dataclass(frozen=True)
class Topology:
    name: str
    sockets: int
    cores: int
    threads: int
    nodes: int
    memory_mb: int
    remote: int = 20
    description: str = ""

    @property
    def cpus(self) -> int:
        return self.sockets * self.cores * self.threads

    def node_cpus(self, node: int) -> list[int]:
        per = self.cpus // self.nodes
        return list(range(node * per, (node + 1) * per))

    def node_memory_mb(self) -> int:
        return self.memory_mb // self.nodes

    def distance(self, a: int, b: int) -> int:
        return 10 if a == b else self.remote

    def expected(self) -> dict:
        """What the guest's sysfs must show."""
        return {
            "cpus": self.cpus,
            "nodes": {
                n: {"cpulist": cpulist(self.node_cpus(n)),
                    "distance": " ".join(str(self.distance(n, m)) for m in range(self.nodes))}
                for n in range(self.nodes)
            } if self.nodes > 1 else {0: {"cpulist": cpulist(list(range(self.cpus))), "distance": "10"}},
        }

    def with_overrides(self, cpus: int | None = None, nodes: int | None = None,
                       memory: str | None = None) -> "Topology":
        topo = self
        if nodes is not None:
            topo = replace(topo, nodes=nodes, sockets=max(nodes, 1),
                           cores=topo.cpus // max(nodes, 1) // topo.threads)
        if cpus is not None:
            if cpus < 1 or cpus % (topo.sockets * topo.threads):
                raise ConfigError(path=Path("--cpus"), detail=f"{cpus} CPUs do not fit {topo.sockets} socket(s) "
                                  f"x {topo.threads} thread(s)")
            topo = replace(topo, cores=cpus // (topo.sockets * topo.threads))
        if memory is not None:
            topo = replace(topo, memory_mb=parse_size(memory, Path("--memory")))
        if topo != self:
            topo = replace(topo, name=f"{self.name}*", description=f"{self.name} with overrides")
        validate(topo, Path("--cpus/--numa/--memory"))
        return topo


def cpulist(cpus: list[int]) -> str:
    """[0,1,2,3,6] -> "0-3,6", as the kernel prints it."""
    ranges, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            ranges.append(f"{start}-{cpu}" if cpu != start else str(cpu))
            start = None
    return ",".join(ranges)


def parse_size(text: str, path: Path) -> int:
    m = SIZE_RE.match(str(text).strip())
    if not m:
        raise ConfigError(path=path, detail=f"memory '{text}': use e.g. 4G or 2048M")
    return int(m.group(1)) * (1024 if m.group(2).upper() == "G" else 1)


def validate(topo: Topology, path: Path) -> None:
    if topo.cpus < 1 or topo.nodes < 1 or topo.cpus % topo.nodes:
        raise ConfigError(path=path, detail=f"topology {topo.name}: {topo.cpus} CPUs cannot be split over "
                          f"{topo.nodes} nodes")
    if topo.memory_mb % topo.nodes or topo.memory_mb // topo.nodes < 256:
        raise ConfigError(path=path, detail=f"topology {topo.name}: {topo.memory_mb} MiB over {topo.nodes} "
                          "nodes (need at least 256 MiB per node)")


@dataclass(frozen=True)
class Topologies:
    default: str
    topologies: Mapping[str, Topology]
    path: Path

    def get(self, name: str | None) -> Topology:
        return pick("topology", name or self.default, self.topologies, self.path)


def load_topologies(layout: Layout) -> Topologies:
    path = layout.configs / "topologies.yaml"

    def topology(name: str, f: Fields) -> Topology:
        f.check_keys({"description", "sockets", "cores", "threads", "nodes", "memory", "remote"})
        topo = Topology(
            name=name, sockets=f.get("sockets", int), cores=f.get("cores", int), threads=f.get("threads", int, 1),
            nodes=f.get("nodes", int, 1), memory_mb=parse_size(f.get("memory", (str, int)), path),
            remote=f.get("remote", int, 20), description=f.str("description", ""),
        )
        validate(topo, path)
        return topo

    named = load_named(path, "topologies", "topology", topology)
    return Topologies(default=named.default, topologies=named.entries, path=path)
