"""What a generator and an energy are made of: the ``[generator]`` and ``[energy]`` config tables.

:class:`GeneratorConfig` describes p_G and :class:`EnergyConfig` the energy D (low = realistic,
eq. 3). They are checked on construction (:class:`gan_equiv.schema.Checked`) and consumed by
:func:`gan_equiv.models.builders.build_generator` / :func:`~gan_equiv.models.builders.build_energy`
together with the sizes V (``n_items``) and T (``horizon``) of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gan_equiv.checks import positive_int
from gan_equiv.schema import Checked, check_fields, invalid

Cell = Literal["gru", "lstm"]
GeneratorKind = Literal["rnn", "tabular", "sasrec"]
EnergyKind = Literal["cnn", "autoencoder", "linear", "tabular"]
FeatureState = Literal["history", "last", "time_last"]

#: SeqGAN's discriminator: filter widths and the number of filters of each width.
SEQGAN_FILTER_SIZES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
SEQGAN_NUM_FILTERS = (100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160)


@dataclass(frozen=True)
class GeneratorConfig(Checked):
    """The generator p_G of eq. (4): embedding + GRU/LSTM + softmax (``rnn``), a causal
    Transformer with tied output embeddings (``sasrec``, :class:`~gan_equiv.models.sasrec.SASRecPolicy`)
    or one logit row per prefix (``tabular``, tiny exact problems only; the sizes are then unused).

    ``rnn`` reads cell/embed_dim/hidden_dim; ``sasrec`` reads embed_dim (its width; a multiple of
    n_heads), n_layers, n_heads, inner_dim (feed-forward width) and dropout (SASRec's defaults:
    2 blocks, 2 heads, 256, 0.5); the other kinds ignore those four.
    """

    kind: GeneratorKind = "rnn"
    cell: Cell = "gru"
    embed_dim: int = 32
    hidden_dim: int = 32
    n_layers: int = 2
    n_heads: int = 2
    inner_dim: int = 256
    dropout: float = 0.5

    def _validate(self) -> None:
        check_fields(self, positive_int, "embed_dim", "hidden_dim", fix="use a positive size")
        sasrec_sizes = ("n_layers", "n_heads", "inner_dim")
        check_fields(self, positive_int, *sasrec_sizes, fix="use a positive size (SASRec: 2, 2, 256)")
        if not 0.0 <= self.dropout < 1.0:
            raise invalid("dropout", self.dropout, "must lie in [0, 1)", "use e.g. 0.5 (SASRec) or 0")
        if self.kind == "sasrec" and self.embed_dim % self.n_heads:
            raise invalid(
                "n_heads",
                self.n_heads,
                f"does not divide embed_dim={self.embed_dim} (each head gets embed_dim / n_heads)",
                "pick n_heads dividing embed_dim, e.g. 2 for 64",
            )


@dataclass(frozen=True)
class EnergyConfig(Checked):
    """The energy D (low = realistic). ``cnn`` uses embed_dim/filter_sizes/num_filters/dropout,
    ``autoencoder`` embed_dim/code_dim, ``linear`` feature_state (θ·f(S)), ``tabular`` nothing."""

    kind: EnergyKind = "cnn"
    embed_dim: int = 64
    filter_sizes: tuple[int, ...] = SEQGAN_FILTER_SIZES
    num_filters: tuple[int, ...] = SEQGAN_NUM_FILTERS
    dropout: float = 0.25
    code_dim: int = 32
    feature_state: FeatureState = "time_last"

    def _validate(self) -> None:
        check_fields(self, positive_int, "embed_dim", "code_dim", fix="use a positive size")
        if not 0.0 <= self.dropout < 1.0:
            raise invalid("dropout", self.dropout, "must lie in [0, 1)", "use e.g. 0.25 (SeqGAN's keep 0.75)")
        if not self.filter_sizes:
            raise invalid("filter_sizes", self.filter_sizes, "is empty", "give at least one filter width")
        if len(self.filter_sizes) != len(self.num_filters):
            raise invalid(
                "num_filters",
                self.num_filters,
                f"has {len(self.num_filters)} entries but filter_sizes has {len(self.filter_sizes)}",
                "give one filter count per filter width",
            )
        for name in ("filter_sizes", "num_filters"):
            for i, v in enumerate(getattr(self, name)):
                if v <= 0:
                    raise invalid(f"{name}[{i}]", v, "must be positive", "use widths and counts >= 1")
