"""RAS evolution on DEAP: mutations, spectrum niching and the loop (no torch)."""

from .algorithm import ea_spectrum_niching, step
from .hooks import CallbackObserver, LoopObserver
from .individual import Individual, ensure_creator, make_individual
from .limits import Limits, available_mutations
from .measurement import breeding_order, measurements_of, niche_shares
from .multiobjective import (
    crowded_ranks,
    front_records,
    hypervolume,
    multiobjective_select,
    nondominated_fronts,
    pareto_front,
    points_hypervolume,
    sel_nsga2,
    sel_nsga_spectrum,
    sel_tournament_crowded,
)
from .mutations import (
    BLOCK_MUTATIONS,
    LAYER_MUTATIONS,
    MODEL_MUTATIONS,
    MUTATIONS,
    MUTATIONS_BY_NAME,
    MutationOp,
)
from .niching import DISTANCES, cached_spectrum, closest_representative, sel_spectrum_niching
from .objectives import OBJECTIVES, Objective, objective_names, objective_values, objectives_from
from .operators import apply_mutation, mutate, try_mutation
from .state import (
    SearchState,
    assign_result,
    default_stats,
    finished,
    generation_summary,
    initial_state,
)
from .toolbox import build_toolbox

__all__ = [
    "BLOCK_MUTATIONS",
    "CallbackObserver",
    "DISTANCES",
    "LAYER_MUTATIONS",
    "MODEL_MUTATIONS",
    "MUTATIONS",
    "MUTATIONS_BY_NAME",
    "Individual",
    "Limits",
    "LoopObserver",
    "MutationOp",
    "OBJECTIVES",
    "Objective",
    "front_records",
    "hypervolume",
    "multiobjective_select",
    "nondominated_fronts",
    "objective_names",
    "objective_values",
    "objectives_from",
    "pareto_front",
    "points_hypervolume",
    "sel_nsga2",
    "sel_nsga_spectrum",
    "sel_tournament_crowded",
    "crowded_ranks",
    "SearchState",
    "apply_mutation",
    "assign_result",
    "available_mutations",
    "breeding_order",
    "measurements_of",
    "niche_shares",
    "promotions",
    "screened_schedule",
    "build_toolbox",
    "cached_spectrum",
    "closest_representative",
    "default_stats",
    "ea_spectrum_niching",
    "ensure_creator",
    "finished",
    "generation_summary",
    "initial_state",
    "make_individual",
    "mutate",
    "sel_spectrum_niching",
    "step",
    "try_mutation",
]
