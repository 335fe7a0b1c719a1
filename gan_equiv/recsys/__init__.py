"""Sequential recommendation on real interaction logs: readers, preprocessing and protocols, the
recommenders (popularity, Markov, MLE GRU/SASRec, EB-SeqGAN), ranking metrics, ``evaluate``/``recommend``.
"""

from gan_equiv.recsys.logs import IdMap, InteractionLog, UserSequences
from gan_equiv.recsys.metrics import multi_step_metrics, next_item_metrics
from gan_equiv.recsys.preprocessing import k_core, leave_one_out, preprocess
from gan_equiv.recsys.ranking import ranking_metrics
from gan_equiv.recsys.readers import (
    InteractionFormatError,
    LogSource,
    load_interactions,
    read_csv,
    read_movielens,
    read_recbole,
    write_interactions,
)
from gan_equiv.recsys.recommenders import (
    EBSeqGANRecommender,
    GRURecommender,
    MarkovRecommender,
    PopularityRecommender,
    Recommender,
    SASRecRecommender,
)
from gan_equiv.recsys.settings import EvaluationConfig, ProtocolConfig
from gan_equiv.recsys.synthetic import synthetic_log

__all__ = [
    "EBSeqGANRecommender",
    "EvaluationConfig",
    "GRURecommender",
    "IdMap",
    "InteractionFormatError",
    "InteractionLog",
    "LogSource",
    "MarkovRecommender",
    "PopularityRecommender",
    "ProtocolConfig",
    "Recommender",
    "SASRecRecommender",
    "UserSequences",
    "k_core",
    "leave_one_out",
    "load_interactions",
    "multi_step_metrics",
    "next_item_metrics",
    "preprocess",
    "ranking_metrics",
    "read_csv",
    "read_movielens",
    "read_recbole",
    "synthetic_log",
    "write_interactions",
]
