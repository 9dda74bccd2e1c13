"""Spectrum-based niching selection (section 5.4)."""

from __future__ import annotations

import random

import pytest

from ras_deap.evolution import (
    SearchState,
    build_toolbox,
    cached_spectrum,
    closest_representative,
    make_individual,
    sel_spectrum_niching,
)
from ras_deap.genome import (
    Block,
    GenePool,
    Layer,
    Model,
    feature_scale,
    random_model,
    spectrum,
    spectrum_distance,
)

C8 = Layer.conv(8, 3, 1)
C16 = Layer.conv(16, 3, 1)
D64 = Layer.dense(64)


def chain_model(*layers: Layer) -> Model:
    block = Block(tuple(layers), tuple((i, i + 1) for i in range(len(layers) - 1)))
    return Model((block,))


def ind(model: Model, fitness: float | None = None, **kwargs):
    individual = make_individual(model, **kwargs)
    if fitness is not None:
        individual.fitness.values = (fitness,)
    return individual


# Three niches with clearly different spectra.
SMALL = chain_model(C8)  # (1, 1, 0, 0, 0, 1, 0, 0, 0, 0)
MEDIUM = chain_model(C8, C8, C8, C8)
LARGE = chain_model(*[D64] * 9)


def test_cached_spectrum_matches_spectrum():
    for seed in range(5):
        model = random_model(random.Random(seed))
        assert cached_spectrum(model) == spectrum(model)
        assert cached_spectrum(Model.from_json(model.to_json())) == spectrum(model)


def test_isomorphic_models_share_the_spectrum_cache_and_a_hall_of_fame_place():
    """The two numberings of A -> {B, C} -> D are one genome for every cache
    keyed on ids."""
    edges = ((0, 1), (0, 2), (1, 3), (2, 3))
    one = Model((Block((C8, C16, D64, C8), edges),))
    other = Model((Block((C8, D64, C16, C8), edges),))
    assert one.blocks[0].layers != other.blocks[0].layers and one.id == other.id
    cached_spectrum(one)
    hits = cached_spectrum.cache_info().hits
    assert cached_spectrum(other) == spectrum(other)
    assert cached_spectrum.cache_info().hits == hits + 1
    state = SearchState(seed=0, rng=random.Random(0), pool=GenePool(), population=[])
    state.halloffame.update([ind(one, 1.0), ind(other, 2.0)])
    assert len(state.halloffame) == 1  # DEAP skips an individual similar to a member


def test_a_strictly_fitter_child_replaces_its_closest_representative():
    reps = [ind(SMALL, 1.0), ind(MEDIUM, 1.0), ind(LARGE, 1.0)]
    child = ind(chain_model(C8, C8, C8, C8, C8), 1.5, cluster=0)  # nearest MEDIUM, bred by 0
    out = sel_spectrum_niching([*reps, child], 3)
    assert out[0] is reps[0] and out[1] is child and out[2] is reps[2]
    assert out is not reps and len(out) == 3


@pytest.mark.parametrize("fitness", [0.5, 1.0])
def test_a_child_that_is_not_strictly_fitter_changes_nothing(fitness):
    reps = [ind(SMALL, 1.0), ind(MEDIUM, 1.0), ind(LARGE, 1.0)]
    child = ind(chain_model(C8, C8, C8, C8, C8), fitness)
    out = sel_spectrum_niching([*reps, child], 3)
    assert all(a is b for a, b in zip(out, reps, strict=True))
    assert all(r.fitness.values == (1.0,) for r in out)


def test_the_child_competes_with_the_nearest_niche_not_the_fittest():
    reps = [ind(SMALL, 0.1), ind(MEDIUM, 5.0), ind(LARGE, 0.1)]
    near_medium = ind(chain_model(C8, C8, C8), 1.0)  # fitter than SMALL, but MEDIUM is closer
    out = sel_spectrum_niching([*reps, near_medium], 3)
    assert all(a is b for a, b in zip(out, reps, strict=True))


def test_ties_go_to_the_lowest_index():
    twin_a = chain_model(C8, C8, C8)
    twin_b = chain_model(C16, C16, C16)  # different genome, same spectrum
    assert spectrum(twin_a) == spectrum(twin_b) and twin_a != twin_b
    reps = [ind(LARGE, 0.0), ind(twin_a, 0.0), ind(twin_b, 0.0)]
    child = ind(chain_model(C16, C8, C16), 1.0)  # same spectrum: distance 0 to both twins
    out = sel_spectrum_niching([*reps, child], 3)
    assert out[1] is child and out[2] is reps[2] and out[0] is reps[0]
    # equidistant from two different spectra: the lower index wins as well
    assert closest_representative((2, 0), [(0, 0), (4, 0), (2, 0)]) == 2
    assert closest_representative((2, 0), [(0, 0), (4, 0)]) == 0
    assert closest_representative((2, 0), [(4, 0), (0, 0)]) == 0


