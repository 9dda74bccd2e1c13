"""Names shared by several layers, defined once (pure Python: the genome,
evolution and config layers import them without loading torch)."""

from __future__ import annotations

__all__ = ["ATTACK_OPTIMIZERS", "DATASET_NAMES", "DISTANCES", "FINAL_TRAININGS",
           "INITIAL_POPULATIONS", "MO_SELECTIONS", "NICHE_CHILDREN", "NORMS", "OBJECTIVE_NAMES",
           "OPTIMIZERS",
           "SINGLE_OBJECTIVE_NICHE_CHILDREN",
           "ROBUSTNESS"]

# Datasets the registry can load: two embedded, three from torchvision folders.
DATASET_NAMES = ("digits", "mnist10k", "cifar10", "mnist", "fashion-mnist")
# Optimisers a candidate network can be trained with.
OPTIMIZERS = ("adam", "sgd")
# Spectrum distances of niching: plain Euclidean (the paper does not say) or
# per-feature normalised.
DISTANCES = ("raw", "normalized")
# What the robustness half of the fitness is.
ROBUSTNESS = ("bank", "direct", "both")
# Perturbation norms of the paper's black-box attacks (Table 1).
NORMS = ("L0", "Linf")
# Optimisers of those attacks (differential evolution, CMA-ES).
ATTACK_OPTIMIZERS = ("DE", "CMA-ES")
# how a RAS generation's children are shared among niches (evolution.niche_shares):
# by one fitness (single objective), or by NSGA-II's crowded tournament (several)
SINGLE_OBJECTIVE_NICHE_CHILDREN = ("equal", "rank", "tournament")
NICHE_CHILDREN = (*SINGLE_OBJECTIVE_NICHE_CHILDREN, "crowded")
# What a search's initial population is drawn from: random RAS models (the paper)
# or random chains from TPE's space (genome.random_chain)
INITIAL_POPULATIONS = ("random", "chains")
# How the winner's final network is trained: as every candidate (the paper), or
# adversarially fine-tuned with PGD-AT (Madry et al.) or TRADES (Zhang et al.)
FINAL_TRAININGS = ("standard", "pgd-at", "trades")
# What a search maximises, by name (ras_deap.evolution.objectives): "fitness"
# alone is the paper's sum; two or more make the search multi-objective.
OBJECTIVE_NAMES = ("fitness", "accuracy", "robustness")
# How a multi-objective search truncates the last front that does not fit:
# by spectrum diversity (the paper's niching measure) or NSGA-II's crowding.
MO_SELECTIONS = ("spectrum", "crowding")
