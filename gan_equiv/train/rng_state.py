"""RNG states of a run as checkpoint-safe values: captured and restored in place.

Every state is stored as tensors and strings (python ``random``: a tensor of its 625 words; numpy
``Generator``: its bit-generator state as JSON; torch CPU / ``torch.Generator`` / CUDA: byte
tensors), so it passes ``torch.load(..., weights_only=True)`` and a resumed run on CPU continues
bit for bit (:mod:`gan_equiv.train.checkpoint` writes them under ``"rng"``).
:func:`seed_global_rngs` seeds the process-wide generators (python ``random`` and torch's) at the
start of a run, so every stream a checkpoint stores starts from the run's seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from gan_equiv.train.checkpoint import CheckpointError


def _to_json(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: _from_json(v) for k, v in obj.items()}
    return obj


def seed_global_rngs(seed: int) -> None:
    """Seed python's ``random`` and torch's global generators (CPU and every CUDA device) with
    ``seed`` — the process-wide streams :func:`capture_rng_states` stores. numpy draws go through
    explicit ``np.random.Generator`` objects, passed to capture/restore."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}; use e.g. seed = 88")
    random.seed(int(seed))
    torch.manual_seed(int(seed))


def capture_rng_states(
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
    *,
    include_cuda: bool | None = None,
) -> dict[str, Any]:
    """Every RNG state as tensors/strings: python ``random``, torch's global CPU RNG, ``numpy_rng``,
    each named ``torch.Generator``, and the CUDA RNGs (``include_cuda=None``: when CUDA is initialized)."""
    version, words, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss_next},
        "torch_cpu": torch.get_rng_state(),
        "numpy": None if numpy_rng is None else json.dumps(_to_json(numpy_rng.bit_generator.state)),
        "generators": {
            name: {"device": str(g.device), "state": g.get_state()}
            for name, g in (torch_generators or {}).items()
        },
        "cuda": [],
    }
    if include_cuda is None:
        include_cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    if include_cuda:
        states["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return states


def restore_rng_states(
    states: Mapping[str, Any],
    numpy_rng: np.random.Generator | None = None,
    torch_generators: Mapping[str, torch.Generator] | None = None,
) -> None:
    """Put back what :func:`capture_rng_states` recorded (in place, into the objects given).

    Errors (:class:`CheckpointError`) when a generator passed here has no saved state, when
    ``numpy_rng`` uses another bit generator, or when a state does not fit its generator's device.
    """
    missing = [k for k in ("python", "torch_cpu", "numpy", "generators") if k not in states]
    if missing:
        raise CheckpointError(f"RNG states lack {missing}; they must come from capture_rng_states")
    py = states["python"]
    try:
        random.setstate((int(py["version"]), tuple(int(w) for w in py["words"].tolist()), py["gauss"]))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(
            f"the stored python random state is malformed ({type(err).__name__}: {err}); it must come "
            "from capture_rng_states"
        ) from None
    torch.set_rng_state(states["torch_cpu"].cpu())
    if numpy_rng is not None:
        if states.get("numpy") is None:
            raise CheckpointError("the checkpoint has no numpy RNG state but a numpy Generator was given")
        saved = _from_json(json.loads(states["numpy"]))
        kind = type(numpy_rng.bit_generator).__name__
        if saved.get("bit_generator") != kind:
            raise CheckpointError(
                f"saved numpy RNG is {saved.get('bit_generator')} but the current one is {kind}; "
                f"create it with np.random.Generator(np.random.{saved.get('bit_generator')}())"
            )
        numpy_rng.bit_generator.state = saved
    saved_gens = states.get("generators", {})
    for name, gen in (torch_generators or {}).items():
        if name not in saved_gens:
            raise CheckpointError(
                f"no saved state for torch.Generator {name!r}; the checkpoint has {sorted(saved_gens)}"
            )
        entry = saved_gens[name]
        try:
            gen.set_state(entry["state"].cpu())
        except RuntimeError as err:
            raise CheckpointError(
                f"cannot restore torch.Generator {name!r} (saved on {entry['device']}, now on "
                f"{gen.device}): {err}"
            ) from None
    cuda = states.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
