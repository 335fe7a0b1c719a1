"""A self-attentive generator (SASRec): p_G(s_t | h_t) of eq. (4) from a causal Transformer.

Items are embedded (one table of V + 1 rows; row V is the start token that begins every sequence),
learned position embeddings are added, then layer norm, dropout and ``n_layers`` post-norm
Transformer blocks with a causal mask (position t sees positions ≤ t). The output at position t is
scored against the item embeddings themselves (tied output embeddings, no bias):
logits_t = h_t · E[:V]ᵀ, so p_G(· | s_1 … s_t) = softmax(logits_t).

The state of the shared :class:`~gan_equiv.models.policies.SequencePolicy` interface is
int64 (N, 1 + T): column 0 holds the history length t, columns 1 … T the items so far (0 after
them). ``logits(state)`` runs the encoder over the start token and those items and reads the
output at position t; because of the causal mask the zeros after position t are never seen, so
:meth:`step_log_probs` (one teacher-forced pass, the fast path of training) and the
state route (``prefix_states`` then ``logits``) give the same numbers in eval mode.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_equiv.checks import finite_float, positive_int
from gan_equiv.models.policies import SequencePolicy


class SASRecPolicy(SequencePolicy):
    """SASRec as an autoregressive generator over V items and horizon T (start token + T − 1 items
    of context at the last step).

    Defaults follow the SASRec/RecBole model: width 64, 2 blocks, 2 heads, inner width 256, GELU,
    dropout 0.5 (embeddings and blocks), layer-norm eps 1e-12, weights N(0, 0.02²).
    """

    def __init__(
        self,
        n_items: int,
        horizon: int,
        *,
        embed_dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_dim: int = 256,
        dropout: float = 0.5,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(n_items, horizon)
        embed_dim = positive_int(embed_dim, "embed_dim", hint="item embedding width")
        n_layers = positive_int(n_layers, "n_layers", hint="number of Transformer blocks")
        n_heads = positive_int(n_heads, "n_heads", hint="attention heads per block")
        inner_dim = positive_int(inner_dim, "inner_dim", hint="feed-forward width")
        if embed_dim % n_heads:
            raise ValueError(f"embed_dim={embed_dim} must be a multiple of n_heads={n_heads}; change either")
        dropout = finite_float(dropout, "dropout", hint="the dropout probability")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must lie in [0, 1); use 0.5 (SASRec) or 0 (exact tests)")
        self.embed_dim = embed_dim
        #: constructor options (a saved model is rebuilt from them)
        self.settings = {
            "embed_dim": embed_dim,
            "n_layers": n_layers,
            "n_heads": n_heads,
            "inner_dim": inner_dim,
            "dropout": dropout,
        }
        self.item_embedding = nn.Embedding(n_items + 1, embed_dim, dtype=dtype)  # row V = start token
        self.position_embedding = nn.Embedding(horizon + 1, embed_dim, dtype=dtype)  # positions 0 … T
        self.norm = nn.LayerNorm(embed_dim, eps=1e-12, dtype=dtype)
        self.dropout = nn.Dropout(dropout)
        block = nn.TransformerEncoderLayer(
            embed_dim,
            n_heads,
            dim_feedforward=inner_dim,
            dropout=dropout,
            activation="gelu",
            layer_norm_eps=1e-12,
            batch_first=True,
            dtype=dtype,
        )
        self.encoder = nn.TransformerEncoder(block, n_layers, enable_nested_tensor=False)
        self.register_buffer(
            "causal", torch.triu(torch.ones(horizon + 1, horizon + 1, dtype=torch.bool), 1), persistent=False
        )
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden(self, tokens: Tensor) -> Tensor:
        """Encoder outputs (N, L, d) for tokens (N, L) = start token then items, causal (L ≤ T + 1)."""
        L = tokens.shape[1]
        pos = torch.arange(L, device=tokens.device)
        x = self.item_embedding(tokens) + self.position_embedding(pos)[None]  # (N, L, d)
        x = self.dropout(self.norm(x))
        return self.encoder(x, mask=self.causal[:L, :L], is_causal=True)

    def item_logits(self, hidden: Tensor) -> Tensor:
        """Tied output layer: h · E[:V]ᵀ, (…, d) → (…, V)."""
        return hidden @ self.item_embedding.weight[: self.n_items].T

    def _tokens(self, items: Tensor) -> Tensor:
        start = torch.full((items.shape[0], 1), self.n_items, dtype=torch.long, device=items.device)
        return torch.cat([start, items], dim=1)

    # --- the SequencePolicy interface ---------------------------------------------------------------
    def initial_state(self, n: int) -> Tensor:
        """Length 0 and no items: int64 (n, 1 + T) of zeros."""
        return torch.zeros(n, 1 + self.horizon, dtype=torch.long, device=self.item_embedding.weight.device)

    def logits(self, state: Tensor) -> Tensor:
        """log p_G(· | h_t) up to a constant: the encoder output at position t (N, V)."""
        lengths = state[:, 0]  # (N,)
        width = int(lengths.max()) + 1 if state.shape[0] else 1  # start token + the longest history
        h = self.hidden(self._tokens(state[:, 1:width]))  # (N, width, d)
        last = h[torch.arange(state.shape[0], device=state.device), lengths]  # (N, d)
        return self.item_logits(last)

    def advance(self, state: Tensor, items: Tensor) -> Tensor:
        """Write ``items`` (N,) at column 1 + t and increase t."""
        out = state.clone()
        rows = torch.arange(state.shape[0], device=state.device)
        out[rows, 1 + state[:, 0]] = items.to(out.dtype)
        out[:, 0] += 1
        return out

    def step_log_probs(self, sequences: Tensor) -> Tensor:
        """log p_G(s_t | s_1 … s_{t−1}) for t = 1 … T in one causal pass (teacher forcing): (N, T)."""
        seqs = self.check_sequences(sequences)
        h = self.hidden(self._tokens(seqs[:, :-1]))  # (N, T, d): position t−1 predicts s_t
        logp = torch.log_softmax(self.item_logits(h), dim=-1)  # (N, T, V)
        return logp.gather(2, seqs[..., None]).squeeze(-1)
