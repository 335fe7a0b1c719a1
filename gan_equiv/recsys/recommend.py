"""The ``recommend`` command: the top-k next items of a trained generator for one user history.

``python -m gan_equiv recommend --checkpoint runs/recommendation/next/mle/model.pt
--user-history 12,7,301 --k 10 [--exclude 7,301]`` prints the k most probable next items under
p_G(· | history) with their probabilities. Items are the raw tokens of the interaction file (the
ids a user knows); the model reads the last T−1 items of the history. The Python call is
:func:`recommend` on a :class:`SavedRecommender` from :func:`load_recommender`.

:func:`save_recommender` writes what the evaluation fitted (every ``mle``, ``sasrec`` and
EB-SeqGAN model goes to ``<run-dir>/<protocol>/<model>/model.pt``): the generator's kind and
constructor options, its weights and the item tokens in id order.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan_equiv.checks import positive_int
from gan_equiv.models.policies import GRUPolicy, SequencePolicy
from gan_equiv.models.sasrec import SASRecPolicy
from gan_equiv.recsys.histories import PAD, Histories
from gan_equiv.recsys.recommenders import policy_scores
from gan_equiv.train.checkpoint import write_sealed
from gan_equiv.train.checkpoint_integrity import unseal

#: Format tag of a saved recommender file.
FORMAT = "gan_equiv.recommender/1"


@dataclass(frozen=True)
class Recommendation:
    """One recommended item: raw ``token``, contiguous ``item`` id, ``probability`` p_G(item | history)."""

    token: str
    item: int
    probability: float


@dataclass(frozen=True)
class SavedRecommender:
    """A loaded generator and the item tokens of its ids (``tokens[i]`` is item i)."""

    policy: SequencePolicy
    tokens: tuple[str, ...]

    def ids(self, tokens: list[str], *, what: str) -> list[int]:
        """Item ids of raw tokens; an unknown token is a ValueError naming it."""
        index = {t: i for i, t in enumerate(self.tokens)}
        missing = [t for t in tokens if t not in index]
        if missing:
            raise ValueError(
                f"{what} items {missing[:5]} are not in the model's catalogue of {len(self.tokens)} items; "
                "give item ids as they appear in the interaction file"
            )
        return [index[t] for t in tokens]


def _spec(policy: SequencePolicy) -> dict[str, Any]:
    if isinstance(policy, SASRecPolicy):
        return {"kind": "sasrec", **policy.settings}
    if isinstance(policy, GRUPolicy):
        return {
            "kind": "gru",
            "embed_dim": int(policy.embedding.weight.shape[1]),
            "hidden_dim": policy.hidden_dim,
            "cell": policy.cell_type,
        }
    raise ValueError(f"cannot save a {type(policy).__name__}; save a GRUPolicy or SASRecPolicy")


def save_recommender(path: str | Path, policy: SequencePolicy, tokens: tuple[str, ...]) -> Path:
    """Write the generator (kind, options, weights on the CPU) and the item tokens to ``path``."""
    if len(tokens) != policy.n_items:
        raise ValueError(f"{len(tokens)} item tokens for a model of V={policy.n_items} items")
    state = {k: v.detach().cpu() for k, v in policy.state_dict().items()}
    payload = {
        "format": FORMAT,
        "spec": _spec(policy),
        "n_items": policy.n_items,
        "horizon": policy.horizon,
        "state": state,
        "tokens": list(tokens),
    }
    return write_sealed(path, payload)  # sealed and atomic, like the trainer's checkpoints


def load_recommender(path: str | Path) -> SavedRecommender:
    """Read a file written by :func:`save_recommender` (weights only; no code is unpickled)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"model file {str(p)!r} does not exist; the evaluate command writes "
            "<run-dir>/<protocol>/<model>/model.pt"
        )
    data = p.read_bytes()
    unseal(data, p, "; write it again with the evaluate command")  # any flipped bit is refused
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(p)!r} is not a saved recommender ({FORMAT}); pass a model.pt from evaluate")
    spec = dict(payload["spec"])
    kind = spec.pop("kind")
    V, T = int(payload["n_items"]), int(payload["horizon"])
    policy: SequencePolicy = SASRecPolicy(V, T, **spec) if kind == "sasrec" else GRUPolicy(V, T, **spec)
    policy.load_state_dict(payload["state"])
    return SavedRecommender(policy.eval(), tuple(payload["tokens"]))


def recommend(
    model: SavedRecommender, history: list[str], *, k: int = 10, exclude: list[str] = ()
) -> list[Recommendation]:
    """The k most probable next items under p_G(· | history) (eq. 4's conditional), best first.

    ``history`` and ``exclude`` are raw item tokens, oldest first; excluded items are never
    returned (the probabilities stay those of the model, not renormalized over the rest).
    """
    k = positive_int(k, "k", hint="the number of items to return")
    ids = model.ids(list(history), what="history")
    banned = model.ids(list(exclude), what="excluded")
    items = torch.tensor([ids or [PAD]], dtype=torch.long)  # (1, len): PAD = empty history
    log_p = policy_scores(model.policy, Histories(items))[0].double()  # (V,)
    if banned:
        log_p[torch.tensor(banned)] = float("-inf")
    k = min(k, int(torch.isfinite(log_p).sum()))
    top = torch.topk(log_p, k)
    return [
        Recommendation(model.tokens[int(i)], int(i), float(v.exp()))
        for v, i in zip(top.values, top.indices, strict=True)
    ]


def _tokens(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_recommend_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``recommend`` subcommand (its handler is :func:`recommend_command`)."""
    parser = subparsers.add_parser(
        "recommend",
        help="top-k next items of a trained recommender for one user history",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--checkpoint", required=True, help="model.pt written by evaluate")
    parser.add_argument("--user-history", required=True, help="item ids, oldest first, comma-separated")
    parser.add_argument("--k", type=int, default=10, help="number of items [default: 10]")
    parser.add_argument("--exclude", default="", help="item ids never to recommend, comma-separated")
    parser.set_defaults(func=recommend_command)
    return parser


def recommend_command(args: argparse.Namespace) -> int:
    """Handler of ``python -m gan_equiv recommend``: prints rank, item and probability; returns 0,
    or 2 with the message on stderr for a missing file or an unknown item."""
    try:
        model = load_recommender(args.checkpoint)
        recs = recommend(model, _tokens(args.user_history), k=args.k, exclude=_tokens(args.exclude))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("rank  item  probability")
    for rank, r in enumerate(recs, start=1):
        print(f"{rank:>4}  {r.token}  {r.probability:.6f}")
    return 0
