"""Which torch device a run uses (``--device``): the CPU unless the user asks otherwise.

Only the place where the work runs changes: encoder fingerprints, cache keys and run ids
never include the device, so embeddings extracted on a GPU machine serve a CPU laptop.
"""

from __future__ import annotations

from mmbench.errors import UserError

CHOICES = "cpu, cuda, cuda:N, mps or auto"


def resolve_device(name: str) -> str:
    """A usable torch device string for ``name``, or a UserError saying what is available.

    ``auto`` picks the first GPU when there is one, else the CPU.
    """
    import torch

    name = (name or "cpu").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda:0"
        return "mps" if _mps_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "mps":
        if not _mps_available():
            raise UserError("--device mps: this machine has no Apple GPU (MPS) that torch can use; "
                            "use --device cpu")
        return "mps"
    if name == "cuda" or name.startswith("cuda:"):
        index = 0
        if ":" in name:
            try:
                index = int(name.split(":", 1)[1])
            except ValueError:
                raise UserError(f"--device {name!r}: expected cuda:N with N a GPU number") from None
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: torch sees no CUDA GPU here (torch "
                            f"{torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                            "use --device cpu here, or run on a machine with a GPU and a CUDA build of torch")
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(f"--device {name}: only {count} GPU(s) here (cuda:0..cuda:{count - 1})")
        return f"cuda:{index}"
    raise UserError(f"--device {name!r}: expected {CHOICES}")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