def test_children_are_processed_in_order_against_the_updated_representatives():
    reps = [ind(SMALL, 1.0), ind(LARGE, 1.0)]
    first = ind(chain_model(C8, C8), 2.0)
    second = ind(chain_model(C8, C8, C8), 3.0)
    third = ind(chain_model(C8), 2.5)  # fitter than SMALL, not than `second`
    out = sel_spectrum_niching([*reps, first, second, third], 2)
    assert out[0] is second and out[1] is reps[1]


def test_normalized_distance_can_pick_a_different_representative():
    child_model = chain_model(*[C8] * 10)  # (1,10,0,9, 0,10, 0,0,0,9)
    longer = chain_model(*[C8] * 12)  # (1,12,0,11, 0,12, 0,0,0,11)
    one_dense = chain_model(*[C8] * 9, D64)  # (1,10,0,9, 1,9, 0,0,1,8)
    spectra = [spectrum(longer), spectrum(one_dense)]
    child_spec = spectrum(child_model)
    # raw: 4.0 to `longer` and 2.0 to `one_dense`
    assert spectrum_distance(child_spec, spectra[0]) == pytest.approx(4.0)
    assert spectrum_distance(child_spec, spectra[1]) == pytest.approx(2.0)
    assert closest_representative(child_spec, spectra) == 1
    # normalized: the dense-layer and conv->dense features only vary from 0 to 1,
    # so one dense layer counts more than two extra conv layers
    scale = feature_scale([*spectra, child_spec])
    assert closest_representative(child_spec, spectra, scale) == 0

    def select(distance):
        reps = [ind(longer, 1.0), ind(one_dense, 1.0)]
        child = ind(child_model, 2.0)
        out = sel_spectrum_niching([*reps, child], 2, distance=distance)
        return [x is child for x in out]

    assert select("raw") == [False, True]
    assert select("normalized") == [True, False]
    # the toolbox passes its distance on to select
    state = SearchState(seed=0, rng=random.Random(0), pool=GenePool(), population=[])
    for distance, expected in (("raw", [False, True]), ("normalized", [True, False])):
        toolbox = build_toolbox(state, distance=distance)
        reps = [ind(longer, 1.0), ind(one_dense, 1.0)]
        child = ind(child_model, 2.0)
        assert [x is child for x in toolbox.select([*reps, child], 2)] == expected


def test_select_returns_references_and_keeps_k():
    reps = [ind(SMALL, 1.0), ind(MEDIUM, 2.0), ind(LARGE, 3.0)]
    out = sel_spectrum_niching(reps, 3)
    assert all(a is b for a, b in zip(out, reps, strict=True))
    # with k=2 the third is a child: nearest to MEDIUM and fitter, so it takes its place
    two = sel_spectrum_niching(reps, 2)
    assert two[0] is reps[0] and two[1] is reps[2]


def test_select_rejects_bad_arguments():
    reps = [ind(SMALL, 1.0), ind(MEDIUM, 1.0)]
    with pytest.raises(ValueError, match="no fitness"):
        sel_spectrum_niching([*reps, ind(LARGE)], 2)
    with pytest.raises(ValueError, match="k=0"):
        sel_spectrum_niching(reps, 0)
    with pytest.raises(ValueError, match="k=3"):
        sel_spectrum_niching(reps, 3)
    with pytest.raises(ValueError, match="distance="):
        sel_spectrum_niching(reps, 2, distance="manhattan")


def test_a_nan_fitness_never_wins_and_is_always_beaten():
    nan = float("nan")
    reps = [ind(SMALL, 1.0), ind(MEDIUM, nan)]
    nan_child = ind(chain_model(C8, C8), nan)  # nearest SMALL
    out = sel_spectrum_niching([*reps, nan_child], 2)
    assert out[0] is reps[0] and out[1] is reps[1]
    weak_child = ind(chain_model(C8, C8, C8, C8, C8), -100.0)  # nearest MEDIUM (NaN)
    out = sel_spectrum_niching([*reps, weak_child], 2)
    assert out[0] is reps[0] and out[1] is weak_child
