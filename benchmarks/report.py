"""What the torch benchmarks record about the machine, and how they write their results."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def torch_machine() -> dict[str, Any]:
    """CPU count, torch threads and version, OpenMP wait policy and the load average now."""
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "load_average": os.getloadavg()}


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Add the closing load average to ``results["machine"]`` and write them as JSON."""
    results["machine"]["load_average_end"] = os.getloadavg()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
